"""The HIL for a model of your own: any checkpoint or export folder, any core, its own scenes
(``tinyrrm hil --model DIR --scenes F``, ``make hil MODEL=DIR SCENES=F``), built under build/,
never into generated/ or reports/; what does not fit is one error line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyrrm.training import scenes as sc
from tinyrrm.training.models import ModelConfig
from tinyrrm.training.train import TrainConfig, train

from .test_cli import one_error, run

ROOT = Path(__file__).resolve().parents[1]


def _own_model(d: Path, K: int, Nt: int, n: int = 6) -> tuple[Path, Path]:
    """A small model of your own: ``arch tiny``, one epoch on a few scenes; (checkpoint, scenes)."""
    scenes = sc.save(sc.generate(n, K, Nt, 40 + K), d / f"scenes_k{K}.npz")
    ck = train(
        scenes, d / f"k{K}", ModelConfig(arch="tiny", K=K, Nt=Nt, a1=4, a2=4), TrainConfig(epochs=1), progress=False
    )
    return ck, scenes


@pytest.mark.slow
def test_hil_of_a_model_of_your_own_on_cortex_m4(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ck, scenes = _own_model(tmp_path, 12, 2)
    r = run("hil", "--target", "cortex-m4", "--model", ck, "--scenes", scenes, "--calib", scenes)
    assert r.exit_code == 0, r.output
    brief = json.loads(r.stdout[: r.stdout.rindex("}") + 1])
    assert brief["bit_exact"] == {"equal": 8, "total": 8}
    assert brief["sum_rate_ratio_vs"]["host_c"] == pytest.approx(1.0, abs=1e-6)
    assert brief["model"]["name"] == "lrmpgnn_tiny_a1-4_a2-4" and brief["n_scenes"] == 4
    assert "model_size_ratio" not in brief  # no original to compare with
    hdir = Path("build/hil/cortex-m4/models/k12")
    assert (hdir / "cortex-m4.md").is_file() and (hdir / "gen/model.c").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "k12", "scenes_k12.npz"]  # no generated/, reports/

    # the export folder alone: its own calibration, no fp32 checkpoint to compare with
    r = run("hil", "--target", "cortex-m4", "--model", "build/export/k12", "--scenes", scenes)
    assert r.exit_code == 0, r.output
    assert "model_fp32" not in json.loads(r.stdout[: r.stdout.rindex("}") + 1])["sum_rate_ratio_vs"]

    # the HIL suite on that folder, as `make hil MODEL=DIR SCENES=F` runs it: the default's
    # budgets (the paper's ratios) and its WMMSE yardstick are skipped, every other check passes
    r = run("hil-prepare", "--target", "cortex-m4", "--model", ck, "--scenes", scenes)
    assert r.exit_code == 0, r.output
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "hil_tests")]
        + ["--target", "cortex-m4", "--hil-dir", str(hdir), "--rootdir", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:]
    assert " passed, 6 skipped" in p.stdout, p.stdout[-1000:]
    assert not Path("reports").exists() and not Path("generated").exists()


@pytest.mark.slow
def test_what_does_not_fit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ck, scenes = _own_model(tmp_path, 40, 4, n=2)  # its input struct alone is 51 KB
    other = sc.save(sc.generate(2, 12, 2, 3), tmp_path / "k12.npz")
    one_error(
        run("hil", "--target", "cortex-m4", "--model", ck, "--scenes", other, "--calib", scenes),
        f"scenes {other} have K=12, Nt=2; lrmpgnn_tiny_a1-4_a2-4 ({ck}) serves K <= 40, Nt=4",
    )
    assert not Path("build").exists()  # refused before any export
    one_error(run("hil", "--target", "cortex-m4", "--model", ck), "needs --scenes F")
    one_error(run("hil", "--target", "cortex-m4", "--model", tmp_path, "--scenes", other), "neither a checkpoint")
    one_error(run("hil", "--target", "cortex-m4", "--model", ck, "--scenes", scenes), "pass --calib F")
    one_error(
        run("hil", "--target", "cortex-m0", "--model", ck, "--scenes", scenes, "--calib", scenes),
        "does not fit cortex-m0: needs RAM",
    )
    assert not Path("build/hil/cortex-m0/models/k40/reference.json").exists() and not Path("generated").exists()


@pytest.mark.parametrize(
    "cmd, needle",
    [
        (["hil", "--calib", "c.npz"], "--calib goes with --model DIR"),
        (["hil", "--n", 2], "--n goes with --model DIR"),
        (["hil-prepare", "--scenes", "s.npz"], "--scenes goes with --model DIR"),
        (["hil-prepare", "--model", "m"], "--model m needs --scenes F"),
    ],
)
def test_model_options_go_together(cmd, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_error(run(*cmd), needle)
    assert not list(tmp_path.iterdir())
