"""Rate metrics for the multi-user MISO interference network.

Conventions (shared with :mod:`tinyrrm.training.wmmse`):

* ``K`` transmitter/receiver pairs; transmitter ``k`` has ``Nt`` antennas,
  receivers have a single antenna.
* ``H[n, j, k, :]`` is the channel ``h_jk`` from transmitter ``j`` to
  receiver ``k`` in scene ``n``; the direct link of pair ``k`` is
  ``H[n, k, k]``.
* ``V[n, k, :]`` is the beamformer ``v_k`` of transmitter ``k``.
* Receiver ``k`` sees ``y_k = sum_j h_jk^H v_j s_j + z_k`` with
  ``z_k ~ CN(0, noise_var)``, so the link gain of transmitter ``j`` at
  receiver ``k`` is ``G_jk = |h_jk^H v_j|^2`` (``^H`` = conjugate transpose)
  and

      SINR_k = G_kk / (sum_{j != k} G_jk + noise_var)
      R_k    = log2(1 + SINR_k)                      [bits/s/Hz]
      WSR    = sum_k alpha_k R_k

Shapes:
    H        complex [N, K, K, Nt]   (torch: [B, K, K, Nt])
    V        complex [N, K, Nt]      (torch: [B, K, Nt])
    weights  real    [N, K]          (anything broadcastable to it; default ones)
    result   link_gains [N, K, K], rates [N, K], sum_rate [N]
"""

from __future__ import annotations

import math

import numpy as np

from tinyrrm.errors import InputError

__all__ = ["link_gains", "rates", "sum_rate", "sum_rate_torch"]

_LN2 = math.log(2.0)


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------
def positive_finite(name: str, x) -> float:
    """``x`` as a float, or one :class:`InputError` line naming ``name`` unless it is positive and finite."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive finite scalar, got {x!r}") from None
    if not math.isfinite(value) or value <= 0.0:
        raise InputError(f"{name} must be a positive finite scalar, got {x!r}")
    return value


def _check_hv(H, V) -> tuple[np.ndarray, np.ndarray]:
    """Return (H, V) as complex128 arrays after shape checks."""
    H = np.asarray(H)
    V = np.asarray(V)
    if H.ndim != 4 or H.shape[1] != H.shape[2]:
        raise InputError(f"H must have shape [N, K, K, Nt] (complex), got {H.shape}")
    N, K, _, Nt = H.shape
    if V.shape != (N, K, Nt):
        raise InputError(f"V must have shape [N, K, Nt] = {(N, K, Nt)} to match H {H.shape}, got {V.shape}")
    return H.astype(np.complex128, copy=False), V.astype(np.complex128, copy=False)


def check_weights(weights, N: int, K: int) -> np.ndarray:
    """Rate weights as float64 ``[N, K]`` (ones if None); finite and >= 0."""
    if weights is None:
        return np.ones((N, K), dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    try:
        w = np.broadcast_to(w, (N, K))
    except ValueError:
        raise InputError(f"weights must be broadcastable to [N, K] = {(N, K)}, got {w.shape}") from None
    if not np.all(np.isfinite(w)):
        raise InputError("weights contain NaN or Inf")
    if np.any(w < 0):
        raise InputError("weights must be non-negative")
    return w


# ----------------------------------------------------------------------------
# numpy metrics (float64)
# ----------------------------------------------------------------------------
def link_gains(H, V) -> np.ndarray:
    """Link power gains ``G[n, j, k] = |h_jk^H v_j|^2`` (tx ``j`` -> rx ``k``).

    Shapes:
        H: complex [N, K, K, Nt]; V: complex [N, K, Nt] -> G: float64 [N, K, K]
    """
    H, V = _check_hv(H, V)
    g = np.einsum("njkt,njt->njk", H.conj(), V)  # [N, K(tx j), K(rx k)] = h_jk^H v_j
    return g.real**2 + g.imag**2  # [N, K, K]


def rates(H, V, noise_var=1.0) -> np.ndarray:
    """Per-link rates ``R_k = log2(1 + G_kk / (sum_{j!=k} G_jk + noise_var))``.

    Shapes:
        H: complex [N, K, K, Nt]; V: complex [N, K, Nt] -> R: float64 [N, K]
    """
    nv = positive_finite("noise_var", noise_var)
    G = link_gains(H, V)  # [N, K, K]
    K = G.shape[1]
    signal = np.diagonal(G, axis1=1, axis2=2)  # [N, K]
    offdiag = 1.0 - np.eye(K)  # [K, K]
    interference = np.einsum("njk,jk->nk", G, offdiag)  # [N, K] sum over j != k
    return np.log1p(signal / (interference + nv)) / _LN2  # [N, K]


def sum_rate(H, V, noise_var=1.0, weights=None) -> np.ndarray:
    """Weighted sum rate ``sum_k alpha_k R_k`` per scene.

    Shapes:
        H: complex [N, K, K, Nt]; V: complex [N, K, Nt];
        weights: [N, K] (broadcastable, default ones) -> float64 [N]
    """
    R = rates(H, V, noise_var)  # [N, K]
    w = check_weights(weights, *R.shape)  # [N, K]
    return (w * R).sum(axis=1)  # [N]


# ----------------------------------------------------------------------------
# torch metric (training loss)
# ----------------------------------------------------------------------------
def sum_rate_torch(H, V, noise_var=1.0, weights=None):
    """Differentiable weighted sum rate (same formula as :func:`sum_rate`).

    Computed in the real dtype matching ``V`` (complex64 -> float32); ``H`` is
    cast to ``V``'s dtype/device.  No in-place operation touches ``V``, so the
    result can be back-propagated (use ``-sum_rate_torch(...).mean()`` as loss).

    Shapes:
        H: complex [B, K, K, Nt]; V: complex [B, K, Nt];
        weights: tensor/array broadcastable to [B, K] (default ones) -> [B]
    """
    import torch  # lazily: the numpy metrics serve the lean HIL image, which has no torch

    if not torch.is_tensor(V) or not V.is_complex():
        raise InputError("V must be a complex torch tensor of shape [B, K, Nt]")
    if not torch.is_tensor(H):
        H = torch.as_tensor(np.asarray(H))
    if H.dim() != 4 or H.shape[1] != H.shape[2]:
        raise InputError(f"H must have shape [B, K, K, Nt] (complex), got {tuple(H.shape)}")
    B, K, _, Nt = H.shape
    if tuple(V.shape) != (B, K, Nt):
        raise InputError(f"V must have shape [B, K, Nt] = {(B, K, Nt)} to match H, got {tuple(V.shape)}")
    nv = positive_finite("noise_var", noise_var)
    H = H.to(dtype=V.dtype, device=V.device)
    real_dtype = V.real.dtype

    g = torch.einsum("bjkt,bjt->bjk", H.conj(), V)  # [B, K(tx j), K(rx k)] = h_jk^H v_j
    G = g.real.square() + g.imag.square()  # [B, K, K]  (smooth at 0, unlike abs)
    signal = torch.diagonal(G, dim1=1, dim2=2)  # [B, K]
    offdiag = 1.0 - torch.eye(K, dtype=real_dtype, device=V.device)  # [K, K]
    interference = torch.einsum("bjk,jk->bk", G, offdiag)  # [B, K]
    R = torch.log1p(signal / (interference + nv)) / _LN2  # [B, K]
    if weights is None:
        return R.sum(dim=1)  # [B]
    w = torch.as_tensor(weights, dtype=real_dtype, device=V.device)
    try:
        w = torch.broadcast_to(w, (B, K))
    except RuntimeError:
        raise InputError(f"weights must be broadcastable to [B, K] = {(B, K)}, got {tuple(w.shape)}") from None
    return (w * R).sum(dim=1)  # [B]
