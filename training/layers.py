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
import torch.nn.functional as F
from torch import nn

from tinyrrm.errors import UsageError


def matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x · w``, with a narrow ``w`` (at most 8 columns, more rows) read as a
    column-major copy: MKL's kernel for a row-major narrow right factor is
    2-4x slower, forward and backward (e.g. upd1's ``U`` at rank 4).

    Shapes: x ``[..., k]``, w ``[k, n]`` -> ``[..., n]``.
    """
    if w.shape[1] <= 8 < w.shape[0]:
        w = w.t().contiguous().t()
    return x @ w


class FullLinear(nn.Module):
    """``y = x · W + b``.

    Shapes:
        x: ``[..., d_in]`` -> y: ``[..., d_out]``; W: ``[d_in, d_out]``; b: ``[d_out]``.
    """

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        if d_in <= 0 or d_out <= 0:
            raise UsageError(f"layer sizes must be positive, got {d_in}x{d_out}")
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
        self.d_in, self.d_out, self.rank = d_in, d_out, None

    def factors(self) -> list[torch.Tensor]:
        return [self.weight]

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return matmul(x, self.weight) + self.bias


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
            raise UsageError(f"rank must be a positive integer, got {rank}")
        if d_in <= 0 or d_out <= 0:
            raise UsageError(f"layer sizes must be positive, got {d_in}x{d_out}")
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
        return matmul(matmul(x, self.U), self.V) + self.bias

    @classmethod
    def from_full(cls, layer: FullLinear, rank: int) -> LowRankLinear:
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

    Forward keeps, besides the maxima, the flat index of the edge that attains
    each one: ``max_pool2d`` over the chunk's ``[c, Dc, d_out]`` product viewed
    channels-last reduces the middle axis vectorised along ``d_out`` and
    returns both (``torch.max`` with indices along that axis is ~20x slower).
    A padded slot is the same edge as its row's first neighbour, so every
    index names a real edge. With ``arg_max=False`` (no backward to come) it
    keeps only the maxima (``amax``). For ``m < 8`` the products run over
    zero-padded ``m = 8``, which MKL does faster.

    Backward needs no product, only the ``N·d_out`` arg-max edges instead of
    all ``E·d_out`` candidates: ``gx`` adds ``g[i, o]·W[:, o]`` onto the
    arg-max edge of ``(i, o)`` (``index_add_`` in blocks of rows; for
    ``m <= NARROW`` one weighted ``bincount`` per column of ``x``, faster for
    rows that short), ``gW[:, o]`` is the ``g[:, o]``-weighted sum of the
    arg-max rows of ``x`` (``embedding_bag``, one bag per output). Reused
    buffers avoid a page fault per chunk or block.

    Ties: when distinct neighbours attain a maximum exactly, the whole
    gradient goes to the first of them in column order (``max_pool2d`` keeps
    the first maximum; ``torch.amax``, the unfused reference, splits it
    evenly). Exact ties need equal products, e.g. all-zero ReLU rows, whose
    gradient the ReLU discards either way.
    """

    ROWS = 16  # rows per gx block in backward: its (ROWS, d_out, m) scatter source stays in cache
    NARROW = 4  # up to this many columns of x, gx is one weighted bincount per column instead

    @staticmethod
    def forward(ctx, x, w, mask, chunk, arg_max):  # x (N, D, m), w (m, n), mask (N, D) bool
        N, D, m = x.shape
        n = w.shape[1]
        deg = mask.sum(dim=1)  # (N,)
        order = torch.argsort(deg, descending=True, stable=True)  # (N,)
        rows = order[: int(torch.count_nonzero(deg))]  # (R,) rows with a neighbour; the others keep -inf
        nbr = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (N, D) valid first
        nbr = torch.where(torch.arange(D) < deg[:, None], nbr, nbr[:, :1])  # pad with the first neighbour
        edge = nbr + torch.arange(N)[:, None] * D  # (N, D) flat index into x.reshape(N·D, m)
        xf, wf = x.reshape(N * D, m), w  # operands of the products
        if m < 8:  # MKL multiplies over zero-padded K = 8 ~1.4x faster than over K < 8
            xf, wf = F.pad(xf, (0, 8 - m)), F.pad(w, (0, 0, 0, 8 - m))
        out = x.new_empty(N, n).index_fill_(0, order[rows.numel() :], float("-inf"))  # (N, n)
        arg = torch.empty(rows.numel(), n, dtype=torch.long) if arg_max else None  # (R, n) edge of each maximum
        buf = x.new_empty(chunk * (int(deg[rows[0]]) if rows.numel() else 0) * n)  # products of one chunk
        for s in range(0, rows.numel(), chunk):
            r = rows[s : s + chunk]  # (c,)
            e = edge[r, : int(deg[r[0]])]  # (c, Dc)
            c, dc = e.shape
            z = torch.matmul(xf[e], wf, out=buf[: c * dc * n].view(c, dc, n))  # (c, Dc, n)
            if arg is None:  # no backward to come: the maxima suffice
                out[r] = z.amax(dim=1)
                continue
            v, a = F.max_pool2d(z[:, None].permute(0, 3, 1, 2), (1, dc), return_indices=True)  # (c, n, 1, 1)
            out[r] = v.view(c, n)
            torch.gather(e, 1, a.view(c, n), out=arg[s : s + c])
        ctx.save_for_backward(x, w, rows, arg)
        return out

    @staticmethod
    def backward(ctx, g):  # g (N, n)
        x, w, rows, arg = ctx.saved_tensors
        N, D, m = x.shape
        gv = g.index_select(0, rows)  # (R, n) gradient of each maximum
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = x.new_zeros(N * D, m)
            if m <= _LinearMax.NARROW and rows.numel():
                src = torch.empty_like(gv)  # (R, n)
                for k in range(m):  # column k of gx: g[i, o]·W[k, o] summed per arg-max edge
                    gx[:, k] = torch.bincount(arg.view(-1), torch.mul(gv, w[k], out=src).view(-1), N * D)
            else:
                wt = w.t().contiguous()  # (n, m)
                src = x.new_empty(_LinearMax.ROWS, *wt.shape)  # (ROWS, n, m)
                for s in range(0, rows.numel(), _LinearMax.ROWS):
                    b = min(_LinearMax.ROWS, rows.numel() - s)
                    torch.mul(gv[s : s + b, :, None], wt, out=src[:b])  # (b, n, m): g[i, o]·W[:, o]
                    gx.index_add_(0, arg[s : s + b].reshape(-1), src[:b].view(-1, m))
            gx = gx.view(N, D, m)
        if ctx.needs_input_grad[1]:
            gw = torch.zeros_like(w)
            if rows.numel():  # bag o: the rows arg[:, o] of x, weighted by gv[:, o] -> gW[:, o]
                gw = F.embedding_bag(
                    arg.t().contiguous(), x.reshape(N * D, m), mode="sum", per_sample_weights=gv.t().contiguous()
                ).t()  # (m, n)
        return gx, gw, None, None, None


def linear_max(
    x: torch.Tensor, w: torch.Tensor, mask: torch.Tensor, chunk: int = 16, fused: bool = True
) -> torch.Tensor:
    """``out[i] = max over d with mask[i, d] of x[i, d] · w``; ``-inf`` where no d is valid.

    Shapes:
        x: ``[N, D, m]``, w: ``[m, n]``, mask: ``[N, D]`` bool -> ``[N, n]``.

    ``fused=False`` is the plain reference (materialises ``[N, D, n]``), used
    for export tracing and to test the fused kernel; the two agree up to
    rounding, except that an exact tie sends the whole gradient to one of the
    tied neighbours in the fused kernel (see :class:`_LinearMax`).
    """
    if not fused:
        z = torch.matmul(x, w).masked_fill(~mask[..., None], float("-inf"))
        return z.amax(dim=1)
    arg_max = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
    return _LinearMax.apply(x.contiguous(), w, mask.contiguous(), int(chunk), arg_max)
