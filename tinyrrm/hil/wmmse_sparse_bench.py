"""The top-m ranking and the sparse WMMSE in C (``firmware_templates/wmmse/wmmse_rank_f32.c``,
``wmmse_sparse_f32.c``, ``wmmse_solve_f32.c``) on the host and on the chip.

* :class:`HostSparseWmmse` compiles the three kernels for the host (the project's strict
  warnings) and calls them by ctypes: :meth:`~HostSparseWmmse.rank` and :meth:`~HostSparseWmmse.run`.
* :func:`bench` builds the bare-metal bench firmware (``make -C firmware_templates/wmmse
  BENCH=sparse``), sends it the test file's first scene over the HIL protocol under QEMU
  (``-icount shift=0``) for every (top-m, iterations) case, and records the ranking's and the
  sparse WMMSE's instructions apart, the full-channel rate of the chip's beams beside
  ``training/wmmse.py``'s ``wmmse(..., top_m=m)`` at the same iteration count, and the
  kernels' flash (their objects' text and rodata) and RAM (CSI buffer, scratch, index table,
  stack frames). ``python -m tinyrrm.hil.wmmse_sparse_bench`` writes
  ``reports/wmmse_sparse_bench.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import re
import shlex
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.errors import TinyrrmError
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.wmmse import wmmse

from .protocol import HILError
from .qemu import Qemu
from .run import instructions
from .wmmse_bench import HERE, STRICT, _scene, _stats, abi_channels, beams, qemu_machine, write

#: the kernels of the sparse WMMSE, in link order
SOURCES = ("wmmse_rank_f32.c", "wmmse_solve_f32.c", "wmmse_sparse_f32.c")
ERR = {"ok": 0, "k": -1, "m": -2, "iters": -2, "nonfinite": -3, "param": -4, "null": -5}
#: request type of the sparse bench firmware (wmmse_bench_main.c built with BENCH=sparse)
RUN_SPARSE = 0x11
#: cortex-m4 cases: interferers kept per receiver x iteration counts (0: MRT and the gains alone)
TOP_M = (8, 16, 24)
ITERS = (0, 1, 2, 3, 5, 10, 15)
NT = 2


class HostSparseWmmse:
    """The ranking and sparse WMMSE built for the host with ``-DWMMSE_F32_K_MAX=k_max -DWMMSE_F32_NT=2``."""

    def __init__(self, k_max: int, out_dir, cc: str = "gcc"):
        self.k_max = k_max
        so = Path(out_dir) / f"wmmse_sparse_f32_k{k_max}.so"
        cmd = [cc, *STRICT, f"-DWMMSE_F32_K_MAX={k_max}", f"-DWMMSE_F32_NT={NT}", "-fPIC", "-shared"]
        cmd += [str(HERE / s) for s in SOURCES] + ["-o", str(so), "-lm"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
        self.lib = ctypes.CDLL(str(so))
        fp, ip = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int16)
        i32 = ctypes.c_int32
        self.lib.wmmse_rank_f32.restype = ctypes.c_int
        self.lib.wmmse_rank_f32.argtypes = [fp, i32, i32, ip]
        f = self.lib.wmmse_sparse_f32
        f.restype = ctypes.c_int
        f.argtypes = [fp, i32, i32, ip, fp, fp, fp, fp, i32, ctypes.c_void_p, fp, fp]
        self.lib.wmmse_sparse_f32_scratch_bytes.restype = ctypes.c_size_t
        self.scratch = (ctypes.c_float * (self.lib.wmmse_sparse_f32_scratch_bytes() // 4))()

    def rank(self, h: np.ndarray, k: int, m: int):
        """-> (rc, idx int16 ``[k, min(m, k - 1)]``)."""
        h = np.ascontiguousarray(h, np.float32)
        idx = np.zeros((k, max(1, min(m, k - 1))), np.int16)
        rc = self.lib.wmmse_rank_f32(
            h.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), k, m, idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        )
        return rc, idx

    def run(self, h: np.ndarray, k: int, idx: np.ndarray, iters: int, alpha=None, v0=None, p_max=None, noise_var=None):
        """-> (rc, v float32 ``[k_max, 2, 2]``, wsr of the updates' view); ``idx`` ``[k, m]`` int16."""
        fp = ctypes.POINTER(ctypes.c_float)
        h = np.ascontiguousarray(h, np.float32)
        idx = np.ascontiguousarray(idx, np.int16)
        v = np.zeros((self.k_max, NT, 2), np.float32)
        arrs = [None if x is None else np.ascontiguousarray(x, np.float32) for x in (alpha, p_max, noise_var, v0)]
        wsr = ctypes.c_float(0.0)
        rc = self.lib.wmmse_sparse_f32(
            h.ctypes.data_as(fp),
            k,
            idx.shape[1] if idx.size else 0,
            idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            *(None if a is None else a.ctypes.data_as(fp) for a in arrs),
            iters,
            self.scratch,
            v.ctypes.data_as(fp),
            ctypes.byref(wsr),
        )
        return rc, v, wsr.value


def idx_links(idx: np.ndarray) -> np.ndarray:
    """The C index table ``[K, m]`` (row r: the transmitters receiver r keeps) -> the bool
    ``[K(tx), K(rx)]`` link set of :func:`~tinyrrm.training.scenes.top_m_links`."""
    K = idx.shape[0]
    links = np.zeros((K, K), bool)
    links[idx.astype(np.int64), np.arange(K)[:, None]] = True
    return links


# ----------------------------------------------------------------------------
# on the chip
# ----------------------------------------------------------------------------
def build(target: str, k_max: int, out_dir) -> Path:
    """``make -C firmware_templates/wmmse BENCH=sparse`` -> the sparse bench firmware ELF."""
    out_dir = Path(out_dir).resolve()
    cmd = ["make", "-s", "-C", str(HERE), "BENCH=sparse", f"TARGET={target}", f"K_MAX={k_max}", f"NT={NT}"]
    r = subprocess.run([*cmd, f"OUT={out_dir}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise HILError(f"sparse bench firmware for {target} did not build: {(r.stderr or r.stdout).strip()}")
    return out_dir / "firmware.elf"


def kernel_sizes(target: str, k_max: int) -> dict:
    """Flash (text + rodata of each kernel's object, built with the firmware's flags) and stack
    frames (``-fstack-usage``) of the ranking and the sparse WMMSE on ``target``."""
    r = subprocess.run(
        ["make", "-s", "-C", str(HERE), f"TARGET={target}", f"K_MAX={k_max}", f"NT={NT}", "print-cflags"],
        capture_output=True,
        text=True,
        check=True,
    )
    cc, *cflags = shlex.split(r.stdout.strip())
    size_tool = re.sub(r"gcc$", "size", cc)
    out: dict = {"flash_bytes": {}, "stack_frames_bytes": {}}
    with tempfile.TemporaryDirectory() as d:
        for src in SOURCES:
            obj = Path(d) / src.replace(".c", ".o")
            subprocess.run([cc, *cflags, "-fstack-usage", "-c", str(HERE / src), "-o", str(obj)], check=True)
            text, data, _bss = (
                int(x)
                for x in subprocess.run([size_tool, str(obj)], capture_output=True, text=True, check=True)
                .stdout.splitlines()[1]
                .split()[:3]
            )
            out["flash_bytes"][src] = text + data
            frames = [int(line.split("\t")[1]) for line in obj.with_suffix(".su").read_text().splitlines()]
            out["stack_frames_bytes"][src] = sum(frames)  # every function's frame: an upper bound
    return out


def run_on_target(client, h: np.ndarray, k: int, m: int, iters: int, alpha=None):
    """One RUN_SPARSE request -> (rc, ranking ticks, WMMSE ticks, wsr, v float32 ``[k_max, 2, 2]``)."""
    k_max = h.shape[0]
    al = np.zeros(k_max, np.float32)
    if alpha is not None:
        al[: len(alpha)] = alpha
    head = struct.pack("<iiiI", k, iters, m, int(alpha is not None))
    body = client.request(RUN_SPARSE, head + al.tobytes() + np.ascontiguousarray(h, np.float32).tobytes())
    rc, rlo, rhi, wlo, whi, wsr = struct.unpack_from("<iIIIIf", body)
    v = np.frombuffer(body, np.float32, offset=24).reshape(k_max, NT, 2).copy()
    return rc, rlo | (rhi << 32), wlo | (whi << 32), wsr, v


def bench(
    test_path=paths.TEST,
    build_dir=paths.BUILD / "wmmse",
    target: str = "cortex-m4",
    top_m=TOP_M,
    iters=ITERS,
    progress: bool = True,
) -> dict:
    """Instructions of the ranking and of the sparse WMMSE on ``target`` for the first scene of
    ``test_path``, per (top-m, iterations); rates are of the full channels."""
    s, desc = _scene(test_path, NT)
    K = s.K
    h = abi_channels(s.H[0], s.p_max, s.noise_var, K)
    elf = build(target, K, Path(build_dir) / f"{target}-k{K}-nt{NT}-sparse")
    sizes = kernel_sizes(target, K)
    out: dict = {
        "test": str(test_path),
        "target": target,
        "nt": NT,
        "k": K,
        "scene": desc,
        "flags": "-O2 -std=c99 -ffp-contract=off (the HIL firmware's)",
        "flash_bytes": sum(sizes["flash_bytes"].values()),
        "kernel_sizes": sizes,
        "cases": [],
    }
    with Qemu(elf, qemu_machine(target), timeout=600.0) as c:
        c.hello()
        stats = _stats(c)
        for m in top_m:
            mk = min(m, K - 1)
            row: dict = {
                "top_m": m,
                "links_kept": K * mk,
                "ram_bytes": {
                    "csi": h.nbytes,
                    "scratch": 16 * K * 4,
                    "index": K * mk * 2,
                    "stack_frames": sum(sizes["stack_frames_bytes"].values()),
                },
                "runs": [],
            }
            row["ram_bytes"]["total"] = sum(row["ram_bytes"].values())
            for it in iters:
                rc, rank_ticks, wm_ticks, wsr, v = run_on_target(c, h, K, m, it)
                if rc != 0:
                    raise HILError(f"sparse WMMSE returned {rc} on {target} (top-{m}, iters={it})")
                _, hist = wmmse(
                    s.H, s.p_max, s.noise_var, max_iter=it, tol=0.0, progress=False, return_history=True, top_m=mk
                )
                ref = float(hist[0, -1])
                chip = float(sum_rate(s.H, beams(v, K)[None] * np.sqrt(s.p_max), s.noise_var)[0])
                rank_i, wm_i = instructions(rank_ticks, stats), instructions(wm_ticks, stats)
                run = {
                    "iters": it,
                    "rank_instructions": rank_i,
                    "wmmse_instructions": wm_i,
                    "instructions": rank_i + wm_i,
                    "wsr_chip": chip,
                    "wsr_numpy": ref,
                    "rel_diff": abs(chip - ref) / ref,
                }
                row["runs"].append(run)
                if progress:
                    print(
                        f"{target} K={K} top-{m} iters={it}: rank {rank_i:.0f} + WMMSE {wm_i:.0f} instructions, "
                        f"WSR chip {chip:.4f} numpy {ref:.4f}",
                        flush=True,
                    )
            base = row["runs"][0]["wmmse_instructions"] if row["runs"][0]["iters"] == 0 else None
            if base is not None:
                for run in row["runs"][1:]:
                    run["instructions_per_iteration"] = (run["wmmse_instructions"] - base) / run["iters"]
            out["cases"].append(row)
    return out


def main(argv=None) -> None:
    """``python -m tinyrrm.hil.wmmse_sparse_bench [--test data/test.npz] [--out reports/wmmse_sparse_bench.json]``"""
    p = argparse.ArgumentParser(prog="python -m tinyrrm.hil.wmmse_sparse_bench", description=main.__doc__)
    p.add_argument("--test", default=str(paths.TEST))
    p.add_argument("--out", default=str(paths.REPORTS / "wmmse_sparse_bench.json"))
    p.add_argument("--build", default=str(paths.BUILD / "wmmse"))
    a = p.parse_args(argv)
    try:
        res = bench(a.test, a.build)
    except (TinyrrmError, OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"sparse WMMSE bench: {e}") from None
    print(f"wrote {write(res, a.out)}")


if __name__ == "__main__":
    main()
