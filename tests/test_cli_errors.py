"""Which errors the CLI turns into one line, and the typed option choices.

A user error (any ``TinyrrmError``, a file that cannot be opened) is one line and exit 2; any
other exception is a bug of tinyrrm and keeps its traceback. A bad choice fails before torch
or TensorFlow is imported.
"""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tinyrrm import cli
from tinyrrm.errors import InputError, TinyrrmError, UsageError
from tinyrrm.training import scenes as sc

from .test_cli import one_error, run

runner = CliRunner()


def test_every_project_error_is_a_tinyrrm_error():
    from tinyrrm.codegen.generate import FitError
    from tinyrrm.codegen.host import BuildError
    from tinyrrm.export.tflite_export import ExportError
    from tinyrrm.export.tflite_reader import TFLiteError
    from tinyrrm.hil.protocol import HILError, TargetError
    from tinyrrm.training.checkpoint import CheckpointError

    kinds = (
        sc.SceneError,
        CheckpointError,
        TFLiteError,
        ExportError,
        FitError,
        BuildError,
        HILError,
        TargetError,
        UsageError,
        InputError,
    )
    assert all(issubclass(k, TinyrrmError) for k in kinds)
    # the second bases that callers catch stay
    assert all(
        issubclass(k, ValueError)
        for k in (sc.SceneError, CheckpointError, TFLiteError, ExportError, FitError, UsageError, InputError)
    )
    assert all(issubclass(k, RuntimeError) for k in (BuildError, HILError))


def _scenes_raising(monkeypatch, exc):
    def generate(*a, **kw):
        raise exc

    monkeypatch.setattr(sc, "generate", generate)


def test_a_stage_user_error_is_one_line(monkeypatch, tmp_path):
    _scenes_raising(monkeypatch, InputError("the scenes are wrong in a way the user can fix"))
    one_error(run("scenes", "--out", tmp_path / "s.npz"), "the scenes are wrong in a way the user can fix")


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(2, "No such file or directory", "x.npz"),
        PermissionError(13, "Permission denied", "x.npz"),
        IsADirectoryError(21, "Is a directory", "x.npz"),
    ],
)
def test_a_file_error_is_one_line(monkeypatch, tmp_path, exc):
    _scenes_raising(monkeypatch, exc)
    one_error(run("scenes", "--out", tmp_path / "s.npz"), "x.npz")


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("internal bug"),
        KeyError("internal bug"),
        RuntimeError("internal bug"),
        OSError(5, "Input/output error"),
    ],
)
def test_an_internal_bug_keeps_its_traceback(monkeypatch, tmp_path, exc):
    _scenes_raising(monkeypatch, exc)
    r = run("scenes", "--out", tmp_path / "s.npz")
    assert r.exception is exc, r.output
    assert r.exit_code == 1 and "tinyrrm: error" not in r.stderr, r.stderr


def test_an_internal_bug_prints_a_traceback(tmp_path):
    """The console script's view: the traceback on stderr, not the one-liner."""
    code = (
        "import sys; from tinyrrm import cli; from tinyrrm.training import scenes as sc\n"
        "def bug(*a, **kw): raise KeyError('internal bug')\n"
        "sc.generate = bug\n"
        "cli.app(['scenes', '--out', sys.argv[1]])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.npz")],
        capture_output=True,
        text=True,
        env={"TYPER_STANDARD_TRACEBACK": "1", "PATH": ""},
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" in r.stderr and "KeyError: 'internal bug'" in r.stderr, r.stderr
    assert "tinyrrm: error" not in r.stderr


# A bad choice: one line, exit 2, and neither torch nor TensorFlow imported (the stage never ran).
BAD_CHOICES = {
    "backend": (["evaluate", "--scenes", "s.npz", "--backend", "foo"], "'foo' is not one of 'torch'"),
    "evaluate-target": (
        ["evaluate", "--scenes", "s.npz", "--backend", "qemu", "--target", "cortex-m99"],
        "'cortex-m99' is not one of",
    ),
    "export-target": (["export", "target", "--target", "cortex-m99"], "'cortex-m99' is not one of"),
    "export-c-target": (["export", "c", "--target", "host"], "'host' is not one of"),
    "firmware-target": (["firmware", "--target", "m4"], "'m4' is not one of"),
    "hil-target": (["hil", "--target", "m4"], "'m4' is not one of"),
    "arch": (["train", "--scenes", "s.npz", "--out", "ck", "--arch", "huge"], "'huge' is not one of 'shen'"),
    "train-mode": (["train", "--scenes", "s.npz", "--out", "ck", "--mode", "warm"], "'warm' is not one of"),
    "scenes-mode": (["scenes", "--out", "s.npz", "--mode", "rayleigh"], "'rayleigh' is not one of"),
    "reproduce-arch": (["reproduce", "--train", "x.npz", "--arch", "huge"], "'huge' is not one of"),
}

_PROBE = """
import json, sys
from typer.testing import CliRunner
from tinyrrm.cli import app
r = CliRunner().invoke(app, json.loads(sys.argv[1]))
print(json.dumps({"exit": r.exit_code, "stderr": r.stderr, "stdout": r.stdout,
                  "heavy": sorted(m for m in ("torch", "tensorflow", "onnx", "onnxruntime") if m in sys.modules)}))
"""


@pytest.mark.parametrize("case", sorted(BAD_CHOICES))
def test_a_bad_choice_fails_before_any_heavy_import(case, tmp_path):
    args, needle = BAD_CHOICES[case]
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    lines = [ln for ln in got["stderr"].splitlines() if ln.strip()]
    assert got["exit"] == 2 and got["stdout"] == "", got
    assert len(lines) == 1 and lines[0].startswith("tinyrrm: error: Invalid value for") and needle in lines[0], got
    assert got["heavy"] == [], got
    assert not list(tmp_path.iterdir())  # nothing written


def test_choices_are_the_stage_tables():
    from tinyrrm import evaluate
    from tinyrrm.codegen import targets
    from tinyrrm.evaluate import backends
    from tinyrrm.training import models
    from tinyrrm.training.train import TrainConfig

    assert list(cli.TargetName) == list(targets.TARGETS)
    assert list(cli.Arch) == list(models.ARCHS)
    assert list(cli.SceneMode) == list(sc.MODES)
    assert set(cli.Backend) == set(evaluate.BACKENDS) | set(backends.BACKENDS)
    for mode in cli.TrainMode:
        TrainConfig(mode=mode.value, init="ck")
    with pytest.raises(UsageError):
        TrainConfig(mode="warm", init="ck")


@pytest.mark.parametrize("cmd", [["reproduce", "--sizes-only"], ["svd-study"], ["bench", "--parts", "codegen"]])
def test_training_scenes_are_never_implied(cmd, tmp_path, monkeypatch):
    """No command reads data/train.npz unless told to: --train is required."""
    monkeypatch.chdir(tmp_path)
    r = run(*cmd, "--out", tmp_path / "o")
    one_error(r, "Missing option '--train'")
    assert not list(tmp_path.iterdir())


def test_bench_parts_are_checked_before_any_work(tmp_path):
    one_error(
        run("bench", "--train", "x.npz", "--parts", "train,flash", "--out", tmp_path / "b.json"),
        "unknown part(s) flash",
    )


def test_bench_report_that_is_not_json(tmp_path):
    out = tmp_path / "b.json"
    out.write_text("{not json")
    one_error(run("bench", "--train", "x.npz", "--parts", "codegen", "--out", out), "not a bench report")
    assert out.read_text() == "{not json"
