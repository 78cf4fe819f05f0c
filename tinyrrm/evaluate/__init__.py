"""Evaluation stage: scenes + checkpoints -> sum rates, ratios and beamformers.

``evaluate()`` runs WMMSE, the full MPGNN and the LR-MPGNN on the same scenes
and reports mean weighted sum rates and their ratios. Beamformers come from a
*backend*; ``torch`` is defined here, later stages (ONNX, TFLM, generated C,
QEMU) register theirs in :data:`BACKENDS` under the same contract::

    backend(checkpoint_dir, scenes) -> V complex64 [N, K, Nt] with ||v_k||^2 <= p_max

so every backend is measured by the same command and the same metric code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tinyrrm import paths
from tinyrrm.errors import UsageError
from tinyrrm.evaluate.backends import BACKENDS as exported
from tinyrrm.export import stage
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training.fileio import atomic_write, check_out_file
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.scenes import Scenes, check_cut
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.train import prepare
from tinyrrm.training.wmmse import mrt, wmmse

Backend = Callable[[Path, Scenes], np.ndarray]

#: default committed checkpoints (shipped data: :mod:`tinyrrm.paths`)
DEFAULT_MPGNN = paths.MPGNN
DEFAULT_LRMPGNN = paths.LRMPGNN


def torch_backend(checkpoint_dir: Path, scenes: Scenes, batch: int = 50) -> np.ndarray:
    model, _ = ckpt.load(checkpoint_dir)
    ckpt.check_compatible(model, scenes.K, scenes.Nt, str(checkpoint_dir))
    data = prepare(scenes, model.cfg.cut_m, model.cfg.top_m)
    out = []
    with torch.no_grad():
        for s in range(0, len(data), batch):
            out.append(model(data.H[s : s + batch], data.mask[s : s + batch]))
    V = torch.cat(out).numpy() * math.sqrt(scenes.p_max)  # (N, K, Nt)
    return V.astype(np.complex64)


BACKENDS: dict[str, Backend] = {"torch": torch_backend}


def _register_export_backends() -> None:
    """The exported backends (onnx, tflite, tflm, generated C, QEMU) of :mod:`.backends`,
    added when one is asked for (they build their stage's files on first use)."""
    for name, fn in exported.items():
        BACKENDS.setdefault(name, fn)


def evaluate(
    scenes_path,
    mpgnn_dir=DEFAULT_MPGNN,
    lrmpgnn_dir=DEFAULT_LRMPGNN,
    backend: str = "torch",
    out_path=None,
    progress: bool = True,
    backend_options: dict | None = None,
    cut: bool = True,
    calib=None,
) -> dict:
    """Sum rates of WMMSE, MPGNN and LR-MPGNN on ``scenes_path``.

    Writes ``out_path`` (npz: ``W_wmmse``, ``W_mpgnn_<backend>``,
    ``W_lrmpgnn_<backend>``, and ``W_mrt`` for reference, complex64 ``[N, K, Nt]``)
    atomically when given. ``cut`` False runs the models without their distance cut
    (every link an edge); with it, scenes without ``dist`` are refused. ``calib``: the
    calibration scenes of the exported backends (None: the one each checkpoint's export
    folder records); both models' exports are checked before any work.
    """
    if out_path is not None:
        check_out_file(out_path)
    if backend not in BACKENDS:
        _register_export_backends()
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; available: {', '.join(sorted(BACKENDS))}")
    scenes = load_scenes(scenes_path)
    if not cut:  # every distance 0 is under any cut: the complete graph, for every backend alike
        scenes = dataclasses.replace(scenes, dist=np.zeros((scenes.N, scenes.K, scenes.K), np.float32))
    for ck in (mpgnn_dir, lrmpgnn_dir):
        check_cut(scenes, _cut_of(ck), str(scenes_path))
    opts = dict(backend_options or {})
    if backend in exported:
        for ck in (mpgnn_dir, lrmpgnn_dir):  # no calibration to be had, or one that would replace another
            stage.plan(ck, calib_path=calib)
        opts["calib"] = calib
    measured: dict[str, dict] = {"mpgnn": {}, "lrmpgnn": {}}  # the qemu backend's counts, per model

    def run(name: str, ckpt_dir: Path):
        extra = {"measured": measured[name]} if backend == "qemu" else {}
        return BACKENDS[backend](ckpt_dir, scenes, **opts, **extra)

    W = {
        f"W_mpgnn_{backend}": run("mpgnn", Path(mpgnn_dir)),
        f"W_lrmpgnn_{backend}": run("lrmpgnn", Path(lrmpgnn_dir)),
    }
    rate = with_baselines(W, scenes, progress)
    m, lr, w = rate[f"mpgnn_{backend}"], rate[f"lrmpgnn_{backend}"], rate["wmmse"]
    report = {
        **header(scenes_path, scenes, backend),
        "models": {"mpgnn": str(mpgnn_dir), "lrmpgnn": str(lrmpgnn_dir)},
        "sum_rate": rate,
        "ratio": {"mpgnn/wmmse": _ratio(m, w), "lrmpgnn/wmmse": _ratio(lr, w), "lrmpgnn/mpgnn": _ratio(lr, m)},
    }
    for key in ("instructions_per_decision", "cycles_per_decision"):  # the qemu backend measures them
        if any(key in v for v in measured.values()):
            report[key] = {name: v[key] for name, v in measured.items() if key in v}
    if out_path is not None:
        save_beamformers(out_path, W)
    return report


def with_baselines(W: dict[str, np.ndarray], scenes: Scenes, progress: bool = True) -> dict[str, float]:
    """Add ``W_wmmse`` (Python WMMSE to convergence) and ``W_mrt`` to ``W``; -> the mean
    weighted sum rate of each entry, by its name without ``W_``."""
    W["W_wmmse"] = wmmse(scenes.H, scenes.p_max, scenes.noise_var, scenes.weights, progress=progress)
    W["W_mrt"] = mrt(scenes.H, scenes.p_max)  # full-power maximum-ratio transmission: the floor
    return {k[2:]: float(sum_rate(scenes.H, v, scenes.noise_var, scenes.weights).mean()) for k, v in W.items()}


def header(scenes_path, scenes: Scenes, backend: str) -> dict:
    """The keys every evaluation report starts with."""
    return {"scenes": str(scenes_path), "n_scenes": scenes.N, "K": scenes.K, "Nt": scenes.Nt, "backend": backend}


def _cut_of(checkpoint_dir) -> float | None:
    model, _ = ckpt.load(checkpoint_dir)
    return model.cfg.cut_m


def _ratio(a: float, b: float) -> float | None:
    """a / b; None (JSON null, shown as "-") where b is 0, e.g. scenes whose channels are all zero."""
    return a / b if b else None


def save_beamformers(path, W: dict[str, np.ndarray]) -> Path:
    arrays = {k: np.asarray(v, np.complex64) for k, v in sorted(W.items())}
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def format_report(rep: dict) -> str:
    """A person's view of :func:`evaluate`'s result."""
    b = rep["backend"]
    r = rep["sum_rate"]
    lines = [
        f"{rep['n_scenes']} scenes from {rep['scenes']} (K={rep['K']}, Nt={rep['Nt']}), backend {b}",
        f"  {'method':<18}{'sum rate':>12}",
        f"  {'WMMSE':<18}{r['wmmse']:>12.3f}",
        f"  {'MRT (full power)':<18}{r['mrt']:>12.3f}",
        f"  {'MPGNN':<18}{r[f'mpgnn_{b}']:>12.3f}",
        f"  {'LR-MPGNN':<18}{r[f'lrmpgnn_{b}']:>12.3f}",
    ]
    lines += [f"  {k:<18}{'-' if v is None else format(v, '12.4f'):>12}" for k, v in rep["ratio"].items()]
    return "\n".join(lines)


def to_json(rep: dict) -> str:
    return json.dumps(rep, indent=2, sort_keys=True)
