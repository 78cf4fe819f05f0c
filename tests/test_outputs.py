"""Output paths: checked before any work, one clear line, nothing deleted or replaced
that the command did not write."""

import os
import stat

import pytest

from tinyrrm.codegen import generate as codegen
from tinyrrm.export import stage
from tinyrrm.training import fileio

from .test_cli import one_error, run


def _no_work(*a, **kw):  # stands in for a slow stage: reaching it means the check came too late
    raise AssertionError("the stage ran before the output path was checked")


@pytest.fixture
def slow_stages(monkeypatch):
    monkeypatch.setattr(stage, "ensure", _no_work)
    monkeypatch.setattr(stage, "export_model", _no_work)
    monkeypatch.setattr(codegen, "generate", _no_work)


@pytest.mark.parametrize("cmd", [["export", "c", "--export-dir", "nope"], ["export", "target"]])
def test_export_refuses_a_file_at_out(cmd, tmp_path, slow_stages):
    p = tmp_path / "P"
    p.write_text("mine")
    one_error(run(*cmd, "--out", p), str(p))
    assert p.read_text() == "mine"


@pytest.mark.parametrize("cmd", [["export", "c", "--export-dir", "nope"], ["export", "target"]])
def test_export_refuses_a_folder_with_files_it_did_not_write(cmd, tmp_path, slow_stages):
    p = tmp_path / "P"
    p.mkdir()
    (p / "notes.txt").write_text("mine")
    r = run(*cmd, "--out", p)
    one_error(r, "notes.txt")
    assert sorted(x.name for x in p.iterdir()) == ["notes.txt"]


def test_replace_dir_keeps_a_folder_it_did_not_write(tmp_path):
    """The swap itself refuses too (library callers of codegen.generate)."""
    p = tmp_path / "P"
    p.mkdir()
    (p / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        codegen.replace_dir(p, {"model.c": b"x"})
    assert sorted(x.name for x in p.iterdir()) == ["notes.txt"]
    f = tmp_path / "F"
    f.write_text("mine")
    with pytest.raises(NotADirectoryError, match="F"):
        codegen.replace_dir(f, {"model.c": b"x"})
    assert f.read_text() == "mine"


def _report(files):
    import json

    return json.dumps({"format": codegen.REPORT_FORMAT, "files": sorted(files)}).encode()


def test_replace_dir_replaces_what_it_generated(tmp_path):
    p = tmp_path / "P"
    files = {"model.c": b"1", "kernels/tr_fc_s8.c": b"2"}
    codegen.replace_dir(p, {**files, "report.json": _report(files), "report.md": b"r"})
    (p / "report_hil.png").write_bytes(b"png")  # the HIL stage adds its figure beside the report
    (p / "model.c").write_text("edited by hand")  # a listed file may differ: it is replaced
    codegen.replace_dir(p, {"model.c": b"3", "report.json": _report(["model.c"])})
    assert sorted(x.name for x in p.rglob("*") if x.is_file()) == ["model.c", "report.json"]
    # a generated folder with one file more than its report lists is not ours any more
    (p / "extra.h").write_text("mine")
    with pytest.raises(FileExistsError, match="extra.h"):
        codegen.replace_dir(p, {"model.c": b"4"})
    assert (p / "extra.h").read_text() == "mine"


def test_generated_folder_has_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = codegen.replace_dir(tmp_path / "g", {"model.c": b"x", "kernels/a.c": b"y"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "kernels").stat().st_mode) == 0o755


def test_train_out_onto_a_file_fails_before_training(tiny_data, tmp_path, monkeypatch):
    from tinyrrm.training import train as tr

    monkeypatch.setattr(tr, "load_scenes", _no_work)
    p = tmp_path / "ck"
    p.write_text("mine")
    one_error(run("train", "--scenes", tiny_data["train"], "--out", p, "--arch", "tiny"), str(p))
    assert p.read_text() == "mine"


def test_train_out_keeps_a_foreign_checkpoint_file(tiny_data, tmp_path, monkeypatch):
    from tinyrrm.training import train as tr

    monkeypatch.setattr(tr, "load_scenes", _no_work)
    p = tmp_path / "ck"
    p.mkdir()
    (p / "config.json").write_text('{"my": "own config"}')
    one_error(run("train", "--scenes", tiny_data["train"], "--out", p, "--arch", "tiny"), "config.json")
    assert (p / "config.json").read_text() == '{"my": "own config"}'


def test_train_out_may_hold_other_files(tiny_data, tmp_path):
    """Training writes its three files and touches nothing else in the folder."""
    p = tmp_path / "ck"
    p.mkdir()
    (p / "notes.txt").write_text("mine")
    r = run("train", "--scenes", tiny_data["train"], "--out", p, "--arch", "tiny", "--epochs", 1, "--batch", 48)
    assert r.exit_code == 0, r.output
    assert (p / "notes.txt").read_text() == "mine"
    r = run("train", "--scenes", tiny_data["train"], "--out", p, "--arch", "tiny", "--epochs", 2, "--batch", 48)
    assert r.exit_code == 0, r.output  # its own checkpoint: resumed


def test_evaluate_out_onto_a_folder_is_one_clear_line(tiny_data, tiny_ckpts, tmp_path, monkeypatch):
    from tinyrrm import evaluate as ev

    monkeypatch.setattr(ev, "load_scenes", _no_work)
    (tmp_path / "w.npz").mkdir()
    r = run(
        "evaluate",
        "--scenes",
        tiny_data["test"],
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        tmp_path / "w.npz",
    )
    one_error(r, "w.npz")
    assert "Errno" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["scenes", "--n", 2, "--K", 4, "--out"],
        ["bench", "--train", "x.npz", "--parts", "train", "--out"],
        ["history", "CKPT", "--png"],
    ],
)
def test_file_outputs_onto_a_folder(args, tiny_ckpts, tmp_path):
    (tmp_path / "o").mkdir()
    args = [tiny_ckpts["full"] if a == "CKPT" else a for a in args]
    r = run(*args, tmp_path / "o")
    one_error(r, str(tmp_path / "o"))
    assert "Errno" not in r.stderr


def test_output_under_a_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    r = run("scenes", "--n", 2, "--K", 4, "--out", tmp_path / "f" / "s.npz")
    one_error(r, str(tmp_path / "f"))
    assert "Errno" not in r.stderr


@pytest.mark.parametrize(
    "cmd",
    [
        ["reproduce", "--train", "nope.npz", "--sizes-only"],
        ["svd-study", "--train", "nope.npz"],
        ["export", "model"],
        ["export", "onnx"],
    ],
)
def test_folder_outputs_onto_a_file(cmd, tmp_path, slow_stages):
    p = tmp_path / "P"
    p.write_text("mine")
    r = run(*cmd, "--out", p)
    one_error(r, str(p))
    assert "Errno" not in r.stderr
    assert p.read_text() == "mine"


def test_export_model_keeps_a_folder_of_another_kind(tmp_path, slow_stages):
    p = tmp_path / "P"
    p.mkdir()
    (p / "model.onnx").write_bytes(b"someone else's model")
    one_error(run("export", "model", "--out", p), "model.onnx")
    assert (p / "model.onnx").read_bytes() == b"someone else's model"


def test_check_helpers_accept_what_is_fine(tmp_path):
    assert fileio.check_out_file(tmp_path / "new" / "f.npz") == tmp_path / "new" / "f.npz"
    (tmp_path / "f.npz").write_text("old")
    fileio.check_out_file(tmp_path / "f.npz")  # a file is rewritten whole, atomically
    (tmp_path / "empty").mkdir()
    mark = fileio.FolderMark("report.json", "x/1", lambda doc: doc["files"])
    fileio.check_out_dir(tmp_path / "empty", mark)
    fileio.check_out_dir(tmp_path / "missing", mark)
