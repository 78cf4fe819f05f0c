"""Shared fixtures: tiny scenes and tiny trained checkpoints; the slow tier."""

import pytest

from tinyrrm.training import scenes as sc
from tinyrrm.training.models import ModelConfig
from tinyrrm.training.train import TrainConfig, train

#: module fixtures that export the tiny models through TensorFlow (TFLite int8): every test
#: that uses one is in the slow tier, with the QEMU runs and the full-size models
TFLITE_EXPORT_FIXTURES = {"exported", "gen"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TFLITE_EXPORT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    paths = {}
    for name, n, seed in (("train", 48, 11), ("val", 16, 12), ("test", 16, 13)):
        paths[name] = sc.save(sc.generate(n, 6, 2, seed), d / f"{name}.npz")
    return paths


@pytest.fixture(scope="session")
def tiny_ckpts(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    full = train(
        tiny_data["train"],
        d / "full",
        ModelConfig(arch="tiny", K=6, Nt=2),
        TrainConfig(epochs=3, batch=16),
        val_path=tiny_data["val"],
        progress=False,
    )
    lr = train(
        tiny_data["train"],
        d / "lr",
        ModelConfig(arch="tiny", K=6, Nt=2, a1=4, a2=2),
        TrainConfig(epochs=3, batch=16),
        val_path=tiny_data["val"],
        progress=False,
    )
    return {"full": full, "lr": lr}
