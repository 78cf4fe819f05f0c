"""The WMMSE policy as generated C: ``generate(target, out_dir, k_max, nt, ...)``.

The classical beamformer behind the learned model's ABI, so a firmware links
either (or both, under two prefixes) and calls ``<prefix>_infer`` the same way::

    out/model.h, model.c       <prefix>_input / _output exactly as the learned model's,
                               <prefix>_params (iterations, rate weights, per-transmitter
                               power limits, per-receiver noise), <prefix>_infer / _solve
    out/kernels/wmmse_f32.{h,c}  the float32 WMMSE kernel and its headers (wmmse_sizes.h, wmmse_madd.h,
                               wmmse_links.h, wmmse_update2.h), copied verbatim from
                               firmware_templates/wmmse/ (report.json lists their sha256);
                               with ``top_m``: the on-chip ranking of each receiver's top_m
                               strongest interferers and the WMMSE on them instead
                               (wmmse_rank_f32, wmmse_sparse_f32, wmmse_solve_f32)
    out/kernels/wmmse_config.h the kernel's sizes (WMMSE_F32_K_MAX, WMMSE_F32_NT), beside it:
                               every file includes its own folder's headers, no -I needed
    out/model.mk               MODEL_PREFIX and MODEL_SRCS for the firmware Makefile
    out/README.md              dropping the sources into a project
    out/report.json            what the generator knows: prefix, sizes, RAM, the fit

The output is a function of the arguments and the toolchain's own sources;
same arguments give byte-identical files, and the folder is replaced whole
(only a folder this generator wrote, or an empty or missing one).
:class:`HostPolicy` builds a folder for the host and runs it by ctypes.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import generate as codegen
from tinyrrm.codegen import host, targets
from tinyrrm.errors import InputError, UsageError
from tinyrrm.export import cprefix, render
from tinyrrm.training.fileio import FolderMark
from tinyrrm.training.fileio import check_out_dir as check_dir

SOURCE = paths.TEMPLATES / "wmmse"
_SHARED = ("wmmse_sizes.h", "wmmse_madd.h", "wmmse_links.h", "wmmse_update2.h")
#: the kernel files of the dense policy (every link of the active block interferes)
KERNEL_FILES = ("wmmse_f32.h", "wmmse_f32.c", *_SHARED)
#: ... of the top-m policy (each receiver's top_m strongest interferers, ranked on the chip)
TOP_M_KERNEL_FILES = (
    "wmmse_rank_f32.h",
    "wmmse_rank_f32.c",
    "wmmse_sparse_f32.h",
    "wmmse_sparse_f32.c",
    "wmmse_solve_f32.h",
    "wmmse_solve_f32.c",
    *_SHARED,
)
#: report.json's format tag: a folder this generator wrote
FORMAT = "tinyrrm-wmmse-report/1"
MARK = FolderMark("report.json", FORMAT, lambda doc: doc["files"])
DEFAULT_PREFIX = "wmmse"
#: iterations from MRT that <prefix>_infer runs until <prefix>_set_params says otherwise
DEFAULT_ITERS = 2
#: flash of model.c and the kernel with the libm they call (sqrtf, log2f); the fit check's estimate
CODE_BYTES_ESTIMATE = 8 * 1024
#: the return codes of model.h
ERR = {"ok": 0, "k": -1, "nonfinite": -2, "param": -3}


@dataclass(frozen=True)
class Sizes:
    """The structs and buffers of one build, as model.h lays them out (bytes)."""

    k_max: int
    nt: int
    top_m: int | None = None

    @property
    def edge_bytes(self) -> int:
        return -(-self.k_max * self.k_max // 8)

    @property
    def input_bytes(self) -> int:
        """sizeof(<prefix>_input): k, h (the CSI buffer), edge bits, padding."""
        return -(-(4 + self.k_max * self.k_max * self.nt * 2 * 4 + self.edge_bytes) // 4) * 4

    @property
    def output_bytes(self) -> int:
        return self.k_max * self.nt * 2 * 4

    @property
    def scratch_bytes(self) -> int:
        """WMMSE_F32_SCRATCH_BYTES (kernels/wmmse_f32.h); top-m: WMMSE_SPARSE_F32_SCRATCH_BYTES
        (kernels/wmmse_sparse_f32.h) and the ranking's int16 (K_MAX, top_m) table, in floats."""
        if self.top_m is None:
            return self.k_max * (2 * self.nt + 8) * 4
        return (self.k_max * 16 + -(-self.k_max * self.top_m // 2)) * 4

    @property
    def params_bytes(self) -> int:
        return 4 + 3 * self.k_max * 4

    @property
    def state_bytes(self) -> int:
        """Static RAM of model.c: the scratch, the parameters and their flag."""
        return self.scratch_bytes + self.params_bytes + 4

    @property
    def ram_need(self) -> int:
        """The policy's RAM with one input and one output buffer and the firmware's stack."""
        return self.state_bytes + self.input_bytes + self.output_bytes + codegen.STACK_BYTES


@dataclass(frozen=True)
class Context:
    """Everything the templates see."""

    prefix: str
    P: str
    provenance: str
    provenance_md: str
    provenance_mk: str
    target: str
    k_max: int
    nt: int
    iters: int
    top_m: int | None
    kernel_list: str  # the kernel files for README.md, as Markdown code spans
    kernel_sources: str  # ... their C sources
    edge_bytes: int
    scratch_bytes: int
    state_bytes: int
    input_bytes: int
    ram_need: int

    def template_vars(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def build_dir(target: str, k_max: int, nt: int, iters: int, top_m: int | None = None) -> Path:
    """Where the toolchain's own runs generate the WMMSE-``iters`` policy (never generated/)."""
    kind = "" if top_m is None else f"_top{top_m}"
    return paths.BUILD_GEN / target / f"wmmse{iters}{kind}_k{k_max}_nt{nt}"


def flops_per_pair_iteration(nt: int) -> int:
    """Floating-point operations per sender-receiver pair per iteration in wmmse_f32.c's two
    inner loops (R_k accumulation + gains; the count in wmmse_f32.h)."""
    a = 19 if nt == 2 else 6 * nt + 4 * nt * (nt - 1)
    return a + 8 * nt + 2


def kernel_names(top_m: int | None = None) -> tuple[str, ...]:
    """The kernel files of the dense policy (``top_m`` None) or of the top-m one."""
    return KERNEL_FILES if top_m is None else TOP_M_KERNEL_FILES


def kernel_files(top_m: int | None = None) -> dict[str, bytes]:
    """``kernels/<name>`` -> the bytes of ``firmware_templates/wmmse/``'s (verbatim)."""
    return {f"kernels/{n}": (SOURCE / n).read_bytes() for n in kernel_names(top_m)}


def sources_sha256(top_m: int | None = None) -> str:
    """What every generated file depends on besides the arguments: the kernels' sources."""
    h = hashlib.sha256()
    for n in kernel_names(top_m):
        h.update(n.encode() + b"\0" + (SOURCE / n).read_bytes())
    return h.hexdigest()


def default_command(target: str, k_max: int, nt: int, iters: int, prefix: str, top_m: int | None = None) -> str:
    args = ["tinyrrm", "export", "wmmse", "--target", target, "--k-max", str(k_max), "--nt", str(nt)]
    if iters != DEFAULT_ITERS:
        args += ["--iters", str(iters)]
    if top_m is not None:
        args += ["--top-m", str(top_m)]
    if prefix != DEFAULT_PREFIX:
        args += ["--prefix", prefix]
    return " ".join(shlex.quote(a) for a in args)


def check_args(k_max: int, nt: int, iters: int, top_m: int | None = None) -> None:
    """The ranges the kernels accept (a :class:`UsageError` names the first bad one):
    kernels/wmmse_f32.h, with ``top_m`` kernels/wmmse_rank_f32.h and wmmse_sparse_f32.h."""
    if not 1 <= k_max <= 1024:
        raise UsageError(f"--k-max must be in [1, 1024] links, got {k_max}")
    if not 1 <= nt <= 16:
        raise UsageError(f"--nt must be in [1, 16] antennas, got {nt}")
    if iters < 0:
        raise UsageError(f"--iters must be >= 0 WMMSE iterations (0: MRT), got {iters}")
    if top_m is not None:
        if nt != 2:
            raise UsageError(
                f"--top-m: the top-m WMMSE is for Nt = 2 transmit antennas (its closed-form update), got {nt}"
            )
        if not 1 <= top_m <= k_max - 1:
            raise UsageError(
                f"--top-m must be in [1, K_MAX - 1] = [1, {k_max - 1}] interferers per receiver, got {top_m}"
            )


def shape_like(checkpoint) -> tuple[int, int]:
    """(K, Nt) of a checkpoint folder, from its config.json (no weights loaded): the learned
    model the policy stands beside."""
    cfg = Path(checkpoint) / "config.json"
    try:
        m = json.loads(cfg.read_text())["model"]
        return int(m["K"]), int(m["Nt"])
    except FileNotFoundError:
        raise InputError(f"{checkpoint}: not a checkpoint (no config.json); give --k-max and --nt") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{cfg}: no model K and Nt in it ({e})") from None


def check_out_dir(out) -> Path:
    """Up front: ``out`` is missing, empty, or a folder this generator wrote."""
    return check_dir(out, MARK, writes=None)


def fit_error(
    target_name: str, k_max: int, nt: int, prefix: str = DEFAULT_PREFIX, top_m: int | None = None
) -> str | None:
    """Why the policy's buffers for ``k_max`` links and ``nt`` antennas exceed the board of
    ``target_name`` (the message of :func:`generate`'s :class:`FitError`), or None when they fit."""
    target = targets.get_any(target_name)
    sz = Sizes(k_max, nt, top_m)
    if sz.ram_need <= target.ram and CODE_BYTES_ESTIMATE <= target.flash:
        return None
    return (
        f"{prefix} (WMMSE, K_MAX={k_max}, Nt={nt}) does not fit {target.name}: needs RAM {sz.ram_need:,} B "
        f"(input {sz.input_bytes:,} with the CSI + output {sz.output_bytes:,} + scratch and parameters "
        f"{sz.state_bytes:,} + stack {codegen.STACK_BYTES:,}) but {target.name} ({target.board}) has "
        f"{target.ram:,} B"
    )


def generate(
    target_name: str,
    out_dir,
    k_max: int,
    nt: int,
    iters: int = DEFAULT_ITERS,
    prefix: str = DEFAULT_PREFIX,
    command: str | None = None,
    top_m: int | None = None,
) -> Path:
    """Generate the WMMSE policy for ``target_name`` into ``out_dir`` (see the module docstring).
    Raises :class:`~tinyrrm.codegen.generate.FitError` when its buffers exceed the board's RAM."""
    target = targets.get_any(target_name)
    check_args(k_max, nt, iters, top_m)
    prefix = cprefix.check(prefix)
    check_out_dir(out_dir)
    sz = Sizes(k_max, nt, top_m)
    flash_need = CODE_BYTES_ESTIMATE
    why = fit_error(target.name, k_max, nt, prefix, top_m)
    if why is not None:
        raise codegen.FitError(why)
    command = command or default_command(target.name, k_max, nt, iters, prefix, top_m)
    sha = sources_sha256(top_m)
    what = "wmmse_f32.{h,c}" if top_m is None else "wmmse_rank_f32, wmmse_sparse_f32, wmmse_solve_f32"
    ctx = Context(
        prefix=prefix,
        P=prefix.upper(),
        provenance=render.provenance(command, sha, source=what),
        provenance_md=render.provenance(command, sha, "html", source=what),
        provenance_mk=render.provenance(command, sha, "make", source=what),
        target=target.name,
        k_max=k_max,
        nt=nt,
        iters=iters,
        top_m=top_m,
        kernel_list=_spans(kernel_names(top_m), ".h"),
        kernel_sources=_spans(kernel_names(top_m), ".c"),
        edge_bytes=sz.edge_bytes,
        scratch_bytes=sz.scratch_bytes,
        state_bytes=sz.state_bytes,
        input_bytes=sz.input_bytes,
        ram_need=sz.ram_need,
    )
    files = {
        out: render.render(f"wmmse/{Path(out).name}.j2", **ctx.template_vars()).encode()
        for out in ("model.h", "model.c", "kernels/wmmse_config.h", "model.mk", "README.md")
    }
    files.update(kernel_files(top_m))
    rep = {
        "format": FORMAT,
        "model": {
            "policy": "wmmse",
            "prefix": prefix,
            "K_MAX": k_max,
            "Nt": nt,
            "iters_default": iters,
            "top_m": top_m,
            "steps": 0,
            "cut_m": None,
        },
        "target": {"name": target.name, "board": target.board, "flash": target.flash, "ram": target.ram},
        "sizes": {**{f: getattr(sz, f) for f in _SIZE_FIELDS}, "flash_estimate": flash_need},
        "sources": ["model.c", *(f"kernels/{n}" for n in kernel_names(top_m) if n.endswith(".c"))],
        "kernels": [
            {
                "file": f"kernels/{n}",
                "source": (SOURCE / n).relative_to(paths.SHIPPED).as_posix(),
                "sha256": hashlib.sha256((SOURCE / n).read_bytes()).hexdigest(),
            }
            for n in kernel_names(top_m)
        ],
        "files": sorted(files),
        "command": command,
    }
    files["report.json"] = (json.dumps(rep, indent=2, sort_keys=True) + "\n").encode()
    return codegen.replace_dir(Path(out_dir), files, MARK)


def _spans(names, ext: str) -> str:
    """``kernels/<stem>.{h,c}`` spans (``ext`` ".h": every file, pairs joined; ".c": the sources)."""
    stems = [n[: -len(".c")] for n in names if n.endswith(".c")]
    if ext == ".c":
        return ", ".join(f"`kernels/{s}.c`" for s in stems)
    return ", ".join(f"`kernels/{s}.{{h,c}}`" for s in stems)


_SIZE_FIELDS = ("edge_bytes", "input_bytes", "output_bytes", "scratch_bytes", "params_bytes", "state_bytes", "ram_need")


def is_policy(gen_dir) -> bool:
    """True when ``gen_dir`` holds a WMMSE policy (its report.json says so)."""
    try:
        return host.read_report(gen_dir).get("format") == FORMAT
    except host.BuildError:
        return False


# ----------------------------------------------------------------------------
# on the host
# ----------------------------------------------------------------------------
class HostPolicy:
    """A generated WMMSE folder built for the host (``host.compile_shared``) and called by ctypes."""

    def __init__(self, gen_dir, cc: str = "gcc"):
        self.gen_dir = Path(gen_dir)
        rep = host.read_report(self.gen_dir)
        if rep.get("format") != FORMAT:
            raise InputError(f"{gen_dir}: not a WMMSE policy folder (`tinyrrm export wmmse`)")
        m = rep["model"]
        self.prefix, self.K, self.nt = m["prefix"], m["K_MAX"], m["Nt"]
        self.lib = ctypes.CDLL(str(host.compile_shared(self.gen_dir, cc=cc)))
        K, nt = self.K, self.nt

        class Input(ctypes.Structure):
            _fields_ = [
                ("k", ctypes.c_int32),
                ("h", ctypes.c_float * (K * K * nt * 2)),
                ("edge_bits", ctypes.c_uint8 * rep["sizes"]["edge_bytes"]),
            ]

        class Output(ctypes.Structure):
            _fields_ = [("v", ctypes.c_float * (K * nt * 2))]

        class Params(ctypes.Structure):
            _fields_ = [
                ("iters", ctypes.c_int32),
                ("alpha", ctypes.c_float * K),
                ("p_max", ctypes.c_float * K),
                ("noise_var", ctypes.c_float * K),
            ]

        self.Input, self.Output, self.Params = Input, Output, Params
        p = ctypes.POINTER
        fn = {n: getattr(self.lib, f"{self.prefix}_{n}") for n in ("infer", "set_params", "get_params")}
        fn["infer"].argtypes, fn["infer"].restype = [p(Input), p(Output)], ctypes.c_int
        fn["set_params"].argtypes, fn["set_params"].restype = [p(Params)], ctypes.c_int
        fn["get_params"].argtypes, fn["get_params"].restype = [p(Params)], None
        self._fn = fn

    def params(self) -> dict:
        """The parameters ``<prefix>_infer`` uses now: iters, alpha, p_max, noise_var."""
        pr = self.Params()
        self._fn["get_params"](ctypes.byref(pr))
        return {"iters": pr.iters, **{n: np.array(getattr(pr, n), np.float32) for n in ("alpha", "p_max", "noise_var")}}

    def set_params(self, iters: int | None = None, alpha=None, p_max=None, noise_var=None) -> int:
        """``<prefix>_set_params`` with the given fields changed (per-link arrays padded with 1) -> its code."""
        cur = self.params()
        pr = self.Params()
        pr.iters = cur["iters"] if iters is None else int(iters)
        for name, val in (("alpha", alpha), ("p_max", p_max), ("noise_var", noise_var)):
            a = cur[name] if val is None else np.concatenate([np.asarray(val, np.float32), np.ones(self.K)])[: self.K]
            getattr(pr, name)[:] = [float(x) for x in a]
        return int(self._fn["set_params"](ctypes.byref(pr)))

    def infer_raw(self, H: np.ndarray, k: int | None = None) -> tuple[int, np.ndarray]:
        """``<prefix>_infer`` of one scene ``H [k, k, Nt]`` (unit noise) -> (code, beamformers
        ``[k, Nt]`` complex64; zeros when the code is not 0)."""
        kk = H.shape[0] if k is None else k
        inp = self.Input.from_buffer_copy(host.input_bytes(H, np.zeros(H.shape[:2], bool), self.K))
        inp.k = kk
        out = self.Output()
        rc = int(self._fn["infer"](ctypes.byref(inp), ctypes.byref(out)))
        return rc, host.output_array(bytes(out), max(0, min(H.shape[0], self.K)), self.K, self.nt)

    def infer(self, H: np.ndarray) -> np.ndarray:
        rc, v = self.infer_raw(H)
        if rc != 0:
            raise ValueError(f"{self.prefix}_infer returned {rc} (k={H.shape[0]})")
        return v
