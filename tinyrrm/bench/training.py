"""``make bench``: throughput and training speed, measured, written as JSON.

Numbers here are wall-clock on the machine that runs the command; they are
benchmarks, never test assertions. The targets they are read against: one
training epoch over 2000 scenes (K=50, Nt=2) within 5 min for the full
``paper`` MPGNN and within 1 min for LR-MPGNN (16, 4).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from tinyrrm.training.models import MPGNN, ModelConfig
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.scenes import save as save_scenes
from tinyrrm.training.train import TrainConfig, prepare, train
from tinyrrm.training.wmmse import wmmse

CONFIGS = {
    "mpgnn_paper": ModelConfig(arch="paper"),
    "lrmpgnn_paper_16_4": ModelConfig(arch="paper", a1=16, a2=4),  # the LR-MPGNN speed target
    "lrmpgnn_paper_4_16": ModelConfig(arch="paper", a1=4, a2=16),  # the deployed default
}


def _throughput(model: MPGNN, data, batch: int = 50) -> float:
    model.eval()
    with torch.no_grad():
        model(data.H[:batch], data.mask[:batch])  # warm-up
        t = time.perf_counter()
        for s in range(0, len(data), batch):
            model(data.H[s : s + batch], data.mask[s : s + batch])
    return len(data) / (time.perf_counter() - t)


def run_bench(
    train_path, test_path, *, train_scenes: int = 2000, eval_scenes: int = 100, progress: bool = True
) -> dict:
    test = load_scenes(test_path).subset(slice(0, eval_scenes))
    t = time.perf_counter()
    wmmse(test.H, test.p_max, test.noise_var, test.weights, progress=progress)
    rep: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "wmmse": {"scenes": test.N, "K": test.K, "Nt": test.Nt, "scenes_per_s": test.N / (time.perf_counter() - t)},
        "inference": {},
        "train_epoch": {},
    }
    full_train = load_scenes(train_path)
    sub = full_train.subset(slice(0, min(train_scenes, full_train.N)))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_scenes(sub, Path(tmp) / "train.npz")
        for name, base in CONFIGS.items():
            cfg = ModelConfig(**{**base.to_dict(), "K": test.K, "Nt": test.Nt})
            rep["inference"][name] = {"scenes_per_s": _throughput(MPGNN(cfg), prepare(test, cfg.cut_m))}
            ck = train(path, Path(tmp) / name, cfg, TrainConfig(epochs=1), progress=progress)
            doc = json.loads((ck / "config.json").read_text())
            rep["train_epoch"][name] = {
                "scenes": sub.N,
                "batch": TrainConfig().batch,
                "seconds": doc["history"][0]["seconds"],
            }
    return rep  # the caller writes it, with the other parts' figures
