"""The exported core: one message-passing step as a list of plain matrices.

Both exporters (ONNX for the whole model, TFLite for the int8 core) and the
size accounting read a checkpoint through :func:`core_layers`, so the
low-rank layout (U and V as separate matrices) is decided in one place.

Rewrites against the training graph, all exact in real arithmetic:

* the first factor of a layer whose input is a concatenation is split by
  input rows into one matrix per part, joined by an ADD:
  ``[x_j, e_jk] · U = x_j · U_x + e_jk · U_e`` (msg1) and
  ``[x_k, m̄_k] · U = x_k · U_x + m̄_k · U_m`` (upd1). TFLite Micro has no
  TILE, so the node part is broadcast over the edges by the ADD, and each
  part keeps its own int8 scale (a CONCATENATION would force one);
* the constant ``agg_scale`` is folded into ``U_m``;
* a full layer is the rank-free case: one matrix W, split the same way.

Matrices are stored ``[d_in, d_out]`` as in training (TFLite's
FULLY_CONNECTED wants ``[d_out, d_in]``; the TFLite exporter transposes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyrrm.training.models import MPGNN


@dataclass(frozen=True)
class Matrix:
    """One FULLY_CONNECTED of the core."""

    name: str  # e.g. "msg1.U.x", "msg2.V", "upd2.W"
    weight: np.ndarray  # float32 [d_in, d_out]
    bias: np.ndarray | None  # float32 [d_out] or None
    relu: bool  # ReLU after the bias (on the sum, for split parts)


@dataclass(frozen=True)
class CoreLayer:
    """One layer of the checkpoint: ``parts`` (the split first factor, keyed by
    input part) then ``chain`` (the remaining factors, applied in order)."""

    name: str
    parts: dict[str, Matrix]
    chain: list[Matrix]


def _np(t) -> np.ndarray:
    return t.detach().double().numpy()


def core_layers(model: MPGNN) -> dict[str, CoreLayer]:
    """The four layers of ``model`` as exported matrices (see the module docstring)."""
    cfg = model.cfg
    nt = cfg.Nt
    split_at = {"msg1": ("x", "e", 4 * nt), "upd1": ("x", "m", 4 * nt)}
    relu_after = {"msg1": True, "msg2": True, "upd1": True, "upd2": False}
    out = {}
    for name in ("msg1", "msg2", "upd1", "upd2"):
        layer = getattr(model, name)
        factors = [_np(f) for f in layer.factors()]  # [W] or [U, V], each [d_in, d_out]
        bias = _np(layer.bias)
        kind = ["W"] if len(factors) == 1 else ["U", "V"]
        first = factors[0]
        last = len(factors) - 1
        # bias and ReLU sit on the last factor; on the (split) first if it is the only one
        parts = {}
        if name in split_at:
            a, b, n = split_at[name]
            top, bottom = first[:n], first[n:]
            if name == "upd1":
                bottom = bottom * cfg.agg_scale
            pieces = {a: top, b: bottom}
        else:
            pieces = {"": first}
        for tag, w in pieces.items():
            mname = f"{name}.{kind[0]}" + (f".{tag}" if tag else "")
            only = last == 0
            # for a split layer with one factor the bias rides on the node part
            with_bias = only and (tag in ("", "x"))
            parts[tag] = Matrix(
                mname, w.astype(np.float32), bias.astype(np.float32) if with_bias else None, relu_after[name] and only
            )
        chain = []
        for i, w in enumerate(factors[1:], start=1):
            is_last = i == last
            chain.append(
                Matrix(
                    f"{name}.{kind[i]}",
                    w.astype(np.float32),
                    bias.astype(np.float32) if is_last else None,
                    relu_after[name] and is_last,
                )
            )
        out[name] = CoreLayer(name, parts, chain)
    return out


def core_numpy(
    layers: dict[str, CoreLayer], x: np.ndarray, e: np.ndarray, mask: np.ndarray, dtype=np.float64
) -> np.ndarray:
    """The core in numpy (float64 by default), the specification the exporters are tested against.

    Shapes: x ``[K, 4Nt]``, e ``[K(recv), K(send), 2Nt]``, mask ``[K, K, 1]``
    (1.0 where the edge j -> k at ``[k, j]`` exists) -> o ``[K, 2Nt]``.
    """

    def lin(m: Matrix, t):
        y = t.astype(dtype, copy=False) @ m.weight.astype(dtype)
        return y if m.bias is None else y + m.bias.astype(dtype)

    def chain(layer: CoreLayer, t):
        for m in layer.chain:
            t = lin(m, t)
            if m.relu:
                t = np.maximum(t, 0.0)
        return t

    def relu_if(layer: CoreLayer, t):
        return np.maximum(t, 0.0) if not layer.chain and next(iter(layer.parts.values())).relu else t

    L = layers
    a = lin(L["msg1"].parts["x"], x)  # (K, r1) sender part
    c = lin(L["msg1"].parts["e"], e)  # (K, K, r1) edge part
    t = chain(L["msg1"], relu_if(L["msg1"], a[None, :, :] + c))  # (K, K, h1)
    t = relu_if(L["msg2"], lin(L["msg2"].parts[""], t))
    m = chain(L["msg2"], t) * mask  # (K(recv), K(send), h2), >= 0
    agg = m.max(axis=1)  # (K, h2)
    y = lin(L["upd1"].parts["x"], x) + lin(L["upd1"].parts["m"], agg)
    u = chain(L["upd1"], relu_if(L["upd1"], y))  # (K, u1)
    o = relu_if(L["upd2"], lin(L["upd2"].parts[""], u))
    return chain(L["upd2"], o)  # (K, 2Nt)
