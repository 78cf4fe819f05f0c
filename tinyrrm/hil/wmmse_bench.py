"""The C WMMSE (``firmware_templates/wmmse/wmmse_f32.c``) on the host and on the chip.

* :func:`abi_channels` lays scenes out as the firmware ABI takes them
  (``h[t][r][a][2]`` float32, scaled to unit noise, ``K_MAX`` stride).
* :class:`HostWmmse` compiles the C for the host as a shared library
  (``gcc -std=c99 -O2`` with the project's strict warnings) and calls it by ctypes.
* :func:`bench` builds the bare-metal bench firmware (``firmware_templates/wmmse/``)
  per core and Nt, sends it real scenes over the HIL protocol under QEMU
  (``-icount shift=0``), and returns instructions per run, per iteration and per
  sender-receiver pair per iteration (JSON via :func:`write`).
"""

from __future__ import annotations

import ctypes
import json
import math
import struct
import subprocess
from pathlib import Path

import numpy as np

from .protocol import HILError
from .qemu import Qemu
from .run import instructions

HERE = Path(__file__).resolve().parents[2] / "firmware_templates" / "wmmse"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]
ERR = {"ok": 0, "k": -1, "iters": -2, "nonfinite": -3, "alpha": -4, "null": -5, "overflow": -6}

#: request type of the bench firmware (wmmse_bench_main.c): one run of wmmse_f32
RUN = 0x10
#: its STATS request: boot calibration of SysTick against instructions
STATS = 0x05


def abi_channels(H, p_max: float, noise_var: float, k_max: int) -> np.ndarray:
    """One scene ``H [K, K, Nt]`` complex -> float32 ``[k_max, k_max, Nt, 2]``, scaled by
    ``sqrt(p_max / noise_var)``; links ``>= K`` are zero."""
    H = np.asarray(H)
    K, _, Nt = H.shape
    if K > k_max:
        raise ValueError(f"scene has K={K} links, the C was built for K_MAX={k_max}")
    Hs = H.astype(np.complex128) * math.sqrt(p_max / noise_var)
    h = np.zeros((k_max, k_max, Nt, 2), np.float32)
    h[:K, :K, :, 0] = Hs.real
    h[:K, :K, :, 1] = Hs.imag
    return h


def beams(v: np.ndarray, K: int) -> np.ndarray:
    """ABI output ``[k_max, Nt, 2]`` -> complex ``[K, Nt]`` (unit power scale)."""
    return v[:K, :, 0].astype(np.float64) + 1j * v[:K, :, 1].astype(np.float64)


class HostWmmse:
    """``wmmse_f32`` built for the host with ``-DWMMSE_K_MAX=k_max -DWMMSE_NT=nt`` into ``out_dir``."""

    def __init__(self, k_max: int, nt: int, out_dir, cc: str = "gcc"):
        self.k_max, self.nt = k_max, nt
        so = Path(out_dir) / f"wmmse_f32_k{k_max}_nt{nt}.so"
        cmd = [cc, *STRICT, f"-DWMMSE_K_MAX={k_max}", f"-DWMMSE_NT={nt}", "-fPIC", "-shared",
               str(HERE / "wmmse_f32.c"), "-o", str(so), "-lm"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
        self.lib = ctypes.CDLL(str(so))
        self.lib.wmmse_f32_scratch_bytes.restype = ctypes.c_size_t
        f = self.lib.wmmse_f32
        f.restype = ctypes.c_int
        fp = ctypes.POINTER(ctypes.c_float)
        f.argtypes = [fp, ctypes.c_int32, fp, ctypes.c_int32, ctypes.c_void_p, fp, fp]
        self.scratch = (ctypes.c_float * (self.lib.wmmse_f32_scratch_bytes() // 4))()

    def run(self, h: np.ndarray, k: int, iters: int, alpha=None, v: np.ndarray | None = None):
        """-> (rc, v float32 ``[k_max, Nt, 2]``, wsr). ``v`` (if given) is the output buffer."""
        fp = ctypes.POINTER(ctypes.c_float)
        h = np.ascontiguousarray(h, np.float32)
        if v is None:
            v = np.zeros((self.k_max, self.nt, 2), np.float32)
        a = None if alpha is None else np.ascontiguousarray(alpha, np.float32)
        wsr = ctypes.c_float(0.0)
        rc = self.lib.wmmse_f32(h.ctypes.data_as(fp), k, None if a is None else a.ctypes.data_as(fp), iters,
                                self.scratch, v.ctypes.data_as(fp), ctypes.byref(wsr))
        return rc, v, wsr.value
