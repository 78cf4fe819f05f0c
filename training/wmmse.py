"""Classical WMMSE beamforming baseline (Shi, Razaviyayn, Luo, He, IEEE TSP 2011).

Weighted sum-rate maximisation for the MISO interference channel

    max_V  sum_k alpha_k log2(1 + |h_kk^H v_k|^2 / (sum_{j!=k} |h_jk^H v_j|^2 + sigma^2))
    s.t.   ||v_k||^2 <= p_max                           for every transmitter k

(see :mod:`tinyrrm.training.metrics` for the channel conventions:
``H[n, j, k]`` = ``h_jk`` = channel from transmitter ``j`` to receiver ``k``).

WMMSE solves the equivalent weighted-MSE problem by block-coordinate descent;
starting from MRT at full power, one iteration is

    u_k = h_kk^H v_k / (sum_j |h_jk^H v_j|^2 + sigma^2)               (MMSE receiver)
    w_k = 1 / (1 - conj(u_k) h_kk^H v_k)                              (MSE weight, real >= 1)
        = (sum_j |h_jk^H v_j|^2 + sigma^2) / (sum_{j!=k} |h_jk^H v_j|^2 + sigma^2)
    A_k = sum_j alpha_j w_j |u_j|^2 h_kj h_kj^H                        (Nt x Nt, Hermitian PSD)
    b_k = alpha_k w_k u_k h_kk
    v_k = (A_k + mu_k I)^{-1} b_k

with ``mu_k = 0`` if that ``v_k`` (minimum-norm solution when ``A_k`` is
singular) satisfies the power limit, else the ``mu_k > 0`` with
``||v_k(mu_k)||^2 = p_max``.  With ``A_k = Q diag(lambda) Q^H`` and
``c = Q^H b_k``,

    ||v_k(mu)||^2 = sum_i |c_i|^2 / (lambda_i + mu)^2,

which is decreasing in ``mu``; ``mu_k`` is found by bisection on
``[0, sqrt(||b_k||^2 / p_max)]``, vectorised over all (scene, user) pairs.
The weighted sum rate is non-decreasing over iterations.

A sparse interferer set (``links`` or ``top_m``) runs the same iteration on the
channels with the links outside the set zeroed: receiver k's MMSE receiver and
weight see only its kept interferers, and transmitter k's ``A_k`` sums only over
the receivers that keep k. That is what a chip pays for: an iteration costs
about ``K (m + 1)`` link terms instead of ``K^2``. The rates reported (the
history) are always those of the full channels.

Everything is vectorised over scenes and users; the only Python loops are over
iterations, bisection steps and chunks of scenes.  A scene stops (is frozen)
once its weighted sum rate changes by less than ``tol`` between iterations, so
every scene follows the same trajectory whatever the chunking.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from tinyrrm.errors import InputError, UsageError

from .metrics import check_weights, positive_finite
from .scenes import top_m_links

__all__ = ["wmmse", "mrt"]

_LN2 = math.log(2.0)
_EIG_RTOL = 1e-12  # eigenvalues below this * lambda_max are treated as 0 (null space)
_BISECT_RTOL = 1e-12  # relative bracket width at which bisection stops
_BISECT_MAX = 200


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------
def _validate_channels(H) -> np.ndarray:
    """Check ``H`` is a finite numeric ``[N, K, K, Nt]`` array with K >= 2; return complex128."""
    try:
        H = np.asarray(H)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InputError(f"H must be an array of shape [N, K, K, Nt] (complex): {exc}") from None
    if H.dtype.kind not in "fciu" or H.dtype.kind == "b":
        raise InputError(f"H must be an array of shape [N, K, K, Nt] (complex), got dtype {H.dtype}")
    if H.ndim != 4:
        raise InputError(
            f"H must have shape [N, K, K, Nt] (complex), got ndim={H.ndim} shape={H.shape}"
            + (" (add a leading scene axis for a single scene)" if H.ndim == 3 else "")
        )
    N, K, K2, Nt = H.shape
    if K != K2:
        raise InputError(f"H must have shape [N, K, K, Nt] (complex), axes 1 and 2 differ: {H.shape}")
    if K < 2:
        raise InputError(f"H must have shape [N, K, K, Nt] with K >= 2 pairs, got K={K}")
    if Nt < 1:
        raise InputError(f"H must have shape [N, K, K, Nt] with Nt >= 1 antennas, got Nt={Nt}")
    if not np.all(np.isfinite(H)):
        raise InputError("H contains NaN or Inf")
    return H.astype(np.complex128, copy=False)


# ----------------------------------------------------------------------------
# building blocks (all vectorised; n = scenes in the current batch)
# ----------------------------------------------------------------------------
def _direct(H: np.ndarray) -> np.ndarray:
    """Direct channels ``h_kk``.  H [n, K, K, Nt] -> [n, K, Nt]."""
    K = H.shape[1]
    idx = np.arange(K)
    return H[:, idx, idx, :]  # [n, K, Nt]


def _mrt(Hd: np.ndarray, p_max: float) -> np.ndarray:
    """MRT at full power ``v_k = sqrt(p_max) h_kk / ||h_kk||`` (0 where h_kk = 0)."""
    nrm = np.linalg.norm(Hd, axis=-1, keepdims=True)  # [n, K, 1]
    safe = np.where(nrm > 0, nrm, 1.0)
    return np.where(nrm > 0, math.sqrt(p_max) * Hd / safe, 0.0)  # [n, K, Nt]


def mrt(H, p_max: float = 1.0) -> np.ndarray:
    """Maximum-ratio transmission at full power (the WMMSE initialisation).

    ``v_k = sqrt(p_max) h_kk / ||h_kk||``.

    Shapes:
        H: complex [N, K, K, Nt] -> V: complex64 [N, K, Nt]
    """
    H = _validate_channels(H)
    p_max = positive_finite("p_max", p_max)
    return _mrt(_direct(H), p_max).astype(np.complex64)


def _cross(H: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``g[n, j, k] = h_jk^H v_j``.  H [n, K, K, Nt], V [n, K, Nt] -> complex [n, K, K]."""
    return np.einsum("njkt,njt->njk", H.conj(), V)


def _stats(g: np.ndarray, noise_var: float):
    """From ``g = h_jk^H v_j`` return (s, total, sig, interf_noise), each [n, K].

    s = h_kk^H v_k (complex), total = sum_j |g_jk|^2 + sigma^2, sig = |s|^2,
    interf_noise = sum_{j!=k} |g_jk|^2 + sigma^2 (computed without cancellation).
    """
    K = g.shape[1]
    G = g.real**2 + g.imag**2  # [n, K, K]
    s = np.diagonal(g, axis1=1, axis2=2).copy()  # [n, K]
    sig = s.real**2 + s.imag**2  # [n, K]
    interf_noise = np.einsum("njk,jk->nk", G, 1.0 - np.eye(K)) + noise_var  # [n, K]
    return s, sig + interf_noise, sig, interf_noise


def _wsr(sig: np.ndarray, interf_noise: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Weighted sum rate [n] from signal power and interference+noise, both [n, K]."""
    return (alpha * np.log1p(sig / interf_noise)).sum(axis=1) / _LN2  # [n]


def _solve_power_constrained(A: np.ndarray, b: np.ndarray, p_max: float) -> np.ndarray:
    """Solve ``v = (A + mu I)^{-1} b`` with the WMMSE power-constrained ``mu >= 0``.

    ``mu = 0`` (minimum-norm solution on the range of A) if that gives
    ``||v||^2 <= p_max``; otherwise bisection for ``||v(mu)||^2 = p_max``.
    The upper end of the final bracket is used, so ``||v||^2 <= p_max`` always.

    Shapes:
        A: complex [m, K, Nt, Nt] Hermitian PSD; b: complex [m, K, Nt] -> v: complex [m, K, Nt]
    """
    lam, Q = np.linalg.eigh(A)  # lam [m, K, Nt] ascending, Q [m, K, Nt, Nt]
    lam = np.maximum(lam, 0.0)
    c = np.einsum("mkts,mkt->mks", Q.conj(), b)  # [m, K, Nt]  c = Q^H b
    c2 = c.real**2 + c.imag**2  # [m, K, Nt]
    # Null space of A (b lies in range(A) in exact arithmetic): drop those components.
    thresh = _EIG_RTOL * lam[..., -1:]  # [m, K, 1]
    rng = lam > thresh  # [m, K, Nt]
    c = np.where(rng, c, 0.0)
    c2 = np.where(rng, c2, 0.0)
    lam_safe = np.where(rng, lam, 1.0)  # [m, K, Nt]

    p0 = (c2 / lam_safe**2).sum(axis=-1)  # [m, K] power at mu = 0
    mu = np.zeros(p0.shape)  # [m, K]
    need = p0 > p_max  # [m, K]
    if np.any(need):
        c2n = c2[need]  # [q, Nt]
        lamn = lam_safe[need]  # [q, Nt]  (masked entries have c2 = 0, value irrelevant)
        lo = np.zeros(c2n.shape[0])  # [q]
        hi = np.sqrt(c2n.sum(axis=-1) / p_max)  # [q]  ||v(hi)||^2 <= ||b||^2/hi^2 = p_max
        for _ in range(_BISECT_MAX):
            mid = 0.5 * (lo + hi)  # [q]
            over = (c2n / (lamn + mid[:, None]) ** 2).sum(axis=-1) > p_max  # [q]
            lo = np.where(over, mid, lo)
            hi = np.where(over, hi, mid)
            if np.all(hi - lo <= _BISECT_RTOL * hi):
                break
        mu[need] = hi
    # For mu > 0 use the true eigenvalues (masked c is 0 there anyway).
    denom = np.where(mu[..., None] > 0, lam + mu[..., None], lam_safe)  # [m, K, Nt]
    v = np.einsum("mkts,mks->mkt", Q, c / denom)  # [m, K, Nt]
    # Guard against rounding: never exceed the power limit.
    pw = (v.real**2 + v.imag**2).sum(axis=-1, keepdims=True)  # [m, K, 1]
    return v * np.sqrt(p_max / np.maximum(pw, p_max))  # scale 1 unless pw > p_max


def _wmmse_step(H, V, s, total, interf_noise, alpha, p_max):
    """One WMMSE update of V for a batch of scenes.

    Shapes:
        H [m, K, K, Nt]; V, return [m, K, Nt]; s, total, interf_noise, alpha [m, K]
    """
    u = s / total  # [m, K]        MMSE receiver
    w = total / interf_noise  # [m, K]  = 1 / (1 - conj(u) s), real >= 1
    coef = alpha * w * (u.real**2 + u.imag**2)  # [m, K]  alpha_j w_j |u_j|^2
    A = np.einsum("mj,mkjt,mkjs->mkts", coef, H, H.conj())  # [m, K, Nt, Nt]
    b = (alpha * w * u)[..., None] * _direct(H)  # [m, K, Nt]
    return _solve_power_constrained(A, b, p_max)


def _wmmse_chunk(H, Hu, V, alpha, p_max, noise_var, max_iter, tol):
    """Run WMMSE on one chunk from ``V``; the updates see ``Hu`` (``H`` with the links outside
    the interferer set zeroed; ``H`` itself when dense), the rates ``H``.

    Returns (V [n, K, Nt] complex128, history list of [n] full-channel rates).
    """
    dense = Hu is H
    s, total, sig, inf = _stats(_cross(Hu, V), noise_var)  # each [n, K], the update's view
    f = _wsr(sig, inf, alpha)  # [n] the rate the updates optimise (the stopping test)
    history = [f.copy() if dense else _wsr(*_stats(_cross(H, V), noise_var)[2:], alpha)]
    active = np.arange(H.shape[0])  # indices of scenes still iterating
    for _ in range(max_iter):
        if active.size == 0:
            break
        Ha, aa = Hu[active], alpha[active]  # [a, K, K, Nt], [a, K]
        Vn = _wmmse_step(Ha, V[active], s[active], total[active], inf[active], aa, p_max)
        sn, tn, sgn, infn = _stats(_cross(Ha, Vn), noise_var)
        fn = _wsr(sgn, infn, aa)  # [a]
        V[active], s[active], total[active], inf[active] = Vn, sn, tn, infn
        done = np.abs(fn - f[active]) < tol  # [a]
        f[active] = fn
        if dense:
            history.append(f.copy())
        else:
            full = history[-1].copy()
            full[active] = _wsr(*_stats(_cross(H[active], Vn), noise_var)[2:], aa)
            history.append(full)
        active = active[~done]
    return V, history


def _interferers(H: np.ndarray, links, top_m) -> np.ndarray | None:
    """The interferer set of the updates, ``[N, K, K]`` bool in ``H``'s order (``links[n, j, k]``:
    tx j -> rx k kept; the direct links always are), or None for all of them."""
    if links is not None and top_m is not None:
        raise UsageError("give links or top_m, not both")
    if top_m is not None:
        return top_m_links(H, top_m)
    if links is None:
        return None
    links = np.asarray(links)
    if links.dtype != np.bool_ or links.shape != H.shape[:3]:
        raise InputError(f"links must be bool [N, K, K] = {list(H.shape[:3])}, got {links.dtype} {links.shape}")
    return links


def _initial(H: np.ndarray, init, p_max: float) -> np.ndarray:
    """Starting beams: MRT at full power, or ``init`` (complex ``[N, K, Nt]`` within the power limit)."""
    if init is None:
        return _mrt(_direct(H), p_max)
    V = np.asarray(init)
    if V.shape != (H.shape[0], H.shape[1], H.shape[3]) or V.dtype.kind not in "fc":
        raise InputError(
            f"init must be complex [N, K, Nt] = {[H.shape[0], H.shape[1], H.shape[3]]}, got {V.dtype} {V.shape}"
        )
    V = V.astype(np.complex128)
    if not np.all(np.isfinite(V)):
        raise InputError("init contains NaN or Inf")
    pw = (V.real**2 + V.imag**2).sum(-1)  # [N, K]
    if np.any(pw > p_max * (1 + 1e-5)):
        raise InputError(f"init exceeds the power limit p_max={p_max:g} (largest ||v_k||^2 {pw.max():.6g})")
    return V


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------
def wmmse(
    H,
    p_max: float = 1.0,
    noise_var: float = 1.0,
    weights=None,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
    progress: bool = True,
    chunk: int = 256,
    return_history: bool = False,
    init=None,
    links=None,
    top_m: int | None = None,
):
    """WMMSE beamformers for a batch of MISO interference-channel scenes.

    Maximises (locally) ``sum_k alpha_k log2(1 + SINR_k)`` subject to
    ``||v_k||^2 <= p_max`` with the WMMSE iteration described in the module
    docstring, started from MRT at full power.  Computation is in float64.

    Args:
        H: channels, ``H[n, j, k]`` = ``h_jk`` (tx ``j`` -> rx ``k``).
        p_max: per-transmitter power limit (> 0).
        noise_var: receiver noise variance ``sigma^2`` (> 0).
        weights: rate weights ``alpha`` (non-negative), default ones.
        max_iter: maximum number of WMMSE iterations per scene.
        tol: a scene stops when ``|WSR_t - WSR_{t-1}| < tol`` (bits/s/Hz, absolute).
        progress: show a tqdm bar over scene chunks.
        chunk: number of scenes processed together (bounds memory; the result
            does not depend on it).
        return_history: also return the per-iteration weighted sum rates.
        init: starting beams, complex ``[N, K, Nt]`` with ``||v_k||^2 <= p_max``
            (default: MRT at full power), e.g. a learned policy's.
        links: the interferer set of the updates, bool ``[N, K, K]`` in ``H``'s
            order (``links[n, j, k]``: keep tx j -> rx k); the updates run on
            ``H`` with the other interfering links zeroed, the rates (history,
            nothing else) are those of the full ``H``; the stopping test uses
            the rate the updates see. Default: every link (dense WMMSE).
        top_m: the interferer set of :func:`~.scenes.top_m_links` (each
            receiver keeps its ``top_m`` strongest interferers); not with ``links``.

    Returns:
        ``V`` complex64 ``[N, K, Nt]``; with ``return_history=True`` the tuple
        ``(V, history)`` where ``history`` is float64 ``[N, T + 1]``:
        ``history[:, 0]`` is the starting (MRT or ``init``) weighted sum rate, ``history[:, t]`` the
        rate after iteration ``t``; ``T`` is the largest number of iterations any
        scene ran, and a scene's last value is repeated after it stopped.

    Raises:
        ValueError: malformed shapes (expected ``[N, K, K, Nt]``, K >= 2),
            NaN/Inf, non-positive ``p_max``/``noise_var``, bad weights.

    Shapes:
        H        complex [N, K, K, Nt]
        weights  real    [N, K] (broadcastable)
        V        complex64 [N, K, Nt]
        history  float64 [N, T + 1]
    """
    H = _validate_channels(H)  # [N, K, K, Nt] complex128
    N, K, _, Nt = H.shape
    p_max = positive_finite("p_max", p_max)
    noise_var = positive_finite("noise_var", noise_var)
    alpha = check_weights(weights, N, K)  # [N, K]
    if int(max_iter) != max_iter or max_iter < 0:
        raise UsageError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if int(chunk) != chunk or chunk < 1:
        raise UsageError(f"chunk must be a positive integer, got {chunk!r}")
    tol = float(tol)
    if not tol >= 0:
        raise UsageError(f"tol must be >= 0, got {tol!r}")
    max_iter, chunk = int(max_iter), int(chunk)
    keep = _interferers(H, links, top_m)  # [N, K, K] or None
    if keep is not None:
        keep = keep | np.eye(K, dtype=bool)  # the direct links
    V0 = _initial(H, init, p_max)  # [N, K, Nt] complex128

    V_out = np.empty((N, K, Nt), dtype=np.complex64)  # [N, K, Nt]
    hists = []  # list of (start, list of [n])
    with tqdm(total=N, desc="WMMSE", unit="scene", disable=None if progress else True) as bar:
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            Hc = H[start:stop]
            Hu = Hc if keep is None else Hc * keep[start:stop, :, :, None]
            V, hist = _wmmse_chunk(Hc, Hu, V0[start:stop].copy(), alpha[start:stop], p_max, noise_var, max_iter, tol)
            V_out[start:stop] = V
            if return_history:
                hists.append((start, stop, hist))
            bar.update(stop - start)
            bar.set_postfix(iters=len(hist) - 1)
    if not return_history:
        return V_out

    T = max((len(h) for _, _, h in hists), default=1)
    history = np.empty((N, T), dtype=np.float64)  # [N, T + 1 iterations]
    for start, stop, h in hists:
        arr = np.stack(h, axis=1)  # [n, len(h)]
        history[start:stop, : arr.shape[1]] = arr
        history[start:stop, arr.shape[1] :] = arr[:, -1:]
    return V_out, history
