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

import argparse
import ctypes
import json
import math
import struct
import subprocess
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen.wmmse import flops_per_pair_iteration
from tinyrrm.errors import TinyrrmError
from tinyrrm.training import scenes as sc
from tinyrrm.training.wmmse import wmmse

from .protocol import HILError
from .qemu import Qemu
from .run import instructions

HERE = paths.TEMPLATES / "wmmse"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]
ERR = {"ok": 0, "k": -1, "iters": -2, "nonfinite": -3, "param": -4, "null": -5, "overflow": -6}

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
    """``wmmse_f32`` built for the host with ``-DWMMSE_F32_K_MAX=k_max -DWMMSE_F32_NT=nt`` into ``out_dir``;
    ``fma`` forces the fused (1) or the multiply-and-add (0) inner loops, None lets the compiler say."""

    def __init__(self, k_max: int, nt: int, out_dir, cc: str = "gcc", fma: int | None = None):
        self.k_max, self.nt = k_max, nt
        so = Path(out_dir) / f"wmmse_f32_k{k_max}_nt{nt}_fma{fma}.so"
        flags = [] if fma is None else [f"-DWMMSE_F32_FMA={fma}"]
        cmd = [
            cc,
            *STRICT,
            *flags,
            f"-DWMMSE_F32_K_MAX={k_max}",
            f"-DWMMSE_F32_NT={nt}",
            "-fPIC",
            "-shared",
            str(HERE / "wmmse_f32.c"),
            "-o",
            str(so),
            "-lm",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
        self.lib = ctypes.CDLL(str(so))
        self.lib.wmmse_f32_scratch_bytes.restype = ctypes.c_size_t
        f = self.lib.wmmse_f32
        f.restype = ctypes.c_int
        fp = ctypes.POINTER(ctypes.c_float)
        f.argtypes = [fp, ctypes.c_int32, fp, fp, fp, ctypes.c_int32, ctypes.c_void_p, fp, fp]
        self.scratch = (ctypes.c_float * (self.lib.wmmse_f32_scratch_bytes() // 4))()

    def run(
        self, h: np.ndarray, k: int, iters: int, alpha=None, v: np.ndarray | None = None, p_max=None, noise_var=None
    ):
        """-> (rc, v float32 ``[k_max, Nt, 2]``, wsr). ``v`` (if given) is the output buffer;
        ``alpha``, ``p_max``, ``noise_var`` per link (None: all 1)."""
        fp = ctypes.POINTER(ctypes.c_float)
        h = np.ascontiguousarray(h, np.float32)
        if v is None:
            v = np.zeros((self.k_max, self.nt, 2), np.float32)
        arrs = [None if x is None else np.ascontiguousarray(x, np.float32) for x in (alpha, p_max, noise_var)]
        wsr = ctypes.c_float(0.0)
        rc = self.lib.wmmse_f32(
            h.ctypes.data_as(fp),
            k,
            *(None if a is None else a.ctypes.data_as(fp) for a in arrs),
            iters,
            self.scratch,
            v.ctypes.data_as(fp),
            ctypes.byref(wsr),
        )
        return rc, v, wsr.value


# ----------------------------------------------------------------------------
# on the chip
# ----------------------------------------------------------------------------
#: (target, Nt) -> iteration counts measured; iteration count 0 is MRT + the gains alone
CASES = {
    ("cortex-m0", 2): (1, 2),
    ("cortex-m3", 2): (1, 2),
    ("cortex-m4", 2): (1, 2, 5, 10),
    ("cortex-m4", 4): (1, 2, 5, 10),
    ("cortex-m7", 2): (1, 2, 5, 10),
    ("cortex-m33", 2): (1, 2, 5, 10),
    ("cortex-m55", 2): (1, 2, 5, 10),
}
#: cores whose RAM does not hold the test scenes' K = 50 channels (40 KB): their first K links
K_CAP = {"cortex-m0": 20}
#: where each Nt's scene comes from: the test file's first scene (Nt = 2), else one drawn by
#: the scenes generator with the test file's seed
SCENE_SEED = 2


def build(target: str, k_max: int, nt: int, out_dir) -> Path:
    """``make -C firmware_templates/wmmse`` -> the bench firmware ELF."""
    out_dir = Path(out_dir).resolve()
    cmd = ["make", "-s", "-C", str(HERE), f"TARGET={target}", f"K_MAX={k_max}", f"NT={nt}", f"OUT={out_dir}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise HILError(f"bench firmware for {target} (Nt={nt}) did not build: {(r.stderr or r.stdout).strip()}")
    return out_dir / "firmware.elf"


def qemu_machine(target: str) -> str:
    r = subprocess.run(
        ["make", "-s", "-C", str(HERE), f"TARGET={target}", "print-qemu"], capture_output=True, text=True, check=True
    )
    return r.stdout.strip()


def run_on_target(client, h: np.ndarray, k: int, iters: int, alpha=None):
    """One RUN request -> (rc, SysTick ticks, wsr, v float32 ``[k_max, Nt, 2]``)."""
    k_max, nt = h.shape[0], h.shape[2]
    al = np.zeros(k_max, np.float32)
    if alpha is not None:
        al[: len(alpha)] = alpha
    payload = (
        struct.pack("<iiI", k, iters, int(alpha is not None))
        + al.tobytes()
        + np.ascontiguousarray(h, np.float32).tobytes()
    )
    body = client.request(RUN, payload)
    rc, lo, hi, wsr = struct.unpack_from("<iIIf", body)
    v = np.frombuffer(body, np.float32, offset=16).reshape(k_max, nt, 2).copy()
    return rc, lo | (hi << 32), wsr, v


def _stats(client) -> dict:
    body = client.request(STATS)
    stack, _, ticks, ins = struct.unpack("<4I", body)
    return {"stack": stack, "calib_ticks": ticks, "calib_instructions": ins}


def _scene(test_path, nt: int, k_cap: int | None = None):
    s = sc.load(test_path).subset(slice(0, 1))
    if s.Nt != nt:
        s = sc.generate(1, s.K, nt, SCENE_SEED)
        return s, f"tinyrrm scenes --n 1 --K {s.K} --Nt {nt} --seed {SCENE_SEED} (geometric)[0]"
    if k_cap is not None and k_cap < s.K:
        cut = sc.Scenes(s.H[:, :k_cap, :k_cap], s.weights[:, :k_cap], None, s.noise_var, s.p_max)
        return cut, f"{Path(test_path).name}[0], its first {k_cap} links"
    return s, f"{Path(test_path).name}[0]"


def bench(test_path=paths.TEST, build_dir=paths.BUILD / "wmmse", cases=None, progress: bool = True) -> dict:
    """Instructions of wmmse_f32 on each (core, Nt) of ``cases`` (default :data:`CASES`) for
    the first scene of ``test_path`` (K = its K), under QEMU ``-icount shift=0``; the chip's
    weighted sum rate beside training/wmmse.py's at the same iteration count."""
    out: dict = {"test": str(test_path), "flags": "-O2 -std=c99 -ffp-contract=off (the HIL firmware's)", "cases": []}
    for (target, nt), iter_list in (cases or CASES).items():
        s, desc = _scene(test_path, nt, K_CAP.get(target))
        K = s.K
        h = abi_channels(s.H[0], s.p_max, s.noise_var, K)
        elf = build(target, K, nt, Path(build_dir) / f"{target}-k{K}-nt{nt}")
        row: dict = {
            "target": target,
            "nt": nt,
            "k": K,
            "scene": desc,
            "pairs": K * K,
            "flops_per_pair_iteration": flops_per_pair_iteration(nt),
            "runs": [],
        }
        with Qemu(elf, qemu_machine(target), timeout=600.0) as c:
            c.hello()
            stats = _stats(c)
            for iters in (0, *iter_list):
                rc, ticks, wsr, _ = run_on_target(c, h, K, iters)
                if rc != 0:
                    raise HILError(f"wmmse_f32 returned {rc} on {target} (Nt={nt}, iters={iters})")
                _, hist = wmmse(s.H, s.p_max, s.noise_var, max_iter=iters, tol=0.0, progress=False, return_history=True)
                ref = float(hist[0, -1])
                run = {
                    "iters": iters,
                    "instructions": instructions(ticks, stats),
                    "wsr_chip": wsr,
                    "wsr_numpy": ref,
                    "rel_diff": abs(wsr - ref) / ref,
                }
                row["runs"].append(run)
                if progress:
                    print(
                        f"{target} Nt={nt} K={K} iters={iters}: {run['instructions']:.0f} instructions, "
                        f"WSR chip {wsr:.4f} numpy {ref:.4f}",
                        flush=True,
                    )
        base = row["runs"][0]["instructions"]
        row["mrt_and_gains_instructions"] = base
        for run in row["runs"][1:]:
            per = (run["instructions"] - base) / run["iters"]
            run["instructions_per_iteration"] = per
            run["instructions_per_pair_iteration"] = per / (K * K)
            run["instructions_per_flop"] = per / (K * K) / row["flops_per_pair_iteration"]
        out["cases"].append(row)
    return out


def write(res: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    return path


def main(argv=None) -> None:
    """``python -m tinyrrm.hil.wmmse_bench [--test data/test.npz] [--out reports/wmmse_bench.json]``"""
    p = argparse.ArgumentParser(prog="python -m tinyrrm.hil.wmmse_bench", description=main.__doc__)
    p.add_argument("--test", default=str(paths.TEST))
    p.add_argument("--out", default=str(paths.REPORTS / "wmmse_bench.json"))
    p.add_argument("--build", default=str(paths.BUILD / "wmmse"))
    a = p.parse_args(argv)
    try:
        res = bench(a.test, a.build)
    except (TinyrrmError, OSError) as e:
        raise SystemExit(f"wmmse bench: {e}") from None
    print(f"wrote {write(res, a.out)}")


if __name__ == "__main__":
    main()
