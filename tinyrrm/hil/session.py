"""One HIL run of a target: every figure issue 5 asks for, and the report.

``run_hil(target)`` builds the deployed firmware (and the original full
MPGNN's, with a large virtual flash), runs them under QEMU (or the deployed
one on a board, ``port=``), and returns::

    firmware_elf, flash_bytes, ram_bytes, stack_peak_bytes,
    instructions_per_inference, instructions_per_mac  (QEMU icount; a board: cycles_per_*)
    model_size_ratio   fp32 original model bytes / the deployed weights in the ELF's flash
    flash_ratio        original firmware flash / deployed firmware flash
    sum_rate_ratio     int8 on target / fp32 original (and vs WMMSE, fp32 LR, host C)
    bit_exact          test vectors equal / total

It writes them to ``build/hil/<target>/hil.json`` and merges them into
``generated/<target>/report.json`` (``measured.hil``) when that folder exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyrrm.export import targets as T
from tinyrrm.export.report import macs_per_inference
from tinyrrm.training.fileio import write_bytes, write_text
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.scenes import load as load_scenes

from . import elfsize, prepare
from .protocol import HILError
from .run import CUT_M, build_firmware, infer_scenes, instructions, measure, open_target, path_instructions

ROOT = Path(__file__).resolve().parents[2]


def gen_dir_for(target: str) -> Path:
    """``generated/<target>`` if generated, else cortex-m4's: the C is the same for every core."""
    own = Path("generated") / target
    return own if (own / "model.c").is_file() else Path("generated/cortex-m4")


def run_hil(target: str, port: str | None = None, hil_dir=None, extra_cflags: str = "", tag: str = "",
            progress: bool = True) -> dict:
    t = T.get(target)
    ref, W, hdir = prepare.load_reference(target, hil_dir)
    gen = gen_dir_for(target)
    report = json.loads((gen / "report.json").read_text())
    out_dir = Path("build/fw") / target / (tag or "deployed")
    elf = build_firmware(target, gen, out_dir, "lrmpgnn", extra_cflags)
    scenes = load_scenes(hdir / "scenes.npz")
    with open_target(target, elf, port) as client:
        res = measure(client, elf)
        V, ticks = infer_scenes(client, scenes, progress=progress)
    stats = res["stats"]
    # QEMU: instructions (icount, exact); a board: core-clock cycles (SysTick runs on the core clock)
    unit = "cycles" if port else "instructions"
    per_scene = [float(tk) for tk in ticks] if port else [instructions(tk, stats) for tk in ticks]
    weights = res["elf"]["symbols"].get("lrmpgnn_weights")
    if weights is None:
        raise HILError(f"{elf}: no lrmpgnn_weights symbol: not the deployed model's firmware")
    macs = [macs_per_inference(report, int(m.sum()), scenes.K) for m in scenes.edge_mask(CUT_M)]
    rate = {k[2:]: float(sum_rate(scenes.H, v, scenes.noise_var, scenes.weights).mean()) for k, v in W.items()}
    rate["lrmpgnn_target"] = float(sum_rate(scenes.H, V, scenes.noise_var, scenes.weights).mean())
    res.update({
        "target": target, "board": t.board, "qemu_machine": t.qemu_machine if not port else None, "port": port,
        "firmware_elf": str(elf),
        "flash_limit_bytes": t.flash, "ram_limit_bytes": t.ram,
        "generator": {"flash_need_bytes": report["sizes"]["flash_need_bytes"],
                      "ram_need_bytes": report["sizes"]["ram_need_bytes"],
                      "arena_bytes": report["sizes"]["arena_bytes"], "weights_bytes": report["sizes"]["weights_bytes"],
                      "test_vector_bytes": report["sizes"]["test_vector_bytes"]},
        "count_unit": unit,
        f"{unit}_per_inference": float(np.mean(per_scene)),
        f"{unit}_per_inference_each": per_scene,
        "macs_per_inference": float(np.mean(macs)),
        f"{unit}_per_mac": float(np.mean(per_scene) / np.mean(macs)),
        "sum_rate": rate,
        "sum_rate_ratio": rate["lrmpgnn_target"] / rate["mpgnn_torch"],
        "sum_rate_ratio_vs": {"wmmse": rate["lrmpgnn_target"] / rate["wmmse"],
                              "lrmpgnn_fp32": rate["lrmpgnn_target"] / rate["lrmpgnn_torch"],
                              "host_c": rate["lrmpgnn_target"] / rate["lrmpgnn_c"]},
        "max_abs_diff_vs_host_c": float(np.abs(V - W["W_lrmpgnn_c"]).max()),
        # measured: the weights the ELF holds in flash (int8 weights, int32 biases, per-channel
        # requantization); `tinyrrm size` adds 96 B of ADD/MUL constants that model.c keeps in code
        "model_bytes_in_flash": weights["size"],
        "model_size_ratio": ref["mpgnn"]["bytes_fp32"] / weights["size"],
        "n_scenes": scenes.N,
    })
    res["bit_exact_fraction"] = res["bit_exact"]["equal"] / res["bit_exact"]["total"]
    if t.dsp and not port:  # the same scenes through the portable C path, for the DSP speed-up
        ins = path_instructions(target, gen, Path("build/fw") / target / "portable", scenes, "-DTR_NO_DSP=1")
        res["portable"] = {"instructions_per_inference": ins, "instructions_per_mac": ins / np.mean(macs)}
        res["portable_over_dsp"] = ins / res["instructions_per_inference"]
    # the original full MPGNN, same core, large virtual flash: whole-firmware flash ratio
    orig = build_firmware(target, hdir / "gen_mpgnn", Path("build/fw") / target / "original", "mpgnn",
                          extra_cflags, big_flash=True)
    osz = elfsize.sizes(orig)
    res["original_firmware"] = {"elf": str(orig), "flash_bytes": osz["flash"], "ram_static_bytes": osz["ram_static"]}
    if not port:  # it runs too: its own TFLM goldens, bit-exact (a board's flash may not hold it)
        with open_target(target, orig) as c:
            n, n_exact, _ = c.vectors()
        res["original_firmware"]["bit_exact"] = {"equal": n_exact, "total": n}
    res["flash_ratio"] = osz["flash"] / res["flash_bytes"]
    res["original_firmware_fits_board"] = osz["flash"] <= t.flash
    return res


def save(res: dict, target: str, hil_dir=None, key: str = "hil", update_generated: bool = True) -> Path:
    """``build/hil/<target>/<key>.json``, and (``update_generated``, what ``make hil`` does) the
    summary in ``reports/<key>/<target>.json`` (every core's committed figures) and as
    ``measured.<key>`` in ``generated/<target>/report.json`` when that target is generated."""
    from tinyrrm.export import report as R

    out = (Path(hil_dir) if hil_dir else prepare.OUT / target) / f"{key}.json"
    write_text(out, json.dumps(res, indent=2, sort_keys=True) + "\n")
    png = out.parent / "report_hil.png"
    try:
        from .plots import hil_figure

        hil_figure(res, png)
    except ImportError:  # the lean image may lack matplotlib: figures are the full environment's job
        png = None
    gen = Path("generated") / target
    if update_generated:
        brief = summary(res)
        write_text(Path("reports") / key / f"{target}.json",
                   json.dumps({"target": target, **brief}, indent=2, sort_keys=True) + "\n")
        if (gen / "report.json").is_file():
            if png is not None:
                write_bytes(gen / png.name, png.read_bytes())
            R.merge_measured(gen, key, brief)
    return out


def summary(res: dict) -> dict:
    """The report.json keys of issue 5 (the full run stays in build/hil)."""
    keys = ("firmware_elf", "flash_bytes", "ram_bytes", "stack_peak_bytes", "count_unit", "instructions_per_inference",
            "instructions_per_mac", "cycles_per_inference", "cycles_per_mac", "macs_per_inference",
            "model_bytes_in_flash", "model_size_ratio", "flash_ratio", "sum_rate_ratio",
            "sum_rate_ratio_vs", "bit_exact", "flash_limit_bytes", "ram_limit_bytes", "qemu_machine", "board",
            "original_firmware", "n_scenes", "portable", "portable_over_dsp")
    out = {k: res[k] for k in keys if k in res}
    out["bit_exact"] = {"equal": res["bit_exact"]["equal"], "total": res["bit_exact"]["total"]}
    return out
