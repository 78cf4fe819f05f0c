"""Host benchmark of the generated C: instructions per inference (callgrind).

Valgrind's callgrind counts executed x86-64 instructions (``Ir``) of the
host build; the program runs one real scene 0 and 1 times, and the
difference is one inference (front end + all steps), free of start-up
cost. Deterministic for a given binary. MACs come from the generator's
report and the scene's edge count, so the figure per MAC can be read against the
Cortex-M goal (there measured with QEMU's icount).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import host
from tinyrrm.codegen.report import macs_per_inference
from tinyrrm.export import frontend
from tinyrrm.training.scenes import load as load_scenes

DRIVER = paths.TEMPLATES / "host" / "infer_main.c"


def build_driver(gen_dir: Path, out: Path, extra: tuple[str, ...] = ()) -> Path:
    prefix = host.prefix_of(gen_dir)
    cmd = [
        "gcc",
        "-std=c99",
        "-O2",
        "-ffp-contract=off",
        "-DTR_NO_DSP=1",
        f"-DPREFIX={prefix}",
        *extra,
        "-I",
        str(gen_dir),
        str(DRIVER),
        *map(str, host.sources(gen_dir)),
        "-o",
        str(out),
        "-lm",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise host.BuildError(r.stderr[-3000:])
    return out


def _callgrind_total(exe: Path, args: list[str], tmp: Path) -> int:
    out = tmp / f"cg.{len(list(tmp.iterdir()))}"
    r = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), *args], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise host.BuildError(f"callgrind failed: {r.stderr[-2000:]}")
    m = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.M)
    if not m:
        raise RuntimeError("no instruction total in callgrind's output")
    return int(m.group(1))


def host_instructions(gen_dir, H: np.ndarray, edge: np.ndarray) -> dict:
    """Instructions per inference of ``gen_dir`` on one scene ``H [k, k, Nt]`` (unit noise)."""
    if shutil.which("valgrind") is None:
        raise host.BuildError("valgrind not found (docker/provision.sh installs it)")
    gen_dir = Path(gen_dir)
    rep = host.read_report(gen_dir)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        exe = build_driver(gen_dir, tmp / "infer")
        (tmp / "in.bin").write_bytes(host.input_bytes(H, edge, rep["model"]["K_MAX"]))
        base = _callgrind_total(exe, [str(tmp / "in.bin"), "0", str(tmp / "o0.bin")], tmp)
        one = _callgrind_total(exe, [str(tmp / "in.bin"), "1", str(tmp / "o1.bin")], tmp)
    k = H.shape[0]
    e = np.asarray(edge, bool)[:k, :k]
    macs = macs_per_inference(rep, int(e.sum()), k)
    per = one - base
    return {
        "instructions_per_inference": per,
        "macs_per_inference": macs,
        "instructions_per_mac": per / macs,
        "edges": int(e.sum()),
        "k": k,
        "tool": "valgrind --tool=callgrind (x86-64 Ir, gcc -O2, portable path)",
    }


def codegen_bench(gen_dir, test_path) -> dict:
    """``make bench``'s codegen part: MACs, host instructions, arenas (``tinyrrm bench`` writes
    them to reports/bench.json; the generated folder is not touched)."""
    gen_dir = Path(gen_dir)
    rep = host.read_report(gen_dir)
    s = load_scenes(test_path).subset(slice(0, 1))
    edge = s.edge_mask(rep["model"]["cut_m"])[0]
    fig = host_instructions(gen_dir, frontend.unit_noise(s)[0], edge)
    fig.update(
        {
            "scene": f"{Path(test_path).name}[0]",
            "arena_bytes": rep["sizes"]["arena_bytes"],
            "tflm_arena_bytes_host": rep["tflm"]["arena_bytes_host"],
            "macs_per_step_full_graph": rep["macs"]["per_step_full_graph"],
        }
    )
    return fig
