"""The HIL stage: build firmware, run it (QEMU or a board), measure, check.

Stdlib + numpy only (plus the numpy parts of tinyrrm.training: scenes,
metrics, WMMSE), so it runs in the lean HIL image.

* :func:`build_firmware` — ``make -C firmware_templates/firmware`` for a
  target and a generated folder; a model that does not fit fails here with
  the firmware Makefile's "needs X, has Y" line.
* :func:`open_target` — a protocol client on QEMU (``Qemu``) or a serial port.
* :func:`infer_scenes` — beamformers of scenes through the target's float API.
* :func:`measure` — vectors bit-exact, flash/RAM from the ELF plus the
  painted stack peak, instructions per inference from SysTick under
  ``-icount``.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tinyrrm import paths
from tinyrrm.codegen import targets as T
from tinyrrm.codegen.host import input_bytes, output_array, read_report

from . import elfsize
from .protocol import Client, HILError
from .qemu import Qemu
from .transport import SerialTransport

FIRMWARE = paths.FIRMWARE
BUILD = paths.BUILD_FW


def build_firmware(
    target: str,
    gen_dir,
    out_dir=None,
    prefix: str | None = None,
    extra_cflags: str = "",
    big_flash: bool = False,
    port: str | None = None,
) -> Path:
    """``firmware.elf`` of ``gen_dir`` for ``target`` (a core; ``port`` names a board port
    such as ``stm32f405`` instead); ``prefix`` None: the one ``gen_dir/report.json`` names. Raises
    HILError with make's "needs X, has Y" line on failure."""
    if port is None:
        T.get(target)
    if prefix is None:
        prefix = read_report(gen_dir)["model"]["prefix"]
    out = Path(out_dir) if out_dir else BUILD / (port or target)
    cmd = [
        "make",
        "-s",
        "-C",
        str(FIRMWARE),
        f"TARGET={port or target}",
        f"GEN={Path(gen_dir).resolve()}",
        f"OUT={out.resolve()}",
        f"PREFIX={prefix}",
        f"EXTRA_CFLAGS={extra_cflags}",
    ]
    if big_flash:
        cmd.append("BIG_FLASH=1")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        needs = [ln for ln in lines if "needs" in ln and "has" in ln]
        raise HILError(
            needs[-1] if needs else f"firmware build for {target} failed: {lines[-1] if lines else r.returncode}"
        )
    return out / "firmware.elf"


@contextlib.contextmanager
def open_target(target: str, elf=None, port: str | None = None, baud: int = 115200, timeout: float = 120.0):
    """A :class:`Client` on QEMU (``elf``) or on a real board (``port``)."""
    if port:
        t = SerialTransport(port, baud)
        try:
            yield Client(t, timeout)
        finally:
            t.close()
        return
    with Qemu(elf, T.get(target).qemu_machine, timeout) as client:
        yield client


def infer_scenes(client: Client, scenes, cut_m: float | None, progress: bool = True) -> tuple[np.ndarray, list[int]]:
    """Beamformers ``[N, K, Nt]`` (scaled by sqrt(p_max)) of ``scenes`` on the target, and ticks per scene;
    the graph keeps the links shorter than ``cut_m`` metres (the model's edge cut: ``model.cut_m`` of
    the generated report.json; None: all links)."""
    info = client.info
    if scenes.K > info.k_max or scenes.Nt != info.nt:
        raise HILError(f"scenes have K={scenes.K}, Nt={scenes.Nt}; the firmware serves K <= {info.k_max}, Nt={info.nt}")
    H = (scenes.H * math.sqrt(scenes.p_max / scenes.noise_var)).astype(np.complex64)
    mask = scenes.edge_mask(cut_m)
    V, ticks = [], []
    for i in tqdm(
        range(scenes.N), desc=f"{info['prefix']} on {info['core']}", leave=False, disable=None if progress else True
    ):
        body, t = client.infer(input_bytes(H[i], mask[i], info.k_max))
        V.append(output_array(body, scenes.K, info.k_max, info.nt))
        ticks.append(t)
    return (np.stack(V) * math.sqrt(scenes.p_max)).astype(np.complex64), ticks


def instructions(ticks: int, stats: dict) -> float:
    """SysTick ticks -> instructions under QEMU ``-icount``, by the firmware's boot calibration
    loop (its SUBS/BNE pairs are exactly two instructions). Not on a board: there a taken branch
    costs 2-4 cycles and the loop measures the pipeline, not instructions; a board's SysTick
    ticks are core-clock cycles as they are (``session.run_hil``)."""
    return ticks * stats["calib_instructions"] / stats["calib_ticks"]


def path_instructions(target: str, gen_dir, out_dir, scenes, extra_cflags: str = "", progress: bool = False) -> float:
    """Mean instructions per inference of ``scenes`` on a firmware of ``gen_dir`` built with
    ``extra_cflags`` (``-DTR_NO_DSP=1``: the portable C path) under QEMU."""
    model = read_report(gen_dir)["model"]
    elf = build_firmware(target, gen_dir, out_dir, model["prefix"], extra_cflags)
    with open_target(target, elf) as c:
        stats = c.stats()
        _, ticks = infer_scenes(c, scenes, model["cut_m"], progress=progress)
    return sum(instructions(tk, stats) for tk in ticks) / len(ticks)


def measure(client: Client, elf, symbols=()) -> dict:
    """Vectors, ELF sizes (and ``symbols``' sizes and sections), painted stack: the figures every target reports."""
    info = client.hello()
    n, n_exact, mism = client.vectors()
    stats = client.stats()
    sz = elfsize.sizes(elf, symbols)
    return {
        "hello": info.fields,
        "bit_exact": {"equal": n_exact, "total": n, "mismatching_bytes": mism},
        "stats": stats,
        "elf": {k: sz[k] for k in ("text", "rodata", "data", "bss", "flash", "ram_static", "symbols")},
        "flash_bytes": sz["flash"],
        "ram_bytes": sz["ram_static"] + stats["stack_peak"],
        "stack_peak_bytes": stats["stack_peak"],
    }
