"""Checkpoints: ``weights.safetensors`` + ``config.json`` in one folder.

``config.json`` holds ``{"format": "tinyrrm-checkpoint/1", "model": ModelConfig,
"train": {...}, "data": {"sha256": ..., "n": ...}, "norm": {...}, "history": [...],
"digest": ...}``; the safetensors file holds every parameter and the normalisation
buffers (``norm_direct_mean`` …). ``digest`` (:func:`digest`) is a SHA-256 over the
weights file and the config together (all of it but ``history``, the per-epoch log):
an edited config (``compand``, ``residual``, ``steps``, ``cut_m``, ``K`` …) or a
swapped weights file is refused, even when the tensor shapes still match. Resume state (optimizer, epoch, RNG) is a separate
``train_state.pt`` that is not needed for inference and never committed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save as safetensors_bytes

from tinyrrm.errors import TinyrrmError

from .fileio import FolderMark, write_bytes, write_text
from .fileio import check_out_dir as _check_dir
from .models import MPGNN, ModelConfig

FORMAT = "tinyrrm-checkpoint/1"
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
DIGEST = "digest"
#: config keys outside the digest: the training log, which does not enter the model
UNSIGNED = ("history", DIGEST)
#: a checkpoint folder knows itself by its config.json
FOLDER = FolderMark(CONFIG, FORMAT, lambda doc: [WEIGHTS])


class CheckpointError(TinyrrmError, ValueError):
    """A checkpoint is missing, corrupt or does not match what it is used with."""


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_out_dir(out_dir) -> Path:
    """Up front: ``out_dir`` may take a checkpoint (its config.json and weights, if there,
    are a checkpoint's; other files in it are left alone)."""
    return _check_dir(out_dir, FOLDER, writes=(CONFIG, WEIGHTS))


def digest(weights: bytes, doc: dict) -> str:
    """SHA-256 over the weights file's bytes and the config ``doc`` but its :data:`UNSIGNED`
    keys, in canonical JSON (sorted keys, no spaces): reformatting the file keeps it,
    any edited value changes it."""
    signed = {k: v for k, v in doc.items() if k not in UNSIGNED}
    h = hashlib.sha256(b"tinyrrm-checkpoint-digest/1\0")
    h.update(hashlib.sha256(weights).digest())
    h.update(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _write_config(out: Path, doc: dict, weights: bytes) -> None:
    doc = {**doc, DIGEST: digest(weights, doc)}
    write_text(out / CONFIG, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def save(model: MPGNN, out_dir, meta: dict) -> Path:
    """Write ``out_dir/{weights.safetensors,config.json}`` atomically, file by file."""
    out = Path(out_dir)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    doc = {"format": FORMAT, "model": model.cfg.to_dict(), **meta}
    weights = safetensors_bytes(tensors, metadata={"format": FORMAT})
    write_bytes(out / WEIGHTS, weights)
    _write_config(out, doc, weights)
    return out


def seal(path) -> Path:
    """Add the digest to a checkpoint written before checkpoints carried one (check its
    config.json first: whatever it says is what gets signed). The weights are not touched."""
    folder = Path(path)
    doc = json.loads((folder / CONFIG).read_text())
    _write_config(folder, doc, (folder / WEIGHTS).read_bytes())
    return folder


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
    weights = w_path.read_bytes()
    try:
        tensors = load_bytes(weights)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{w_path}: corrupt weights ({e})") from None
    if DIGEST not in doc:
        raise CheckpointError(
            f"{cfg_path}: no integrity digest (written before checkpoints carried one); if its settings are "
            f'the ones it was trained with, add it: python -c "from tinyrrm.training import checkpoint; '
            f"checkpoint.seal('{folder}')\""
        )
    if doc[DIGEST] != digest(weights, doc):
        raise CheckpointError(
            f"{folder}: {CONFIG} or {WEIGHTS} was changed after training (the digest does not "
            "match); a checkpoint's settings are part of the model: retrain, or restore both files"
        )
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
        raise CheckpointError(
            f"{source}: scenes have Nt={Nt} antennas but {model.cfg.name} was built for Nt={model.cfg.Nt}"
        )
    if K > model.cfg.K:
        raise CheckpointError(
            f"{source}: scenes have K={K} pairs but {model.cfg.name} was built for K <= {model.cfg.K}"
        )


def hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()
