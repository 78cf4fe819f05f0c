"""Training, checkpoints, resume, SVD mode and evaluation on tiny scenes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyrrm.evaluate import evaluate
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training import scenes as sc
from tinyrrm.training.models import ModelConfig, svd_truncate
from tinyrrm.training.train import TrainConfig, mean_sum_rate, prepare, train

TINY = ModelConfig(arch="tiny", K=6, Nt=2)


def test_training_improves_sum_rate(tiny_data, tiny_ckpts):
    model, doc = ckpt.load(tiny_ckpts["full"])
    hist = doc["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert all(np.isfinite([h["train_rate"], h["val_rate"], h["seconds"]]).all() for h in hist)
    torch.manual_seed(0)
    from tinyrrm.training.models import MPGNN, norm_stats

    data = prepare(sc.load(tiny_data["train"]), TINY.cut_m)
    untrained = MPGNN(TINY, norm_stats(data.H.numpy()))
    val = prepare(sc.load(tiny_data["val"]), TINY.cut_m)
    assert mean_sum_rate(model, val) > mean_sum_rate(untrained, val)


def test_checkpoint_roundtrip_and_metadata(tiny_data, tiny_ckpts):
    model, doc = ckpt.load(tiny_ckpts["lr"])
    assert doc["model"]["a1"] == 4 and doc["model"]["a2"] == 2
    assert doc["data"]["sha256"] == ckpt.file_sha256(tiny_data["train"])
    assert set(doc["train"]) >= {"epochs", "batch", "lr", "seed", "mode"}
    again, _ = ckpt.load(tiny_ckpts["lr"] / "config.json")
    data = prepare(sc.load(tiny_data["test"]), TINY.cut_m)
    with torch.no_grad():
        assert torch.equal(model(data.H, data.mask), again(data.H, data.mask))


def test_same_seed_gives_identical_weights(tiny_data, tmp_path):
    cfg = TrainConfig(epochs=1, batch=16, seed=3)
    a = train(tiny_data["train"], tmp_path / "a", TINY, cfg, progress=False)
    b = train(tiny_data["train"], tmp_path / "b", TINY, cfg, progress=False)
    assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()


def test_resume_continues_exactly(tiny_data, tmp_path, capsys):
    """A finished (or interrupted) constant-lr run continues where it stopped, and says so."""
    two = train(tiny_data["train"], tmp_path / "two", TINY, TrainConfig(epochs=2, batch=16), progress=False)
    train(tiny_data["train"], tmp_path / "res", TINY, TrainConfig(epochs=1, batch=16), progress=False)
    capsys.readouterr()
    res = train(tiny_data["train"], tmp_path / "res", TINY, TrainConfig(epochs=2, batch=16), progress=True)
    out = capsys.readouterr().out
    assert "resuming " in out and "at epoch 1/2" in out, out
    assert (two / "weights.safetensors").read_bytes() == (res / "weights.safetensors").read_bytes()
    _, doc = ckpt.load(res)
    assert [h["epoch"] for h in doc["history"]] == [1, 2]


def test_resume_with_augmentation_continues_exactly(tiny_data, tmp_path):
    """The generator behind shuffles and augmentations is saved with the state: replaying the
    shuffles alone would lose the augmentations' draws."""
    cfg = dict(batch=16, augment=True, lr_final=1e-4)
    two = train(tiny_data["train"], tmp_path / "two", TINY, TrainConfig(epochs=2, **cfg), progress=False)
    cut = tmp_path / "cut"
    _interrupted_after_one_epoch(tiny_data["train"], cut, TrainConfig(epochs=2, **cfg))
    again = train(tiny_data["train"], cut, TINY, TrainConfig(epochs=2, **cfg), progress=False)
    assert (two / "weights.safetensors").read_bytes() == (again / "weights.safetensors").read_bytes()


def _interrupted_after_one_epoch(scenes, out, cfg):
    """Train ``cfg`` and stop it after its first epoch, as a killed run would be."""
    import tinyrrm.training.train as tr

    real = tr.atomic_write

    class Stop(Exception):
        pass

    def write_then_stop(path, fn):
        real(path, fn)
        if Path(path).name == tr.STATE:
            raise Stop

    tr.atomic_write = write_then_stop
    try:
        with pytest.raises(Stop):
            train(scenes, out, TINY, cfg, progress=False)
    finally:
        tr.atomic_write = real


def test_resume_refuses_a_state_of_another_run(tiny_data, tmp_path):
    train(tiny_data["train"], tmp_path / "r", TINY, TrainConfig(epochs=1, batch=16, seed=0), progress=False)
    before = (tmp_path / "r" / "weights.safetensors").read_bytes()
    with pytest.raises(ckpt.CheckpointError, match=r"another run \(train.seed 0 != 1\); pass --no-resume"):
        train(tiny_data["train"], tmp_path / "r", TINY, TrainConfig(epochs=1, batch=16, seed=1), progress=False)
    assert (tmp_path / "r" / "weights.safetensors").read_bytes() == before  # nothing overwritten
    train(
        tiny_data["train"], tmp_path / "r", TINY, TrainConfig(epochs=1, batch=16, seed=1), resume=False, progress=False
    )


def test_a_diverging_run_stops_with_one_error(tiny_data, tmp_path, monkeypatch):
    for bad in (float("inf"), float("nan"), 3e38, 0.0):
        with pytest.raises(ValueError, match="0 < lr <= 1"):
            TrainConfig(lr=bad)
    with pytest.raises(ValueError, match="lr_final must lie in"):
        TrainConfig(lr=1e-3, lr_final=1e-2)
    import tinyrrm.training.train as tr

    real, calls = tr.sum_rate_torch, []

    def nan_from(step):  # the sum rate turns NaN from the given training step on
        def rate(*a, **kw):
            r = real(*a, **kw)
            calls.append(1)
            return r * float("nan") if torch.is_grad_enabled() and len(calls) >= step else r

        return rate

    monkeypatch.setattr(tr, "sum_rate_torch", nan_from(2))
    with pytest.raises(ValueError, match=r"training diverged: the loss is nan at epoch 1, step 2 .*nothing was saved"):
        train(tiny_data["train"], tmp_path / "d", TINY, TrainConfig(epochs=2, batch=16), progress=False)
    assert not (tmp_path / "d" / "weights.safetensors").exists()
    calls.clear()
    monkeypatch.setattr(tr, "sum_rate_torch", nan_from(5))  # 3 steps an epoch: epoch 2, step 2
    with pytest.raises(ValueError, match=r"at epoch 2, step 2 .*the last good epoch is saved in"):
        train(tiny_data["train"], tmp_path / "e", TINY, TrainConfig(epochs=2, batch=16), progress=False)
    assert ckpt.load(tmp_path / "e")[1]["history"][-1]["epoch"] == 1


def test_svd_mode_without_finetune_is_pure_truncation(tiny_data, tiny_ckpts, tmp_path):
    cfg = TrainConfig(epochs=0, mode="svd", init=str(tiny_ckpts["full"]))
    out = train(tiny_data["train"], tmp_path / "svd", ModelConfig(arch="tiny", K=6, a1=2, a2=2), cfg, progress=False)
    got, _ = ckpt.load(out)
    full, _ = ckpt.load(tiny_ckpts["full"])
    ref = svd_truncate(full, 2, 2)
    for k, v in ref.state_dict().items():
        assert torch.allclose(got.state_dict()[k], v), k


def test_train_rejects_mismatched_scenes(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="K=6"):
        train(tiny_data["train"], tmp_path / "x", ModelConfig(arch="tiny", K=8), TrainConfig(epochs=1), progress=False)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", ["missing_weights", "bad_json", "truncated", "wrong_shape", "nan"])
def test_corrupt_checkpoint_is_one_clear_error(tiny_ckpts, tmp_path, damage):
    import shutil

    d = tmp_path / "ck"
    shutil.copytree(tiny_ckpts["lr"], d)
    w = d / "weights.safetensors"
    if damage == "missing_weights":
        w.unlink()
    elif damage == "bad_json":
        (d / "config.json").write_text("{not json")
    elif damage == "truncated":
        w.write_bytes(w.read_bytes()[:100])
    elif damage == "wrong_shape":
        doc = json.loads((d / "config.json").read_text())
        doc["model"]["a1"] = 3
        (d / "config.json").write_text(json.dumps(doc))
    elif damage == "nan":
        from safetensors.torch import load_file, save_file

        t = load_file(w)
        t["msg1.bias"][0] = float("nan")
        save_file(t, w)
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(d)
    msg = str(err.value)
    assert "\n" not in msg and str(d) in msg, msg  # one line that names the folder


def test_evaluate_torch_backend(tiny_data, tiny_ckpts, tmp_path):
    rep = evaluate(tiny_data["test"], tiny_ckpts["full"], tiny_ckpts["lr"], out_path=tmp_path / "w.npz", progress=False)
    r = rep["sum_rate"]
    assert set(r) == {"wmmse", "mrt", "mpgnn_torch", "lrmpgnn_torch"}
    assert r["wmmse"] >= r["mrt"] - 1e-9  # WMMSE starts from MRT and never decreases
    assert rep["ratio"]["lrmpgnn/mpgnn"] == pytest.approx(r["lrmpgnn_torch"] / r["mpgnn_torch"])
    with np.load(tmp_path / "w.npz") as f:
        assert sorted(f.files) == ["W_lrmpgnn_torch", "W_mpgnn_torch", "W_mrt", "W_wmmse"]
        for k in f.files:
            assert f[k].shape == (16, 6, 2) and f[k].dtype == np.complex64
            assert (np.abs(f[k]) ** 2).sum(-1).max() <= 1 + 1e-5


def test_evaluate_rejects_wrong_nt(tiny_ckpts, tmp_path):
    p = sc.save(sc.generate(4, 6, 3, 0), tmp_path / "nt3.npz")
    with pytest.raises(ckpt.CheckpointError, match="Nt=3"):
        evaluate(p, tiny_ckpts["full"], tiny_ckpts["lr"], out_path=tmp_path / "w.npz", progress=False)
    assert not (tmp_path / "w.npz").exists()


def test_augment_keeps_rates_for_rotated_beamformers():
    """h_tr -> e^{iθ_r} Q_t h_tr: the same beamformers rotated by Q_t give the same rates."""
    from tinyrrm.training.metrics import sum_rate_torch
    from tinyrrm.training.train import augment

    H = torch.randn(3, 5, 5, 2, dtype=torch.complex64)
    V = torch.randn(3, 5, 2, dtype=torch.complex64)
    H2 = augment(H, torch.Generator().manual_seed(1))
    # recover Q_t from the transmitter's own direct link: Q_t = H2[t,t] H[t,t]^+ is not unique for Nt=2,
    # so redraw it with the same generator state instead
    g = torch.Generator().manual_seed(1)
    G = torch.randn(3, 5, 2, 2, 2, generator=g)
    Q, R = torch.linalg.qr(torch.complex(G[..., 0], G[..., 1]))
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    Q = Q * (d / d.abs()).unsqueeze(-2)
    assert torch.allclose(Q.conj().transpose(-1, -2) @ Q, torch.eye(2, dtype=Q.dtype).expand_as(Q), atol=1e-5)
    V2 = torch.einsum("btuv,btv->btu", Q, V)
    assert torch.allclose(sum_rate_torch(H, V, 1.0), sum_rate_torch(H2, V2, 1.0), rtol=1e-5)
    assert not torch.allclose(H, H2)


def test_finetune_mode(tiny_data, tiny_ckpts, tmp_path):
    model, _ = ckpt.load(tiny_ckpts["lr"])
    out = train(
        tiny_data["train"],
        tmp_path / "ft",
        model.cfg,
        TrainConfig(epochs=1, batch=16, mode="finetune", init=str(tiny_ckpts["lr"]), augment=True, lr_final=1e-5),
        val_path=tiny_data["val"],
        progress=False,
    )
    ft, doc = ckpt.load(out)
    assert ft.cfg == model.cfg and doc["train"]["augment"] and doc["train"]["mode"] == "finetune"
    with pytest.raises(ckpt.CheckpointError, match="not the requested"):
        train(
            tiny_data["train"],
            tmp_path / "bad",
            ModelConfig(arch="tiny", K=6, Nt=2, a1=2, a2=2),
            TrainConfig(epochs=1, mode="finetune", init=str(tiny_ckpts["lr"])),
            progress=False,
        )
    with pytest.raises(ValueError, match="needs --init"):
        TrainConfig(mode="finetune")


def test_mrt_start_is_for_plain_scratch_training(tiny_data, tiny_ckpts, tmp_path):
    plain = ModelConfig(arch="tiny", K=6, Nt=2, residual=False)
    out = train(
        tiny_data["train"],
        tmp_path / "m",
        plain,
        TrainConfig(epochs=1, batch=16, mrt_start=True),
        val_path=tiny_data["val"],
        progress=False,
    )
    assert ckpt.load(out)[1]["train"]["mrt_start"] is True
    with pytest.raises(ValueError, match="plain update"):
        train(tiny_data["train"], tmp_path / "r", TINY, TrainConfig(epochs=1, mrt_start=True), progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="mode 'scratch' only"):
        TrainConfig(mode="svd", init=str(tiny_ckpts["full"]), mrt_start=True)


def test_resume_refuses_a_state_of_an_older_format(tiny_data, tmp_path, capsys):
    """A train_state.pt without this format's tag (an older trainer's) is refused in one line that
    says what to do, and nothing is overwritten; --no-resume starts over."""
    cfg = TrainConfig(epochs=2, batch=16)
    train(tiny_data["train"], tmp_path / "old", TINY, TrainConfig(epochs=1, batch=16), progress=False)
    state_path = tmp_path / "old" / "train_state.pt"
    st = torch.load(state_path, weights_only=True)
    del st["format"], st["gen"], st["ident"]["train"]["mrt_start"]  # as written before these existed
    torch.save(st, state_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    with pytest.raises(ckpt.CheckpointError) as err:
        train(tiny_data["train"], tmp_path / "old", TINY, cfg, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and str(state_path) in msg and "older" in msg, msg
    assert "delete it or pass --no-resume" in msg, msg
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
    capsys.readouterr()
    out = train(tiny_data["train"], tmp_path / "old", TINY, cfg, resume=False, progress=True)
    assert "resuming" not in capsys.readouterr().out
    assert [h["epoch"] for h in ckpt.load(out)[1]["history"]] == [1, 2]


def _overshoot(model, data) -> float:
    model.train()
    with torch.enable_grad():
        model(data.H, data.mask)
    return float(model.overshoot)


def test_clip_penalty_pulls_a_saturated_update_back(tiny_data, tiny_ckpts, tmp_path):
    """An update far beyond unit power (power_scale flat: no gradient for power control) is
    pulled back by --clip-penalty and not without it."""
    model, doc = ckpt.load(tiny_ckpts["full"])
    with torch.no_grad():
        model.upd2.bias += 1.5
    sat = ckpt.save(model, tmp_path / "sat", {k: v for k, v in doc.items() if k not in ("format", "model")})
    data = prepare(sc.load(tiny_data["train"]), model.cfg.cut_m)
    before = _overshoot(model, data)
    after = {}
    for w in (0.0, 1.0):
        out = train(
            tiny_data["train"],
            tmp_path / f"ft{w}",
            model.cfg,
            TrainConfig(epochs=3, batch=16, lr=0.02, mode="finetune", init=str(sat), clip_penalty=w),
            progress=False,
        )
        after[w] = _overshoot(ckpt.load(out)[0], data)
    assert before > 1 and after[1.0] < 0.5 * before and after[1.0] < 0.5 * after[0.0], (before, after)
    with pytest.raises(ValueError, match="clip_penalty must be >= 0"):
        TrainConfig(clip_penalty=-1.0)


def test_overshoot_is_the_mean_squared_excess_over_steps():
    from tinyrrm.training.models import MPGNN, edge_mask

    torch.manual_seed(0)
    model = MPGNN(ModelConfig(arch="tiny", K=4, Nt=2, residual=False, cut_m=None))
    H = torch.complex(torch.randn(2, 4, 4, 2), torch.randn(2, 4, 4, 2))
    norms = []
    scale = model.power_scale
    model.power_scale = lambda o: (norms.append(o.norm(dim=-1)), scale(o))[1]
    with torch.no_grad():
        model.upd2.bias += 2.0
    model.train()
    model(H, edge_mask(4, None, None, 2))
    want = sum(float((n - 1).clamp_min(0).pow(2).mean()) for n in norms)
    assert len(norms) == 3 and want > 0
    assert float(model.overshoot) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "edit",
    [
        ("model", "compand", False),
        ("model", "residual", False),
        ("model", "steps", 2),
        ("model", "cut_m", 100.0),
        ("model", "K", 9),
        ("norm", None, None),
    ],
)
def test_an_edited_config_is_refused(tiny_ckpts, tmp_path, edit):
    """The digest covers the config with the weights: settings that keep every tensor shape
    still change the results, so an edit is one clear error."""
    import shutil

    d = shutil.copytree(tiny_ckpts["lr"], tmp_path / "ck")
    doc = json.loads((d / "config.json").read_text())
    section, key, value = edit
    if key is None:
        doc[section] = {"edited": True}
    else:
        doc[section][key] = value
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ckpt.CheckpointError, match="changed after training") as err:
        ckpt.load(d)
    assert "\n" not in str(err.value) and str(d) in str(err.value)


def test_digest_ignores_layout_and_history_and_seals_old_checkpoints(tiny_ckpts, tmp_path):
    import shutil

    d = shutil.copytree(tiny_ckpts["lr"], tmp_path / "ck")
    weights = (d / "weights.safetensors").read_bytes()
    doc = json.loads((d / "config.json").read_text())
    doc["history"] = doc["history"][:1]
    (d / "config.json").write_text(json.dumps(doc))  # other layout, shorter log: same model
    ckpt.load(d)
    del doc["digest"]
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ckpt.CheckpointError, match="no integrity digest.*seal"):
        ckpt.load(d)
    ckpt.seal(d)
    ckpt.load(d)
    assert (d / "weights.safetensors").read_bytes() == weights


def test_committed_models_carry_the_digest():
    root = Path(__file__).resolve().parents[1]
    for name in ("mpgnn_paper", "lrmpgnn_paper"):
        doc = json.loads((root / "models" / name / "config.json").read_text())
        assert doc["digest"] == ckpt.digest((root / "models" / name / "weights.safetensors").read_bytes(), doc)


def test_validation_may_have_fewer_pairs(tiny_data, tmp_path):
    val = sc.save(sc.generate(8, 4, 2, 5), tmp_path / "k4.npz")
    out = train(
        tiny_data["train"], tmp_path / "ck", TINY, TrainConfig(epochs=1, batch=48), val_path=val, progress=False
    )
    assert np.isfinite(ckpt.load(out)[1]["history"][0]["val_rate"])
    with pytest.raises(ValueError, match="K <= 6"):
        train(
            tiny_data["train"],
            tmp_path / "ck2",
            TINY,
            TrainConfig(epochs=1),
            progress=False,
            val_path=sc.save(sc.generate(4, 8, 2, 5), tmp_path / "k8.npz"),
        )
    assert not (tmp_path / "ck2").exists()


@pytest.mark.parametrize("cut", [-1.0, 0.0, float("inf"), float("nan")])
def test_model_cut_must_be_a_positive_distance(cut):
    with pytest.raises(ValueError, match="cut_m"):
        ModelConfig(arch="tiny", K=6, Nt=2, cut_m=cut)


def test_a_top_m_model_trains_on_its_graph_and_refuses_to_export(tiny_data, tmp_path):
    from tinyrrm.errors import UsageError
    from tinyrrm.export.stage import export_model

    scenes = sc.load(tiny_data["train"])
    cfg = ModelConfig(arch="tiny", K=6, Nt=2, top_m=2)
    assert cfg.to_dict()["top_m"] == 2 and "top_m" not in TINY.to_dict()  # old configs stay as they were
    data = prepare(scenes, cfg.cut_m, cfg.top_m)
    np.testing.assert_array_equal(data.mask.numpy(), cfg.graph(scenes))
    assert (data.mask.numpy() <= scenes.edge_mask(cfg.cut_m)).all() and (data.mask.sum(1) <= 2).all()
    out = train(tiny_data["train"], tmp_path / "m", cfg, TrainConfig(epochs=1, batch=16), progress=False)
    model, doc = ckpt.load(out)
    assert model.cfg == cfg and doc["model"]["top_m"] == 2
    with pytest.raises(UsageError, match="top-2 interferer graph does not export"):
        export_model(out, tmp_path / "exp", calib_path=tiny_data["train"])


@pytest.mark.parametrize("m", [0, -3, 1.5, True])
def test_model_top_m_must_be_a_positive_integer(m):
    with pytest.raises(ValueError, match="top_m"):
        ModelConfig(arch="tiny", K=6, Nt=2, top_m=m)
