"""``generated/<target>/report.json`` and ``report.md``: what the generator knows.

Sizes, the memory plan, MACs, arenas, the fit against the board, the model's
deployment facts (prefix, edge cut, K, Nt, steps: what the HIL stage reads)
and the copied kernels with their sources' hashes; deterministic like every
generated file. Nothing measured on a target lives here: the HIL writes
``reports/hil/<target>.*`` (:mod:`tinyrrm.hil.session`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tinyrrm.paths import KERNELS, SHIPPED

#: ``report.json``'s format tag; codegen recognises a folder it wrote by it
FORMAT = "tinyrrm-codegen-report/2"


def macs_per_inference(rep: dict, edges: int, k: int) -> int:
    """MACs of one inference (all steps) with ``edges`` active edges among ``k`` links,
    from a report's ``macs`` (per active edge, per node) and ``model.steps``."""
    m = rep["macs"]
    return rep["model"]["steps"] * (edges * m["per_edge"] + k * m["per_node"])


def codegen_report(ctx, prog, manifest: dict, files: dict[str, bytes]) -> dict:
    """The report of one generation (``ctx``: a :class:`.generate.Context`)."""
    t, m, mem, L = ctx.target, ctx.model, ctx.mem, ctx.layers
    K = m.K
    layers = []
    for f in prog.fcs():
        layers.append(
            {
                "name": f.name,
                "d_in": f.d_in,
                "d_out": f.d_out,
                "weight_bytes": f.d_in * f.d_out,
                "bias_bytes": 0 if f.bias is None else 4 * f.d_out,
                "requant_bytes": 5 * f.d_out,
            }
        )
    full_edges = K * (K - 1)
    real = [int(v.edge.sum()) for v in ctx.vectors if v.name.startswith("scene")]
    mean_edges = float(np.mean(real)) if real else float(full_edges)
    per_edge, per_node = L.macs_per_edge, L.macs_per_node
    steps = m.steps
    root = SHIPPED
    kernels = [
        {
            "file": n,
            "source": (KERNELS / Path(n).name).relative_to(root).as_posix(),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for n, data in sorted(files.items())
        if n.startswith("kernels/")
    ]
    return {
        "format": FORMAT,
        "target": {
            "name": t.name,
            "cpu": t.cpu,
            "board": t.board,
            "qemu_machine": t.qemu_machine,
            "flash_bytes": t.flash,
            "ram_bytes": t.ram,
            "dsp": t.dsp,
        },
        "model": {
            "name": manifest["name"],
            "prefix": ctx.prefix,
            "K_MAX": K,
            "Nt": m.nt,
            "steps": steps,
            "low_rank": m.low_rank,
            "a1": m.a1,
            "a2": m.a2,
            "cut_m": m.cut_m,
            "weights_symbol": f"{ctx.prefix}_weights",
            "tflite_sha256": manifest["files"]["model_int8.tflite"]["sha256"],
        },
        "sizes": {
            "weights_bytes": mem.weights_bytes,
            "arena_bytes": mem.arena_bytes,
            "edge_bytes": mem.edge_bytes,
            "io_bytes": mem.io_bytes,
            "stack_bytes": mem.stack_bytes,
            "test_vector_bytes": mem.vectors_bytes,
            "flash_need_bytes": mem.flash_need,
            "ram_need_bytes": mem.ram_need,
            "code_bytes_estimate": mem.flash_need - mem.weights_bytes,
        },
        "layers": layers,
        "macs": {
            "per_edge": per_edge,
            "per_node": per_node,
            "per_step_full_graph": full_edges * per_edge + K * per_node,
            "mean_edges_real_scenes": mean_edges,
            "per_inference_real_scenes": int(round(steps * (mean_edges * per_edge + K * per_node))),
        },
        "tflm": {"arena_bytes_host": ctx.tflm_arena, "ours_over_tflm_arena": mem.arena_bytes / ctx.tflm_arena},
        "vectors": [{"name": v.name, "k": v.k, "edges": int(v.edge.sum())} for v in ctx.vectors],
        "kernels": kernels,
        "files": sorted(n for n in files if n not in ("report.json", "report.md")),
    }


def codegen_summary(rep: dict) -> str:
    """The head of report.md (title, sizes against the board), for people; from the report's JSON."""
    t, m, s = rep["target"], rep["model"], rep["sizes"]
    lines = [
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
    ]
    return "\n".join(lines)


def codegen_markdown(rep: dict, provenance: str) -> str:
    m, mac = rep["model"], rep["macs"]
    lines = [
        provenance,
        codegen_summary(rep),
        "",
        "## Layers (int8, per-channel)",
        "",
        "| layer | d_in | d_out | weights B | bias B | requant B |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for L in rep["layers"]:
        lines.append(
            f"| {L['name']} | {L['d_in']} | {L['d_out']} | {L['weight_bytes']:,} | {L['bias_bytes']:,} "
            f"| {L['requant_bytes']:,} |"
        )
    lines += [
        "",
        "## Work",
        "",
        f"MACs per active edge {mac['per_edge']:,}, per node {mac['per_node']:,}; one step on the full graph "
        f"{mac['per_step_full_graph']:,}; one inference ({m['steps']} steps) on the real scenes of the test "
        f"vectors (mean {mac['mean_edges_real_scenes']:.0f} edges): {mac['per_inference_real_scenes']:,} MACs.",
        "",
        "## Kernels",
        "",
        "Copied verbatim from the tinyrrm sources (they do not depend on the model):",
        "",
        "| file | source | sha256 |",
        "| --- | --- | --- |",
        *(f"| `{k['file']}` | `{k['source']}` | `{k['sha256'][:16]}` |" for k in rep["kernels"]),
        "",
    ]
    return "\n".join(lines)
