"""The rank grid's two tables in the schema of ``reference/paper_tables.json``.

* ``model_size_ratio`` = fp32 bytes of the full MPGNN / fp32 bytes of the
  LR-MPGNN (analytic: it only depends on the widths and ranks);
* ``sum_rate_ratio``   = mean test sum rate of the LR-MPGNN / of the full
  MPGNN trained with the same recipe; mean and spread over seeds.

Beside them, ``targets``: which measured cells meet the sum-rate targets, and
which cell the deployment rule picks.
"""

from __future__ import annotations

import statistics

import torch

from tinyrrm.errors import InputError
from tinyrrm.training.models import MPGNN, ModelConfig, model_bytes

#: the paper's ranks: a1 of the message network, a2 of the update network
A1 = (4, 16, 32, 64)
A2 = (4, 16, 32, 64, 128, 256, 512)


def size_ratios(arch: str, a1s=A1, a2s=A2, dtype: str = "fp32") -> list[list[float]]:
    """fp32 bytes of the full MPGNN / ``dtype`` bytes of each LR-MPGNN: analytic, no training needed."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        full = model_bytes(MPGNN(ModelConfig(arch=arch)))
        return [
            [round(full / model_bytes(MPGNN(ModelConfig(arch=arch, a1=a1, a2=a2)), dtype), 4) for a2 in a2s]
            for a1 in a1s
        ]


#: the targets for the sum-rate ratio, and the deployment rule (docs/DESIGN-NOTES.md §6)
TARGET_WIDE = 0.97  # every cell with a1, a2 >= 16
TARGET_4_4 = 0.95
DEPLOY_SHRINK = 60  # int8 LR-MPGNN at least this many times smaller than the fp32 full MPGNN


def targets(mean: list[list[float | None]], a1s=A1, a2s=A2, arch: str = "paper") -> dict:
    """Which measured cells meet the targets, and which cell the deployment rule picks."""
    cells = {(a1, a2): mean[i][j] for i, a1 in enumerate(a1s) for j, a2 in enumerate(a2s)}
    wide = {c: v for c, v in cells.items() if min(c) >= 16}
    measured = {c: v for c, v in wide.items() if v is not None}
    shrink = size_ratios(arch, a1s, a2s, "int8")
    cand = [
        {"a1": a1, "a2": a2, "int8_shrink": shrink[i][j], "sum_rate_ratio": cells[(a1, a2)]}
        for i, a1 in enumerate(a1s)
        for j, a2 in enumerate(a2s)
        if shrink[i][j] >= DEPLOY_SHRINK
    ]
    scored = [c for c in cand if c["sum_rate_ratio"] is not None]
    best = max(scored, key=lambda c: c["sum_rate_ratio"]) if scored else None
    r44 = cells.get((4, 4))
    return {
        "a1_a2_ge_16": {
            "threshold": TARGET_WIDE,
            "cells": len(wide),
            "measured": len(measured),
            "passing": sum(v >= TARGET_WIDE for v in measured.values()),
            "failing": [[a1, a2, v] for (a1, a2), v in sorted(measured.items()) if v < TARGET_WIDE],
        },
        "a1_4_a2_4": {"threshold": TARGET_4_4, "ratio": r44, "pass": None if r44 is None else r44 >= TARGET_4_4},
        "deployment": {
            "rule": f"int8 bytes at least {DEPLOY_SHRINK}x below the fp32 full MPGNN, best sum rate",
            "candidates": cand,
            "all_measured": len(scored) == len(cand),
            "best": None if best is None else [best["a1"], best["a2"]],
        },
    }


def assemble(results: list[dict], a1s=A1, a2s=A2, meta: dict | None = None, arch: str = "paper") -> dict:
    """Fold cell results into the ``paper_tables.json`` schema (``None`` = not measured).

    With no results at all, only the (analytic) size table is filled.
    """
    full = [r for r in results if r["a1"] is None]
    if results and not full:
        raise InputError("grid results hold no full-MPGNN reference")
    full_rate = statistics.fmean(r["test_rate"] for r in full) if full else None
    size, mean, std, count = size_ratios(arch, a1s, a2s), [], [], []
    for a1 in a1s:
        mrow, drow, crow = [], [], []
        for a2 in a2s:
            cell = [r for r in results if r["a1"] == a1 and r["a2"] == a2]
            if not cell:
                mrow.append(None), drow.append(None), crow.append(0)
                continue
            ratios = [r["test_rate"] / full_rate for r in cell]
            mrow.append(round(statistics.fmean(ratios), 4))
            drow.append(round(statistics.stdev(ratios), 4) if len(ratios) > 1 else None)
            crow.append(len(ratios))
        mean.append(mrow), std.append(drow), count.append(crow)
    return {
        "model_size_ratio": {
            "meaning": "original MPGNN size / LR-MPGNN size (fp32 bytes)",
            "a1": list(a1s),
            "a2": list(a2s),
            "rows": size,
        },
        "sum_rate_ratio": {
            "meaning": "LR-MPGNN sum rate / original MPGNN sum rate on the test set",
            "a1": list(a1s),
            "a2": list(a2s),
            "rows": mean,
            "std": std,
            "n_seeds": count,
        },
        "targets": targets(mean, a1s, a2s, arch) if results else None,
        "meta": {"full_mpgnn_test_rate": full_rate, **(meta or {})},
    }
