"""MPGNN and LR-MPGNN for MISO beamforming, in dense and PyG form.

One step t of message passing (three steps sharing weights), node k = pair k::

    m_jk  = relu(msg2(relu(msg1([x_j, e_jk]))))          message j -> k
    m̄_k   = max_{j in N(k)} m_jk                         (0 if k has no neighbour)
    o_k   = upd2(relu(upd1([x_k, s·m̄_k])))               (2·Nt), s = cfg.agg_scale
    v_k   = (o_k + v_k) / max(1, ||o_k + v_k||)          beamformer, ||v_k|| <= 1
            (``residual=False``: o_k / max(1, ||o_k||), the plain form)
    x_k  <- [v_k, d_k]

Node state ``x_k = [Re/Im v_k, Re/Im d_k]`` (4·Nt) with ``d_k`` the
standardised direct channel; edge feature ``e_jk`` = standardised Re/Im of
``h_kj``, the interference channel from *k's* transmitter to j's receiver
(2·Nt): the message tells k how its own beam reaches j, which is what k needs
to steer (with ``h_jk`` instead, k never sees its outgoing channels; see
docs/DESIGN-NOTES.md). The initial
``v_k`` is maximum-ratio transmission ``h_kk / ||h_kk||``.

Every layer is a :class:`~.layers.FullLinear` (MPGNN) or a
:class:`~.layers.LowRankLinear` of rank a1 (message net) or a2 (update net).

Two forward paths over the same parameters, numerically equal:

* :meth:`MPGNN.forward` — dense ``[B, K, K, F]`` tensors with an edge mask
  (receiver-major: ``[b, k, j]`` is the edge j -> k). The bias and ReLU of
  msg2 commute with the max (``max_j relu(z_j + b) = relu(max_j z_j + b)``),
  so the big msg2 product is fused with the max (``layers.linear_max``) and
  ``[B, K, K, width]`` messages are never stored. Used for training and export.
* :meth:`MPGNN.forward_pyg` — PyTorch Geometric ``MessagePassing`` with
  ``aggr="max"``, the textbook form, used as the specification in tests.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tinyrrm.errors import InputError, UsageError

from .layers import FullLinear, LowRankLinear, linear_max, make_linear, matmul
from .scenes import edge_mask as _edge_mask

#: hidden widths (msg1 out, msg2 out, upd1 out) of the named architectures.
#: ``paper`` is fitted to the paper's model-size-ratio table (docs/DESIGN-NOTES.md).
ARCHS: dict[str, tuple[int, int, int]] = {
    "shen": (64, 64, 32),
    "paper": (16, 3072, 576),
    "tiny": (8, 16, 8),
    # between them, for the deployment front: ``small`` between tiny and shen, ``mid`` between
    # shen and paper (paper's narrow msg1, a message 4x shen's, an update 2x shen's)
    "small": (16, 32, 16),
    "mid": (16, 256, 64),
}

LAYERS = ("msg1", "msg2", "upd1", "upd2")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in the checkpoint's JSON."""

    arch: str = "paper"
    K: int = 50
    Nt: int = 2
    a1: int | None = None  # rank of the message network (None: full)
    a2: int | None = None  # rank of the update network (None: full)
    steps: int = 3
    cut_m: float | None = 500.0  # drop links longer than this (needs `dist`)
    top_m: int | None = None  # also keep only each receiver's top_m strongest interferers (scenes.top_m_links)
    residual: bool = True  # v <- P(v + f_upd(...)) instead of v <- P(f_upd(...))
    compand: bool = True  # features from h·log(1+||h||²)/||h|| instead of h (see compand())
    scale_agg: bool = True  # m̄_k · agg_scale before the update net (see agg_scale)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise UsageError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        for name in ("a1", "a2"):
            r = getattr(self, name)
            if r is not None and (not isinstance(r, int) or r <= 0):
                raise UsageError(f"rank {name} must be a positive integer, got {r!r}")
        if self.K < 2 or self.Nt < 1 or self.steps < 1:
            raise UsageError(f"need K >= 2, Nt >= 1, steps >= 1; got K={self.K} Nt={self.Nt} steps={self.steps}")
        if self.cut_m is not None and not (isinstance(self.cut_m, (int, float)) and 0 < self.cut_m < math.inf):
            raise UsageError(f"cut_m must be a distance > 0 metres or None (no cut), got {self.cut_m!r}")
        if self.top_m is not None and (
            isinstance(self.top_m, bool) or not isinstance(self.top_m, int) or self.top_m < 1
        ):
            raise UsageError(f"top_m must be a positive integer (interferers per receiver) or None, got {self.top_m!r}")

    def graph(self, scenes) -> np.ndarray:
        """The model's edge mask of ``scenes`` (:class:`~.scenes.Scenes`), ``[N, K, K]`` bool:
        its distance cut and, with ``top_m``, its strongest-interferer set."""
        return scenes.edge_mask(self.cut_m, self.top_m)

    @property
    def widths(self) -> tuple[int, int, int]:
        return ARCHS[self.arch]

    @property
    def agg_scale(self) -> float:
        """Constant factor on m̄_k before the update net: ``min(1, sqrt(64 / h2))``.

        With Adam, a wide aggregated message (h2 = 3072) swamps the update
        net's steps and training stays at MRT; scaling it to the variance of
        a 64-wide message (the ``shen`` width) fixes that (docs/DESIGN-NOTES.md).
        A constant: export folds it into upd1's message rows.
        """
        return min(1.0, math.sqrt(64.0 / self.widths[1])) if self.scale_agg else 1.0

    @property
    def low_rank(self) -> bool:
        return self.a1 is not None or self.a2 is not None

    @property
    def name(self) -> str:
        base = "lrmpgnn" if self.low_rank else "mpgnn"
        ranks = f"_a1-{self.a1}_a2-{self.a2}" if self.low_rank else ""
        return f"{base}_{self.arch}{ranks}"

    def layer_dims(self) -> dict[str, tuple[int, int, int | None]]:
        """``{layer: (d_in, d_out, rank)}`` in forward order."""
        h1, h2, u1 = self.widths
        nt = self.Nt
        return {
            "msg1": (6 * nt, h1, self.a1),
            "msg2": (h1, h2, self.a1),
            "upd1": (4 * nt + h2, u1, self.a2),
            "upd2": (u1, 2 * nt, self.a2),
        }

    def to_dict(self) -> dict:
        """The fields as a dict; ``top_m`` only when set, so a model without it keeps the
        config (and the training-run identity) it had before the field existed."""
        d = dataclasses.asdict(self)
        if d["top_m"] is None:
            del d["top_m"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------


def to_real(h: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., Nt]`` -> real ``[..., 2·Nt]`` as ``[Re, Im]``."""
    return torch.cat([h.real, h.imag], dim=-1)


def to_complex(v: torch.Tensor) -> torch.Tensor:
    """Real ``[..., 2·Nt]`` ``[Re, Im]`` -> complex ``[..., Nt]``."""
    nt = v.shape[-1] // 2
    return torch.complex(v[..., :nt], v[..., nt:])


def compand(h):
    """``h · ln(1 + ||h||²) / ||h||`` over the last axis: keeps the direction,
    maps the magnitude to log-SNR, so path-loss tails of many decades become a
    range of ~20 that a network (and int8) can resolve. numpy or torch.

    Shapes: ``[..., Nt]`` complex -> same.
    """
    if isinstance(h, torch.Tensor):
        p = h.abs().pow(2).sum(-1, keepdim=True)
        return h * (torch.log1p(p) / p.sqrt().clamp_min(1e-30))
    p = (np.abs(h) ** 2).sum(-1, keepdims=True)
    return h * (np.log1p(p) / np.maximum(np.sqrt(p), 1e-30))


def norm_stats(H: np.ndarray, companded: bool = True) -> dict[str, np.ndarray]:
    """Per-feature mean/std of Re/Im, separately for direct and cross links.

    Shapes: H ``[N, K, K, Nt]`` complex -> four float32 arrays ``[2·Nt]``.
    """
    if companded:
        H = compand(H)
    K = H.shape[1]
    eye = np.eye(K, dtype=bool)
    direct = H[:, eye]  # (N·K... ) -> (N, K, Nt)
    cross = H[:, ~eye]  # (N, K·(K-1), Nt)
    out = {}
    for tag, h in (("direct", direct), ("cross", cross)):
        r = np.concatenate([h.real, h.imag], axis=-1).reshape(-1, 2 * H.shape[-1]).astype(np.float64)
        out[f"{tag}_mean"] = r.mean(axis=0).astype(np.float32)
        out[f"{tag}_std"] = np.maximum(r.std(axis=0), 1e-12).astype(np.float32)
    return out


def edge_mask(
    K: int,
    dist: torch.Tensor | None,
    cut_m: float | None,
    batch: int,
    H: torch.Tensor | None = None,
    top_m: int | None = None,
) -> torch.Tensor:
    """:func:`tinyrrm.training.scenes.edge_mask` as a torch tensor ``[B, K(recv), K(send)]``."""
    dist = None if dist is None else dist.cpu().numpy()
    H = None if H is None else H.cpu().numpy()
    return torch.from_numpy(_edge_mask(K, dist, cut_m, batch, H, top_m))


class MPGNN(nn.Module):
    """MPGNN (all layers full) or LR-MPGNN (ranks a1/a2) — see the module docstring.

    Shapes:
        H: ``[B, K, K, Nt]`` complex64 with ``H[b, j, k]`` = tx j -> rx k;
        mask: ``[B, K, K]`` bool, ``mask[b, k, j]`` = edge j -> k;
        returns V: ``[B, K, Nt]`` complex with ``||V[b, k]|| <= 1``.
    """

    def __init__(self, cfg: ModelConfig, stats: dict[str, np.ndarray] | None = None):
        super().__init__()
        self.cfg = cfg
        for name, (d_in, d_out, rank) in cfg.layer_dims().items():
            self.add_module(name, make_linear(d_in, d_out, rank))
        if cfg.residual:
            # zero-initialised residual branch: training starts exactly at MRT
            with torch.no_grad():
                self.upd2.factors()[-1].zero_()
        two_nt = 2 * cfg.Nt
        for key in ("direct_mean", "direct_std", "cross_mean", "cross_std"):
            init = np.zeros(two_nt, np.float32) if key.endswith("mean") else np.ones(two_nt, np.float32)
            if stats is not None:
                init = np.asarray(stats[key], np.float32)
            self.register_buffer(f"norm_{key}", torch.as_tensor(init).clone())
        self.chunk = 16  # receivers per chunk in the fused msg2 + max
        self.fused = True  # False: plain torch ops (export tracing, tests)

    # ---- features ---------------------------------------------------------
    def features(self, H: torch.Tensor):
        """Initial node state x0 ``[B, K, 4Nt]``, direct part d ``[B, K, 2Nt]``,
        edge features e ``[B, K(recv), K(send), 2Nt]``."""
        K = H.shape[1]
        idx = torch.arange(K)
        h_dir = H[:, idx, idx]  # (B, K, Nt)
        v0 = h_dir / h_dir.abs().pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-30)
        if self.cfg.compand:
            H = compand(H)
            h_dir = H[:, idx, idx]
        d = (to_real(h_dir) - self.norm_direct_mean) / self.norm_direct_std  # (B, K, 2Nt)
        # edge j -> k at [b, k, j] carries h_kj: how k's transmitter reaches j's receiver
        e = (to_real(H) - self.norm_cross_mean) / self.norm_cross_std  # (B, K, K, 2Nt)
        x0 = torch.cat([to_real(v0), d], dim=-1)  # (B, K, 4Nt)
        return x0, d, e

    @staticmethod
    def power_scale(o: torch.Tensor) -> torch.Tensor:
        """``o / max(1, ||o||)`` over the last axis (2·Nt reals)."""
        return o / o.norm(dim=-1, keepdim=True).clamp_min(1.0)

    def update(self, x: torch.Tensor, agg: torch.Tensor) -> torch.Tensor:
        """f_upd: ``[x_k, m̄_k]`` -> power-scaled beamformer ``[..., 2Nt]``.

        With ``cfg.residual`` the update net predicts a correction to the
        current beamformer (``x[..., :2Nt]``), so training starts from MRT.
        """
        f = self.upd1.factors()
        fx, fm = f[0].split([x.shape[-1], agg.shape[-1]])  # rows of the first factor: x_k (4Nt), m̄_k (h2)
        # [x_k, s·m̄_k] · F = x_k · F_x + s·(m̄_k · F_m): no concatenation, s on the narrow product
        t = matmul(x, fx) + matmul(agg, fm) * self.cfg.agg_scale
        for w in f[1:]:
            t = matmul(t, w)
        o = self.upd2(torch.relu(t + self.upd1.bias))
        if self.cfg.residual:
            o = o + x[..., : o.shape[-1]]
        if self.training and torch.is_grad_enabled():
            # how far beyond unit power the update reaches, where power_scale is flat (train.py)
            self.overshoot = self.overshoot + (o.norm(dim=-1) - 1.0).clamp_min(0.0).pow(2).mean()
        return self.power_scale(o)

    # ---- dense form -------------------------------------------------------
    def forward(self, H: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, d, e = self.features(H)
        return to_complex(self.propagate(x, d, e, mask))

    def propagate(self, x: torch.Tensor, d: torch.Tensor, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The message-passing steps on real features (the part ONNX exports).

        Shapes: x ``[B, K, 4Nt]``, d ``[B, K, 2Nt]``, e ``[B, K, K, 2Nt]``,
        mask ``[B, K, K]`` bool -> v ``[B, K, 2Nt]``.
        """
        B, K = x.shape[:2]
        nt = d.shape[-1] // 2
        if self.training:
            self.overshoot = x.new_zeros(())  # summed over the steps by update() (train.py's clip penalty)
        f1 = self._edge_factors(self.msg1)  # [W] or [U, V]; rows: [x_j (4Nt), e_jk (2Nt)]
        f2 = self._edge_factors(self.msg2)
        # edge part of msg1 once for all steps, in msg1's first-factor space
        c = matmul(e, f1[0][4 * nt :])  # (B, K, K, r1)
        for _ in range(self.cfg.steps):
            a = matmul(x, f1[0][: 4 * nt])  # (B, K, r1), sender part
            t = a[:, None, :, :] + c  # (B, K(recv), K(send), r1)
            for f in f1[1:]:
                t = matmul(t, f)
            m1 = torch.relu(t + self.msg1.bias)  # (B, K, K, h1)
            for f in f2[:-1]:
                m1 = matmul(m1, f)  # (B, K, K, r2) rank space of msg2
            z = linear_max(
                m1.reshape(B * K, K, -1), f2[-1], mask.reshape(B * K, K), self.chunk, self.fused
            )  # (B·K, h2): max over senders of m1 · W_last
            agg = torch.relu(z + self.msg2.bias).reshape(B, K, -1)  # (B, K, h2)
            v = self.update(x, agg)  # (B, K, 2Nt)
            x = torch.cat([v, d], dim=-1)
        return v

    def _edge_factors(self, layer) -> list[torch.Tensor]:
        """Factors of a per-edge layer as ``propagate`` applies them.

        On the fast path a rank at least ``min(d_in, d_out)`` is multiplied
        out once per call (``W = U · V``, same function, gradients through the
        product): per edge it then costs ``d_in·d_out`` instead of
        ``r·(d_in + d_out)``, and msg2's fused max runs over ``h1``-wide rows
        instead of ``r``-wide ones (a1 = 64: 4x fewer products). Export
        tracing (``fused=False``) keeps every factor as trained.
        """
        f = layer.factors()
        if self.fused and len(f) == 2 and f[0].shape[1] >= min(f[0].shape[0], f[1].shape[1]):
            return [f[0] @ f[1]]
        return f

    # ---- PyG form ---------------------------------------------------------
    def forward_pyg(
        self, x0: torch.Tensor, d: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Textbook form on a (batched) PyG graph.

        Shapes: x0 ``[n, 4Nt]``, d ``[n, 2Nt]``, edge_index ``[2, E]`` (row 0
        source j, row 1 target k), edge_attr ``[E, 2Nt]`` -> v ``[n, 2Nt]``.
        """
        conv = _MPGNNConv(self)
        x = x0
        for _ in range(self.cfg.steps):
            v = conv(x, edge_index, edge_attr)
            x = torch.cat([v, d], dim=-1)
        return v

    def to_pyg(self, H: torch.Tensor, mask: torch.Tensor):
        """Dense batch -> ``(x0, d, edge_index, edge_attr)`` of one batched PyG graph."""
        B, K = H.shape[:2]
        x0, d, e = self.features(H)
        b, k, j = mask.nonzero(as_tuple=True)  # edge j -> k of scene b
        edge_index = torch.stack([b * K + j, b * K + k])
        return x0.reshape(B * K, -1), d.reshape(B * K, -1), edge_index, e[b, k, j]

    # ---- bookkeeping ------------------------------------------------------
    def layer_table(self) -> list[dict]:
        """Parameters and bytes per layer (fp32; int8 = int8 weights + int32 bias)."""
        rows = []
        for name in LAYERS:
            layer = getattr(self, name)
            n_w = sum(f.numel() for f in layer.factors())
            n_b = layer.bias.numel()
            rows.append(
                {
                    "layer": name,
                    "d_in": layer.d_in,
                    "d_out": layer.d_out,
                    "rank": layer.rank,
                    "factors": [list(f.shape) for f in layer.factors()],
                    "params": n_w + n_b,
                    "bytes_fp32": 4 * (n_w + n_b),
                    "bytes_int8": n_w + 4 * n_b,
                }
            )
        return rows


def model_bytes(model: MPGNN, dtype: str = "fp32") -> int:
    return sum(r[f"bytes_{dtype}"] for r in model.layer_table())


def mrt_start_(model: MPGNN) -> MPGNN:
    """Initialise the update net of a plain-update model so that it passes the current beam
    through: ``f_upd([x_k, s·m̄_k]) = v_k`` at the start, so training starts exactly at MRT as
    with the residual form, but in the plain form (docs/DESIGN-NOTES.md §5). In place; returns ``model``.

    With n = 2·Nt: the first n coordinates of upd1's product read the n beam entries of x_k;
    hidden units 0..2n-1 are ``relu(±v_i)``; upd2 takes ``relu(v_i) - relu(-v_i) = v_i`` from them,
    and its other coordinates start at zero (as the residual form's last factor). Every other
    weight keeps its random initialisation; as with the residual form, upd1's weights behind
    upd2's zero rows see a gradient from the second step on (tested). Needs a2 >= n and an
    update width of at least 2n.
    """
    n = 2 * model.cfg.Nt
    u1, u2 = model.upd1, model.upd2
    if (u1.rank is not None and u1.rank < n) or (u2.rank is not None and u2.rank < n) or u1.d_out < 2 * n:
        raise UsageError(
            f"the MRT start needs update rank a2 >= 2*Nt = {n} and an update width >= {2 * n}; "
            f"got a2={model.cfg.a2}, width {u1.d_out}"
        )
    eye = torch.eye(n)
    pm = torch.cat([eye, -eye], dim=1)  # [n, 2n]: hidden 0..2n-1 = (+v, -v)
    with torch.no_grad():
        f = u1.factors()
        if len(f) == 1:  # W [d_in, u1]: columns 0..2n-1 read +-v only
            f[0][:, : 2 * n] = 0
            f[0][:n, : 2 * n] = pm
        else:  # U [d_in, r]: coordinates 0..n-1 = v; V [r, u1]: hidden 0..2n-1 from them only
            f[0][:, :n] = 0
            f[0][:n, :n] = eye
            f[1][:, : 2 * n] = 0
            f[1][:n, : 2 * n] = pm
        u1.bias[: 2 * n] = 0
        g = u2.factors()
        if len(g) == 1:  # W [u1, n]
            g[0].zero_()
            g[0][: 2 * n] = pm.t()
        else:  # U [u1, r]: coordinate i = h_i - h_{n+i}; V [r, n]: those n coordinates to the output
            g[0][:, :n] = 0
            g[0][: 2 * n, :n] = pm.t()
            g[1].zero_()
            g[1][:n] = eye
        u2.bias.zero_()
    return model


def svd_truncate(full: MPGNN, a1: int, a2: int) -> MPGNN:
    """LR-MPGNN whose every layer is the truncated SVD of ``full``'s (no retraining)."""
    if full.cfg.low_rank:
        raise InputError("svd_truncate needs a full MPGNN checkpoint, got a low-rank one")
    cfg = dataclasses.replace(full.cfg, a1=a1, a2=a2)
    lr = MPGNN(cfg)
    lr.load_state_dict({k: v for k, v in full.state_dict().items() if k.startswith("norm_")}, strict=False)
    for name, (_, _, rank) in cfg.layer_dims().items():
        setattr(lr, name, LowRankLinear.from_full(getattr(full, name), rank))
    return lr


# PyG is imported lazily: the dense path (training, export) does not need it.
def _conv_class():
    from torch_geometric.nn import MessagePassing

    class MPGNNConv(MessagePassing):
        """One MPGNN step: ``v_k = f_upd([x_k, max_j f_msg([x_j, e_jk])])``."""

        def __init__(self, model: MPGNN):
            super().__init__(aggr="max", flow="source_to_target")
            self.model = model

        def forward(self, x, edge_index, edge_attr):  # x (n, 4Nt) -> v (n, 2Nt)
            agg = self.propagate(edge_index, x=x, edge_attr=edge_attr)  # (n, h2)
            return self.model.update(x, agg)

        def message(self, x_j, edge_attr):  # (E, 4Nt), (E, 2Nt) -> (E, h2)
            m = torch.relu(self.model.msg1(torch.cat([x_j, edge_attr], dim=-1)))
            return torch.relu(self.model.msg2(m))

    return MPGNNConv


def _MPGNNConv(model: MPGNN):
    return _conv_class()(model)


__all__ = [
    "ARCHS",
    "LAYERS",
    "ModelConfig",
    "MPGNN",
    "FullLinear",
    "LowRankLinear",
    "norm_stats",
    "edge_mask",
    "model_bytes",
    "svd_truncate",
    "to_real",
    "to_complex",
]
