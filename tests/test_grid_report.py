"""Tests for tinyrrm.experiments.grid_report (fast: one tiny grid, a few PNGs)."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from tinyrrm.experiments.grid_report import max_rel_diff, write_grid_report

ROOT = Path(__file__).resolve().parents[1]
PAPER_JSON = ROOT / "reference/paper_tables.json"


def _paper() -> dict:
    """A small paper-like table pair; the size table has no a2=512."""
    return {
        "model_size_ratio": {
            "meaning": "original / LR size",
            "a1": [4, 16],
            "a2": [4, 16],
            "rows": [[58.82, 22.42], [25.87, 15.10]],
        },
        "sum_rate_ratio": {
            "meaning": "LR / original sum rate",
            "a1": [4, 16],
            "a2": [4, 16, 512],
            "rows": [[0.762, 0.819, 0.765], [0.971, 0.603, 0.819]],
        },
    }


def _grid() -> dict:
    return {
        "model_size_ratio": {
            "meaning": "original / LR size",
            "a1": [4, 16],
            "a2": [4, 16, 512],
            "rows": [[57.31, None, 0.9], [25.0, 15.10, None]],
        },
        "sum_rate_ratio": {
            "meaning": "LR / original sum rate",
            "a1": [4, 16],
            "a2": [4, 16, 512],
            "rows": [[0.80, None, 0.70], [0.95, 0.61, None]],
            "std": [[0.02, None, 0.05], [0.01, 0.03, None]],
            "n_seeds": [[3, 0, 2], [3, 3, 0]],
        },
        "meta": {"K": 50, "Nt": 1, "epochs": 2, "widths": [32, 32]},
    }


def _read_csv(path: Path) -> dict[tuple[str, int, int], dict]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {(r["table"], int(r["a1"]), int(r["a2"])): r for r in rows}


def test_report_files_and_contents(tmp_path):
    out = tmp_path / "nested" / "reports"  # parent dirs are created
    paths = write_grid_report(_grid(), _paper(), out)
    names = [p.name for p in paths]
    assert names == ["paper_grid.csv", "paper_grid.md", "paper_grid_size.png", "paper_grid_sumrate.png"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0
    for p in paths[2:]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    rows = _read_csv(paths[0])
    # union of a1 x a2 for both tables: 2*3 + 2*3
    assert len(rows) == 12
    r = rows[("model_size_ratio", 4, 4)]
    assert float(r["ours"]) == 57.31 and float(r["paper"]) == 58.82
    assert r["ours_std"] == ""
    assert float(r["rel_diff"]) == pytest.approx(57.31 / 58.82 - 1, rel=1e-5)
    r = rows[("model_size_ratio", 4, 16)]  # ours missing
    assert r["ours"] == "" and float(r["paper"]) == 22.42 and r["rel_diff"] == ""
    r = rows[("model_size_ratio", 4, 512)]  # paper missing
    assert float(r["ours"]) == 0.9 and r["paper"] == "" and r["rel_diff"] == ""
    r = rows[("model_size_ratio", 16, 512)]  # both missing
    assert (r["ours"], r["paper"], r["rel_diff"]) == ("", "", "")
    r = rows[("sum_rate_ratio", 16, 16)]
    assert float(r["ours"]) == 0.61 and float(r["ours_std"]) == 0.03
    assert float(r["paper"]) == 0.603

    md = paths[1].read_text(encoding="utf-8")
    assert "57.31 (58.82)" in md
    assert "(58.82)" in md
    assert "\u2013 (22.42)" in md  # ours missing
    assert "0.800\u00b10.020 (0.762)" in md  # std shown
    assert "Max |ours/paper" in md and "3.36% (at a1=16, a2=4)" in md
    assert md.count("## ") == 2 and "Legend" in md


@pytest.mark.slow
def test_deterministic(tmp_path):
    a = write_grid_report(_grid(), _paper(), tmp_path / "a", stem="g")
    b = write_grid_report(copy.deepcopy(_grid()), _paper(), tmp_path / "b", stem="g")
    for pa, pb in zip(a, b):
        assert pa.name == pb.name
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    # rewriting in place also gives the same bytes
    c = write_grid_report(_grid(), _paper(), tmp_path / "a", stem="g")
    for pa, pc in zip(a, c):
        assert pa.read_bytes() == pc.read_bytes()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda g: g["model_size_ratio"]["rows"].pop(), "one row per a1"),
        (lambda g: g["sum_rate_ratio"]["rows"][1].append(0.5), "one entry per a2"),
        (lambda g: g.pop("sum_rate_ratio"), "missing the table"),
        (lambda g: g["model_size_ratio"].pop("a2"), "missing the key"),
        (lambda g: g["sum_rate_ratio"]["std"].pop(), r"\.std"),
        (lambda g: g["model_size_ratio"]["rows"][0].__setitem__(0, "x"), "finite number"),
        (lambda g: g["model_size_ratio"]["a1"].__setitem__(1, 4), "duplicate"),
    ],
)
def test_schema_errors(tmp_path, mutate, match):
    g = _grid()
    mutate(g)
    with pytest.raises(ValueError, match=match):
        write_grid_report(g, _paper(), tmp_path)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_max_rel_diff():
    ours = {"a1": [4, 16], "a2": [4, 8], "rows": [[11.0, None], [5.0, 2.0]]}
    # different order and an extra a2 value: matched by value, not position
    paper = {"a1": [16, 4], "a2": [8, 4, 32], "rows": [[2.5, 4.0, 1.0], [None, 10.0, 3.0]]}
    # common cells: (4,4): 11/10-1=0.1 ; (16,4): 5/4-1=0.25 ; (16,8): 2/2.5-1=-0.2
    assert max_rel_diff(ours, paper) == pytest.approx(0.25)
    none = {"a1": [64], "a2": [64], "rows": [[1.0]]}
    assert max_rel_diff(ours, none) is None
    with pytest.raises(ValueError):
        max_rel_diff({"a1": [4], "a2": [4], "rows": [[1.0, 2.0]]}, paper)


@pytest.mark.slow
def test_real_paper_tables_and_our_size_grid_within_10_percent(tmp_path):
    """The committed paper tables load and render; our `paper` widths' size grid is within ±10% of the paper's."""
    from tinyrrm.experiments import tables

    paper = json.loads(PAPER_JSON.read_text())
    paths = write_grid_report(paper, paper, tmp_path)
    md = paths[1].read_text(encoding="utf-8")
    assert "58.82 (58.82)" in md and "0.765 (0.765)" in md
    assert len(_read_csv(paths[0])) == 4 * 6 + 4 * 7
    size = paper["model_size_ratio"]
    ours = {"a1": size["a1"], "a2": size["a2"], "rows": tables.size_ratios("paper", size["a1"], size["a2"])}
    assert max_rel_diff(ours, size) <= 0.10
    committed = json.loads((ROOT / "reports/paper_grid.json").read_text())["model_size_ratio"]
    assert max_rel_diff(committed, size) == pytest.approx(max_rel_diff(ours, size), abs=1e-4)
