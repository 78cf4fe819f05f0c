"""The yardstick of the HIL report (tinyrrm/hil/yardstick.py): the table and the figure from
a run's figures; the measuring itself runs in `make hil`."""

import json
import shutil

import numpy as np
import pytest

from tinyrrm import docs, paths
from tinyrrm.hil import session, yardstick
from tinyrrm.training import scenes as sc


def _measured(fits=True):
    if not fits:
        return {"fits": False, "why": "wmmse does not fit cortex-m0: needs RAM 48,224 B"}
    its = {"0": {"instructions_per_decision": 100.0}}
    for k in yardstick.ITERS:
        its[str(k)] = {"instructions_per_decision": 100.0 + 50.0 * k, "instructions_per_iteration_per_pair": 2.0}
    return {
        "fits": True,
        "k_max": 5,
        "nt": 2,
        "n_scenes": 4,
        "iters": its,
        "flash_bytes": 7000,
        "ram_bytes": 9000,
        "stack_peak_bytes": 500,
        "csi_input_bytes": 820,
        "policy_state_bytes": 300,
        "flops_per_pair_iteration": 37,
    }


def _rates():
    wm = {str(k): 1.0 - 0.1 / k for k in yardstick.ITERS}
    return {
        "scenes": "data/test.npz",
        "n_scenes": 500,
        "over_reference": {"wmmse": wm, "mrt": 0.7, "lrmpgnn_c": 0.92, "mpgnn_c": 0.95},
    }


def test_combine_puts_every_policy_in_one_table():
    y = yardstick.combine(_measured(), _rates(), 1e8, 2e9)
    names = [p["policy"] for p in y["points"]]
    assert names == [f"wmmse{k}" for k in yardstick.ITERS] + ["mrt", "lrmpgnn_deployed", "mpgnn_full"]
    pts = {p["policy"]: p for p in y["points"]}
    assert pts["mrt"]["instructions_per_decision"] == 100.0 and pts["lrmpgnn_deployed"]["rate_over_wmmse100"] == 0.92
    assert pts["wmmse2"]["instructions_per_decision"] == 200.0


def test_report_shows_the_yardstick(tmp_path):
    res = json.loads((paths.HIL_REPORTS / "cortex-m4.json").read_text())
    res["yardstick"] = yardstick.combine(_measured(), _rates(), res["instructions_per_inference"], 2e9)
    files = session.report_files(res, "cortex-m4")
    md = files["cortex-m4.md"].decode()
    assert "## Against WMMSE on the same core" in md and "| WMMSE-100 | 5,100 | 0.9990 | 2.0 |" in md
    assert "| deployed LR-MPGNN (int8) |" in md and "500 scenes of `test.npz` (host C)" in md
    assert files["cortex-m4.png"][:4] == b"\x89PNG"
    res["yardstick"] = yardstick.combine(_measured(fits=False), None, 1e8, None)
    md = session.report_files(res, "cortex-m4")["cortex-m4.md"].decode()
    assert "does not fit: wmmse does not fit cortex-m0" in md


def test_a_core_the_model_does_not_fit_gets_a_report_that_says_so():
    res = {
        "target": "cortex-m0",
        "board": "BBC micro:bit v1 (nRF51822)",
        "qemu_machine": "microbit",
        "fits": False,
        "why": "firmware for cortex-m0 needs RAM 79,000 B, has 16,384 B",
        "model": {"name": "lrmpgnn_paper_a1-4_a2-16", "prefix": "lrmpgnn", "a1": 4, "a2": 16, "cut_m": 500.0},
        "flash_limit_bytes": 262144,
        "ram_limit_bytes": 16384,
        "n_scenes": 4,
        "yardstick": {"wmmse_on_target": _measured(fits=False), "rates": None, "points": []},
    }
    files = session.report_files(res, "cortex-m0")
    assert sorted(files) == ["cortex-m0.json", "cortex-m0.md"]
    brief = json.loads(files["cortex-m0.json"])
    assert brief["fits"] is False and brief["why"] == res["why"] and brief["yardstick"]["points"] == []
    md = files["cortex-m0.md"].decode()
    assert md.startswith("# lrmpgnn_paper_a1-4_a2-16 on cortex-m0: does not fit") and res["why"] in md
    assert "WMMSE as generated C does not fit" in md and "| policy |" not in md


def test_the_ladder_falls_back_to_the_largest_k_that_fits():
    # cortex-m0 (16 KB): K = 50, 40 and 30 need more RAM than the board has; 25 is the first rung that fits
    k, refused = yardstick.ladder_k("cortex-m0", 50, 2)
    assert k == 25 and sorted(refused, key=int) == ["30", "40", "50"]
    assert "needs RAM 48,224 B" in refused["50"] and "has 16,384 B" in refused["30"]
    assert yardstick.ladder_k("cortex-m4", 50, 2) == (50, {})  # the scenes' own K fits: no ladder
    assert yardstick.ladder_k("cortex-m0", 12, 2) == (12, {})
    assert yardstick.ladder_k("cortex-m0", 50, 16)[0] == 5  # 16 antennas: 8 times the CSI buffer of a link
    assert list(yardstick.LADDER) == sorted(yardstick.LADDER, reverse=True)
    assert yardstick.rates_name(None) == yardstick.RATES and yardstick.rates_name(25) == "yardstick_rates_k25.json"


def test_first_links_are_the_top_left_block():
    s = sc.generate(3, 6, 2, 5, "geometric")
    t = yardstick.first_links(s, 4)
    assert t.H.shape == (3, 4, 4, 2) and t.weights.shape == (3, 4) and t.dist.shape == (3, 4, 4)
    np.testing.assert_array_equal(t.H, s.H[:, :4, :4])
    np.testing.assert_array_equal(t.weights, s.weights[:, :4])
    assert (t.noise_var, t.p_max) == (s.noise_var, s.p_max)
    with pytest.raises(ValueError, match="k=7 links of scenes with K=6"):
        yardstick.first_links(s, 7)


def _truncated_run():
    m = _measured()
    m["k_max"] = 25
    rates = {**_rates(), "k": 25}
    y = yardstick.combine(m, rates, None, None)
    refused = {"50": "wmmse (WMMSE, K_MAX=50, Nt=2) does not fit cortex-m0: needs RAM 48,224 B", "40": "…", "30": "…"}
    return {
        "target": "cortex-m0",
        "board": "BBC micro:bit v1 (nRF51822)",
        "qemu_machine": "microbit",
        "fits": False,
        "why": "firmware for cortex-m0 needs RAM 83,064 B, has 16,384 B",
        "model": {"name": "lrmpgnn_paper_a1-4_a2-16", "prefix": "lrmpgnn", "a1": 4, "a2": 16, "cut_m": 500.0},
        "flash_limit_bytes": 262144,
        "ram_limit_bytes": 16384,
        "n_scenes": 4,
        "yardstick": yardstick.truncated(y, 25, 50, refused),
    }


def test_a_yardstick_at_a_smaller_k_says_its_k_in_the_json_the_markdown_and_the_figure():
    res = _truncated_run()
    y = res["yardstick"]
    # WMMSE-k and MRT only: the learned models do not run on the core
    assert [p["policy"] for p in y["points"]] == [f"wmmse{k}" for k in yardstick.ITERS] + ["mrt"]
    assert (y["k"], y["k_scenes"], y["ladder"]) == (25, 50, list(yardstick.LADDER))
    files = session.report_files(res, "cortex-m0")
    assert sorted(files) == ["cortex-m0.json", "cortex-m0.md", "cortex-m0.png"]
    assert json.loads(files["cortex-m0.json"])["yardstick"]["k"] == 25
    md = files["cortex-m0.md"].decode()
    assert "The WMMSE policy at the scenes' K = 50 does not fit: wmmse (WMMSE, K_MAX=50" in md
    assert "**The yardstick here is at K = 25**" in md and "(`H[:, :25, :25]`)" in md
    assert "over WMMSE-100 at K = 25." in md and "sum rate / WMMSE-100 at K = 25 on 500 scenes" in md
    assert "| WMMSE-2 | 200 | 0.9500 | 2.0 |" in md and "deployed LR-MPGNN" not in md
    assert "K_MAX = 25, Nt = 2" in md and "![sum rate against instructions per decision of WMMSE-k at K = 25" in md
    assert files["cortex-m0.png"][:4] == b"\x89PNG"


def test_the_readme_yardstick_leaves_a_smaller_k_to_its_core(tmp_path):
    """The README's table holds one K's rates: a core's yardstick at another K stays in its report."""
    shutil.copytree(paths.REPORTS, tmp_path / "reports")
    (tmp_path / "reports/hil/cortex-m0.json").write_text(json.dumps(_truncated_run()))
    table = docs.yardstick(docs.Reports(tmp_path / "reports"))
    assert "cortex-m0" not in table and "cortex-m4, instructions" in table


def test_every_committed_hil_markdown_is_its_json_rendered():
    """``reports/hil/<core>.md`` is what the report's own JSON renders to (a report at the
    scenes' K and one at a smaller K alike): the renderer's changes leave no report stale."""
    for path in sorted(paths.HIL_REPORTS.glob("*.json")):
        brief = json.loads(path.read_text())
        md = path.with_suffix(".md").read_text()
        if brief.get("fits") is False:
            png = path.with_suffix(".png").name if path.with_suffix(".png").is_file() else None
            assert session.no_fit_markdown(brief, png=png) == md, path
        else:
            assert session.markdown(brief, png=path.with_suffix(".png").name) == md, path
