"""The generated C on the host: compiled to a shared library, called via ctypes.

``HostModel(gen_dir, dsp=False)`` builds ``model.c``, ``weights.c`` and the
kernels with the host compiler (``dsp=True`` takes the SMLAD path through
the C emulation of ``tr_dsp.h``) and exposes ``core``, ``features`` and
``infer`` on numpy arrays. Builds are cached under ``build/host/`` by the
hash of the sources and flags.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.errors import TinyrrmError


def edge_bits(edge: np.ndarray) -> np.ndarray:
    """bool [K, K] -> bytes, row-major, bit (i % 8) of byte i / 8 (LSB first): the C ABI."""
    return np.packbits(np.asarray(edge, bool).reshape(-1), bitorder="little")


def input_bytes(H: np.ndarray, edge: np.ndarray, k_max: int) -> bytes:
    """The ``<prefix>_input`` struct of one scene ``H [k, k, Nt]`` (unit noise), ``edge [k, k]``:
    i32 k, float h[K_MAX][K_MAX][Nt][2], edge bits, padded to the struct's 4-byte alignment."""
    k, nt = H.shape[0], H.shape[-1]
    h = np.zeros((k_max, k_max, nt, 2), np.float32)
    h[:k, :k, :, 0] = H.real
    h[:k, :k, :, 1] = H.imag
    e = np.zeros((k_max, k_max), bool)
    e[:k, :k] = np.asarray(edge, bool)[:k, :k]
    raw = struct.pack("<i", k) + h.tobytes() + edge_bits(e).tobytes()
    return raw + bytes(-len(raw) % 4)


def output_array(body: bytes, k: int, k_max: int, nt: int) -> np.ndarray:
    """The ``<prefix>_output`` struct's bytes -> beamformers ``[k, Nt]`` complex64."""
    v = np.frombuffer(body, np.float32, k_max * nt * 2).reshape(k_max, nt, 2)[:k]
    return (v[..., 0] + 1j * v[..., 1]).astype(np.complex64)


BUILD = paths.BUILD_HOST
CFLAGS = [
    "-std=c99",
    "-O2",
    "-ffp-contract=off",
    "-fPIC",
    "-shared",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wdouble-promotion",
    "-Wfloat-conversion",
]


class BuildError(TinyrrmError, RuntimeError):
    """A compiler or tool chain failed (its output follows the first line)."""


def sources(gen_dir: Path) -> list[Path]:
    """The C files of a generated folder: its report's ``sources`` (a policy without weights
    lists them), else model.c, weights.c and the kernels."""
    gen_dir = Path(gen_dir)
    listed = read_report(gen_dir).get("sources")
    if listed is not None:
        return [gen_dir / n for n in listed]
    return [gen_dir / "model.c", gen_dir / "weights.c", *sorted((gen_dir / "kernels").glob("*.c"))]


def compile_shared(gen_dir, dsp: bool = False, cc: str = "gcc", extra: tuple[str, ...] = ()) -> Path:
    """Shared library of the generated model (cached by content hash)."""
    gen_dir = Path(gen_dir)
    if shutil.which(cc) is None:
        raise BuildError(f"{cc} not found (docker/provision.sh installs it)")
    flags = CFLAGS + (["-DTR_EMULATE_DSP=1"] if dsp else ["-DTR_NO_DSP=1"]) + list(extra)
    h = hashlib.sha256(" ".join([cc, *flags]).encode())
    for p in sorted(gen_dir.rglob("*")):
        if p.suffix in (".c", ".h"):
            h.update(p.relative_to(gen_dir).as_posix().encode() + p.read_bytes())
    out = BUILD / h.hexdigest()[:16] / "libmodel.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.so")
    cmd = [cc, *flags, "-I", str(gen_dir), *map(str, sources(gen_dir)), "-o", str(tmp), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"compiling {gen_dir} failed:\n{r.stderr[-4000:]}")
    tmp.replace(out)
    return out


def read_report(gen_dir) -> dict:
    """``gen_dir/report.json``: the generator's machine-readable facts (prefix, K_MAX, Nt, steps,
    edge bytes, edge cut), which the host build and the HIL stage read instead of parsing C."""
    p = Path(gen_dir) / "report.json"
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise BuildError(f"{gen_dir}: no report.json (not a folder written by `tinyrrm export c`)") from None
    except json.JSONDecodeError as e:
        raise BuildError(f"{p}: not valid JSON ({e})") from None


def prefix_of(gen_dir) -> str:
    """The C prefix of the model generated in ``gen_dir``."""
    return read_report(gen_dir)["model"]["prefix"]


class HostModel:
    """ctypes view of one generated model (see the module docstring)."""

    def __init__(self, gen_dir, dsp: bool = False, cc: str = "gcc"):
        self.gen_dir = Path(gen_dir)
        rep = read_report(self.gen_dir)
        self.prefix = rep["model"]["prefix"]
        self.lib = ctypes.CDLL(str(compile_shared(self.gen_dir, dsp, cc)))
        self.K = rep["model"]["K_MAX"]
        self.nt = rep["model"]["Nt"]
        self.steps = rep["model"]["steps"]
        self.edge_bytes = rep["sizes"]["edge_bytes"]
        K, nt = self.K, self.nt

        class Input(ctypes.Structure):
            _fields_ = [
                ("k", ctypes.c_int32),
                ("h", ctypes.c_float * (K * K * nt * 2)),
                ("edge_bits", ctypes.c_uint8 * self.edge_bytes),
            ]

        class Output(ctypes.Structure):
            _fields_ = [("v", ctypes.c_float * (K * nt * 2))]

        self.Input, self.Output = Input, Output
        p = ctypes.POINTER
        self._core = getattr(self.lib, f"{self.prefix}_core")
        self._core.argtypes = [p(ctypes.c_int8), p(ctypes.c_int8), p(ctypes.c_uint8), ctypes.c_int32, p(ctypes.c_int8)]
        self._core.restype = ctypes.c_int
        self._infer = getattr(self.lib, f"{self.prefix}_infer")
        self._infer.argtypes = [p(Input), p(Output)]
        self._infer.restype = ctypes.c_int
        self._features = getattr(self.lib, f"{self.prefix}_features")
        self._features.argtypes = [p(Input), p(ctypes.c_int8), p(ctypes.c_int8)]
        self._features.restype = None

    @staticmethod
    def _ptr(a: np.ndarray, ctype):
        return a.ctypes.data_as(ctypes.POINTER(ctype))

    def core(self, x_q: np.ndarray, e_q: np.ndarray, edge: np.ndarray, k: int | None = None) -> np.ndarray:
        """One int8 step. Shapes: x_q ``[K, 4Nt]``, e_q ``[K, K, 2Nt]``, edge ``[K, K]`` bool -> ``[K, 2Nt]``."""
        K, nt = self.K, self.nt
        x = np.ascontiguousarray(x_q, np.int8)
        e = np.ascontiguousarray(e_q, np.int8)
        bits = np.ascontiguousarray(edge_bits(edge), np.uint8)
        o = np.zeros((K, 2 * nt), np.int8)
        rc = self._core(
            self._ptr(x, ctypes.c_int8),
            self._ptr(e, ctypes.c_int8),
            self._ptr(bits, ctypes.c_uint8),
            K if k is None else int(k),
            self._ptr(o, ctypes.c_int8),
        )
        if rc != 0:
            raise ValueError(f"{self.prefix}_core returned {rc} (k={k})")
        return o

    def _input(self, H: np.ndarray, edge: np.ndarray):
        return self.Input.from_buffer_copy(input_bytes(H, edge, self.K))

    def features(self, H: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The C front end's quantized first-step inputs of one scene ``H [k, k, Nt]`` (unit noise)."""
        K, nt = self.K, self.nt
        inp = self._input(H, edge)
        x = np.zeros((K, 4 * nt), np.int8)
        e = np.zeros((K, K, 2 * nt), np.int8)
        self._features(ctypes.byref(inp), self._ptr(x, ctypes.c_int8), self._ptr(e, ctypes.c_int8))
        return x, e

    def infer(self, H: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """Beamformers ``[k, Nt]`` complex64 of one scene ``H [k, k, Nt]`` (unit noise), ``||v|| <= 1``."""
        k = H.shape[0]
        inp = self._input(H, edge)
        out = self.Output()
        rc = self._infer(ctypes.byref(inp), ctypes.byref(out))
        if rc != 0:
            raise ValueError(f"{self.prefix}_infer returned {rc} (k={k})")
        return output_array(bytes(out), k, self.K, self.nt)
