"""The CLI: one clear error line and exit 2 for bad input, nothing half-written."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyrrm.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_scenes_command(tmp_path):
    r = run("scenes", "--out", tmp_path / "s.npz", "--n", 3, "--K", 4, "--Nt", 2, "--seed", 1)
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "s.npz") as f:
        assert f["H"].shape == (3, 4, 4, 2)


BAD_SCENES = {  # name -> (array dict, text the error must contain)
    "nan": ({"H": np.full((2, 3, 3, 2), np.nan, np.complex64)}, "NaN"),
    "real": ({"H": np.ones((2, 3, 3, 2), np.float32)}, "complex"),
    "shape": ({"H": np.ones((2, 3, 4, 2), np.complex64)}, "[N, K, K, Nt]"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENES))
def test_evaluate_bad_scene_file(tiny_ckpts, tmp_path, case):
    arrays, needle = BAD_SCENES[case]
    np.savez(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "w.npz"
    r = run("evaluate", "--scenes", tmp_path / "bad.npz", "--mpgnn", tiny_ckpts["full"],
            "--lrmpgnn", tiny_ckpts["lr"], "--out", out)
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tinyrrm: error:") and needle in lines[0], r.output
    assert not out.exists()


def test_train_bad_rank(tiny_data, tmp_path):
    r = run("train", "--scenes", tiny_data["train"], "--out", tmp_path / "ck", "--arch", "tiny",
            "--a1", 0, "--a2", 4)
    assert r.exit_code == 2 and "--a1 must be a positive rank" in r.output
    assert not (tmp_path / "ck").exists()


def test_train_corrupt_init_checkpoint(tiny_data, tmp_path):
    (tmp_path / "junk").mkdir()
    r = run("train", "--scenes", tiny_data["train"], "--out", tmp_path / "ck", "--arch", "tiny",
            "--a1", 2, "--a2", 2, "--mode", "svd", "--init", tmp_path / "junk", "--epochs", 0)
    assert r.exit_code == 2 and "not a checkpoint" in r.output
    assert not (tmp_path / "ck").exists()


def test_evaluate_json(tiny_data, tiny_ckpts):
    r = run("evaluate", "--scenes", tiny_data["test"], "--mpgnn", tiny_ckpts["full"],
            "--lrmpgnn", tiny_ckpts["lr"], "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert set(rep["ratio"]) == {"mpgnn/wmmse", "lrmpgnn/wmmse", "lrmpgnn/mpgnn"}


def test_evaluate_k_above_checkpoint(tiny_ckpts, tmp_path):
    from tinyrrm.training import scenes as sc

    p = sc.save(sc.generate(2, 9, 2, 0), tmp_path / "k9.npz")
    r = run("evaluate", "--scenes", p, "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"])
    assert r.exit_code == 2 and "K=9" in r.output


def test_history_table(tiny_ckpts):
    r = run("history", tiny_ckpts["full"], tiny_ckpts["lr"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("epoch") and len(lines) == 1 + 3


def test_export_unknown_target():
    r = run("export", "target", "--target", "cortex-m99")
    assert r.exit_code == 2 and "unknown target 'cortex-m99'" in r.output


def test_size_json_ratios(tiny_ckpts):
    r = run("size", "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"], "--json", "--no-export")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["ratio"]["fp32_over_int8"] == pytest.approx(rep["mpgnn"]["bytes_fp32"] / rep["lrmpgnn"]["bytes_int8"])
    assert [L["layer"] for L in rep["lrmpgnn"]["layers"]] == ["msg1", "msg2", "upd1", "upd2"]


def test_export_bad_input_is_one_line(tiny_ckpts, tmp_path):
    r = run("export", "model", "--checkpoint", tmp_path / "nope", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "not a checkpoint" in r.output and not (tmp_path / "o").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    (bad / "weights.safetensors").write_bytes(b"\0")
    r = run("export", "model", "--checkpoint", bad, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "corrupt" in r.output and not (tmp_path / "o").exists()
    r = run("export", "onnx", "--checkpoint", tiny_ckpts["lr"], "--opset", "9", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "unsupported ONNX opset 9" in r.output and not (tmp_path / "o").exists()
    r = run("export", "c", "--export-dir", tmp_path / "nothing", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "no export" in r.output and not (tmp_path / "o").exists()
