"""Checkpoints: ``weights.safetensors`` + ``config.json`` in one folder.

``config.json`` holds ``{"format": "tinyrrm-checkpoint/1", "model": ModelConfig,
"train": {...}, "data": {"sha256": ..., "n": ...}, "norm": {...}, "history": [...]}``;
the safetensors file holds every parameter and the normalisation buffers
(``norm_direct_mean`` …). Resume state (optimizer, epoch, RNG) is a separate
``train_state.pt`` that is not needed for inference and never committed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from tinyrrm.errors import TinyrrmError

from .fileio import write_bytes, write_text

from .models import MPGNN, ModelConfig

FORMAT = "tinyrrm-checkpoint/1"
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"


class CheckpointError(TinyrrmError, ValueError):
    """A checkpoint is missing, corrupt or does not match what it is used with."""


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(model: MPGNN, out_dir, meta: dict) -> Path:
    """Write ``out_dir/{weights.safetensors,config.json}`` atomically, file by file."""
    out = Path(out_dir)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    doc = {"format": FORMAT, "model": model.cfg.to_dict(), **meta}
    write_bytes(out / WEIGHTS, safetensors_bytes(tensors, metadata={"format": FORMAT}))
    write_text(out / CONFIG, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out


def load(path) -> tuple[MPGNN, dict]:
    """Load a checkpoint folder (or its config.json) -> ``(model in eval mode, config doc)``."""
    p = Path(path)
    folder = p.parent if p.name == CONFIG else p
    cfg_path, w_path = folder / CONFIG, folder / WEIGHTS
    if not cfg_path.is_file() or not w_path.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint (needs {CONFIG} and {WEIGHTS})")
    try:
        doc = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: corrupt JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a {FORMAT} config")
    try:
        cfg = ModelConfig.from_dict(doc["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path}: bad model config ({e})") from None
    try:
        tensors = load_file(w_path)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{w_path}: corrupt weights ({e})") from None
    model = MPGNN(cfg)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:3]
        raise CheckpointError(f"{w_path}: tensors do not match {cfg.name} (first differences: {diff})")
    model.load_state_dict(tensors)
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{w_path}: tensor {k!r} holds NaN or Inf")
    return model.eval(), doc


def check_compatible(model: MPGNN, K: int, Nt: int, source: str) -> None:
    """One clear error when scenes do not fit a checkpoint."""
    if model.cfg.Nt != Nt:
        raise CheckpointError(f"{source}: scenes have Nt={Nt} antennas but {model.cfg.name} was built for Nt={model.cfg.Nt}")
    if K > model.cfg.K:
        raise CheckpointError(f"{source}: scenes have K={K} pairs but {model.cfg.name} was built for K <= {model.cfg.K}")


def hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()
