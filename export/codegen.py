"""Code generation: ``model_int8.tflite`` -> C sources for one target.

``generate(export_dir, target, out_dir)`` reads the flatbuffer (the source
of truth for weights, shapes and quantization), matches it to the core's
structure (:mod:`.program`), derives TFLM's multipliers and shifts
(:mod:`.quant`), and renders ``firmware_templates/`` with Jinja2::

    out/model.h, model.c         ABI, static arena, streaming int8 core, float front end
    out/weights.h, weights.c     one const struct in flash: U/V weights, biases, multipliers, shifts
    out/kernels/tr_*.{h,c}       the hand-written kernels (portable + SMLAD path)
    out/test_vectors.h, .c       int8 inputs with TFLM's expected outputs
    out/tflm/model_data.{h,c}    the .tflite as a C array, for TFLM users
    out/tflm/model_int8.tflite   the flatbuffer the C was generated from, and the
    out/tflm/export.json         export manifest: codegen reruns from out/tflm plus the checkpoint and
                                 calibration scenes it names (the real-scene test vectors)
    out/README.md                dropping the sources into a Make / CMake / STM32Cube project
    out/report.json, report.md   sizes, MACs, arena against TFLM's, fit against the board

Everything is computed before the first file is written, then the folder is
replaced as a whole: an error (unknown op, a model that does not fit the
target) leaves ``out_dir`` as it was. Same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyrrm.training.fileio import portable, write_bytes

from . import cprefix, intref, program, render, stage, targets, tflite_reader
from .program import FC, Program

KERNELS = render.TEMPLATES / "kernels"
#: flash the generated code takes besides the weights, for the fit check: model.c with its
#: parameter blocks, the kernels and the libm they call (cortex-m4 at -O2, the firmware's flags:
#: about 6.5 KB of objects plus logf/sqrtf/roundf); report.json's "code_bytes_estimate"
CODE_BYTES_ESTIMATE = 12 * 1024
#: the stack the firmware reserves (``__stack_size`` in firmware_templates/firmware/common/sections.ld)
STACK_BYTES = 4 * 1024


class FitError(ValueError):
    """The model does not fit the target's flash or RAM."""


def cname(name: str) -> str:
    return name.replace(".", "_")


@dataclass
class Member:
    """One member of a generated C struct, laid out as a C compiler does."""

    name: str
    ctype: str  # int8_t | int16_t | int32_t | float
    dims: tuple[int, ...]
    data: np.ndarray | None = None
    offset: int = 0
    doc: str = ""

    @property
    def size(self) -> int:
        return int(np.prod(self.dims)) * {"int8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}[self.ctype]

    @property
    def align(self) -> int:
        return {"int8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}[self.ctype]

    @property
    def decl(self) -> str:
        return f"{self.ctype} {self.name}" + "".join(f"[{d}]" for d in self.dims) + ";"


def layout(members: list[Member], pad_to: int = 4) -> int:
    """Assign offsets; every member starts at a multiple of ``pad_to`` bytes. Returns the total size."""
    off = 0
    for m in members:
        off = -(-off // max(pad_to, m.align)) * max(pad_to, m.align)
        m.offset = off
        off += m.size
    return -(-off // 4) * 4


def _weights(prog: Program) -> list[Member]:
    out = []
    for f in prog.fcs():
        n = cname(f.name)
        out.append(Member(f"{n}_w", "int8_t", (f.d_out, f.d_in), f.weight,
                          doc=f"{f.name} weights [d_out={f.d_out}][d_in={f.d_in}]"))
        if f.bias is not None:
            out.append(Member(f"{n}_bias", "int32_t", (f.d_out,), f.bias, doc=f"{f.name} bias"))
        out.append(Member(f"{n}_mult", "int32_t", (f.d_out,), f.mult.astype(np.int64),
                          doc=f"{f.name} Q31 multipliers"))
        out.append(Member(f"{n}_shift", "int8_t", (f.d_out,), f.shift.astype(np.int64), doc=f"{f.name} shifts"))
    return out


def _pad(n: int) -> int:
    return -(-n // 4) * 4


def _arena(prog: Program) -> list[Member]:
    K, nt = prog.K, prog.nt
    r_msg = prog.msg_node.d_out
    chain_w = max([r_msg] + [f.d_out for f in prog.msg_chain[:-1]])
    wide = prog.msg_chain[-1]
    upd_w = max([prog.upd_node.d_out] + [f.d_out for f in prog.upd_chain])
    scratch = max(_pad(f.d_in) for f in prog.fcs())
    m = [
        Member("v", "float", (K, 2 * nt), doc="front end: current beamformers [Re v, Im v]"),
        Member("d", "float", (K, 2 * nt), doc="front end: standardised direct channels"),
        Member("best", "int32_t", (wide.d_out,), doc="running max of the wide layer's accumulators"),
        Member("src", "int16_t", (K, _pad(wide.d_in)), doc="wide-layer inputs of one receiver's senders, packed"),
        Member("scratch", "int16_t", (scratch,), doc="FULLY_CONNECTED input scratch"),
        Member("e_q", "int8_t", (K, K, 2 * nt), doc="front end: quantized edge features (K^2 x input width)"),
        Member("x_q", "int8_t", (K, 4 * nt), doc="front end: quantized node states"),
        Member("o_q", "int8_t", (K, 2 * nt), doc="front end: core output"),
        Member("a", "int8_t", (K, r_msg), doc="message node part per sender"),
        Member("eg", "int8_t", (K, 2 * nt), doc="edge inputs of one receiver's senders"),
        Member("ag", "int8_t", (K, r_msg), doc="node parts of one receiver's senders"),
        Member("t0", "int8_t", (K, chain_w), doc="message chain ping"),
        Member("t1", "int8_t", (K, chain_w), doc="message chain pong"),
        Member("agg", "int8_t", (wide.d_out,), doc="aggregated message of one receiver"),
        Member("u0", "int8_t", (upd_w,), doc="update chain ping"),
        Member("u1", "int8_t", (upd_w,), doc="update chain pong"),
    ]
    return m


def _fc_init(f: FC, prefix: str) -> dict:
    n = cname(f.name)
    w = f"{prefix}_weights"
    return {
        "name": n, "label": f.name, "d_in": f.d_in, "d_out": f.d_out,
        "w": f"&{w}.{n}_w[0][0]",
        "bias": f"{w}.{n}_bias" if f.bias is not None else "0",
        "mult": f"{w}.{n}_mult", "shift": f"{w}.{n}_shift",
        "in_zp": f.inp.zero_point, "out_zp": f.out.zero_point, "act_min": f.act_min, "act_max": f.act_max,
        "fast_rq": int(fast_requant(f)),
    }


def fast_requant(f: FC) -> bool:
    """tr_mbqm_fast's precondition for layer ``f``: every shift in [-31, -1] and
    every accumulator below 2^29 in magnitude (|x - in_zp| <= 255 for int8 x)."""
    bias = np.abs(f.bias.astype(np.int64)) if f.bias is not None else 0
    acc_max = bias + 255 * np.abs(f.weight.astype(np.int64)).sum(axis=1)  # [d_out]
    return bool(((f.shift <= -1) & (f.shift >= -31)).all() and (acc_max < (1 << 29)).all())


def _add_init(a: program.Add) -> dict:
    return {**{k: a.p[k] for k in ("mult1", "mult2", "mult_out", "shift1", "shift2", "shift_out", "left_shift")},
            "in1_zp": a.in1.zero_point, "in2_zp": a.in2.zero_point, "out_zp": a.out.zero_point,
            "act_min": a.act_min, "act_max": a.act_max, "node_first": a.p["node_first"]}


def mul_lut(prog: Program) -> np.ndarray:
    """The mask MUL by the code of 1.0 for every int8 input (TFLM's arithmetic, exact)."""
    from . import quant

    m = prog.mask_mul
    a = np.arange(-128, 128, dtype=np.int64)
    prod = (a - m.in1.zero_point) * (intref.quantized_one(prog) - m.in2.zero_point)
    return np.clip(quant.mbqm(prod, m.mult, m.shift) + m.out.zero_point, m.act_min, m.act_max).astype(np.int8)


def _f(x: float) -> str:
    """A float32 constant that reads back to the same float32."""
    return f"{float(np.float32(x)):.9g}f"


@dataclass
class Vector:
    name: str
    k: int
    x_q: np.ndarray  # int8 [K, 4Nt]
    e_q: np.ndarray  # int8 [K, K, 2Nt]
    edge: np.ndarray  # bool [K, K]
    o_q: np.ndarray  # int8 [K, 2Nt] (TFLM; rows >= k unused)


from .host import edge_bits  # noqa: E402  (the ABI's bit order lives with the host build)


def test_vectors(prog: Program, core, scene_inputs: list[tuple], seed: int = 7) -> list[Vector]:
    """Int8 core inputs with TFLM's outputs (``core``: a :class:`.tflm.TFLMCore`): real scenes
    and the hard cases of issue 4."""
    K, nt = prog.K, prog.nt
    one = intref.quantized_one(prog)
    rng = np.random.default_rng(seed)
    cases: list[tuple[str, int, np.ndarray, np.ndarray, np.ndarray]] = []
    for i, (x, e, edge) in enumerate(scene_inputs):
        cases.append((f"scene {i}", K, x, e, edge))
    zx = np.full((K, 4 * nt), prog.x.zero_point, np.int8)
    ze = np.full((K, K, 2 * nt), prog.e.zero_point, np.int8)
    full = ~np.eye(K, dtype=bool)
    cases.append(("all-zero channels", K, zx, ze, full))
    sat_x = np.where(rng.random((K, 4 * nt)) < 0.5, -128, 127).astype(np.int8)
    sat_e = np.where(rng.random((K, K, 2 * nt)) < 0.5, -128, 127).astype(np.int8)
    cases.append(("saturating inputs", K, sat_x, sat_e, full))
    rx = rng.integers(-128, 128, (K, 4 * nt), dtype=np.int8)
    re_ = rng.integers(-128, 128, (K, K, 2 * nt), dtype=np.int8)
    cases.append(("random int8, random edges", K, rx, re_, rng.random((K, K)) < 0.4))
    cases.append(("single active link", 1, rx, re_, np.zeros((K, K), bool)))
    k_small = max(2, K // 3)
    small = np.zeros((K, K), bool)
    small[:k_small, :k_small] = ~np.eye(k_small, dtype=bool)
    cases.append((f"K={k_small} below K_MAX={K}", k_small, rx, re_, small))
    cases.append(("no edges", K, rx, re_, np.zeros((K, K), bool)))
    out = []
    for name, k, x, e, edge in cases:
        edge = edge.copy()
        edge[k:, :] = False
        edge[:, k:] = False
        mq = np.where(edge, one, prog.mask.zero_point).astype(np.int8)[..., None]  # 1.0 or 0.0
        o = core.invoke_int8(x, e, mq)
        o[k:] = 0  # rows of inactive links are not part of the contract
        out.append(Vector(name, k, x.copy(), e.copy(), edge, o))
    return out


def _scene_inputs(export_dir: Path, prog: Program, core) -> list[tuple]:
    """Core inputs (x_q, e_q, edge) of the first calibration scene at its first and last step.

    The trajectory runs as on the target — float front end around the int8
    core under TFLM — so no BLAS enters and the bytes are the same on any machine.
    """
    from tinyrrm.training import checkpoint as ckpt
    from tinyrrm.training.scenes import load as load_scenes

    from . import frontend
    from .tflm import quantize

    man = stage.read_manifest(export_dir)
    model, _ = ckpt.load(man["checkpoint"]["path"])
    calib = Path(man["calibration"]["path"])
    if not calib.is_file():
        raise FileNotFoundError(f"calibration scenes {calib} (named in {export_dir}/export.json) not found; "
                                "they give the test vectors their real scenes (make data)")
    scenes = load_scenes(calib).subset(slice(0, 1))
    edge = scenes.edge_mask(model.cfg.cut_m)[0]
    fe = frontend.FrontEnd.of(model)
    seen: list[tuple] = []
    def step(x, e, m):
        seen.append((quantize(x, prog.x.scale, prog.x.zero_point), quantize(e, prog.e.scale, prog.e.zero_point), edge))
        return core(x, e, m)

    frontend.run(fe, step, frontend.unit_noise(scenes)[0], edge)
    return [seen[0], seen[-1]]


def build_context(prog: Program, fe, target: targets.Target, tflite_sha: str, command: str,
                  vectors: list[Vector], tflm_arena: int, prefix: str) -> dict:
    weights = _weights(prog)
    w_bytes = layout(weights)
    arena = _arena(prog)
    a_bytes = layout(arena)
    K, nt = prog.K, prog.nt
    edge_bytes = len(edge_bits(vectors[0].edge))  # ceil(K*K / 8)
    in_bytes = -(-(4 + K * K * nt * 2 * 4 + edge_bytes) // 4) * 4  # sizeof(<prefix>_input): k, h, edge bits, padding
    io_bytes = in_bytes + K * nt * 2 * 4  # + sizeof(<prefix>_output)
    vec_bytes = len(vectors) * (4 + K * 4 * nt + K * K * 2 * nt + len(edge_bits(vectors[0].edge)) + K * 2 * nt)
    flash_need = w_bytes + CODE_BYTES_ESTIMATE
    ram_need = a_bytes + io_bytes + STACK_BYTES
    if flash_need > target.flash or ram_need > target.ram:
        what = []
        if flash_need > target.flash:
            what.append(f"flash {flash_need:,} B (weights {w_bytes:,} + code ~{CODE_BYTES_ESTIMATE:,})"
                        f" but {target.name} ({target.board}) has {target.flash:,} B")
        if ram_need > target.ram:
            what.append(f"RAM {ram_need:,} B (arena {a_bytes:,} + input/output {io_bytes:,} + stack {STACK_BYTES:,})"
                        f" but {target.name} ({target.board}) has {target.ram:,} B")
        raise FitError(f"{prefix} does not fit {target.name}: needs " + "; needs ".join(what))
    P = prefix.upper()
    macs = {"per_edge": prog.macs_per_step(1) - prog.macs_per_step(0), "per_node": prog.macs_per_step(0) // K}
    return {
        "prefix": prefix, "P": P, "K": K, "NT": nt, "steps": fe.steps, "residual": fe.residual, "compand": fe.compand,
        "target": target, "provenance": render.provenance(command, tflite_sha),
        "provenance_md": render.provenance(command, tflite_sha, "html"),
        "provenance_mk": render.provenance(command, tflite_sha, "make"),
        "weights": weights, "weights_bytes": w_bytes, "arena": arena, "arena_bytes": a_bytes, "io_bytes": io_bytes,
        "fc": {cname(f.name): _fc_init(f, prefix) for f in prog.fcs()},
        "msg_node": cname(prog.msg_node.name), "msg_edge": cname(prog.msg_edge.name),
        "msg_chain": [cname(f.name) for f in prog.msg_chain[:-1]], "wide": cname(prog.msg_chain[-1].name),
        "wide_fc": prog.msg_chain[-1],
        "upd_node": cname(prog.upd_node.name), "upd_agg": cname(prog.upd_agg.name),
        "upd_chain": [cname(f.name) for f in prog.upd_chain],
        "msg_add": _add_init(prog.msg_add), "upd_add": _add_init(prog.upd_add),
        "mul": {"mult": prog.mask_mul.mult, "shift": prog.mask_mul.shift, "b": intref.quantized_one(prog),
                "in1_zp": prog.mask_mul.in1.zero_point, "in2_zp": prog.mask_mul.in2.zero_point,
                "out_zp": prog.mask_mul.out.zero_point, "act_min": prog.mask_mul.act_min,
                "act_max": prog.mask_mul.act_max, "lut": mul_lut(prog)},
        "q": {n: {"scale": _f(getattr(prog, n).scale), "zp": getattr(prog, n).zero_point} for n in ("x", "e", "o")},
        "norm": {k: [_f(v) for v in getattr(fe, k)] for k in ("direct_mean", "direct_std", "cross_mean", "cross_std")},
        "vectors": vectors, "vectors_bytes": vec_bytes, "edge_bytes": edge_bytes, "stack_bytes": STACK_BYTES,
        "edge_bits": edge_bits, "tflm_arena": tflm_arena, "macs": macs, "low_rank": prog.low_rank,
        "flash_need": flash_need, "ram_need": ram_need,
    }


def _render_all(ctx: dict) -> dict[str, bytes]:
    files = {}
    for tpl, out in (("model/model.h.j2", "model.h"), ("model/model.c.j2", "model.c"),
                     ("model/weights.h.j2", "weights.h"), ("model/weights.c.j2", "weights.c"),
                     ("model/test_vectors.h.j2", "test_vectors.h"), ("model/test_vectors.c.j2", "test_vectors.c"),
                     ("model/README.md.j2", "README.md"), ("model/model.mk.j2", "model.mk")):
        files[out] = render.render(tpl, **ctx).encode()
    header = ctx["provenance"] + "\n"
    for src in sorted(KERNELS.iterdir()):
        if src.suffix in (".c", ".h"):
            files[f"kernels/{src.name}"] = (header + src.read_text()).encode()
    return files


def generate(export_dir, target_name: str, out_dir, prefix: str | None = None, command: str | None = None) -> Path:
    """Generate ``out_dir`` for ``target_name`` from an export folder (see the module docstring).
    ``prefix`` starts every C name (:mod:`.cprefix`; None: the model's family)."""
    from tinyrrm.training import checkpoint as ckpt

    from . import frontend, report

    target = targets.get_any(target_name)
    export_dir = Path(export_dir)
    man = stage.read_manifest(export_dir)
    if man is None:
        raise FileNotFoundError(f"{export_dir}: no export (run `tinyrrm export model` first)")
    prefix = cprefix.resolve(prefix, man["name"])
    blob = (export_dir / "model_int8.tflite").read_bytes()
    prog = program.match(tflite_reader.read(blob))
    model, _ = ckpt.load(man["checkpoint"]["path"])
    fe = frontend.FrontEnd.of(model)
    sha = stage._sha(blob)
    # the command that regenerates this folder (its default --out); a path inside the working
    # directory is recorded relative to it, so an absolute spelling gives the same bytes
    command = command or " ".join(shlex.quote(str(a)) for a in (
        "tinyrrm", "export", "c", "--export-dir", portable(export_dir), "--target", target.name,
        *(("--prefix", prefix) if prefix != cprefix.default(man["name"]) else ())))
    from .tflm import TFLMCore

    core = TFLMCore(blob)  # one interpreter (and host arena) for the scene trajectory and the vectors
    vectors = test_vectors(prog, core, _scene_inputs(export_dir, prog, core))
    ctx = build_context(prog, fe, target, sha, command, vectors, man["tflm"]["arena"]["total"], prefix)
    files = _render_all(ctx)
    # what codegen read, kept beside its output: regenerating needs only this folder
    for name in ("model_data.c", "model_data.h", "model_int8.tflite", stage.MANIFEST):
        files[f"tflm/{name}"] = (export_dir / name).read_bytes()
    rep = report.codegen_report(ctx, prog, man, files)
    _keep_measured(Path(out_dir), files, rep)
    files["report.json"] = (json.dumps(rep, indent=2, sort_keys=True) + "\n").encode()
    files["report.md"] = report.codegen_markdown(rep, ctx["provenance_md"]).encode()
    return _replace_dir(Path(out_dir), files)


def _keep_measured(out: Path, files: dict[str, bytes], rep: dict) -> None:
    """Carry the measured figures (HIL, benchmarks) over a regeneration that changes no
    source byte: they still describe exactly this code. Any change drops them."""
    old = out / "report.json"
    if not old.is_file():
        return
    for name, data in files.items():
        p = out / name
        if not p.is_file() or p.read_bytes() != data:
            return
    measured = json.loads(old.read_text()).get("measured")
    if measured:
        rep["measured"] = measured
        png = out / "report_hil.png"
        if png.is_file():
            files["report_hil.png"] = png.read_bytes()


def _replace_dir(out: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into a fresh sibling folder, then swap it in for ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for name, data in sorted(files.items()):
            write_bytes(tmp / name, data)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
