"""``generated/<target>/report.json`` and ``report.md``.

Code generation writes the static part (sizes, MACs, arenas, fit against
the board), deterministic like every generated file. Measured figures
(host instructions from callgrind, later the on-target figures of the HIL
stage) are merged in under ``"measured"`` by the commands that measure
them (:func:`merge_measured`); the regeneration test compares the static
part only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyrrm.training.fileio import write_text

STATIC_KEYS = ("format", "target", "model", "sizes", "layers", "macs", "tflm", "vectors", "files")


def macs_per_inference(rep: dict, edges: int, k: int) -> int:
    """MACs of one inference (all steps) with ``edges`` active edges among ``k`` links,
    from a report's ``macs`` (per active edge, per node) and ``model.steps``."""
    m = rep["macs"]
    return rep["model"]["steps"] * (edges * m["per_edge"] + k * m["per_node"])


def codegen_report(ctx: dict, prog, manifest: dict, files: dict[str, bytes]) -> dict:
    t = ctx["target"]
    K = ctx["K"]
    layers = []
    for f in prog.fcs():
        layers.append({"name": f.name, "d_in": f.d_in, "d_out": f.d_out, "weight_bytes": f.d_in * f.d_out,
                       "bias_bytes": 0 if f.bias is None else 4 * f.d_out, "requant_bytes": 5 * f.d_out})
    full_edges = K * (K - 1)
    real = [int(v.edge.sum()) for v in ctx["vectors"] if v.name.startswith("scene")]
    mean_edges = float(np.mean(real)) if real else float(full_edges)
    per_edge, per_node = ctx["macs"]["per_edge"], ctx["macs"]["per_node"]
    steps = ctx["steps"]
    return {
        "format": "tinyrrm-codegen-report/1",
        "target": {"name": t.name, "cpu": t.cpu, "board": t.board, "qemu_machine": t.qemu_machine,
                   "flash_bytes": t.flash, "ram_bytes": t.ram, "dsp": t.dsp},
        "model": {"name": manifest["name"], "prefix": ctx["prefix"], "K_MAX": K, "Nt": ctx["NT"], "steps": steps,
                  "low_rank": ctx["low_rank"], "tflite_sha256": manifest["files"]["model_int8.tflite"]["sha256"]},
        "sizes": {"weights_bytes": ctx["weights_bytes"], "arena_bytes": ctx["arena_bytes"],
                  "io_bytes": ctx["io_bytes"], "stack_bytes": ctx["stack_bytes"], "test_vector_bytes": ctx["vectors_bytes"],
                  "flash_need_bytes": ctx["flash_need"], "ram_need_bytes": ctx["ram_need"],
                  "code_bytes_estimate": ctx["flash_need"] - ctx["weights_bytes"]},
        "layers": layers,
        "macs": {"per_edge": per_edge, "per_node": per_node,
                 "per_step_full_graph": full_edges * per_edge + K * per_node,
                 "mean_edges_real_scenes": mean_edges,
                 "per_inference_real_scenes": int(round(steps * (mean_edges * per_edge + K * per_node)))},
        "tflm": {"arena_bytes_host": ctx["tflm_arena"],
                 "ours_over_tflm_arena": ctx["arena_bytes"] / ctx["tflm_arena"]},
        "vectors": [{"name": v.name, "k": v.k, "edges": int(v.edge.sum())} for v in ctx["vectors"]],
        "files": sorted(n for n in files if n not in ("report.json", "report.md")),
    }


def codegen_markdown(rep: dict, provenance: str) -> str:
    t, m, s, mac = rep["target"], rep["model"], rep["sizes"], rep["macs"]
    lines = [
        provenance,
        f"# {m['name']} on {t['name']}",
        "",
        f"Reference board: {t['board']} — flash {t['flash_bytes']:,} B, RAM {t['ram_bytes']:,} B"
        f" (QEMU machine `{t['qemu_machine']}`, DSP path: {'yes' if t['dsp'] else 'no'}).",
        "",
        "| | bytes | board limit |",
        "| --- | ---: | ---: |",
        f"| weights in flash (`{m['prefix']}_weights`) | {s['weights_bytes']:,} | |",
        f"| flash needed (weights + code estimate) | {s['flash_need_bytes']:,} | {t['flash_bytes']:,} |",
        f"| static arena (`{m['prefix'].upper()}_ARENA_BYTES`) | {s['arena_bytes']:,} | |",
        f"| input + output structs | {s['io_bytes']:,} | |",
        f"| RAM needed (arena + I/O + {s['stack_bytes'] // 1024} KB stack) | {s['ram_need_bytes']:,} "
        f"| {t['ram_bytes']:,} |",
        f"| TFLite Micro arena, same model (host) | {rep['tflm']['arena_bytes_host']:,} | |",
        f"| test vectors (flash, test builds) | {s['test_vector_bytes']:,} | |",
        "",
        f"Our arena is {rep['tflm']['ours_over_tflm_arena']:.4f}× TFLM's: messages are streamed per receiver "
        "and their max is taken on int32 accumulators, so no `[K, K, width]` tensor exists.",
        "",
        "## Layers (int8, per-channel)",
        "",
        "| layer | d_in | d_out | weights B | bias B | requant B |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for L in rep["layers"]:
        lines.append(f"| {L['name']} | {L['d_in']} | {L['d_out']} | {L['weight_bytes']:,} | {L['bias_bytes']:,} "
                     f"| {L['requant_bytes']:,} |")
    lines += [
        "",
        "## Work",
        "",
        f"MACs per active edge {mac['per_edge']:,}, per node {mac['per_node']:,}; one step on the full graph "
        f"{mac['per_step_full_graph']:,}; one inference ({m['steps']} steps) on the real scenes of the test "
        f"vectors (mean {mac['mean_edges_real_scenes']:.0f} edges): {mac['per_inference_real_scenes']:,} MACs.",
        "",
    ]
    meas = rep.get("measured")
    if meas:
        lines += ["## Measured", ""]
        h = meas.get("hil")
        if h:
            where = f"QEMU `{h['qemu_machine']}` with `-icount shift=0`" if h.get("qemu_machine") else "a board"
            orig = h.get("original_firmware", {})
            unit = h.get("count_unit", "instructions")
            lines += [
                f"On target ({where}; `tinyrrm hil --target {rep['target']['name']}`):",
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
                *([f"| … portable C path (`TR_NO_DSP`): per MAC, DSP speed-up | "
                   f"{h['portable']['instructions_per_mac']:.2f}, {h['portable_over_dsp']:.2f}× |"]
                  if "portable" in h else []),
                f"| model size ratio (fp32 original / deployed int8) | {h['model_size_ratio']:.1f}× |",
                f"| flash ratio (original firmware {orig.get('flash_bytes', 0):,} B / deployed) | "
                f"{h.get('flash_ratio', float('nan')):.1f}× |",
                *([f"| original firmware's own test vectors bit-exact | {orig['bit_exact']['equal']} / "
                   f"{orig['bit_exact']['total']} |"] if "bit_exact" in orig else []),
                f"| sum rate, int8 on target / fp32 original MPGNN ({h['n_scenes']} scenes) | "
                f"{h['sum_rate_ratio']:.4f} |",
                f"| … / WMMSE, / fp32 LR-MPGNN, / host C | {h['sum_rate_ratio_vs']['wmmse']:.4f}, "
                f"{h['sum_rate_ratio_vs']['lrmpgnn_fp32']:.4f}, {h['sum_rate_ratio_vs']['host_c']:.6f} |",
                "",
                "![flash and RAM against the board; size ratios against the paper](report_hil.png)",
                "",
            ]
        rest = {k: v for k, v in meas.items() if k != "hil"}
        if rest:
            lines += ["```json", json.dumps(rest, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def merge_measured(gen_dir, key: str, figures: dict) -> dict:
    """Add ``figures`` under ``measured[key]`` of ``gen_dir/report.json`` and re-render report.md."""
    gen_dir = Path(gen_dir)
    rep = json.loads((gen_dir / "report.json").read_text())
    rep.setdefault("measured", {})[key] = figures
    write_text(gen_dir / "report.json", json.dumps(rep, indent=2, sort_keys=True) + "\n")
    md = (gen_dir / "report.md").read_text()
    prov = md.split("-->", 1)[0] + "-->"
    write_text(gen_dir / "report.md", codegen_markdown(rep, prov))
    return rep
