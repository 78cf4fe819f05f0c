"""The yardstick of the HIL report (tinyrrm/hil/yardstick.py): the table and the figure from
a run's figures; the measuring itself runs in `make hil`."""

import json

from tinyrrm import paths
from tinyrrm.hil import session, yardstick


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
