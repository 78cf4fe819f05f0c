"""Report of the measured rank grid against the paper's rank tables.

The measured grid (what ``reports/paper_grid.json`` holds) and the paper's
tables (``paper_tables.json``) share one schema per table::

    {"meaning": str, "a1": [int, ...], "a2": [int, ...],
     "rows": [[float | None, ...] per a1],
     "std": [[float | None, ...]] (optional), "n_seeds": [[int | None, ...]] (optional)}

for the two tables ``model_size_ratio`` and ``sum_rate_ratio``; ``None`` is a
cell that was not measured.  Cells are matched by their (a1, a2) *values*, so
the two sides may have different rank lists (the paper's size table has no
a2=512).

:func:`write_grid_report` writes, deterministically (same input, byte-identical
files) and atomically:

* ``<stem>.csv``          long format ``table,a1,a2,ours,ours_std,paper,rel_diff``;
* ``<stem>.md``           one markdown table per metric, cells ``ours (paper)``;
* ``<stem>_size.png``     heatmaps ours | paper of the model-size ratio;
* ``<stem>_sumrate.png``  the same for the sum-rate ratio.

Run as ``python -m tinyrrm.experiments.grid_report GRID.json --paper PAPER.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from tinyrrm.errors import InputError, UsageError
from tinyrrm.training.fileio import write_bytes

__all__ = ["TABLES", "max_rel_diff", "validate_grid", "write_grid_report"]

# table key -> (short name used in file names, title, decimals shown)
TABLES: dict[str, tuple[str, str, int]] = {
    "model_size_ratio": ("size", "Model size ratio", 2),
    "sum_rate_ratio": ("sumrate", "Sum-rate ratio", 3),
}

_MISSING = "\u2013"  # en dash


# --------------------------------------------------------------------------- #
# schema
# --------------------------------------------------------------------------- #
def _check_ranks(values: Any, where: str) -> list[int]:
    if not isinstance(values, list) or not values:
        raise InputError(f"{where} must be a non-empty list of ints, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise InputError(f"{where} must contain ints, got {v!r}")
        if v <= 0:
            raise InputError(f"{where} must contain positive ranks, got {v!r}")
        out.append(v)
    if len(set(out)) != len(out):
        raise InputError(f"{where} contains duplicate values: {out!r}")
    return out


def _check_matrix(m: Any, n_rows: int, n_cols: int, where: str, kind: str) -> list[list]:
    """Check a list of lists of shape (n_rows, n_cols); kind 'float' or 'int'."""
    if not isinstance(m, list) or len(m) != n_rows:
        got = len(m) if isinstance(m, list) else type(m).__name__
        raise InputError(f"{where} must have one row per a1 value ({n_rows}), got {got}")
    for i, row in enumerate(m):
        if not isinstance(row, list) or len(row) != n_cols:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise InputError(f"{where}[{i}] must have one entry per a2 value ({n_cols}), got {got}")
        for j, v in enumerate(row):
            if v is None:
                continue
            if kind == "int":
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
            else:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok:
                raise InputError(
                    f"{where}[{i}][{j}] must be a finite "
                    f"{'non-negative int' if kind == 'int' else 'number'} or null, got {v!r}"
                )
            if kind == "float" and where.endswith(".std") and v < 0:
                raise InputError(f"{where}[{i}][{j}] must be >= 0, got {v!r}")
    return m


def _check_table(table: Any, where: str) -> dict:
    if not isinstance(table, dict):
        raise InputError(f"{where} must be an object, got {type(table).__name__}")
    for key in ("a1", "a2", "rows"):
        if key not in table:
            raise InputError(f"{where} is missing the key {key!r}")
    a1 = _check_ranks(table["a1"], f"{where}.a1")
    a2 = _check_ranks(table["a2"], f"{where}.a2")
    _check_matrix(table["rows"], len(a1), len(a2), f"{where}.rows", "float")
    if table.get("std") is not None:
        _check_matrix(table["std"], len(a1), len(a2), f"{where}.std", "float")
    if table.get("n_seeds") is not None:
        _check_matrix(table["n_seeds"], len(a1), len(a2), f"{where}.n_seeds", "int")
    return table


def validate_grid(grid: Any, name: str = "grid") -> dict:
    """Raise ValueError unless ``grid`` holds both tables in the rank-grid schema."""
    if not isinstance(grid, dict):
        raise InputError(f"{name} must be a dict, got {type(grid).__name__}")
    for key in TABLES:
        if key not in grid:
            raise InputError(f"{name} is missing the table {key!r}")
        _check_table(grid[key], f"{name}.{key}")
    if "meta" in grid and not isinstance(grid["meta"], dict):
        raise InputError(f"{name}.meta must be an object")
    return grid


# --------------------------------------------------------------------------- #
# cell access
# --------------------------------------------------------------------------- #
def _cells(table: dict, key: str = "rows") -> dict[tuple[int, int], Any]:
    m = table.get(key)
    if m is None:
        return {}
    return {
        (r1, r2): m[i][j] for i, r1 in enumerate(table["a1"]) for j, r2 in enumerate(table["a2"]) if m[i][j] is not None
    }


def _rel_diffs(ours: dict, paper: dict) -> dict[tuple[int, int], float]:
    o, p = _cells(ours), _cells(paper)
    return {k: o[k] / p[k] - 1.0 for k in sorted(o.keys() & p.keys()) if p[k] != 0}


def max_rel_diff(grid_table: dict, paper_table: dict) -> float | None:
    """max |ours/paper - 1| over the cells both tables have (matched by a1/a2 values).

    Returns None when there is no common cell.
    """
    _check_table(grid_table, "grid_table")
    _check_table(paper_table, "paper_table")
    d = _rel_diffs(grid_table, paper_table)
    return max((abs(v) for v in d.values()), default=None)


def _axes(ours: dict, paper: dict) -> tuple[list[int], list[int]]:
    return (sorted(set(ours["a1"]) | set(paper["a1"])), sorted(set(ours["a2"]) | set(paper["a2"])))


# --------------------------------------------------------------------------- #
# writers
# --------------------------------------------------------------------------- #
def _num(v: Any) -> str:
    return "" if v is None else repr(float(v))


def _csv_text(grid: dict, paper: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "a1", "a2", "ours", "ours_std", "paper", "rel_diff"])
    for key in TABLES:
        o_t, p_t = grid[key], paper[key]
        ours, std, pap = _cells(o_t), _cells(o_t, "std"), _cells(p_t)
        rd = _rel_diffs(o_t, p_t)
        a1s, a2s = _axes(o_t, p_t)
        for r1 in a1s:
            for r2 in a2s:
                k = (r1, r2)
                w.writerow(
                    [
                        key,
                        r1,
                        r2,
                        _num(ours.get(k)),
                        _num(std.get(k)) if k in ours else "",
                        _num(pap.get(k)),
                        f"{rd[k]:.6g}" if k in rd else "",
                    ]
                )
    return buf.getvalue()


def _md_cell(o, s, p, dec: int) -> str:
    mine = _MISSING if o is None else f"{o:.{dec}f}"
    if o is not None and s is not None:
        mine += f"\u00b1{s:.{dec}f}"
    if o is None and p is None:
        return _MISSING
    return f"{mine} ({_MISSING if p is None else f'{p:.{dec}f}'})"


def _fmt_meta(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def _md_text(grid: dict, paper: dict) -> str:
    out = ["# Rank grid: ours vs paper", ""]
    meta = grid.get("meta") or {}
    if meta:
        out += ["Setup: " + "; ".join(f"{k}={_fmt_meta(v)}" for k, v in meta.items() if k != "carried"), ""]
    for key, (_, title, dec) in TABLES.items():
        o_t, p_t = grid[key], paper[key]
        ours, std, pap = _cells(o_t), _cells(o_t, "std"), _cells(p_t)
        a1s, a2s = _axes(o_t, p_t)
        meaning = o_t.get("meaning") or p_t.get("meaning") or ""
        out.append(f"## {title}" + (f" ({meaning})" if meaning else ""))
        out.append("")
        out.append("| a1 \\ a2 | " + " | ".join(str(r) for r in a2s) + " |")
        out.append("|---:|" + "---:|" * len(a2s))
        for r1 in a1s:
            cells = [_md_cell(ours.get((r1, r2)), std.get((r1, r2)), pap.get((r1, r2)), dec) for r2 in a2s]
            out.append(f"| **{r1}** | " + " | ".join(cells) + " |")
        out.append("")
        n_meas = len(ours)
        n_total = sum(1 for r1 in o_t["a1"] for r2 in o_t["a2"])
        rd = _rel_diffs(o_t, p_t)
        if key == "model_size_ratio":
            if rd:
                (w1, w2), worst = max(rd.items(), key=lambda kv: (abs(kv[1]), kv[0]))
                out.append(
                    f"Max |ours/paper \u2212 1| over the {len(rd)} cells both have: "
                    f"{abs(worst):.2%} (at a1={w1}, a2={w2})."
                )
            else:
                out.append("Max |ours/paper \u2212 1|: no cell measured on both sides.")
        out.append(f"Measured cells: {n_meas}/{n_total}.")
        ns = [v for v in _cells(o_t, "n_seeds").values() if v]  # 0: not measured
        if ns:
            lo, hi = min(ns), max(ns)
            out.append(f"Seeds per cell: {lo}" + (f"\u2013{hi}" if hi != lo else "") + ".")
        carried = meta.get("carried") if key == "sum_rate_ratio" else None
        if carried and carried.get("cells"):
            out.append(
                f"Carried from `{carried['from']}` (measured by an earlier run of the same recipe, "
                f"rescaled from its full-MPGNN reference {carried['full_mpgnn_test_rate']:.4f} to this "
                f"run's): {len(carried['cells'])} cells, "
                + ", ".join(f"({a1}, {a2})" for a1, a2 in carried["cells"])
                + "."
            )
        out.append("")
    out += _md_targets(grid.get("targets"))
    out += [
        "Legend: rows are a1 (rank of the message network), columns a2 (rank of the "
        "update network); each cell is `ours (paper)`, `ours\u00b1std` when the spread "
        f"over seeds is known; `{_MISSING}` = not measured / not in the paper.",
        "",
    ]
    return "\n".join(out)


def _md_targets(t: dict | None) -> list[str]:
    """The targets section: which measured cells pass, and the deployment rule's pick."""
    if not t:
        return []
    wide, c44, dep = t["a1_a2_ge_16"], t["a1_4_a2_4"], t["deployment"]
    out = ["## Targets", ""]
    line = (
        f"- Sum-rate ratio \u2265 {wide['threshold']} in every cell with a1, a2 \u2265 16: "
        f"{wide['passing']}/{wide['measured']} measured cells pass ({wide['cells']} cells in all)"
    )
    fails = ", ".join(f"({a1}, {a2}) {v:.3f}" for a1, a2, v in wide["failing"])
    out.append(line + (f"; below: {fails}." if fails else "."))
    r = c44["ratio"]
    verdict = "not measured" if r is None else f"{r:.3f}, " + ("met" if c44["pass"] else "missed")
    out.append(f"- Sum-rate ratio \u2265 {c44['threshold']} at (4, 4): {verdict}.")
    cands = ", ".join(
        f"({c['a1']}, {c['a2']}) {c['int8_shrink']:.0f}\u00d7 "
        + (_MISSING if c["sum_rate_ratio"] is None else f"{c['sum_rate_ratio']:.3f}")
        for c in dep["candidates"]
    )
    best = dep["best"]
    pick = (_MISSING if best is None else f"({best[0]}, {best[1]})") + (
        "" if dep["all_measured"] else " among the measured candidates"
    )
    out.append(f"- Deployment ({dep['rule']}): candidates {cands or 'none'}; pick {pick}.")
    out.append("")
    return out


def _png_bytes(key: str, grid: dict, paper: dict) -> bytes:
    _, title, dec = TABLES[key]
    o_t, p_t = grid[key], paper[key]
    a1s, a2s = _axes(o_t, p_t)
    panels = [("ours", _cells(o_t)), ("paper", _cells(p_t))]
    mats = []
    for _, cells in panels:
        m = np.full((len(a1s), len(a2s)), np.nan)
        for (r1, r2), v in cells.items():
            m[a1s.index(r1), a2s.index(r2)] = v
        mats.append(np.ma.masked_invalid(m))
    vals = np.concatenate([m.compressed() for m in mats])
    if vals.size:
        vmin, vmax = float(vals.min()), float(vals.max())
    else:
        vmin, vmax = 0.0, 1.0
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    # size ratios span ~1.4x..60x: a log scale keeps the small ones readable
    norm = LogNorm(vmin, vmax) if key == "model_size_ratio" and vmin > 0 else Normalize(vmin, vmax)
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#d9d9d9")

    with mpl.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        fig = Figure(figsize=(1.0 + 1.45 * len(a2s), 0.9 + 0.55 * len(a1s)), layout="constrained")
        FigureCanvasAgg(fig)
        axs = fig.subplots(1, 2, sharey=True)
        im = None
        for ax, (label, _), m in zip(axs, panels, mats):
            im = ax.imshow(m, cmap=cmap, norm=norm, aspect="auto")
            ax.set_title(label)
            ax.set_xticks(range(len(a2s)), [str(r) for r in a2s])
            ax.set_yticks(range(len(a1s)), [str(r) for r in a1s])
            ax.set_xlabel("a2 (update-net rank)")
            ax.set_xticks(np.arange(-0.5, len(a2s)), minor=True)
            ax.set_yticks(np.arange(-0.5, len(a1s)), minor=True)
            ax.grid(which="minor", color="white", linewidth=1.5)
            ax.tick_params(which="minor", length=0)
            for i in range(len(a1s)):
                for j in range(len(a2s)):
                    v = m[i, j]
                    if np.ma.is_masked(v):
                        ax.text(j, i, _MISSING, ha="center", va="center", color="#7f7f7f")
                        continue
                    r, g, b, _ = cmap(norm(float(v)))
                    light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
                    ax.text(j, i, f"{float(v):.{dec}f}", ha="center", va="center", color="black" if light else "white")
        axs[0].set_ylabel("a1 (message-net rank)")
        cbar = fig.colorbar(im, ax=list(axs), shrink=0.9, pad=0.02)
        cbar.set_label("ratio (log scale)" if isinstance(norm, LogNorm) else "ratio")
        meaning = o_t.get("meaning") or p_t.get("meaning") or ""
        fig.suptitle(title + (f": {meaning}" if meaning else ""))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def write_grid_report(grid: dict, paper: dict, out_dir, stem: str = "paper_grid") -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md``, ``<stem>_size.png``, ``<stem>_sumrate.png``.

    Returns the written paths in that order.  Raises ValueError if ``grid`` or
    ``paper`` does not follow the rank-grid schema.
    """
    validate_grid(grid, "grid")
    validate_grid(paper, "paper")
    if not stem or os.sep in stem or (os.altsep and os.altsep in stem):
        raise UsageError(f"stem must be a plain file-name stem, got {stem!r}")
    out_dir = Path(out_dir)
    # render everything first, so a failure leaves no half-written report
    payloads = [
        (out_dir / f"{stem}.csv", _csv_text(grid, paper).encode("utf-8")),
        (out_dir / f"{stem}.md", _md_text(grid, paper).encode("utf-8")),
    ]
    for key, (short, _, _) in TABLES.items():
        payloads.append((out_dir / f"{stem}_{short}.png", _png_bytes(key, grid, paper)))
    return [write_bytes(p, data) for p, data in payloads]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", type=Path, help="measured grid JSON (e.g. reports/paper_grid.json)")
    ap.add_argument("--paper", type=Path, required=True, help="paper_tables.json")
    ap.add_argument("--out-dir", type=Path, default=None, help="output folder (default: the grid's folder)")
    ap.add_argument("--stem", default=None, help="file stem (default: the grid's stem)")
    a = ap.parse_args(argv)
    grid = json.loads(a.grid.read_text(encoding="utf-8"))
    paper = json.loads(a.paper.read_text(encoding="utf-8"))
    paths = write_grid_report(grid, paper, a.out_dir or a.grid.parent, a.stem or a.grid.stem)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
