"""Carry cells into a grid report from an earlier report of the same recipe (``--carry``).

A cell measured by an earlier run whose job records are gone can still appear in the report:
it is taken from that run's ``paper_grid.json``, rescaled to this run's full-MPGNN reference
and marked as carried (``meta.carried``).
"""

from __future__ import annotations

import json

from tinyrrm.errors import InputError, UsageError

from .grid_report import validate_grid
from .tables import targets

#: what two grid runs must share for one's cells to be carried into the other's report
CARRY_KEYS = ("arch", "epochs", "residual", "clip_penalty", "train", "test")


def check_carry(old: dict, meta: dict, where) -> None:
    """Raise ValueError unless the grid report ``old`` (from file ``where``) was measured with the
    recipe and scene files of ``meta``, and holds a full-MPGNN reference rate to rescale by."""
    try:
        validate_grid(old, str(where))
    except ValueError as e:
        raise InputError(f"--carry {where}: {e}") from None
    om = old.get("meta") or {}
    for k in CARRY_KEYS:
        if om.get(k) != meta.get(k):
            raise InputError(
                f"--carry {where}: its cells come from another grid run ({k} {om.get(k)!r} there, {meta.get(k)!r} here)"
            )
    rate = om.get("full_mpgnn_test_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise InputError(f"--carry {where}: meta.full_mpgnn_test_rate must be a positive number, got {rate!r}")


def carry(grid: dict, old: dict, where, arch: str = "paper") -> dict:
    """``grid`` with every cell it has not measured taken from the earlier report ``old``.

    A carried cell's mean and spread are rescaled from ``old``'s full-MPGNN reference to this
    grid's (ratios over one reference scale by one factor), its seed count is kept, and the
    report's ``meta.carried`` names the cells, the file and the reference they came with; the
    targets are judged again over measured and carried cells together. ``check_carry`` first.
    """
    g = json.loads(json.dumps(grid))  # a copy
    sr, osr = g["sum_rate_ratio"], old["sum_rate_ratio"]
    old_rate, new_rate = old["meta"]["full_mpgnn_test_rate"], g["meta"]["full_mpgnn_test_rate"]
    if new_rate is None:
        raise UsageError("--carry needs this run's full-MPGNN reference: nothing to rescale to")
    scale = old_rate / new_rate
    o_std, o_n = osr.get("std"), osr.get("n_seeds")
    cells = []
    for i, a1 in enumerate(sr["a1"]):
        for j, a2 in enumerate(sr["a2"]):
            if sr["rows"][i][j] is not None or a1 not in osr["a1"] or a2 not in osr["a2"]:
                continue
            oi, oj = osr["a1"].index(a1), osr["a2"].index(a2)
            mean = osr["rows"][oi][oj]
            if mean is None:
                continue
            sd = o_std[oi][oj] if o_std else None
            sr["rows"][i][j] = round(mean * scale, 4)
            sr["std"][i][j] = None if sd is None else round(sd * scale, 4)
            sr["n_seeds"][i][j] = (o_n[oi][oj] if o_n else None) or 1
            cells.append([a1, a2])
    before = old["meta"].get("carried") or {}
    g["meta"]["carried"] = {
        "from": str(where),
        "full_mpgnn_test_rate": old_rate,
        "cells": cells,
        **({"carried_before_from": before.get("from")} if before else {}),
    }
    g["targets"] = targets(sr["rows"], sr["a1"], sr["a2"], arch)
    return g
