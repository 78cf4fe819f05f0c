"""The committed default checkpoints: loadable, as documented, reproducible data."""

from pathlib import Path

import numpy as np
import pytest

from tinyrrm.evaluate import torch_backend
from tinyrrm.export.size import deployed_bytes_from_checkpoint
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training import scenes as sc
from tinyrrm.training.models import model_bytes

ROOT = Path(__file__).resolve().parents[1]
FULL, LR = ROOT / "models/mpgnn_paper", ROOT / "models/lrmpgnn_paper"


@pytest.mark.parametrize("path,ranks", [(FULL, (None, None)), (LR, (4, 16))])
def test_default_checkpoint_is_as_documented(path, ranks):
    model, doc = ckpt.load(path)
    assert (model.cfg.arch, model.cfg.K, model.cfg.Nt) == ("paper", 50, 2)
    assert (model.cfg.a1, model.cfg.a2) == ranks
    assert doc["data"]["n"] == 2000 and len(doc["history"]) >= 1


def test_default_training_data_is_regenerated_bit_for_bit(tmp_path):
    """The checkpoints name the SHA-256 of their training scenes; `make data` must rebuild them."""
    _, doc = ckpt.load(FULL)
    path = sc.save(sc.generate(2000, 50, 2, seed=1), tmp_path / "train.npz")
    assert ckpt.file_sha256(path) == doc["data"]["sha256"]


@pytest.mark.slow
def test_default_models_run_and_meet_the_60x_size_target(tmp_path):
    full, _ = ckpt.load(FULL)
    lr, _ = ckpt.load(LR)
    assert model_bytes(full, "fp32") / model_bytes(lr, "int8") >= 60
    # with the requantization constants a firmware stores (export/size.py)
    assert model_bytes(full, "fp32") / deployed_bytes_from_checkpoint(lr) >= 60
    scenes = sc.generate(3, 50, 2, seed=2)
    for path in (FULL, LR):
        V = torch_backend(path, scenes)
        assert V.shape == (3, 50, 2) and np.isfinite(V).all()
        assert (np.abs(V) ** 2).sum(-1).max() <= scenes.p_max * (1 + 1e-5)
