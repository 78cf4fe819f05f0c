"""Tests for training/metrics.py and training/wmmse.py (small, fast)."""

import math

import numpy as np
import pytest
import torch

from tinyrrm.training.metrics import link_gains, rates, sum_rate, sum_rate_torch
from tinyrrm.training.wmmse import mrt, wmmse


def iid_channels(N, K, Nt, seed=0):
    """i.i.d. CN(0, 1) channels, complex64 [N, K, K, Nt]."""
    rng = np.random.default_rng(seed)
    H = (rng.standard_normal((N, K, K, Nt)) + 1j * rng.standard_normal((N, K, K, Nt))) / np.sqrt(2)
    return H.astype(np.complex64)


def random_feasible(N, K, Nt, p_max, rng):
    """Random beamformers with ||v_k||^2 uniform in [0, p_max], complex128 [N, K, Nt]."""
    V = rng.standard_normal((N, K, Nt)) + 1j * rng.standard_normal((N, K, Nt))
    V /= np.linalg.norm(V, axis=-1, keepdims=True)
    return V * np.sqrt(p_max * rng.uniform(size=(N, K, 1)))


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------
def test_sum_rate_by_hand_two_users():
    rng = np.random.default_rng(1)
    N, K, Nt = 2, 2, 3
    H = rng.standard_normal((N, K, K, Nt)) + 1j * rng.standard_normal((N, K, K, Nt))
    V = rng.standard_normal((N, K, Nt)) + 1j * rng.standard_normal((N, K, Nt))
    alpha = np.array([[1.0, 2.0], [0.5, 1.5]])
    noise = 0.7

    expected = np.zeros(N)
    expected_rates = np.zeros((N, K))
    for n in range(N):
        for k in range(K):
            sig = abs(sum(np.conj(H[n, k, k, t]) * V[n, k, t] for t in range(Nt))) ** 2
            interf = 0.0
            for j in range(K):
                if j != k:
                    interf += abs(sum(np.conj(H[n, j, k, t]) * V[n, j, t] for t in range(Nt))) ** 2
            r = math.log2(1 + sig / (interf + noise))
            expected_rates[n, k] = r
            expected[n] += alpha[n, k] * r

    G = link_gains(H, V)
    assert G.shape == (N, K, K)
    assert G[0, 1, 0] == pytest.approx(abs(np.vdot(H[0, 1, 0], V[0, 1])) ** 2)
    np.testing.assert_allclose(rates(H, V, noise), expected_rates, rtol=1e-12)
    np.testing.assert_allclose(sum_rate(H, V, noise, alpha), expected, rtol=1e-12)
    np.testing.assert_allclose(sum_rate(H, V, noise), expected_rates.sum(1), rtol=1e-12)


def test_sum_rate_torch_matches_numpy_and_has_gradients():
    N, K, Nt = 4, 3, 2
    H = iid_channels(N, K, Nt, seed=2)
    rng = np.random.default_rng(3)
    V = random_feasible(N, K, Nt, 1.0, rng).astype(np.complex64)
    alpha = rng.uniform(0.5, 2.0, size=(N, K))

    Vt = torch.tensor(V, requires_grad=True)
    out = sum_rate_torch(torch.from_numpy(H), Vt, noise_var=0.5, weights=alpha)
    assert out.shape == (N,)
    np.testing.assert_allclose(out.detach().numpy(), sum_rate(H, V, 0.5, alpha), rtol=1e-5)
    out.sum().backward()
    assert Vt.grad is not None
    assert torch.isfinite(Vt.grad).all() and Vt.grad.abs().sum() > 0

    out2 = sum_rate_torch(torch.from_numpy(H), torch.from_numpy(V))
    np.testing.assert_allclose(out2.numpy(), sum_rate(H, V), rtol=1e-5)


# ---------------------------------------------------------------------------
# WMMSE
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("p_max", [1.0, 3.5, 0.2])
def test_wmmse_power_limit(p_max):
    H = iid_channels(8, 4, 3, seed=4)
    V = wmmse(H, p_max=p_max, noise_var=0.3, progress=False)
    assert V.shape == (8, 4, 3) and V.dtype == np.complex64
    power = (np.abs(V.astype(np.complex128)) ** 2).sum(-1)
    assert np.all(power <= p_max * (1 + 1e-4))


def test_wmmse_beats_mrt_and_random_and_is_monotone():
    N, K, Nt, p_max = 12, 5, 2, 1.0
    H = iid_channels(N, K, Nt, seed=5)
    rng = np.random.default_rng(6)
    alpha = rng.uniform(0.5, 2.0, size=(N, K))

    V, hist = wmmse(H, p_max=p_max, weights=alpha, progress=False, return_history=True)
    r_wmmse = sum_rate(H, V, 1.0, alpha)
    r_mrt = sum_rate(H, mrt(H, p_max), 1.0, alpha)
    assert np.all(r_wmmse >= r_mrt - 1e-6)
    assert r_wmmse.mean() > r_mrt.mean() + 0.1
    for _ in range(10):
        Vr = random_feasible(N, K, Nt, p_max, rng)
        assert np.all(r_wmmse >= sum_rate(H, Vr, 1.0, alpha) - 1e-6)

    # history: [N, T+1], starts at MRT, ends at the returned solution, non-decreasing
    assert hist.ndim == 2 and hist.shape[0] == N and hist.shape[1] >= 2
    np.testing.assert_allclose(hist[:, 0], r_mrt, rtol=1e-5)
    np.testing.assert_allclose(hist[:, -1], r_wmmse, rtol=1e-5)
    assert np.all(np.diff(hist, axis=1) >= -1e-6)


def test_wmmse_isolated_links_give_full_power_mrt():
    N, K, Nt, p_max, noise = 5, 2, 3, 2.0, 0.5
    H = iid_channels(N, K, Nt, seed=7)
    H[:, 0, 1] = 0
    H[:, 1, 0] = 0  # no cross links: two independent single-user channels
    V = wmmse(H, p_max=p_max, noise_var=noise, progress=False).astype(np.complex128)

    h = H[:, np.arange(K), np.arange(K)].astype(np.complex128)  # [N, K, Nt]
    hn2 = (np.abs(h) ** 2).sum(-1)  # [N, K]
    np.testing.assert_allclose((np.abs(V) ** 2).sum(-1), p_max, rtol=1e-5)
    # aligned with h: |h^H v|^2 = ||h||^2 ||v||^2
    gain = np.abs(np.einsum("nkt,nkt->nk", h.conj(), V)) ** 2
    np.testing.assert_allclose(gain, p_max * hn2, rtol=1e-5)
    expected = np.log2(1 + p_max * hn2 / noise).sum(1)
    np.testing.assert_allclose(sum_rate(H, V, noise), expected, rtol=1e-5)


def test_wmmse_chunk_invariance_and_determinism():
    H = iid_channels(11, 4, 2, seed=8)
    alpha = np.random.default_rng(9).uniform(0.5, 2.0, size=(11, 4))
    kw = dict(p_max=1.5, noise_var=0.8, weights=alpha, progress=False)
    V_full = wmmse(H, chunk=256, **kw)
    V_again = wmmse(H, chunk=256, **kw)
    np.testing.assert_array_equal(V_full, V_again)
    for chunk in (1, 3, 4):
        np.testing.assert_allclose(wmmse(H, chunk=chunk, **kw), V_full, rtol=0, atol=1e-6)


def test_wmmse_bad_input():
    H = iid_channels(2, 3, 2)
    with pytest.raises(ValueError, match=r"\[N, K, K, Nt\]"):
        wmmse(H[0], progress=False)  # missing scene axis
    with pytest.raises(ValueError, match=r"\[N, K, K, Nt\]"):
        wmmse(H[:, :, :2], progress=False)  # K mismatch
    with pytest.raises(ValueError, match="K >= 2"):
        wmmse(H[:, :1, :1], progress=False)
    Hn = H.copy()
    Hn[0, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wmmse(Hn, progress=False)
    Hi = H.copy()
    Hi[1, 0, 0, 1] = np.inf
    with pytest.raises(ValueError, match="Inf"):
        wmmse(Hi, progress=False)
    with pytest.raises(ValueError):
        wmmse(H, p_max=0.0, progress=False)
    with pytest.raises(ValueError):
        wmmse(H, noise_var=-1.0, progress=False)
    with pytest.raises(ValueError):
        wmmse(H, weights=np.ones((2, 4)), progress=False)


# ---------------------------------------------------------------------------
# WMMSE on a sparse interferer set, from given beams
# ---------------------------------------------------------------------------
def test_sparse_wmmse_is_wmmse_of_the_kept_links_rated_on_the_full_channel():
    from tinyrrm.training.scenes import top_m_links

    H = iid_channels(6, 5, 2, seed=11)
    keep = top_m_links(H, 2)  # [N, K, K] tx -> rx
    Hs = H * (keep | np.eye(5, dtype=bool))[..., None]  # the channel the updates see
    kw = dict(noise_var=0.5, max_iter=4, tol=0.0, progress=False, return_history=True)
    V, hist = wmmse(H, top_m=2, **kw)
    V_ref, _ = wmmse(Hs, **kw)
    np.testing.assert_array_equal(V, V_ref)
    np.testing.assert_allclose(hist[:, -1], sum_rate(H, V.astype(np.complex128), 0.5), rtol=1e-5)
    # the same set given as a mask; all interferers kept is dense WMMSE
    np.testing.assert_array_equal(wmmse(H, links=keep, **kw)[0], V)
    np.testing.assert_array_equal(wmmse(H, top_m=4, **kw)[0], wmmse(H, **kw)[0])
    # the sparse updates do not see what they drop: a loss against dense on these channels
    assert hist[:, -1].mean() < wmmse(H, **kw)[1][:, -1].mean()


def test_wmmse_from_given_beams():
    H = iid_channels(4, 3, 2, seed=12)
    kw = dict(noise_var=0.7, tol=0.0, progress=False, return_history=True)
    V1, h1 = wmmse(H, max_iter=1, **kw)
    V2, h2 = wmmse(H, max_iter=2, **kw)
    V, h = wmmse(H, max_iter=1, init=V1, **kw)  # one more iteration from the first
    np.testing.assert_allclose(V, V2, atol=1e-6)
    np.testing.assert_allclose(h[:, 0], h1[:, -1], rtol=1e-6)
    np.testing.assert_allclose(h[:, -1], h2[:, -1], rtol=1e-6)
    np.testing.assert_array_equal(wmmse(H, max_iter=0, init=V1, **kw)[0], V1)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"init": np.zeros((4, 3, 2), bool)}, "init must be complex"),
        ({"init": np.full((4, 3, 2), 2.0 + 0j)}, "power limit"),
        ({"init": np.full((4, 3, 2), np.nan + 0j)}, "NaN"),
        ({"init": np.zeros((4, 3, 1), np.complex64)}, "init must be"),
        ({"links": np.ones((4, 3, 3), int)}, "links must be bool"),
        ({"links": np.ones((4, 3, 3), bool), "top_m": 1}, "not both"),
        ({"top_m": 0}, "top_m"),
    ],
)
def test_wmmse_bad_init_or_interferers(kw, match):
    with pytest.raises(ValueError, match=match):
        wmmse(iid_channels(4, 3, 2), progress=False, **kw)
