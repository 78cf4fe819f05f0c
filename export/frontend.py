"""The float front end a firmware runs around the int8 core, in numpy.

The exported int8 model (``model_int8.tflite``, the generated C) is *one*
message-passing step, the ``core``::

    core(x [K, 4Nt], e [K, K, 2Nt], mask [K, K, 1]) -> o [K, 2Nt]

and everything outside it is float work of O(K·Nt) per step, done here (and
in the generated C, which must agree within 1 LSB of the core's input
quantization):

* :func:`features` — compand + standardise the channels, MRT start ``v0``;
* :func:`step_update` — ``v <- (o + v) / max(1, ||o + v||)`` between steps
  (the residual update and the power scaling; a norm has no place in int8);
* :func:`run` — three steps of ``core``, sharing its weights.

Why the split (docs/DESIGN-NOTES.md §7): the power scaling needs a norm, a
division and a max, which int8 would resolve to a few bits on a unit-norm
beamformer; keeping it in float costs 4·Nt flops per node per step and lets
one set of int8 weights serve the three steps.

Conventions are those of :mod:`tinyrrm.training.models`: ``H[t, r]`` is the
channel from transmitter t to receiver r; the edge j -> k sits at
``[k, j]`` and carries ``H[k, j]`` (= h_kj); ``mask[k, j]`` is that edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from tinyrrm.training.models import MPGNN
from tinyrrm.training.scenes import Scenes

Core = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FrontEnd:
    """Normalisation constants of one checkpoint (float32 ``[2Nt]`` each)."""

    direct_mean: np.ndarray
    direct_std: np.ndarray
    cross_mean: np.ndarray
    cross_std: np.ndarray
    compand: bool
    steps: int
    residual: bool

    @classmethod
    def of(cls, model: MPGNN) -> FrontEnd:
        b = {
            k: getattr(model, f"norm_{k}").detach().numpy().astype(np.float32)
            for k in ("direct_mean", "direct_std", "cross_mean", "cross_std")
        }
        return cls(**b, compand=model.cfg.compand, steps=model.cfg.steps, residual=model.cfg.residual)

    def to_dict(self) -> dict:
        """JSON form (the export manifest's ``frontend``): float32 statistics as exact floats."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> FrontEnd:
        stats = {k: np.asarray(d[k], np.float32) for k in ("direct_mean", "direct_std", "cross_mean", "cross_std")}
        return cls(**stats, compand=bool(d["compand"]), steps=int(d["steps"]), residual=bool(d["residual"]))


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


def _real(h: np.ndarray) -> np.ndarray:
    return np.concatenate([h.real, h.imag], axis=-1)


def _power(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """``sum_a re_a² + im_a²`` over antennas, left to right in float32 (as the C)."""
    p = np.zeros(re.shape[:-1], np.float32)
    for a in range(re.shape[-1]):
        p = p + (re[..., a] * re[..., a] + im[..., a] * im[..., a])
    return p[..., None]


def features(fe: FrontEnd, H: np.ndarray):
    """Channels at unit noise -> core inputs, float32 op for op as the generated C.

    Shapes: H ``[N, K, K, Nt]`` complex -> v0 ``[N, K, 2Nt]``, d ``[N, K, 2Nt]``,
    e ``[N, K(recv), K(send), 2Nt]``, all float32.
    """
    H = np.asarray(H, np.complex64)
    re, im = H.real.astype(np.float32), H.imag.astype(np.float32)
    tiny = np.float32(1e-30)
    p = _power(re, im)  # (N, K, K, 1)
    idx = np.arange(H.shape[1])
    norm = np.maximum(np.sqrt(p[:, idx, idx]), tiny)  # (N, K, 1)
    v0 = np.concatenate([re[:, idx, idx] / norm, im[:, idx, idx] / norm], axis=-1)
    if fe.compand:  # h · ln(1 + ||h||²) / ||h||
        f = np.log1p(p) / np.maximum(np.sqrt(p), tiny)
        re, im = re * f, im * f
    hr = np.concatenate([re, im], axis=-1)  # (N, K, K, 2Nt)
    d = (hr[:, idx, idx] - fe.direct_mean) / fe.direct_std
    e = (hr - fe.cross_mean) / fe.cross_std
    return v0.astype(np.float32), d.astype(np.float32), e.astype(np.float32)


def step_update(fe: FrontEnd, o: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``P(o + v)`` (residual) or ``P(o)``; ``P(y) = y / max(1, ||y||)``. Shapes ``[..., 2Nt]``."""
    y = ((o + v) if fe.residual else o).astype(np.float32)
    n2 = np.zeros(y.shape[:-1], np.float32)
    for i in range(y.shape[-1]):  # left to right, as the C
        n2 = n2 + y[..., i] * y[..., i]
    return (y / np.maximum(np.float32(1.0), np.sqrt(n2))[..., None]).astype(np.float32)


def run(fe: FrontEnd, core: Core, H: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Beamformers of one scene through ``core``.

    Shapes: H ``[K, K, Nt]`` complex (unit noise), mask ``[K, K]`` bool ->
    V ``[K, Nt]`` complex64 with ``||v_k|| <= 1``.
    """
    v, d, e = (a[0] for a in features(fe, H[None]))
    m = mask.astype(np.float32)[..., None]  # (K, K, 1)
    for _ in range(fe.steps):
        x = np.concatenate([v, d], axis=-1)  # (K, 4Nt)
        v = step_update(fe, np.asarray(core(x, e, m), np.float32), v)
    nt = v.shape[-1] // 2
    return (v[:, :nt] + 1j * v[:, nt:]).astype(np.complex64)


def unit_noise(scenes: Scenes) -> np.ndarray:
    """``H · sqrt(p_max / noise_var)``: the model sees channels at unit noise and power."""
    return (scenes.H * math.sqrt(scenes.p_max / scenes.noise_var)).astype(np.complex64)
