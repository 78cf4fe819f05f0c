"""Integer reference of the generated C: the streaming core in numpy int64.

Same arithmetic as the C (and as TFLM's reference kernels), but written
over whole arrays. The max over senders runs on the wide layer's int32
accumulators and requantizes once per receiver — exact, because
requantize, ReLU and the mask MUL (by the quantized 1.0) are monotone.
Tests hold it byte-equal to TFLM; the C is held byte-equal to both.
"""

from __future__ import annotations

import numpy as np

from tinyrrm.codegen import quant
from tinyrrm.codegen.program import FC, Add, Program, mask_one


def quantized_one(prog: Program) -> int:
    """The mask's int8 code of 1.0 (an active edge); see :func:`.program.mask_one`."""
    return mask_one(prog)


def fc_acc(f: FC, x) -> np.ndarray:
    """int32 accumulators (bias included) of ``f`` on int8 ``x [..., d_in]``."""
    acc = (np.asarray(x, np.int64) - f.inp.zero_point) @ f.weight.T.astype(np.int64)
    return acc if f.bias is None else acc + f.bias.astype(np.int64)


def fc_requant(f: FC, acc) -> np.ndarray:
    return np.clip(quant.mbqm(acc, f.mult, f.shift) + f.out.zero_point, f.act_min, f.act_max).astype(np.int8)


def fc(f: FC, x) -> np.ndarray:
    return fc_requant(f, fc_acc(f, x))


def add(a: Add, node, other) -> np.ndarray:
    """ADD of the node part and the other part, in the flatbuffer's operand order."""
    q1, q2 = (node, other) if a.p["node_first"] else (other, node)
    p = a.p
    v1 = (np.asarray(q1, np.int64) - a.in1.zero_point) * (1 << p["left_shift"])
    v2 = (np.asarray(q2, np.int64) - a.in2.zero_point) * (1 << p["left_shift"])
    s = quant.mbqm_smaller_than_one(v1, p["mult1"], p["shift1"]) + quant.mbqm_smaller_than_one(
        v2, p["mult2"], p["shift2"]
    )
    out = quant.mbqm_smaller_than_one(s, p["mult_out"], p["shift_out"]) + a.out.zero_point
    return np.clip(out, a.act_min, a.act_max).astype(np.int8)


def core(prog: Program, x_q, e_q, edge) -> np.ndarray:
    """One invoke. Shapes: x_q ``[K, 4Nt]`` int8, e_q ``[K, K, 2Nt]`` int8,
    edge ``[K, K]`` bool (``[k, j]``: edge j -> k) -> o_q ``[K, 2Nt]`` int8."""
    edge = np.asarray(edge, bool)
    a = fc(prog.msg_node, x_q)  # (K, r1) per sender
    c = fc(prog.msg_edge, e_q)  # (K, K, r1)
    t = add(prog.msg_add, np.broadcast_to(a[None], c.shape), c)
    for f in prog.msg_chain[:-1]:
        t = fc(f, t)
    wide = prog.msg_chain[-1]
    acc = fc_acc(wide, t)  # (K, K, h2)
    acc = np.where(edge[..., None], acc, np.iinfo(np.int64).min)
    best = acc.max(axis=1)  # (K, h2) running max over senders
    m = fc_requant(wide, np.where(edge.any(axis=1)[:, None], best, 0))
    mul = prog.mask_mul
    prod = (m.astype(np.int64) - mul.in1.zero_point) * (quantized_one(prog) - mul.in2.zero_point)
    agg = np.clip(quant.mbqm(prod, mul.mult, mul.shift) + mul.out.zero_point, mul.act_min, mul.act_max)
    agg = np.where(edge.any(axis=1)[:, None], agg, mul.out.zero_point).astype(np.int8)
    # masked senders give MUL(., 0) = the output zero point, the floor of every active one
    y = add(prog.upd_add, fc(prog.upd_node, x_q), fc(prog.upd_agg, agg))
    for f in prog.upd_chain:
        y = fc(f, y)
    return y
