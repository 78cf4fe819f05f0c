"""The calibration of an export is part of the export: recorded in export.json, used by every
later use of the folder, never implied (no data/train.npz read unasked), and an export folder
is never replaced by one of other calibration data or of another checkpoint unasked."""

import json
import shutil

import pytest

from tinyrrm.export import stage
from tinyrrm.training import scenes as sc

from .test_cli import one_error, run


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_ckpts, tiny_data):
    """A working directory with a data/train.npz that fits the tiny models: nothing may read it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copy(tiny_data["val"], tmp_path / "data/train.npz")
    return tmp_path


def _cal(folder) -> dict:
    return json.loads((folder / stage.MANIFEST).read_text())["calibration"]


@pytest.mark.parametrize("backend", ["onnx", "tflite", "tflite_fp32", "tflm", "c", "qemu"])
def test_no_calibration_is_implied(workdir, tiny_ckpts, tiny_data, backend):
    """An exported backend with no --calib and no export folder to take one from: one line
    naming --calib, and nothing exported (data/train.npz is not read)."""
    models = ["--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"]]
    r = run("evaluate", "--scenes", tiny_data["test"], *models, "--backend", backend)
    one_error(r, "pass --calib F")
    assert sorted(p.name for p in workdir.iterdir()) == ["data"]


def test_export_commands_need_a_calibration(workdir, tiny_ckpts):
    for cmd in (
        ["export", "model", "--checkpoint", tiny_ckpts["lr"]],
        ["export", "target", "--lrmpgnn", tiny_ckpts["lr"], "--out", workdir / "gen"],
        ["size", "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"]],
        ["hil-prepare", "--target", "cortex-m4"],
    ):
        one_error(run(*cmd), "pass --calib F")
    assert sorted(p.name for p in workdir.iterdir()) == ["data"]


@pytest.mark.slow
def test_the_exports_calibration_is_used_and_kept(workdir, tiny_ckpts, tiny_data):
    """A user's export (own calibration) is what evaluate uses; other calibration data is
    refused with one line, the folder untouched; export model --force replaces it."""
    mine, other = tiny_data["train"], tiny_data["test"]
    for ck in (tiny_ckpts["full"], tiny_ckpts["lr"]):
        r = run("export", "model", "--checkpoint", ck, "--calib", mine, "--n-calib", 8)
        assert r.exit_code == 0, r.output
    folder = stage.default_dir(tiny_ckpts["lr"])
    assert _cal(folder)["path"] == str(mine) and _cal(folder)["n_scenes"] == 8
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    common = ["--scenes", tiny_data["test"], "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"]]
    r = run("evaluate", *common, "--backend", "tflm", "--json")
    assert r.exit_code == 0, r.output
    r = run("evaluate", *common, "--backend", "tflm", "--calib", mine, "--json")  # the same: fine
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    for cmd in (
        ["evaluate", *common, "--backend", "onnx", "--calib", other],
        ["export", "model", "--checkpoint", tiny_ckpts["lr"], "--calib", other],
        ["export", "model", "--checkpoint", tiny_ckpts["lr"], "--calib", mine, "--n-calib", 4],
        ["export", "target", "--lrmpgnn", tiny_ckpts["lr"], "--calib", other, "--out", workdir / "gen"],
    ):
        one_error(run(*cmd), f"exported with calibration {mine} (8 scenes), not replaced by")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (workdir / "gen").exists()

    # another checkpoint's export in the folder is not replaced either
    one_error(
        run("export", "model", "--checkpoint", tiny_ckpts["full"], "--calib", mine, "--out", folder),
        "holds the export of another checkpoint",
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    r = run("export", "model", "--checkpoint", tiny_ckpts["lr"], "--calib", other, "--n-calib", 8, "--force")
    assert r.exit_code == 0, r.output
    assert _cal(folder)["path"] == str(other)
    # omitted, --calib is the folder's own: a re-export keeps it
    r = run("export", "model", "--checkpoint", tiny_ckpts["lr"])
    assert r.exit_code == 0, r.output
    assert _cal(folder)["path"] == str(other) and _cal(folder)["n_scenes"] == 8


@pytest.mark.slow
def test_a_stale_export_is_redone_on_its_own_calibration(workdir, tiny_ckpts, tiny_data):
    calib = sc.save(sc.load(tiny_data["train"]).subset(slice(0, 10)), workdir / "mine.npz")
    out = stage.export_model(tiny_ckpts["lr"], workdir / "exp", calib, n_calib=6, progress=False)
    (out / stage.STAMP).write_text("0" * 64 + "\n")  # as if written by older exporter code
    assert stage.ensure(tiny_ckpts["lr"], out, progress=False) == out
    assert stage.is_current(out, tiny_ckpts["lr"], calib, 6)
    assert _cal(out)["n_scenes"] == 6 and _cal(out)["path"] == "mine.npz"
    (out / stage.STAMP).write_text("0" * 64 + "\n")
    calib.unlink()
    with pytest.raises(stage.InputError, match="its calibration mine.npz is gone"):
        stage.ensure(tiny_ckpts["lr"], out, progress=False)
