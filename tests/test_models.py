"""Layers and models: low-rank algebra, fused max, dense == PyG, sizes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyrrm.training.layers import FullLinear, LowRankLinear, linear_max, matmul
from tinyrrm.training.models import (
    MPGNN,
    ModelConfig,
    edge_mask,
    model_bytes,
    norm_stats,
    svd_truncate,
    to_real,
)

PAPER = json.loads((Path(__file__).resolve().parents[1] / "reference/paper_tables.json").read_text())


def test_lowrank_shapes_and_params():
    layer = LowRankLinear(12, 30, 4)
    assert layer(torch.randn(5, 7, 12)).shape == (5, 7, 30)
    assert sum(p.numel() for p in layer.parameters()) == 4 * (12 + 30) + 30
    assert torch.allclose(layer(torch.eye(12)), layer.effective_weight() + layer.bias, atol=1e-6)


@pytest.mark.parametrize("rank", [0, -3])
def test_bad_rank(rank):
    with pytest.raises(ValueError, match="rank"):
        LowRankLinear(4, 4, rank)
    with pytest.raises(ValueError, match="rank"):
        ModelConfig(arch="tiny", a1=rank, a2=4)


def test_svd_truncation_is_best_approximation():
    torch.manual_seed(0)
    full = FullLinear(10, 8)
    s = torch.linalg.svdvals(full.weight.detach().double())
    for r in (1, 3, 5):
        lr = LowRankLinear.from_full(full, r)
        err = float(torch.linalg.matrix_norm((lr.effective_weight() - full.weight).double().detach()))
        assert err == pytest.approx(float(s[r:].square().sum().sqrt()), rel=1e-4)
    exact = LowRankLinear.from_full(full, 12)  # rank above min(d_in, d_out): exact, zero-padded
    assert torch.allclose(exact.effective_weight(), full.weight, atol=1e-5)


CASES = [  # (N, D, m, n, chunk, p_edge)
    (7, 5, 3, 6, 1, 0.5),
    (9, 6, 4, 10, 4, 0.3),
    (5, 8, 2, 3, 16, 0.9),
    (40, 12, 5, 9, 16, 0.4),  # chunks of rows with unequal degrees: padded slots
    (37, 20, 16, 70, 3, 0.2),  # more than _LinearMax.ROWS rows with neighbours: several backward blocks
]


def _linear_max_case(N, D, m, n, p, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, m, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(m, n, dtype=torch.float64, generator=g, requires_grad=True)
    mask = torch.rand(N, D, generator=g) < p
    mask[0] = False  # a receiver without neighbours
    mask[-1] = False
    mask[-1, D // 2] = True  # a receiver with a single neighbour
    return x, w, mask


@pytest.mark.parametrize("N,D,m,n,chunk,p", CASES)
def test_linear_max_fused_equals_reference(N, D, m, n, chunk, p):
    x, w, mask = _linear_max_case(N, D, m, n, p, seed=N * D)
    outs, grads = [], []
    for fused in (True, False):
        y = linear_max(x, w, mask, chunk, fused)
        outs.append(y)
        grads.append(torch.autograd.grad(torch.relu(y + 0.3).pow(2).sum(), (x, w)))
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-12)  # chunked products may round differently
    assert torch.isneginf(outs[0][0]).all()
    with torch.no_grad():  # no backward to come: maxima only
        assert torch.equal(linear_max(x, w, mask, chunk), outs[0])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-12)
    assert not grads[0][0][0].any()  # nothing reaches the rows of a receiver without neighbours
    assert not grads[0][0][~mask].any()  # nor masked (or padded) senders


@pytest.mark.slow
@pytest.mark.parametrize("N,D,m,n,chunk,p", CASES[1:4])
def test_linear_max_gradcheck(N, D, m, n, chunk, p):
    x, w, mask = _linear_max_case(N, D, m, n, p, seed=N + D)
    empty = ~mask.any(dim=1, keepdim=True)  # -inf rows: finite differences need a finite output
    torch.autograd.gradcheck(lambda a, b: linear_max(a, b, mask, chunk).masked_fill(empty, 0.0), (x, w))


def test_linear_max_gradient_of_one_input_and_no_edges():
    x, w, mask = _linear_max_case(9, 6, 4, 10, 0.5, seed=3)
    g = torch.randn(9, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    g = g.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)
    (gx,) = torch.autograd.grad(linear_max(x, w.detach(), mask), x, g)
    (gx_ref,) = torch.autograd.grad(linear_max(x, w.detach(), mask, fused=False), x, g)
    assert torch.allclose(gx, gx_ref, atol=1e-12)
    (gw,) = torch.autograd.grad(linear_max(x.detach(), w, mask), w, g)
    (gw_ref,) = torch.autograd.grad(linear_max(x.detach(), w, mask, fused=False), w, g)
    assert torch.allclose(gw, gw_ref, atol=1e-12)
    none = torch.zeros_like(mask)  # no receiver has a neighbour: -inf everywhere, zero gradients
    y = linear_max(x, w, none)
    assert torch.isneginf(y).all()
    gx, gw = torch.autograd.grad(y, (x, w), torch.ones_like(y))
    assert not gx.any() and not gw.any()


def test_linear_max_tie_goes_to_first_neighbour():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen)
    x[:, 3] = x[:, 1]  # senders 1 and 3 give equal products for every output
    x[:, 1] += 10.0  # ... and the largest ones (for w > 0)
    x[:, 3] += 10.0
    x.requires_grad_()
    w = torch.rand(3, 5, dtype=torch.float64, generator=gen) + 0.5
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1, 1] = False  # row 1: sender 3 alone attains the max
    y = linear_max(x, w, mask)
    assert torch.allclose(y, linear_max(x, w, mask, fused=False), rtol=0, atol=1e-12)
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(gx[0, 1], w.sum(1)) and not gx[0, 3].any()  # the whole gradient to the first
    assert torch.allclose(gx[1, 3], w.sum(1)) and not gx[1, 1].any()


@pytest.mark.parametrize("shape", [(6, 40, 4), (6, 40, 8), (6, 3, 4), (6, 40, 12)])
def test_matmul_narrow_factor(shape):
    M, k, n = shape
    x = torch.randn(2, M, k, dtype=torch.float64, requires_grad=True)
    w = torch.randn(k, n, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, M, n, dtype=torch.float64)
    y = matmul(x, w)
    assert torch.allclose(y, x @ w, atol=1e-12)
    for a, b in zip(torch.autograd.grad(y, (x, w), g), torch.autograd.grad(x @ w, (x, w), g)):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [(None, None), (3, 2), (20, 40)])
def test_dense_equals_pyg(ranks):
    torch.manual_seed(1)
    K, B = 7, 3
    model = MPGNN(ModelConfig(arch="tiny", K=K, Nt=2, a1=ranks[0], a2=ranks[1])).double()
    with torch.no_grad():  # the zero-initialised residual branch would hide the messages
        model.upd2.factors()[-1].normal_(0.0, 0.5)
    H = torch.complex(torch.randn(B, K, K, 2), torch.randn(B, K, K, 2)).to(torch.complex128)
    dist = torch.rand(B, K, K) * 1000
    mask = edge_mask(K, dist, 500.0, B)
    mask[0, 2] = False  # isolated receiver
    v = model(H, mask)
    v_pyg = model.forward_pyg(*model.to_pyg(H, mask))
    assert torch.allclose(to_real(v).reshape(B * K, -1), v_pyg, atol=1e-12)
    params = list(model.parameters())
    grads = torch.autograd.grad(to_real(v).square().sum(), params)
    model.fused = False  # plain torch ops, every factor applied as trained (rank >= width collapses when fused)
    v_ref = model(H, mask)
    assert torch.allclose(v_ref, v, atol=1e-12)
    for g, g_ref in zip(grads, torch.autograd.grad(to_real(v_ref).square().sum(), params)):
        assert torch.allclose(g, g_ref, atol=1e-10)


def test_dense_equals_pyg_with_scaled_wide_messages(monkeypatch):
    from tinyrrm.training import models

    monkeypatch.setitem(models.ARCHS, "wide", (4, 256, 8))
    cfg = ModelConfig(arch="wide", K=5, Nt=2)
    assert cfg.agg_scale == pytest.approx(0.5)
    torch.manual_seed(2)
    model = MPGNN(cfg).double()
    H = torch.complex(torch.randn(2, 5, 5, 2), torch.randn(2, 5, 5, 2)).to(torch.complex128)
    mask = edge_mask(5, None, None, 2)
    v = model(H, mask)
    assert torch.allclose(to_real(v).reshape(10, -1), model.forward_pyg(*model.to_pyg(H, mask)), atol=1e-12)
    assert ModelConfig(arch="wide", scale_agg=False).agg_scale == 1.0


def test_power_limit_and_edge_mask():
    model = MPGNN(ModelConfig(arch="tiny", K=5, Nt=3))
    with torch.no_grad():
        model.upd2.bias.fill_(10.0)  # force outputs far beyond unit power
        H = torch.complex(torch.randn(2, 5, 5, 3), torch.randn(2, 5, 5, 3))
        v = model(H, edge_mask(5, None, None, 2))
    assert v.shape == (2, 5, 3)
    assert (v.abs().pow(2).sum(-1) <= 1 + 1e-5).all()
    dist = torch.full((1, 3, 3), 100.0)
    dist[0, 0, 1] = 900.0  # tx 0 -> rx 1 beyond the cut: edge 1 -> 0 (carries h_01) dropped
    m = edge_mask(3, dist, 500.0, 1)[0]
    assert not m.diagonal().any() and not m[0, 1] and m[1, 0]


def test_norm_stats_separates_direct_and_cross():
    H = np.zeros((4, 3, 3, 1), np.complex64)
    H[:, np.arange(3), np.arange(3)] = 10 + 0j
    st = norm_stats(H, companded=False)
    assert st["direct_mean"][0] == pytest.approx(10) and st["cross_mean"][0] == 0
    st = norm_stats(H)  # companded: magnitude ln(1 + 100)
    assert st["direct_mean"][0] == pytest.approx(np.log1p(100.0), rel=1e-6)


def test_svd_truncate_model_keeps_norm_stats():
    full = MPGNN(
        ModelConfig(arch="tiny", K=4),
        {
            k: np.full(4, i + 1.0, np.float32)
            for i, k in enumerate(("direct_mean", "direct_std", "cross_mean", "cross_std"))
        },
    )
    lr = svd_truncate(full, 2, 3)
    assert lr.cfg.a1 == 2 and lr.upd1.rank == 3
    assert torch.equal(lr.norm_cross_std, full.norm_cross_std)
    with pytest.raises(ValueError):
        svd_truncate(lr, 2, 2)


def test_paper_widths_match_size_table_within_10_percent():
    t = PAPER["model_size_ratio"]
    full = model_bytes(MPGNN(ModelConfig(arch="paper")))
    for i, a1 in enumerate(t["a1"]):
        for j, a2 in enumerate(t["a2"]):
            ours = full / model_bytes(MPGNN(ModelConfig(arch="paper", a1=a1, a2=a2)))
            assert abs(ours / t["rows"][i][j] - 1) <= 0.10, (a1, a2, ours)


def test_layer_table_counts():
    m = MPGNN(ModelConfig(arch="tiny", K=4, Nt=2, a1=3, a2=2))
    rows = {r["layer"]: r for r in m.layer_table()}
    assert rows["msg1"]["factors"] == [[12, 3], [3, 8]]
    assert rows["msg1"]["params"] == 3 * 20 + 8
    assert rows["upd2"]["bytes_int8"] == 2 * (8 + 4) + 4 * 4
    assert model_bytes(m) == 4 * sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("ranks", [(None, None), (4, 4), (2, 6)])
def test_mrt_start_passes_the_beam_through_and_learns_everywhere(ranks, monkeypatch):
    """The plain update starts exactly at MRT, and every update weight gets a gradient at once."""
    from tinyrrm.training import models
    from tinyrrm.training.metrics import sum_rate_torch
    from tinyrrm.training.models import mrt_start_

    # an update width above 2·2Nt = 8, so that hidden units beyond the pass-through exist
    monkeypatch.setitem(models.ARCHS, "tiny12", (8, 16, 12))
    torch.manual_seed(0)
    cfg = ModelConfig(arch="tiny12", K=5, Nt=2, a1=ranks[0], a2=ranks[1], residual=False, cut_m=None)
    model = mrt_start_(MPGNN(cfg))
    H = torch.complex(torch.randn(3, 5, 5, 2), torch.randn(3, 5, 5, 2))
    v = model(H, edge_mask(5, None, None, 3))
    h_dir = H[:, torch.arange(5), torch.arange(5)]
    mrt = h_dir / h_dir.abs().pow(2).sum(-1, keepdim=True).sqrt()
    torch.testing.assert_close(v, mrt, rtol=0, atol=1e-6)
    # as with the residual form's zero last factor, the pass-through's neighbours in upd1 see a
    # gradient from the second step on (once upd2's other rows have moved off zero)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (-sum_rate_torch(H, model(H, edge_mask(5, None, None, 3))).mean()).backward()
        opt.step()
    for name in ("upd1", "upd2"):
        for f in getattr(model, name).factors():
            assert f.grad is not None and f.grad.abs().sum(0).gt(0).all(), name  # no dead column


def test_mrt_start_needs_room_for_the_beam():
    from tinyrrm.training.models import mrt_start_

    with pytest.raises(ValueError, match="a2 >= 2\\*Nt = 4"):
        mrt_start_(MPGNN(ModelConfig(arch="tiny", K=5, Nt=2, a1=4, a2=2, residual=False)))
