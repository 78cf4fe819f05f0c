"""Linear layers of the (LR-)MPGNN and the fused linear + max aggregation.

Both layer kinds compute ``y = x · W + b`` with ``W`` stored input-major
(``[d_in, d_out]``, the layout the firmware keeps in flash):

* :class:`FullLinear`   — one factor ``W``                 (``d_in·d_out`` weights);
* :class:`LowRankLinear` — two factors ``W = U · V``        (``r·(d_in + d_out)`` weights).

``factors()`` returns the factor list so that model code can treat both alike
(apply all but the last factor in the cheap rank space, fuse the last one into
the max aggregation, split the first one's rows between node and edge parts).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FullLinear(nn.Module):
    """``y = x · W + b``.

    Shapes:
        x: ``[..., d_in]`` -> y: ``[..., d_out]``; W: ``[d_in, d_out]``; b: ``[d_out]``.
    """

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        if d_in <= 0 or d_out <= 0:
            raise ValueError(f"layer sizes must be positive, got {d_in}x{d_out}")
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        self.d_in, self.d_out, self.rank = d_in, d_out, None

    def factors(self) -> list[torch.Tensor]:
        return [self.weight]

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, self.d_in), self.weight).reshape(
            *x.shape[:-1], self.d_out
        )


class LowRankLinear(nn.Module):
    """``y = x · U · V + b`` — a rank-``r`` factorisation of a ``d_in x d_out`` layer.

    The rank is applied as given, also where ``r >= min(d_in, d_out)``: the
    paper's size table is only reproduced when every layer of a network is
    factorised at that network's rank (see docs/DESIGN-NOTES.md).

    Shapes:
        x: ``[..., d_in]`` -> y: ``[..., d_out]``;
        U: ``[d_in, r]``; V: ``[r, d_out]``; b: ``[d_out]``.
    """

    def __init__(self, d_in: int, d_out: int, rank: int):
        super().__init__()
        if rank <= 0:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        if d_in <= 0 or d_out <= 0:
            raise ValueError(f"layer sizes must be positive, got {d_in}x{d_out}")
        # Var(x·U·V) = Var(x)/3 as for nn.Linear's default initialisation.
        self.U = nn.Parameter(torch.randn(d_in, rank) / math.sqrt(d_in))
        self.V = nn.Parameter(torch.randn(rank, d_out) / math.sqrt(3 * rank))
        bound = 1.0 / math.sqrt(d_in)
        self.bias = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        self.d_in, self.d_out, self.rank = d_in, d_out, rank

    def factors(self) -> list[torch.Tensor]:
        return [self.U, self.V]

    def effective_weight(self) -> torch.Tensor:
        return self.U @ self.V

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.reshape(-1, self.d_in) @ self.U  # (n, r)
        return torch.addmm(self.bias, t, self.V).reshape(*x.shape[:-1], self.d_out)

    @classmethod
    def from_full(cls, layer: FullLinear, rank: int) -> "LowRankLinear":
        """Truncated SVD of ``layer``: the best rank-``rank`` approximation.

        ``W = P S Qᵀ`` -> ``U = P_r √S_r``, ``V = √S_r Q_rᵀ``; a rank above
        ``min(d_in, d_out)`` is exact and padded with zero columns/rows.
        """
        out = cls(layer.d_in, layer.d_out, rank)
        w = layer.weight.detach().double()
        p, s, qt = torch.linalg.svd(w, full_matrices=False)
        k = min(rank, s.numel())
        root = s[:k].sqrt()
        u = torch.zeros(layer.d_in, rank, dtype=torch.float64)
        v = torch.zeros(rank, layer.d_out, dtype=torch.float64)
        u[:, :k] = p[:, :k] * root
        v[:k] = root[:, None] * qt[:k]
        with torch.no_grad():
            out.U.copy_(u.float())
            out.V.copy_(v.float())
            out.bias.copy_(layer.bias.detach())
        return out


def make_linear(d_in: int, d_out: int, rank: int | None) -> FullLinear | LowRankLinear:
    return FullLinear(d_in, d_out) if rank is None else LowRankLinear(d_in, d_out, rank)


# --------------------------------------------------------------------------
# Fused  max_j (x_j · W)  over masked neighbours
# --------------------------------------------------------------------------


class _LinearMax(torch.autograd.Function):
    """Chunked ``max_d (x[:, d] · W)`` over valid ``d`` that never holds ``[N, D, d_out]``.

    Rows are sorted by their number of valid neighbours and processed a few
    at a time with only the valid columns gathered (each row's list padded by
    repeating its first neighbour, which leaves the max unchanged), so a
    distance-cut graph costs its real edge count, not ``N·D``.

    Forward keeps only the maxima (``amax`` is ~50x faster on CPU than ``max``
    with indices along a middle axis). Backward recomputes each chunk's
    product, sends the gradient to the positions equal to the max (padding
    excluded) and runs two matmuls; memory ``O(chunk · D · d_out)``, cost four
    forward matmuls. Exact ties between distinct neighbours each receive the
    full gradient (``torch.amax`` splits it); they only occur between
    all-zero ReLU rows, whose gradient the ReLU discards either way.
    """

    @staticmethod
    def _plan(mask, chunk):
        deg = mask.sum(dim=1)  # (N,)
        order = torch.argsort(deg, descending=True, stable=True)  # (N,)
        nbr = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (N, D) valid first
        pos = torch.arange(mask.shape[1])
        nbr = torch.where(pos < deg[:, None], nbr, nbr[:, :1])  # pad with the first neighbour
        for s in range(0, mask.shape[0], chunk):
            rows = order[s : s + chunk]  # (c,)
            rows = rows[deg[rows] > 0]  # rows without neighbours keep -inf
            if rows.numel() == 0:
                break
            cols = nbr[rows, : int(deg[rows[0]])]  # (c, Dc)
            yield rows, cols, deg[rows]

    @staticmethod
    def forward(ctx, x, w, mask, chunk):  # x (N, D, m), w (m, n), mask (N, D) bool
        out = x.new_full((x.shape[0], w.shape[1]), float("-inf"))  # (N, n)
        for rows, cols, _ in _LinearMax._plan(mask, chunk):
            out[rows] = torch.matmul(x[rows[:, None], cols], w).amax(dim=1)  # (c, Dc, n) -> (c, n)
        ctx.save_for_backward(x, w, mask, out)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, g):  # g (N, n)
        x, w, mask, out = ctx.saved_tensors
        m = x.shape[2]
        gx = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        gw = torch.zeros_like(w) if ctx.needs_input_grad[1] else None
        for rows, cols, deg in _LinearMax._plan(mask, ctx.chunk):
            xc = x[rows[:, None], cols]  # (c, Dc, m)
            big = torch.matmul(xc, w)  # (c, Dc, n) recomputed products
            big.eq_(out[rows][:, None, :]).mul_(g[rows][:, None, :])  # gradient at the arg-max
            real = torch.arange(cols.shape[1]) < deg[:, None]  # (c, Dc) not padding
            if not real.all():
                big.mul_(real.to(big.dtype)[..., None])
            if gx is not None:
                # accumulate: a padded duplicate (zero gradient) must not overwrite its original
                gx.index_put_((rows[:, None].expand_as(cols), cols), torch.matmul(big, w.t()), accumulate=True)
            if gw is not None:
                gw.addmm_(xc.reshape(-1, m).t(), big.reshape(-1, big.shape[2]))
        return gx, gw, None, None


def linear_max(
    x: torch.Tensor, w: torch.Tensor, mask: torch.Tensor, chunk: int = 8, fused: bool = True
) -> torch.Tensor:
    """``out[i] = max over d with mask[i, d] of x[i, d] · w``; ``-inf`` where no d is valid.

    Shapes:
        x: ``[N, D, m]``, w: ``[m, n]``, mask: ``[N, D]`` bool -> ``[N, n]``.

    ``fused=False`` is the plain reference (materialises ``[N, D, n]``), used
    for export tracing and to test the fused kernel.
    """
    if not fused:
        z = torch.matmul(x, w).masked_fill(~mask[..., None], float("-inf"))
        return z.amax(dim=1)
    return _LinearMax.apply(x.contiguous(), w, mask.contiguous(), int(chunk))
