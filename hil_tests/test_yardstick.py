"""The WMMSE yardstick of the HIL run (``report["yardstick"]``) on every core, the deployed
model fitting or not: WMMSE-k measured on the core for every k, its firmware within the board,
the rates over WMMSE-100 at the K it ran, and that K said when it is not the scenes'."""

import pytest

from tinyrrm.codegen import targets as T
from tinyrrm.hil import yardstick as Y


@pytest.fixture(scope="module")
def ystick(hil_run, port):
    if port:
        pytest.skip("a board run has no QEMU counts: no WMMSE yardstick")
    if "model_dir" in hil_run:
        pytest.skip(f"the yardstick is the default deployment's; this run is of {hil_run['model_dir']}")
    return hil_run["yardstick"]


def _scenes_k(y):
    """The HIL scenes' K: the yardstick's own, or the one it says it fell back from."""
    return y["k_scenes"] if "k" in y else y["wmmse_on_target"]["k_max"]


def test_the_yardstick_runs_at_the_largest_k_that_fits(ystick, target):
    K = _scenes_k(ystick)
    k, refused = Y.ladder_k(target, K, ystick["wmmse_on_target"]["nt"])
    w = ystick["wmmse_on_target"]
    assert w["fits"] and w["k_max"] == k
    if k == K:
        assert "k" not in ystick
    else:  # labelled with its K, the refusal of every larger one
        assert ystick["k"] == k and ystick["k_scenes"] == K and sorted(ystick["refused"]) == sorted(refused)
        assert all(int(x) > k for x in ystick["refused"]) and k in ystick["ladder"]
        assert ystick["rates"]["k"] == k


def test_wmmse_is_measured_for_every_k_within_the_board(ystick, target):
    t, w = T.get(target), ystick["wmmse_on_target"]
    assert sorted(int(k) for k in w["iters"]) == [0, *Y.ITERS]
    ins = [w["iters"][str(k)]["instructions_per_decision"] for k in (0, *Y.ITERS)]
    assert all(a < b for a, b in zip(ins, ins[1:])), ins  # every iteration costs instructions
    assert 0 < w["flash_bytes"] <= t.flash and w["csi_input_bytes"] < w["ram_bytes"] <= t.ram
    # the CSI buffer is the policy's input: 4 bytes per real number of H [K, K, Nt] complex
    assert w["csi_input_bytes"] >= w["k_max"] ** 2 * w["nt"] * 8


def test_the_rates_are_over_wmmse100_at_the_k_measured(ystick):
    r = ystick["rates"]
    assert r is not None, "run tinyrrm hil-prepare for the yardstick's rates"
    over = r["over_reference"]["wmmse"]
    assert over[str(Y.REFERENCE)] == 1.0 and r["reference"] == f"wmmse{Y.REFERENCE}"
    assert r["n_scenes"] > ystick["wmmse_on_target"]["n_scenes"]  # all the test scenes, not the HIL's few
    assert r["over_reference"]["mrt"] < over["1"] < over["2"] < over["10"] <= 1.0
    pts = {p["policy"]: p for p in ystick["points"]}
    assert {f"wmmse{k}" for k in Y.ITERS} | {"mrt"} <= set(pts)
    assert all(p["rate_over_wmmse100"] is not None for p in pts.values())
