"""The CLI: one clear error line and exit 2 for bad input, nothing half-written."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyrrm.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(r, needle: str) -> None:
    """Exit 2, nothing on stdout, exactly one ``tinyrrm: error: …`` line on stderr naming ``needle``."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2, r.output
    assert r.stdout.strip() == "", r.stdout
    assert len(lines) == 1 and lines[0].startswith("tinyrrm: error:") and needle in lines[0], r.stderr


def test_scenes_command(tmp_path):
    r = run("scenes", "--out", tmp_path / "s.npz", "--n", 3, "--K", 4, "--Nt", 2, "--seed", 1)
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "s.npz") as f:
        assert f["H"].shape == (3, 4, 4, 2)


BAD_SCENES = {  # name -> (array dict, text the error must contain)
    "nan": ({"H": np.full((2, 3, 3, 2), np.nan, np.complex64)}, "NaN"),
    "inf": ({"H": np.full((2, 3, 3, 2), np.inf, np.complex64)}, "Inf"),
    "real": ({"H": np.ones((2, 3, 3, 2), np.float32)}, "complex"),
    "shape": ({"H": np.ones((2, 3, 4, 2), np.complex64)}, "[N, K, K, Nt]"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENES))
def test_evaluate_bad_scene_file(tiny_ckpts, tmp_path, case):
    arrays, needle = BAD_SCENES[case]
    np.savez(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "w.npz"
    r = run(
        "evaluate",
        "--scenes",
        tmp_path / "bad.npz",
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        out,
    )
    one_error(r, needle)
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(BAD_SCENES))
def test_train_bad_scene_file(tmp_path, case):
    arrays, needle = BAD_SCENES[case]
    np.savez(tmp_path / "bad.npz", **arrays)
    one_error(run("train", "--scenes", tmp_path / "bad.npz", "--out", tmp_path / "ck", "--arch", "tiny"), needle)
    assert not (tmp_path / "ck").exists()


def test_missing_scene_file(tiny_ckpts, tmp_path):
    r = run(
        "evaluate",
        "--scenes",
        tmp_path / "nope.npz",
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        tmp_path / "w.npz",
    )
    one_error(r, "nope.npz")
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize(
    "a1, a2, needle",
    [
        (0, 4, "--a1 must be a positive rank, got 0"),
        (4, 0, "--a2 must be a positive rank, got 0"),
        (-3, 4, "--a1 must be a positive rank, got -3"),
    ],
)
def test_train_bad_rank(tiny_data, tmp_path, a1, a2, needle):
    r = run("train", "--scenes", tiny_data["train"], "--out", tmp_path / "ck", "--arch", "tiny", "--a1", a1, "--a2", a2)
    one_error(r, needle)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (("reproduce", "--train", "x.npz", "--a1", "0,4", "--sizes-only"), "rank"),
        (("reproduce", "--train", "x.npz", "--a2", "4,x", "--sizes-only"), "4,x"),
        (("svd-study", "--train", "x.npz", "--cells", "0:4"), "a1:a2 pairs"),
        (("reproduce", "--train", "x.npz", "--clip-penalty", "-1", "--status"), "--clip-penalty must be >= 0"),
        (("train", "--scenes", "x.npz", "--clip-penalty", "-1"), "clip_penalty must be >= 0"),
    ],
)
def test_grid_commands_bad_ranks(tmp_path, args, needle):
    one_error(run(*args, "--out", tmp_path / "o"), needle)
    assert not (tmp_path / "o").exists()


def test_train_svd_mode_needs_ranks(tiny_data, tiny_ckpts, tmp_path):
    r = run(
        "train",
        "--scenes",
        tiny_data["train"],
        "--out",
        tmp_path / "ck",
        "--arch",
        "tiny",
        "--mode",
        "svd",
        "--init",
        tiny_ckpts["full"],
        "--epochs",
        0,
    )
    one_error(r, "--mode svd truncates a full MPGNN to ranks a1, a2: give --a1 and --a2")
    assert not (tmp_path / "ck").exists()


def test_scenes_without_a_positive_weight(tiny_ckpts, tmp_path):
    from tinyrrm.training import scenes as sc

    s = sc.generate(3, 6, 2, 0)
    np.savez(tmp_path / "w0.npz", H=s.H, weights=np.where(np.arange(3)[:, None] == 1, 0, s.weights).astype(np.float32))
    r = run(
        "evaluate",
        "--scenes",
        tmp_path / "w0.npz",
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        tmp_path / "w.npz",
    )
    one_error(r, "field 'weights' is all zero in 1 of 3 scenes (first: scene 1)")
    assert not (tmp_path / "w.npz").exists()


def test_out_that_is_a_folder(tiny_ckpts, tiny_data, tmp_path):
    (tmp_path / "dir.npz").mkdir()
    one_error(run("scenes", "--out", tmp_path / "dir.npz", "--n", 2, "--K", 4), "dir.npz")
    r = run(
        "evaluate",
        "--scenes",
        tiny_data["test"],
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        tmp_path / "dir.npz",
    )
    assert r.exit_code == 2 and r.stderr.splitlines()[-1].startswith("tinyrrm: error:") and "dir.npz" in r.stderr


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--finetune-epochs", -1], "--finetune-epochs must be >= 0, got -1"),
        (["--test", "k5"], "scenes have Nt=3 antennas but mpgnn_tiny was built for Nt=2"),
    ],
)
def test_svd_study_checks_before_writing(tiny_data, tiny_ckpts, tmp_path, extra, needle):
    from tinyrrm.training import scenes as sc

    k5 = sc.save(sc.generate(4, 5, 3, 0), tmp_path / "k5.npz")
    extra = [k5 if a == "k5" else a for a in extra]
    args = {
        "--full": tiny_ckpts["full"],
        "--train": tiny_data["train"],
        "--val": tiny_data["val"],
        "--test": tiny_data["test"],
        "--out": tmp_path / "o",
        "--cells": "2:2",
    }
    args.update(dict(zip(extra[::2], extra[1::2])))
    one_error(run("svd-study", *[x for kv in args.items() for x in kv]), needle)
    assert not (tmp_path / "o").exists()


def test_train_corrupt_init_checkpoint(tiny_data, tmp_path):
    (tmp_path / "junk").mkdir()
    r = run(
        "train",
        "--scenes",
        tiny_data["train"],
        "--out",
        tmp_path / "ck",
        "--arch",
        "tiny",
        "--a1",
        2,
        "--a2",
        2,
        "--mode",
        "svd",
        "--init",
        tmp_path / "junk",
        "--epochs",
        0,
    )
    one_error(r, "not a checkpoint")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        ([], "plain update (--no-residual)"),  # the residual form starts at MRT already
        (["--no-residual", "--a1", 2, "--a2", 2], "a2 >= 2*Nt = 4"),
    ],
)
def test_train_mrt_start_misuse(tiny_data, tmp_path, extra, needle):
    r = run(
        "train",
        "--scenes",
        tiny_data["train"],
        "--out",
        tmp_path / "ck",
        "--arch",
        "tiny",
        "--epochs",
        1,
        "--mrt-start",
        *extra,
    )
    one_error(r, needle)
    assert not (tmp_path / "ck").exists()


def test_train_svd_init_of_another_K(tiny_ckpts, tmp_path):
    from tinyrrm.training import scenes as sc

    p = sc.save(sc.generate(4, 5, 2, 0), tmp_path / "k5.npz")
    r = run(
        "train",
        "--scenes",
        p,
        "--out",
        tmp_path / "ck",
        "--arch",
        "tiny",
        "--a1",
        2,
        "--a2",
        2,
        "--mode",
        "svd",
        "--init",
        tiny_ckpts["full"],
        "--epochs",
        0,
    )
    one_error(r, "K=6")
    assert not (tmp_path / "ck").exists()


def test_train_corrupt_training_state_is_one_line(tiny_data, tmp_path):
    """A damaged train_state.pt in --out (a killed disk, a copy cut short) is named, not a traceback."""
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "train_state.pt").write_bytes(b"PK\x03\x04 not really a zip")
    r = run("train", "--scenes", tiny_data["train"], "--out", ck, "--arch", "tiny", "--epochs", 1)
    one_error(r, "corrupt training state")
    assert sorted(x.name for x in ck.iterdir()) == ["train_state.pt"]


DAMAGE = {  # how a checkpoint folder is broken -> text the error must contain
    "missing weights": (lambda d: (d / "weights.safetensors").unlink(), "not a checkpoint"),
    "config not JSON": (lambda d: (d / "config.json").write_text("{not json"), "corrupt"),
    "weights cut short": (
        lambda d: (d / "weights.safetensors").write_bytes((d / "weights.safetensors").read_bytes()[:100]),
        "corrupt",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_evaluate_corrupt_checkpoint(tiny_data, tiny_ckpts, tmp_path, damage):
    import shutil

    broken = shutil.copytree(tiny_ckpts["lr"], tmp_path / "broken")
    harm, needle = DAMAGE[damage]
    harm(broken)
    r = run(
        "evaluate",
        "--scenes",
        tiny_data["test"],
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        broken,
        "--out",
        tmp_path / "w.npz",
    )
    one_error(r, needle)
    assert not (tmp_path / "w.npz").exists()


def test_evaluate_json(tiny_data, tiny_ckpts):
    r = run(
        "evaluate",
        "--scenes",
        tiny_data["test"],
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--json",
    )
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert set(rep["ratio"]) == {"mpgnn/wmmse", "lrmpgnn/wmmse", "lrmpgnn/mpgnn"}


def test_evaluate_k_above_checkpoint(tiny_ckpts, tmp_path):
    from tinyrrm.training import scenes as sc

    p = sc.save(sc.generate(2, 9, 2, 0), tmp_path / "k9.npz")
    r = run("evaluate", "--scenes", p, "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"])
    one_error(r, "K=9")


def test_evaluate_fewer_pairs_than_checkpoint(tiny_ckpts, tmp_path):
    """K below the checkpoint's K is served (weights are shared over pairs); K above is an error."""
    from tinyrrm.training import scenes as sc

    p = sc.save(sc.generate(2, 4, 2, 0), tmp_path / "k4.npz")
    r = run("evaluate", "--scenes", p, "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sum_rate"]["lrmpgnn_torch"] > 0


def test_evaluate_nt_other_than_checkpoint(tiny_ckpts, tmp_path):
    from tinyrrm.training import scenes as sc

    p = sc.save(sc.generate(2, 6, 3, 0), tmp_path / "nt3.npz")
    r = run(
        "evaluate",
        "--scenes",
        p,
        "--mpgnn",
        tiny_ckpts["full"],
        "--lrmpgnn",
        tiny_ckpts["lr"],
        "--out",
        tmp_path / "w.npz",
    )
    one_error(r, "Nt=3")
    assert not (tmp_path / "w.npz").exists()


def test_console_script_error_goes_to_stderr(tmp_path):
    """The installed `tinyrrm` script itself: exit 2, one line on stderr, nothing on stdout."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("tinyrrm")
    np.savez(tmp_path / "bad.npz", H=np.full((2, 3, 3, 2), np.nan, np.complex64))
    r = subprocess.run(
        [str(exe), "train", "--scenes", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "ck")],
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and r.stdout == "" and len(lines) == 1, r.stderr
    assert lines[0].startswith("tinyrrm: error:") and "NaN" in lines[0]
    assert not (tmp_path / "ck").exists()


def test_history_table(tiny_ckpts):
    r = run("history", tiny_ckpts["full"], tiny_ckpts["lr"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:3] == ["epoch", "full", "lr"] and len(lines) == 1 + 3
    doc = json.loads((tiny_ckpts["lr"] / "config.json").read_text())
    assert float(lines[-1].split()[2]) == pytest.approx(doc["history"][-1]["val_rate"], abs=5e-4)


def test_history_png(tiny_ckpts, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r = run("history", tiny_ckpts["full"], tiny_ckpts["lr"], "--png", a)
    assert r.exit_code == 0, r.output
    assert run("history", tiny_ckpts["full"], tiny_ckpts["lr"], "--png", b).exit_code == 0
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and a.read_bytes() == b.read_bytes()


def test_history_labels_and_empty(tiny_ckpts, tmp_path):
    from tinyrrm.training import history as hi

    # two folders of the same name are told apart by their paths
    twin = tmp_path / "x" / "full"
    shutil.copytree(tiny_ckpts["full"], twin)
    assert list(hi.read([tiny_ckpts["full"], twin])) == [str(tiny_ckpts["full"]), str(twin)]
    # a checkpoint without epochs (svd truncation, --epochs 0) has nothing to draw: one error, no file
    bare = tmp_path / "bare"
    shutil.copytree(tiny_ckpts["full"], bare)
    doc = json.loads((bare / "config.json").read_text())
    doc["history"] = []
    (bare / "config.json").write_text(json.dumps(doc))
    one_error(run("history", bare, "--png", tmp_path / "c.png"), "no training history")
    assert not (tmp_path / "c.png").exists()


def test_export_unknown_target():
    one_error(run("export", "target", "--target", "cortex-m99"), "'--target': 'cortex-m99' is not one of 'cortex-m0'")


def test_size_json_ratios(tiny_ckpts):
    r = run("size", "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"], "--json", "--no-export")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert [L["layer"] for L in rep["lrmpgnn"]["layers"]] == ["msg1", "msg2", "upd1", "upd2"]
    # byte counts from the weight files themselves: fp32 = 4 per parameter; int8 = 1 per weight, 4 per bias
    from safetensors.numpy import load_file

    def counted(ck):
        t = {k: v for k, v in load_file(str(ck / "weights.safetensors")).items() if not k.startswith("norm_")}
        n_b = sum(v.size for k, v in t.items() if k.endswith(".bias"))
        n_w = sum(v.size for k, v in t.items() if not k.endswith(".bias"))
        return 4 * (n_w + n_b), n_w + 4 * n_b

    full32, _ = counted(tiny_ckpts["full"])
    lr32, lr8 = counted(tiny_ckpts["lr"])
    assert (rep["mpgnn"]["bytes_fp32"], rep["lrmpgnn"]["bytes_fp32"], rep["lrmpgnn"]["bytes_int8"]) == (
        full32,
        lr32,
        lr8,
    )
    assert rep["ratio"]["fp32_over_int8"] == pytest.approx(full32 / lr8)


def test_export_bad_input_is_one_line(tiny_ckpts, tmp_path):
    one_error(run("export", "model", "--checkpoint", tmp_path / "nope", "--out", tmp_path / "o"), "not a checkpoint")
    assert not (tmp_path / "o").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    (bad / "weights.safetensors").write_bytes(b"\0")
    one_error(run("export", "model", "--checkpoint", bad, "--out", tmp_path / "o"), "corrupt")
    assert not (tmp_path / "o").exists()
    r = run("export", "onnx", "--checkpoint", tiny_ckpts["lr"], "--opset", "9", "--out", tmp_path / "o")
    one_error(r, "unsupported ONNX opset 9")
    assert not (tmp_path / "o").exists()
    one_error(run("export", "c", "--export-dir", tmp_path / "nothing", "--out", tmp_path / "o"), "no export")
    assert not (tmp_path / "o").exists()


def _iid_file(tmp_path, K=6):
    from tinyrrm.training import scenes as sc

    return sc.save(sc.generate(8, K, 2, 0, mode="iid"), tmp_path / "iid.npz")  # no 'dist'


def test_scenes_without_dist_and_a_cut(tiny_ckpts, tmp_path):
    iid = _iid_file(tmp_path)
    one_error(run("train", "--scenes", iid, "--out", tmp_path / "ck", "--arch", "tiny"), "--cut 0")
    assert not (tmp_path / "ck").exists()
    r = run("train", "--scenes", iid, "--out", tmp_path / "ck", "--arch", "tiny", "--cut", 0, "--epochs", 1)
    assert r.exit_code == 0, r.output
    args = ["evaluate", "--scenes", iid, "--mpgnn", tiny_ckpts["full"], "--lrmpgnn", tiny_ckpts["lr"]]
    one_error(run(*args, "--out", tmp_path / "w.npz"), "iid.npz: no field 'dist'")
    assert not (tmp_path / "w.npz").exists()
    r = run(*args, "--cut", 0, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sum_rate"]["lrmpgnn_torch"] > 0


def test_evaluate_without_the_cut_is_the_complete_graph(tiny_data, tiny_ckpts):
    """--cut 0 gives the beams of the same model on graphs with every link."""
    import torch

    from tinyrrm.evaluate import evaluate
    from tinyrrm.training import checkpoint as ck
    from tinyrrm.training import scenes as sc
    from tinyrrm.training.metrics import sum_rate
    from tinyrrm.training.train import prepare

    rep = evaluate(tiny_data["test"], tiny_ckpts["full"], tiny_ckpts["lr"], progress=False, cut=False)
    model, _ = ck.load(tiny_ckpts["lr"])
    s = sc.load(tiny_data["test"])
    data = prepare(s, None)
    assert data.mask.all(dim=0).sum() == s.K * (s.K - 1)
    with torch.no_grad():
        V = model(data.H, data.mask).numpy()
    want = float(sum_rate(s.H, V, s.noise_var, s.weights).mean())
    assert rep["sum_rate"]["lrmpgnn_torch"] == pytest.approx(want, rel=1e-5)
    assert (
        rep["sum_rate"]["lrmpgnn_torch"]
        != evaluate(tiny_data["test"], tiny_ckpts["full"], tiny_ckpts["lr"], progress=False)["sum_rate"][
            "lrmpgnn_torch"
        ]
    )


@pytest.mark.parametrize(
    "cmd", [["train", "--scenes", "SC", "--out", "O", "--arch", "tiny"], ["evaluate", "--scenes", "SC"]]
)
def test_negative_cut_is_refused(cmd, tiny_data, tmp_path):
    cmd = [tiny_data["train"] if a == "SC" else tmp_path / "o" if a == "O" else a for a in cmd]
    one_error(run(*cmd, "--cut", -5), "--cut must be a distance >= 0")
    assert not (tmp_path / "o").exists()


def test_export_prefix_option(tiny_ckpts, tiny_data, tmp_path):
    """--prefix of export c / export target: a bad one is one error before any work, nothing
    written; a good one names every symbol and is recorded in the regenerating command."""
    from tinyrrm.export import stage

    for bad, needle in (("int", "C keyword"), ("Beam", "lower-case letter"), ("a-b", "a-z, 0-9 and _")):
        r = run("export", "target", "--prefix", bad, "--lrmpgnn", tmp_path / "nope", "--out", tmp_path / "o")
        one_error(r, f"--prefix {bad!r} is not a valid C prefix: it")
        one_error(r, needle)
        assert not (tmp_path / "o").exists()
    exp = stage.export_model(tiny_ckpts["lr"], tmp_path / "exp", tiny_data["train"], n_calib=8, progress=False)
    one_error(run("export", "c", "--export-dir", exp, "--prefix", "tr", "--out", tmp_path / "o"), "shared kernels")
    assert not (tmp_path / "o").exists()
    r = run("export", "c", "--export-dir", exp, "--prefix", "beam_b", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "int beam_b_infer(const beam_b_input *in, beam_b_output *out);" in (tmp_path / "o/model.h").read_text()
    assert "--target cortex-m4 --prefix beam_b\n" in (tmp_path / "o/model.c").read_text()[:600]
