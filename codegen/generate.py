"""Code generation: an export folder -> C sources for one target.

``generate(export_dir, target, out_dir)`` reads the flatbuffer (the source
of truth for weights, shapes and quantization), matches it to the core's
structure (:mod:`.program`), derives TFLM's multipliers and shifts
(:mod:`.quant`), and renders ``firmware_templates/`` with Jinja2::

    out/model.h, model.c         ABI, static arena, streaming int8 core, float front end
    out/weights.h, weights.c     one const struct in flash: U/V weights, biases, multipliers, shifts
    out/kernels/tr_*.{h,c}       the hand-written kernels (portable + SMLAD path), copied verbatim
                                 from firmware_templates/kernels/ (report.json lists each source's sha256)
    out/test_vectors.h, .c       int8 inputs with TFLM's expected outputs
    out/tflm/model_data.{h,c}    the .tflite as a C array, for TFLM users
    out/tflm/model_int8.tflite,  what codegen read from the export folder: the flatbuffer, the real
      scene_inputs.npz,          scenes' core inputs and the manifest (front end, edge cut, names);
      export.json                ``generate(out/tflm, ...)`` regenerates this folder byte for byte
    out/README.md                dropping the sources into a Make / CMake / STM32Cube project
    out/report.json, report.md   sizes, MACs, arena against TFLM's, fit against the board

The output is a function of the export folder, the target and the
toolchain's own sources: nothing else is read (no checkpoint, no scene file,
nothing of an earlier output). Everything is computed before the first file
is written, then the folder is replaced as a whole: an error (unknown op, a
model that does not fit the target) leaves ``out_dir`` as it was. Same
inputs give byte-identical files. Templates get a :class:`Context` of frozen
dataclasses; sizes, offsets and padding are computed here, never in a template.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import intref, program, quant, report, targets
from tinyrrm.codegen.program import FC, Program
from tinyrrm.errors import InputError, TinyrrmError
from tinyrrm.export import cprefix, frontend, render, stage, tflite_reader
from tinyrrm.export.tflm import TFLMCore
from tinyrrm.training.fileio import FolderMark, dir_mode, portable, write_bytes
from tinyrrm.training.fileio import check_out_dir as check_dir

KERNELS = paths.KERNELS
#: flash the generated code takes besides the weights, for the fit check: model.c with its
#: parameter blocks, the kernels and the libm they call (cortex-m4 at -O2, the firmware's flags:
#: about 6.5 KB of objects plus logf/sqrtf/roundf); report.json's "code_bytes_estimate"
CODE_BYTES_ESTIMATE = 12 * 1024
#: the stack the firmware reserves (``__stack_size`` in firmware_templates/firmware/common/sections.ld)
STACK_BYTES = 4 * 1024


class FitError(TinyrrmError, ValueError):
    """The model does not fit the target's flash or RAM."""


def cname(name: str) -> str:
    return name.replace(".", "_")


@dataclass
class Member:
    """One member of a generated C struct, laid out as a C compiler does (:func:`layout`)."""

    name: str
    ctype: str  # int8_t | int16_t | int32_t | float
    dims: tuple[int, ...]
    data: np.ndarray | None = None
    offset: int = 0
    pad: int = 0  # bytes of padding between this member and the next (0 for the last)
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
    """Assign offsets and padding; every member starts at a multiple of ``pad_to`` bytes.
    Returns the total size (a multiple of 4)."""
    off = 0
    prev = None
    for m in members:
        off = -(-off // max(pad_to, m.align)) * max(pad_to, m.align)
        if prev is not None:
            prev.pad = off - prev.offset - prev.size
        m.offset, m.pad = off, 0
        off += m.size
        prev = m
    return -(-off // 4) * 4


def _weights(prog: Program) -> list[Member]:
    out = []
    for f in prog.fcs():
        n = cname(f.name)
        out.append(
            Member(
                f"{n}_w",
                "int8_t",
                (f.d_out, f.d_in),
                f.weight,
                doc=f"{f.name} weights [d_out={f.d_out}][d_in={f.d_in}]",
            )
        )
        if f.bias is not None:
            out.append(Member(f"{n}_bias", "int32_t", (f.d_out,), f.bias, doc=f"{f.name} bias"))
        out.append(Member(f"{n}_mult", "int32_t", (f.d_out,), f.mult.astype(np.int64), doc=f"{f.name} Q31 multipliers"))
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


@dataclass(frozen=True)
class FCParams:
    """One FULLY_CONNECTED layer's ``tr_fc`` parameter block (names of its arrays in the weights struct)."""

    name: str  # C name (msg1_U_x)
    label: str  # the .tflite's name (msg1.U.x)
    d_in: int
    d_out: int
    w: str
    bias: str
    mult: str
    shift: str
    in_zp: int
    out_zp: int
    act_min: int
    act_max: int
    fast_rq: int


def _fc_params(f: FC, prefix: str) -> FCParams:
    n = cname(f.name)
    w = f"{prefix}_weights"
    return FCParams(
        n,
        f.name,
        f.d_in,
        f.d_out,
        f"&{w}.{n}_w[0][0]",
        f"{w}.{n}_bias" if f.bias is not None else "0",
        f"{w}.{n}_mult",
        f"{w}.{n}_shift",
        f.inp.zero_point,
        f.out.zero_point,
        f.act_min,
        f.act_max,
        int(fast_requant(f)),
    )


def fast_requant(f: FC) -> bool:
    """tr_mbqm_fast's precondition for layer ``f``: every shift in [-31, -1] and
    every accumulator below 2^29 in magnitude (|x - in_zp| <= 255 for int8 x)."""
    bias = np.abs(f.bias.astype(np.int64)) if f.bias is not None else 0
    acc_max = bias + 255 * np.abs(f.weight.astype(np.int64)).sum(axis=1)  # [d_out]
    return bool(((f.shift <= -1) & (f.shift >= -31)).all() and (acc_max < (1 << 29)).all())


@dataclass(frozen=True)
class AddParams:
    """An int8 ADD's ``tr_add`` block; ``node_first``: the node part is the ADD's first input."""

    mult1: int
    mult2: int
    mult_out: int
    shift1: int
    shift2: int
    shift_out: int
    left_shift: int
    in1_zp: int
    in2_zp: int
    out_zp: int
    act_min: int
    act_max: int
    node_first: bool


def _add_params(a: program.Add) -> AddParams:
    return AddParams(
        **{
            k: a.p[k]
            for k in ("mult1", "mult2", "mult_out", "shift1", "shift2", "shift_out", "left_shift", "node_first")
        },
        in1_zp=a.in1.zero_point,
        in2_zp=a.in2.zero_point,
        out_zp=a.out.zero_point,
        act_min=a.act_min,
        act_max=a.act_max,
    )


@dataclass(frozen=True)
class MulParams:
    """The mask MUL by the code of 1.0 (``b``), as a 256-entry table."""

    mult: int
    shift: int
    b: int
    in1_zp: int
    in2_zp: int
    out_zp: int
    act_min: int
    act_max: int
    lut: np.ndarray


def mul_lut(prog: Program) -> np.ndarray:
    """The mask MUL by the code of 1.0 for every int8 input (TFLM's arithmetic, exact)."""
    m = prog.mask_mul
    a = np.arange(-128, 128, dtype=np.int64)
    prod = (a - m.in1.zero_point) * (intref.quantized_one(prog) - m.in2.zero_point)
    return np.clip(quant.mbqm(prod, m.mult, m.shift) + m.out.zero_point, m.act_min, m.act_max).astype(np.int8)


def _f(x: float) -> str:
    """A float32 constant that reads back to the same float32."""
    return f"{float(np.float32(x)):.9g}f"


@dataclass(frozen=True)
class Vector:
    name: str
    k: int
    x_q: np.ndarray  # int8 [K, 4Nt]
    e_q: np.ndarray  # int8 [K, K, 2Nt]
    edge: np.ndarray  # bool [K, K]
    o_q: np.ndarray  # int8 [K, 2Nt] (TFLM; rows >= k unused)

    @property
    def edge_bits(self) -> np.ndarray:
        return edge_bits(self.edge)


from tinyrrm.codegen.host import edge_bits  # noqa: E402  (the ABI's bit order lives with the host build)


def test_vectors(prog: Program, core, scene_inputs: list[tuple], seed: int = 7) -> list[Vector]:
    """Int8 core inputs with TFLM's outputs (``core``: a :class:`.tflm.TFLMCore`): real scenes
    and the hard cases."""
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


def _scene_inputs(export_dir: Path, man: dict, prog: Program) -> list[tuple]:
    """The export's real-scene core inputs (x_q, e_q, edge), checked against the flatbuffer's shapes."""
    path = export_dir / man["codegen"]["scene_inputs"]
    with np.load(path, allow_pickle=False) as z:
        x, e, edge = z["x_q"], z["e_q"], z["edge"]
    K, nt = prog.K, prog.nt
    if (x.shape[1:], e.shape[1:], edge.shape[1:]) != ((K, 4 * nt), (K, K, 2 * nt), (K, K)):
        raise ValueError(
            f"{path}: core inputs of shapes {x.shape}, {e.shape}, {edge.shape} do not match the model (K={K}, Nt={nt})"
        )
    return [(x[i], e[i], edge[i].astype(bool)) for i in range(x.shape[0])]


@dataclass(frozen=True)
class ModelFacts:
    """What the generated code serves: the model, its deployment graph and its float front end."""

    name: str
    prefix: str
    K: int
    nt: int
    steps: int
    residual: bool
    compand: bool
    low_rank: bool
    cut_m: float | None  # links kept: dist < cut_m (None: all)
    a1: int | None
    a2: int | None

    @property
    def x_width(self) -> int:
        """Node state [v, d]: 4 Nt."""
        return 4 * self.nt

    @property
    def e_width(self) -> int:
        """Edge features, beamformers and core outputs: 2 Nt (re, im per antenna)."""
        return 2 * self.nt


@dataclass(frozen=True)
class MemoryPlan:
    """Structs as :func:`layout` places them, and the sizes checked against the board."""

    weights: tuple[Member, ...]
    weights_bytes: int
    arena: tuple[Member, ...]
    arena_bytes: int
    edge_bytes: int  # ceil(K*K / 8)
    io_bytes: int  # sizeof(<prefix>_input) + sizeof(<prefix>_output)
    stack_bytes: int
    vectors_bytes: int
    flash_need: int
    ram_need: int


@dataclass(frozen=True)
class Layers:
    """The core's layers (parameter blocks) by their place in the step."""

    fc: tuple[FCParams, ...]  # all of them, in the order of the weights struct
    msg_node: FCParams
    msg_edge: FCParams
    msg_chain: tuple[FCParams, ...]  # message layers between the ADD and the wide layer
    wide: FCParams  # the wide message layer, fused with the max
    upd_node: FCParams
    upd_agg: FCParams
    upd_chain: tuple[FCParams, ...]
    msg_add: AddParams
    upd_add: AddParams
    mul: MulParams
    macs_per_edge: int
    macs_per_node: int


@dataclass(frozen=True)
class QParams:
    scale: str  # a float32 C constant
    zp: int


@dataclass(frozen=True)
class Quantization:
    """The core's input/output quantization and the front end's standardisation (C constants)."""

    x: QParams
    e: QParams
    o: QParams
    direct_mean: tuple[str, ...]
    direct_std: tuple[str, ...]
    cross_mean: tuple[str, ...]
    cross_std: tuple[str, ...]


@dataclass(frozen=True)
class Context:
    """Everything the templates see (:func:`build_context`)."""

    prefix: str
    P: str  # the prefix of macros
    provenance: str  # C comment
    provenance_md: str  # Markdown comment
    provenance_mk: str  # Makefile comment
    target: targets.Target
    model: ModelFacts
    mem: MemoryPlan
    layers: Layers
    quant: Quantization
    vectors: tuple[Vector, ...]
    tflm_arena: int

    def template_vars(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _model_facts(prog: Program, fe, man: dict, prefix: str) -> ModelFacts:
    cg, cfg = man["codegen"], man["model"]
    if (cg["K"], cg["Nt"]) != (prog.K, prog.nt):
        raise ValueError(f"export.json says K={cg['K']}, Nt={cg['Nt']}; model_int8.tflite has K={prog.K}, Nt={prog.nt}")
    return ModelFacts(
        name=man["name"],
        prefix=prefix,
        K=prog.K,
        nt=prog.nt,
        steps=fe.steps,
        residual=fe.residual,
        compand=fe.compand,
        low_rank=prog.low_rank,
        cut_m=cg["cut_m"],
        a1=cfg.get("a1"),
        a2=cfg.get("a2"),
    )


def _memory_plan(prog: Program, target: targets.Target, n_vectors: int, prefix: str) -> MemoryPlan:
    """The weights and arena layouts and the fit against ``target`` (:class:`FitError` if it does not)."""
    weights = _weights(prog)
    w_bytes = layout(weights)
    arena = _arena(prog)
    a_bytes = layout(arena)
    K, nt = prog.K, prog.nt
    edge_bytes = -(-K * K // 8)
    in_bytes = -(-(4 + K * K * nt * 2 * 4 + edge_bytes) // 4) * 4  # sizeof(<prefix>_input): k, h, edge bits, padding
    io_bytes = in_bytes + K * nt * 2 * 4  # + sizeof(<prefix>_output)
    vec_bytes = n_vectors * (4 + K * 4 * nt + K * K * 2 * nt + edge_bytes + K * 2 * nt)
    flash_need = w_bytes + CODE_BYTES_ESTIMATE
    ram_need = a_bytes + io_bytes + STACK_BYTES
    if flash_need > target.flash or ram_need > target.ram:
        what = []
        if flash_need > target.flash:
            what.append(
                f"flash {flash_need:,} B (weights {w_bytes:,} + code ~{CODE_BYTES_ESTIMATE:,})"
                f" but {target.name} ({target.board}) has {target.flash:,} B"
            )
        if ram_need > target.ram:
            what.append(
                f"RAM {ram_need:,} B (arena {a_bytes:,} + input/output {io_bytes:,} + stack {STACK_BYTES:,})"
                f" but {target.name} ({target.board}) has {target.ram:,} B"
            )
        raise FitError(f"{prefix} does not fit {target.name}: needs " + "; needs ".join(what))
    return MemoryPlan(
        tuple(weights),
        w_bytes,
        tuple(arena),
        a_bytes,
        edge_bytes,
        io_bytes,
        STACK_BYTES,
        vec_bytes,
        flash_need,
        ram_need,
    )


def _layers(prog: Program, prefix: str) -> Layers:
    m = prog.mask_mul
    mul = MulParams(
        m.mult,
        m.shift,
        intref.quantized_one(prog),
        m.in1.zero_point,
        m.in2.zero_point,
        m.out.zero_point,
        m.act_min,
        m.act_max,
        mul_lut(prog),
    )
    fc = {f.name: _fc_params(f, prefix) for f in prog.fcs()}
    return Layers(
        fc=tuple(fc.values()),
        msg_node=fc[prog.msg_node.name],
        msg_edge=fc[prog.msg_edge.name],
        msg_chain=tuple(fc[f.name] for f in prog.msg_chain[:-1]),
        wide=fc[prog.msg_chain[-1].name],
        upd_node=fc[prog.upd_node.name],
        upd_agg=fc[prog.upd_agg.name],
        upd_chain=tuple(fc[f.name] for f in prog.upd_chain),
        msg_add=_add_params(prog.msg_add),
        upd_add=_add_params(prog.upd_add),
        mul=mul,
        macs_per_edge=prog.macs_per_step(1) - prog.macs_per_step(0),
        macs_per_node=prog.macs_per_step(0) // prog.K,
    )


def _quantization(prog: Program, fe) -> Quantization:
    q = {n: QParams(_f(getattr(prog, n).scale), getattr(prog, n).zero_point) for n in ("x", "e", "o")}
    norm = {k: tuple(_f(v) for v in getattr(fe, k)) for k in ("direct_mean", "direct_std", "cross_mean", "cross_std")}
    return Quantization(**q, **norm)


def build_context(
    prog: Program, fe, man: dict, target: targets.Target, command: str, vectors: list[Vector], prefix: str
) -> Context:
    sha = man["files"]["model_int8.tflite"]["sha256"]
    return Context(
        prefix=prefix,
        P=prefix.upper(),
        provenance=render.provenance(command, sha),
        provenance_md=render.provenance(command, sha, "html"),
        provenance_mk=render.provenance(command, sha, "make"),
        target=target,
        model=_model_facts(prog, fe, man, prefix),
        mem=_memory_plan(prog, target, len(vectors), prefix),
        layers=_layers(prog, prefix),
        quant=_quantization(prog, fe),
        vectors=tuple(vectors),
        tflm_arena=man["tflm"]["arena"]["total"],
    )


def kernel_files() -> dict[str, bytes]:
    """The hand-written kernels, copied verbatim: ``kernels/<name>`` -> the bytes of
    ``firmware_templates/kernels/<name>`` (they depend on their source only, not on the model)."""
    return {f"kernels/{src.name}": src.read_bytes() for src in sorted(KERNELS.iterdir()) if src.suffix in (".c", ".h")}


def _render_all(ctx: Context) -> dict[str, bytes]:
    files = {}
    for tpl, out in (
        ("model/model.h.j2", "model.h"),
        ("model/model.c.j2", "model.c"),
        ("model/weights.h.j2", "weights.h"),
        ("model/weights.c.j2", "weights.c"),
        ("model/test_vectors.h.j2", "test_vectors.h"),
        ("model/test_vectors.c.j2", "test_vectors.c"),
        ("model/README.md.j2", "README.md"),
        ("model/model.mk.j2", "model.mk"),
    ):
        files[out] = render.render(tpl, **ctx.template_vars()).encode()
    files.update(kernel_files())
    return files


#: what codegen reads from an export folder, copied into ``out/tflm/``: regenerating needs only that copy
EXPORT_FILES = ("model_data.c", "model_data.h", "model_int8.tflite", stage.SCENE_INPUTS, stage.MANIFEST)


def generate(export_dir, target_name: str, out_dir, prefix: str | None = None, command: str | None = None) -> Path:
    """Generate ``out_dir`` for ``target_name`` from an export folder (see the module docstring).
    ``prefix`` starts every C name (:mod:`.cprefix`; None: the model's family)."""
    target = targets.get_any(target_name)
    export_dir = Path(export_dir)
    man = stage.read_manifest(export_dir)
    if man is None:
        raise FileNotFoundError(f"{export_dir}: no export (run `tinyrrm export model` first)")
    if "codegen" not in man:
        raise InputError(
            f"{export_dir}/{stage.MANIFEST}: written by an older exporter (no `codegen` section); "
            "export the model again (`tinyrrm export model`)"
        )
    prefix = cprefix.resolve(prefix, man["name"])
    inputs = {}
    for name in EXPORT_FILES:
        data = (export_dir / name).read_bytes()
        want = man["files"].get(name, {}).get("sha256") if name != stage.MANIFEST else None
        if want is not None and stage._sha(data) != want:
            raise InputError(f"{export_dir}/{name} does not match its hash in {stage.MANIFEST}; export again")
        inputs[name] = data
    blob = inputs["model_int8.tflite"]
    prog = program.match(tflite_reader.read(blob))
    fe = frontend.FrontEnd.from_dict(man["codegen"]["frontend"])
    # the command that regenerates this folder (its default --out); a path inside the working
    # directory is recorded relative to it, so an absolute spelling gives the same bytes
    command = command or " ".join(
        shlex.quote(str(a))
        for a in (
            "tinyrrm",
            "export",
            "c",
            "--export-dir",
            portable(export_dir),
            "--target",
            target.name,
            *(("--prefix", prefix) if prefix != cprefix.default(man["name"]) else ()),
        )
    )
    vectors = test_vectors(prog, TFLMCore(blob), _scene_inputs(export_dir, man, prog))
    ctx = build_context(prog, fe, man, target, command, vectors, prefix)
    files = _render_all(ctx)
    for name, data in inputs.items():
        files[f"tflm/{name}"] = data
    rep = report.codegen_report(ctx, prog, man, files)
    files["report.json"] = (json.dumps(rep, indent=2, sort_keys=True) + "\n").encode()
    files["report.md"] = report.codegen_markdown(rep, ctx.provenance_md).encode()
    return replace_dir(Path(out_dir), files)


#: a folder codegen wrote: its report.json (this format) lists every file, beside the report
#: itself and report.md (and report_hil.png, which older versions kept there)
REPORT_FORMAT = report.FORMAT
GENERATED = FolderMark("report.json", REPORT_FORMAT, lambda doc: [*doc["files"], "report.md", "report_hil.png"])


def check_out_dir(out) -> Path:
    """Up front: ``out`` is missing, empty, or a folder codegen wrote (see :data:`GENERATED`)."""
    return check_dir(out, GENERATED, writes=None)


def replace_dir(out: Path, files: dict[str, bytes], mark: FolderMark = GENERATED) -> Path:
    """Write ``files`` into a fresh sibling folder, then swap it in for ``out``
    (only a folder of kind ``mark`` is replaced: :func:`check_out_dir`)."""
    check_dir(out, mark, writes=None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        os.chmod(tmp, dir_mode())  # mkdtemp makes it 0700
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
