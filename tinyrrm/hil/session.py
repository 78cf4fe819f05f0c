"""One HIL run of a target: every figure of the on-target check, and its report.

``run_hil(target)`` builds the deployed firmware (and the original full
MPGNN's, with a large virtual flash), runs them under QEMU (or the deployed
one on a board, ``port=``), and returns::

    firmware_elf, flash_bytes, ram_bytes, stack_peak_bytes,
    instructions_per_inference, instructions_per_mac  (QEMU icount; a board: cycles_per_*)
    model_size_ratio   fp32 original model bytes / the deployed weights in the ELF's flash
    flash_ratio        original firmware flash / deployed firmware flash
    sum_rate_ratio     int8 on target / fp32 original (and vs WMMSE, fp32 LR, host C)
    bit_exact          test vectors equal / total

The deployment's facts (C prefix, weights symbol, edge cut, ranks) come from
the generated folder's ``report.json``, not from this code.

A reference folder of ``tinyrrm hil-prepare --model DIR`` (``role`` "model" in its
``reference.json``) names its own generated folder (``gen``) and has no original
to compare with: the run then measures that model (bit-exactness, flash/RAM,
instructions, sum rate against WMMSE, its fp32 checkpoint and the host C), builds
under the reference folder, and has no size or flash ratio. :func:`save`
writes the full run to ``build/hil/<target>/hil.json`` and the report
(:func:`summary` as ``<target>.json``, :func:`markdown` as ``<target>.md``, the
figure as ``<target>.png``) beside it; only ``publish`` (``make hil``,
``tinyrrm hil``) writes the report to ``reports/hil/``. The generated folder is
never written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import targets as T
from tinyrrm.codegen.host import read_report
from tinyrrm.codegen.report import macs_per_inference
from tinyrrm.training.fileio import write_bytes, write_text
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.scenes import load as load_scenes

from . import elfsize, plots, yardstick
from .protocol import HILError
from .run import build_firmware, infer_scenes, instructions, measure, open_target, path_instructions

#: where :func:`save` publishes the reports (``make hil``)
REPORTS = paths.HIL_REPORTS


def gen_dir_for(target: str) -> Path:
    """``generated/<target>`` if generated, else cortex-m4's: the C is the same for every core."""
    own = paths.GENERATED / target
    return own if (own / "model.c").is_file() else paths.GENERATED / "cortex-m4"


def load_reference(target: str, out_dir=None) -> tuple[dict, dict[str, np.ndarray], Path]:
    out = Path(out_dir) if out_dir else paths.BUILD_HIL / target
    if not (out / "reference.json").is_file():
        raise FileNotFoundError(f"{out}: no HIL reference (run `tinyrrm hil-prepare --target {target}`)")
    ref = json.loads((out / "reference.json").read_text())
    with np.load(out / "reference.npz") as z:
        W = {k: z[k] for k in z.files}
    return ref, W, out


def run_hil(
    target: str, port: str | None = None, hil_dir=None, extra_cflags: str = "", tag: str = "", progress: bool = True
) -> dict:
    t = T.get(target)
    ref, W, hdir = load_reference(target, hil_dir)
    role = ref.get("role", "lrmpgnn")  # the deployed model's name in the reference beams
    gen = Path(ref["gen"]) if "gen" in ref else gen_dir_for(target)
    fw = hdir / "fw" if "gen" in ref else paths.BUILD_FW / target  # a model of your own builds beside its reference
    report = read_report(gen)
    model = report["model"]
    scenes = load_scenes(hdir / "scenes.npz")
    if scenes.Nt != model["Nt"] or scenes.K > model["K_MAX"]:  # one line, before any build
        raise HILError(
            f"{hdir}/scenes.npz have K={scenes.K}, Nt={scenes.Nt}; the firmware of {gen} serves "
            f"K <= {model['K_MAX']}, Nt={model['Nt']} (prepare again: tinyrrm hil-prepare)"
        )
    out_dir = fw / (tag or "deployed")
    try:
        elf = build_firmware(target, gen, out_dir, model["prefix"], extra_cflags)
    except HILError as e:
        if port or " needs " not in str(e):
            raise
        return no_fit(target, str(e), model, scenes, hdir)
    with open_target(target, elf, port) as client:
        res = measure(client, elf, (model["weights_symbol"],))
        V, ticks = infer_scenes(client, scenes, model["cut_m"], progress=progress)
    stats = res["stats"]
    # QEMU: instructions (icount, exact); a board: core-clock cycles (SysTick runs on the core clock)
    unit = "cycles" if port else "instructions"
    per_scene = [float(tk) for tk in ticks] if port else [instructions(tk, stats) for tk in ticks]
    weights = res["elf"]["symbols"].get(model["weights_symbol"])
    if weights is None:
        raise HILError(f"{elf}: no {model['weights_symbol']} symbol: not the deployed model's firmware")
    macs = [macs_per_inference(report, int(m.sum()), scenes.K) for m in scenes.edge_mask(model["cut_m"])]
    rate = {k[2:]: float(sum_rate(scenes.H, v, scenes.noise_var, scenes.weights).mean()) for k, v in W.items()}
    target_rate = rate[f"{role}_target"] = float(sum_rate(scenes.H, V, scenes.noise_var, scenes.weights).mean())
    res.update(
        {
            "target": target,
            "board": t.board,
            "qemu_machine": t.qemu_machine if not port else None,
            "port": port,
            # what was measured: the generated model's facts (report.json)
            "model": {k: model[k] for k in ("name", "prefix", "weights_symbol", "a1", "a2", "cut_m", "tflite_sha256")},
            "firmware_elf": str(elf),
            "flash_limit_bytes": t.flash,
            "ram_limit_bytes": t.ram,
            "generator": {
                "flash_need_bytes": report["sizes"]["flash_need_bytes"],
                "ram_need_bytes": report["sizes"]["ram_need_bytes"],
                "arena_bytes": report["sizes"]["arena_bytes"],
                "weights_bytes": report["sizes"]["weights_bytes"],
                "test_vector_bytes": report["sizes"]["test_vector_bytes"],
            },
            "count_unit": unit,
            f"{unit}_per_inference": float(np.mean(per_scene)),
            f"{unit}_per_inference_each": per_scene,
            "macs_per_inference": float(np.mean(macs)),
            f"{unit}_per_mac": float(np.mean(per_scene) / np.mean(macs)),
            "generated": str(gen),
            **({"model_dir": ref["model"]["path"]} if role == "model" else {}),
            "sum_rate": rate,
            "sum_rate_ratio_vs": {
                "wmmse": target_rate / rate["wmmse"],
                **({f"{role}_fp32": target_rate / rate[f"{role}_torch"]} if f"{role}_torch" in rate else {}),
                "host_c": target_rate / rate[f"{role}_c"],
            },
            "max_abs_diff_vs_host_c": float(np.abs(V - W[f"W_{role}_c"]).max()),
            # measured: the weights the ELF holds in flash (int8 weights, int32 biases, per-channel
            # requantization); `tinyrrm size` adds 96 B of ADD/MUL constants that model.c keeps in code
            "model_bytes_in_flash": weights["size"],
            "n_scenes": scenes.N,
        }
    )
    if "mpgnn" in ref:  # the default deployment: against the original full MPGNN
        res["sum_rate_ratio"] = target_rate / rate["mpgnn_torch"]
        res["model_size_ratio"] = ref["mpgnn"]["bytes_fp32"] / weights["size"]
    res["bit_exact_fraction"] = res["bit_exact"]["equal"] / res["bit_exact"]["total"]
    if t.dsp and not port:  # the same scenes through the portable C path, for the DSP speed-up
        ins = path_instructions(target, gen, fw / "portable", scenes, "-DTR_NO_DSP=1")
        res["portable"] = {"instructions_per_inference": ins, "instructions_per_mac": ins / np.mean(macs)}
        res["portable_over_dsp"] = ins / res["instructions_per_inference"]
    if "mpgnn" not in ref:
        return res
    # the original full MPGNN, same core, large virtual flash: whole-firmware flash ratio
    orig = build_firmware(
        target, hdir / "gen_mpgnn", paths.BUILD_FW / target / "original", None, extra_cflags, big_flash=True
    )
    osz = elfsize.sizes(orig)
    res["original_firmware"] = {"elf": str(orig), "flash_bytes": osz["flash"], "ram_static_bytes": osz["ram_static"]}
    if not port:  # it runs too: its own TFLM goldens, bit-exact (a board's flash may not hold it)
        full_cut = read_report(hdir / "gen_mpgnn")["model"]["cut_m"]
        with open_target(target, orig) as c:
            n, n_exact, _ = c.vectors()
            ostats = c.stats()
            _, oticks = infer_scenes(c, scenes, full_cut, progress=progress)
        res["original_firmware"]["bit_exact"] = {"equal": n_exact, "total": n}
        res["original_firmware"]["instructions_per_inference"] = float(
            np.mean([instructions(tk, ostats) for tk in oticks])
        )
        # the yardstick: WMMSE-k as generated C on this core and these scenes, rates from the test scenes
        res["yardstick"] = yardstick.for_core(
            target,
            scenes,
            hdir,
            res["instructions_per_inference"],
            res["original_firmware"]["instructions_per_inference"],
        )
    res["flash_ratio"] = osz["flash"] / res["flash_bytes"]
    res["original_firmware_fits_board"] = osz["flash"] <= t.flash
    return res


def no_fit(target: str, why: str, model: dict, scenes, hil_dir) -> dict:
    """The run of a core the deployed model does not fit (the firmware link's "needs" line):
    that, and the WMMSE yardstick where it fits, at a smaller K when the scenes' does not
    (:func:`.yardstick.for_core`; ``fits`` False: nothing else is measured)."""
    t = T.get(target)
    return {
        "target": target,
        "board": t.board,
        "qemu_machine": t.qemu_machine,
        "fits": False,
        "why": why,
        "model": {k: model[k] for k in ("name", "prefix", "a1", "a2", "cut_m")},
        "flash_limit_bytes": t.flash,
        "ram_limit_bytes": t.ram,
        "n_scenes": scenes.N,
        "yardstick": yardstick.for_core(target, scenes, hil_dir, None, None),
    }


def save(res: dict, target: str, hil_dir=None, publish: bool = True) -> Path:
    """``build/hil/<target>/hil.json`` (the full run) and the report beside it
    (``<target>.json``, ``.md``, ``.png``); ``publish`` (what ``make hil`` and ``tinyrrm hil`` do)
    also writes the report to ``reports/hil/``. Returns the full run's path."""
    out = (Path(hil_dir) if hil_dir else paths.BUILD_HIL / target) / "hil.json"
    write_text(out, json.dumps(res, indent=2, sort_keys=True) + "\n")
    files = report_files(res, target)
    for folder in (out.parent, REPORTS) if publish else (out.parent,):
        for name, data in files.items():
            write_bytes(folder / name, data)
    return out


def report_files(res: dict, target: str) -> dict[str, bytes]:
    """``<target>.json``, ``<target>.md`` and (with matplotlib) ``<target>.png`` of one run."""
    brief = {"target": target, **summary(res)}
    files = {f"{target}.json": (json.dumps(brief, indent=2, sort_keys=True) + "\n").encode()}
    if res.get("fits") is False:  # nothing measured but the refusal and the yardstick
        try:
            if plots.has_yardstick(res):
                files[f"{target}.png"] = plots.yardstick_png(res)
        except ImportError:
            pass
        png = f"{target}.png" if f"{target}.png" in files else None
        files[f"{target}.md"] = no_fit_markdown(brief, png=png).encode()
        return files
    try:
        if "model_size_ratio" in res:  # the figure sets the size ratios beside the paper's
            files[f"{target}.png"] = plots.hil_png(res)
    except ImportError:  # the lean image may lack matplotlib: figures are the full environment's job
        pass
    files[f"{target}.md"] = markdown(brief, png=f"{target}.png" if f"{target}.png" in files else None).encode()
    return files


def summary(res: dict) -> dict:
    """The keys of ``reports/hil/<target>.json`` (the full run stays in build/hil)."""
    keys = (
        "model",
        "model_dir",
        "firmware_elf",
        "flash_bytes",
        "ram_bytes",
        "stack_peak_bytes",
        "count_unit",
        "instructions_per_inference",
        "instructions_per_mac",
        "cycles_per_inference",
        "cycles_per_mac",
        "macs_per_inference",
        "model_bytes_in_flash",
        "model_size_ratio",
        "flash_ratio",
        "sum_rate_ratio",
        "sum_rate_ratio_vs",
        "bit_exact",
        "flash_limit_bytes",
        "ram_limit_bytes",
        "qemu_machine",
        "board",
        "original_firmware",
        "n_scenes",
        "portable",
        "portable_over_dsp",
        "yardstick",
    )
    if res.get("fits") is False:
        return {k: res[k] for k in ("fits", "why", *keys) if k in res}
    out = {k: res[k] for k in keys if k in res}
    out["bit_exact"] = {"equal": res["bit_exact"]["equal"], "total": res["bit_exact"]["total"]}
    return out


#: a model of your own's sum-rate ratios, for people
_VS = {"wmmse": "WMMSE", "model_fp32": "fp32 checkpoint", "host_c": "host C"}


def no_fit_markdown(h: dict, png: str | None = None) -> str:
    """``reports/hil/<target>.md`` of a core the deployed model does not fit."""
    m = h.get("model", {})
    lines = [
        f"# {m.get('name', 'the deployed model')} on {h['target']}: does not fit",
        "",
        f"QEMU `{h['qemu_machine']}` with the limits of {h['board']} (flash {h['flash_limit_bytes']:,} B, "
        f"RAM {h['ram_limit_bytes']:,} B; `tinyrrm hil --target {h['target']}`):",
        "",
        f"    {h['why']}",
        "",
        *yardstick_markdown(h),
    ]
    if png:
        k = h["yardstick"].get("k")
        at = f" at K = {k} (the first {k} links of each scene)" if k else ""
        lines += [f"![sum rate against instructions per decision of WMMSE-k{at}]({png})", ""]
    return "\n".join(lines)


def markdown(brief: dict, png: str | None = None) -> str:
    """``reports/hil/<target>.md``: the :func:`summary` of a run (``brief``), for people."""
    h = brief
    where = f"QEMU `{h['qemu_machine']}` with `-icount shift=0`" if h.get("qemu_machine") else "a board"
    orig = h.get("original_firmware", {})
    unit = h.get("count_unit", "instructions")
    m = h.get("model", {})
    lines = [
        f"# {m.get('name', 'the deployed model')} on {h['target']}: measured",
        "",
        f"On target ({where}; `tinyrrm hil --target {h['target']}"
        f"{' --model ' + h['model_dir'] if 'model_dir' in h else ''}`), {h['board']}:",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| test vectors bit-exact with TFLM | {h['bit_exact']['equal']} / {h['bit_exact']['total']} |",
        f"| firmware flash (.text+.rodata+.data) | {h['flash_bytes']:,} B of {h['flash_limit_bytes']:,} |",
        f"| firmware RAM (.data+.bss + stack peak {h['stack_peak_bytes']:,} B) | {h['ram_bytes']:,} B of "
        f"{h['ram_limit_bytes']:,} |",
        f"| {unit} per inference ({'QEMU icount' if unit == 'instructions' else 'SysTick'}) | "
        f"{h[unit + '_per_inference']:,.0f} |",
        f"| {unit} per MAC | {h[unit + '_per_mac']:.2f} |",
        *(
            [
                f"| … portable C path (`TR_NO_DSP`): per MAC, DSP speed-up | "
                f"{h['portable']['instructions_per_mac']:.2f}, {h['portable_over_dsp']:.2f}× |"
            ]
            if "portable" in h
            else []
        ),
        *(
            [
                f"| model size ratio (fp32 original / deployed int8) | {h['model_size_ratio']:.1f}× |",
                f"| flash ratio (original firmware {orig.get('flash_bytes', 0):,} B / deployed) | "
                f"{h.get('flash_ratio', float('nan')):.1f}× |",
            ]
            if "model_size_ratio" in h
            else []
        ),
        *(
            [
                f"| original firmware's own test vectors bit-exact | {orig['bit_exact']['equal']} / "
                f"{orig['bit_exact']['total']} |"
            ]
            if "bit_exact" in orig
            else []
        ),
        *(
            [
                f"| sum rate, int8 on target / fp32 original MPGNN ({h['n_scenes']} scenes) | "
                f"{h['sum_rate_ratio']:.4f} |",
                f"| … / WMMSE, / fp32 LR-MPGNN, / host C | {h['sum_rate_ratio_vs']['wmmse']:.4f}, "
                f"{h['sum_rate_ratio_vs']['lrmpgnn_fp32']:.4f}, {h['sum_rate_ratio_vs']['host_c']:.6f} |",
            ]
            if "sum_rate_ratio" in h
            else [
                f"| sum rate, int8 on target / {' / '.join(_VS[k] for k in h['sum_rate_ratio_vs'])} "
                f"({h['n_scenes']} scenes) | {', '.join(f'{v:.4f}' for v in h['sum_rate_ratio_vs'].values())} |"
            ]
        ),
        "",
    ]
    lines += yardstick_markdown(h)
    if png:
        lines += [
            f"![flash and RAM against the board; size ratios against the paper; sum rate against "
            f"instructions beside WMMSE-k]({png})",
            "",
        ]
    return "\n".join(lines)


#: the yardstick table's names of its points
POINT_NAMES = {
    "mrt": "MRT (WMMSE-0)",
    "lrmpgnn_deployed": "deployed LR-MPGNN (int8)",
    "mpgnn_full": "full MPGNN (int8)",
}


def yardstick_markdown(h: dict) -> list[str]:
    """The report's WMMSE-k table (:mod:`.yardstick`), or nothing for a run without it."""
    y = h.get("yardstick")
    if not y:
        return []
    w, r = y["wmmse_on_target"], y["rates"]
    lines = ["## Against WMMSE on the same core", ""]
    k = y.get("k")
    if k is not None:  # the scenes' K does not fit: the yardstick at a smaller K, said everywhere
        lines += [
            f"The WMMSE policy at the scenes' K = {y['k_scenes']} does not fit: {y['refused'][str(y['k_scenes'])]}",
            "",
            f"**The yardstick here is at K = {k}**: the largest K of the ladder "
            f"{', '.join(map(str, y['ladder']))} that fits, on the first {k} links of each scene "
            f"(`H[:, :{k}, :{k}]`), both the instructions (QEMU) and the rates (host C), each rate over "
            f"WMMSE-100 at K = {k}.",
            "",
        ]
    if not w.get("fits"):
        lines += [f"WMMSE as generated C does not fit: {w['why']}", ""]
    else:
        lines += [
            f"WMMSE-k as generated C (`tinyrrm export wmmse`, K_MAX = {w['k_max']}, Nt = {w['nt']}): firmware "
            f"flash {w['flash_bytes']:,} B, RAM {w['ram_bytes']:,} B (CSI input buffer {w['csi_input_bytes']:,} B "
            f"included).",
            "",
        ]
    if not y["points"]:
        return lines
    at = "" if k is None else f" at K = {k}"
    where = (
        f"sum rate / WMMSE-100{at} on {r['n_scenes']} scenes of `{Path(r['scenes']).name}` (host C)"
        if r
        else "sum rate (run `tinyrrm hil-prepare` for the rates)"
    )
    lines += [
        f"| policy | instructions per decision{at} (QEMU, {h['n_scenes']} scenes) | {where} | "
        "instructions per iteration per pair |",
        "| --- | ---: | ---: | ---: |",
    ]
    per_pair = {f"wmmse{k}": v.get("instructions_per_iteration_per_pair") for k, v in w.get("iters", {}).items()}
    for p in y["points"]:
        ins, rate, pp = p["instructions_per_decision"], p["rate_over_wmmse100"], per_pair.get(p["policy"])
        name = POINT_NAMES.get(p["policy"], p["policy"].replace("wmmse", "WMMSE-"))
        lines.append(
            f"| {name} | {'-' if ins is None else format(ins, ',.0f')} | {'-' if rate is None else format(rate, '.4f')}"
            f" | {'-' if pp is None else format(pp, '.1f')} |"
        )
    if w.get("fits"):
        lines += [
            "",
            f"Floating-point operations per pair per iteration in the inner loops: {w['flops_per_pair_iteration']}.",
        ]
    return [*lines, ""]
