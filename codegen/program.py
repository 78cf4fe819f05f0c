"""Match a ``model_int8.tflite`` to the core's structure -> a :class:`Program`.

The generator does not interpret arbitrary graphs: it recognises the
tinyrrm core (see :mod:`.tflite_export`) by following the data flow from
the inputs, and reads every weight, bias, scale and zero point from the
flatbuffer. Anything else — an unknown op, a different wiring — is one
clear :class:`tflite_reader.TFLiteError` naming what was found.

Data flow recognised (RESHAPE ops are views and skipped)::

    e ─FC(msg1.U.e)─┐
    x ─FC(msg1.U.x)─ADD─FC…FC(msg2.V)─MUL(mask)─REDUCE_MAX─FC(upd1.U.m)─┐
    x ─FC(upd1.U.x)─────────────────────────────────────────────────────ADD─FC…FC─> o

Layer names follow the checkpoint: a low-rank model has the chains
``msg1.V, msg2.U, msg2.V`` and ``upd1.V, upd2.U, upd2.V``; a full one has
``msg2.W`` and ``upd2.W`` (its first layers are ``msg1.W.*`` / ``upd1.W.*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyrrm.codegen import quant
from tinyrrm.export.tflite_reader import Graph, Op, Tensor, TFLiteError

KNOWN_OPS = {"FULLY_CONNECTED", "ADD", "RESHAPE", "MUL", "REDUCE_MAX"}


@dataclass
class QParam:
    scale: float
    zero_point: int


@dataclass
class FC:
    name: str
    weight: np.ndarray  # int8 [d_out, d_in]
    bias: np.ndarray | None  # int32 [d_out]
    w_scale: np.ndarray  # float32 [d_out]
    inp: QParam
    out: QParam
    mult: np.ndarray  # int64 [d_out] Q31
    shift: np.ndarray  # int64 [d_out]
    act_min: int
    act_max: int

    @property
    def d_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class Add:
    in1: QParam
    in2: QParam
    out: QParam
    p: dict
    act_min: int
    act_max: int


@dataclass
class Mul:
    in1: QParam
    in2: QParam
    out: QParam
    mult: int
    shift: int
    act_min: int
    act_max: int


@dataclass
class Program:
    K: int
    nt: int
    x: QParam
    e: QParam
    mask: QParam
    o: QParam
    msg_node: FC  # on x_j
    msg_edge: FC  # on e_kj
    msg_add: Add  # (node, edge) -> msg chain input
    msg_chain: list[FC]  # the last one is the wide message layer (its max is fused)
    mask_mul: Mul
    upd_node: FC  # on x_k
    upd_agg: FC  # on the aggregated message
    upd_add: Add  # (node, agg) -> upd chain input
    upd_chain: list[FC]
    low_rank: bool = field(default=True)

    def fcs(self) -> list[FC]:
        """All FULLY_CONNECTED layers in the order they are stored in flash."""
        return [self.msg_edge, self.msg_node, *self.msg_chain, self.upd_agg, self.upd_node, *self.upd_chain]

    def macs_per_step(self, n_edges: int) -> int:
        """Multiply-accumulates of one core invoke with ``n_edges`` active edges."""
        K = self.K
        per_edge = self.msg_edge.d_in * self.msg_edge.d_out + sum(f.d_in * f.d_out for f in self.msg_chain)
        per_node = (
            self.msg_node.d_in * self.msg_node.d_out
            + self.upd_node.d_in * self.upd_node.d_out
            + self.upd_agg.d_in * self.upd_agg.d_out
            + sum(f.d_in * f.d_out for f in self.upd_chain)
        )
        return n_edges * per_edge + K * per_node


def _qp(t: Tensor) -> QParam:
    if t.scale is None or t.scale.size != 1:
        raise TFLiteError(f"tensor {t.name}: expected per-tensor int8 quantization")
    if t.type != "INT8":
        raise TFLiteError(f"tensor {t.name}: expected INT8, found {t.type}")
    return QParam(float(t.scale[0]), int(t.zero_point[0]))


class _Flow:
    def __init__(self, g: Graph):
        self.g = g
        unknown = sorted({op.opcode for op in g.ops} - KNOWN_OPS)
        if unknown:
            raise TFLiteError(
                f"the generator knows {', '.join(sorted(KNOWN_OPS))}; this model also uses {', '.join(unknown)}"
            )
        self.consumers: dict[int, list[Op]] = {}
        for op in g.ops:
            for i in op.inputs:
                if i >= 0:
                    self.consumers.setdefault(i, []).append(op)

    def through_reshapes(self, t: int) -> int:
        """Follow RESHAPE ops (views) from tensor ``t``."""
        while True:
            cons = self.consumers.get(t, [])
            if len(cons) == 1 and cons[0].opcode == "RESHAPE":
                t = cons[0].outputs[0]
            else:
                return t

    def next_op(self, t: int, what: str) -> Op:
        t = self.through_reshapes(t)
        cons = self.consumers.get(t, [])
        if len(cons) != 1:
            raise TFLiteError(
                f"unexpected structure after {what}: tensor {self.g.tensors[t].name} feeds "
                f"{len(cons)} ops ({', '.join(o.opcode for o in cons) or 'none'})"
            )
        return cons[0]

    def fc(self, op: Op, name: str) -> FC:
        g = self.g
        if op.opcode != "FULLY_CONNECTED":
            raise TFLiteError(f"expected FULLY_CONNECTED for {name}, found {op.opcode} (op {op.index})")
        t_in, t_w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        t_b = g.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
        t_out = g.tensors[op.outputs[0]]
        if t_w.type != "INT8" or t_w.data is None or t_w.scale is None:
            raise TFLiteError(f"{name}: weights must be constant int8 (found {t_w.type})")
        if t_w.zero_point.any():
            raise TFLiteError(f"{name}: weight zero points must be 0")
        d_out = t_w.shape[0]
        w_scale = np.broadcast_to(t_w.scale, (d_out,)).astype(np.float32)
        if t_b is not None and (t_b.type != "INT32" or t_b.data is None):
            raise TFLiteError(f"{name}: bias must be constant int32 (found {t_b.type})")
        inp, out = _qp(t_in), _qp(t_out)
        mult, shift = quant.fc_params(inp.scale, w_scale, out.scale)
        lo, hi = quant.activation_range(op.options.get("activation", "NONE"), out.zero_point, out.scale)
        return FC(
            name,
            np.ascontiguousarray(t_w.data),
            None if t_b is None else np.ascontiguousarray(t_b.data),
            w_scale,
            inp,
            out,
            mult,
            shift,
            lo,
            hi,
        )

    def add(self, op: Op, what: str) -> Add:
        if op.opcode != "ADD":
            raise TFLiteError(f"expected ADD after {what}, found {op.opcode} (op {op.index})")
        g = self.g
        a, b, o = (_qp(g.tensors[i]) for i in (*op.inputs, op.outputs[0]))
        lo, hi = quant.activation_range(op.options.get("activation", "NONE"), o.zero_point, o.scale)
        return Add(a, b, o, quant.add_params(a.scale, b.scale, o.scale), lo, hi)


def match(g: Graph) -> Program:
    """The :class:`Program` of a core flatbuffer (see the module docstring)."""
    f = _Flow(g)
    if len(g.inputs) != 3 or len(g.outputs) != 1:
        raise TFLiteError(f"expected inputs (x, e, mask) and one output, found {len(g.inputs)} and {len(g.outputs)}")
    tx, te, tm = (g.tensors[i] for i in g.inputs)
    if len(tx.shape) != 2 or len(te.shape) != 3 or tuple(tm.shape) != (te.shape[0], te.shape[1], 1):
        raise TFLiteError(f"unexpected input shapes x{list(tx.shape)}, e{list(te.shape)}, mask{list(tm.shape)}")
    K, nt = tx.shape[0], tx.shape[1] // 4
    if te.shape[:2] != (K, K) or te.shape[2] != 2 * nt:
        raise TFLiteError(f"input e{list(te.shape)} does not match x{list(tx.shape)}")
    # x feeds two FCs: the message node part and the update node part
    x_cons = f.consumers.get(g.inputs[0], [])
    if len(x_cons) != 2 or any(op.opcode != "FULLY_CONNECTED" for op in x_cons):
        raise TFLiteError("expected input x to feed exactly two FULLY_CONNECTED ops")
    op_e = f.next_op(g.inputs[1], "input e")
    op_add1 = f.next_op(op_e.outputs[0], "the edge FC")
    x_msg = [op for op in x_cons if f.through_reshapes(op.outputs[0]) in op_add1.inputs]
    if len(x_msg) != 1:
        raise TFLiteError("could not find the message node part (FC on x feeding the edge ADD)")
    op_xm = x_msg[0]
    op_xu = next(op for op in x_cons if op is not op_xm)

    # message chain: FCs until the MUL with the mask
    chain_ops = []
    op = f.next_op(op_add1.outputs[0], "the message ADD")
    while op.opcode == "FULLY_CONNECTED":
        chain_ops.append(op)
        op = f.next_op(op.outputs[0], "a message FULLY_CONNECTED")
    if op.opcode != "MUL" or g.inputs[2] not in op.inputs:
        raise TFLiteError(f"expected the message chain to end in MUL with the mask, found {op.opcode}")
    op_mul = op
    op_max = f.next_op(op_mul.outputs[0], "the mask MUL")
    if op_max.opcode != "REDUCE_MAX":
        raise TFLiteError(f"expected REDUCE_MAX after the mask MUL, found {op_max.opcode}")
    axis = g.tensors[op_max.inputs[1]].data
    if axis is None or np.asarray(axis).reshape(-1).tolist() != [1] or op_max.options.get("keepDims"):
        raise TFLiteError("REDUCE_MAX must reduce over the senders (axis 1) without keeping dims")
    q_in, q_out = _qp(g.tensors[op_max.inputs[0]]), _qp(g.tensors[op_max.outputs[0]])
    if (q_in.scale, q_in.zero_point) != (q_out.scale, q_out.zero_point):
        raise TFLiteError("REDUCE_MAX with different input and output quantization is not supported")
    op_agg = f.next_op(op_max.outputs[0], "REDUCE_MAX")
    op_add2 = f.next_op(op_agg.outputs[0], "the aggregate FC")
    if f.through_reshapes(op_xu.outputs[0]) not in op_add2.inputs:
        raise TFLiteError("expected the update ADD to join the update node part and the aggregate part")
    upd_ops = []
    t = op_add2.outputs[0]
    while f.through_reshapes(t) != g.outputs[0]:
        op = f.next_op(t, "the update chain")
        if op.opcode != "FULLY_CONNECTED":
            raise TFLiteError(f"expected FULLY_CONNECTED in the update chain, found {op.opcode}")
        upd_ops.append(op)
        t = op.outputs[0]

    if len(chain_ops) == 3 and len(upd_ops) == 3:
        low_rank, k1, msg_names, upd_names = True, "U", ["msg1.V", "msg2.U", "msg2.V"], ["upd1.V", "upd2.U", "upd2.V"]
    elif len(chain_ops) == 1 and len(upd_ops) == 1:
        low_rank, k1, msg_names, upd_names = False, "W", ["msg2.W"], ["upd2.W"]
    else:
        raise TFLiteError(
            f"unexpected depth: {len(chain_ops)} message and {len(upd_ops)} update FCs after the ADDs "
            "(the generator knows 3/3 for LR-MPGNN and 1/1 for MPGNN)"
        )
    # ADD operand order as in the flatbuffer: the C kernel takes (input1, input2) likewise
    add1 = f.add(op_add1, "the message parts")
    add2 = f.add(op_add2, "the update parts")
    mul_in = [g.tensors[i] for i in op_mul.inputs]
    if mul_in[1].index != g.inputs[2]:
        raise TFLiteError("expected the mask as the second MUL operand")
    m1, m2, mo = _qp(mul_in[0]), _qp(mul_in[1]), _qp(g.tensors[op_mul.outputs[0]])
    mm, ms = quant.mul_params(m1.scale, m2.scale, mo.scale)
    lo, hi = quant.activation_range(op_mul.options.get("activation", "NONE"), mo.zero_point, mo.scale)
    prog = Program(
        K=K,
        nt=nt,
        x=_qp(tx),
        e=_qp(te),
        mask=_qp(tm),
        o=_qp(g.tensors[g.outputs[0]]),
        msg_node=f.fc(op_xm, f"msg1.{k1}.x"),
        msg_edge=f.fc(op_e, f"msg1.{k1}.e"),
        msg_add=add1,
        msg_chain=[f.fc(op, n) for op, n in zip(chain_ops, msg_names)],
        mask_mul=Mul(m1, m2, mo, mm, ms, lo, hi),
        upd_node=f.fc(op_xu, f"upd1.{k1}.x"),
        upd_agg=f.fc(op_agg, f"upd1.{k1}.m"),
        upd_add=add2,
        upd_chain=[f.fc(op, n) for op, n in zip(upd_ops, upd_names)],
        low_rank=low_rank,
    )
    for add, op_add, op_node in ((prog.msg_add, op_add1, op_xm), (prog.upd_add, op_add2, op_xu)):
        # which ADD operand is the node part: the C kernel keeps TFLM's operand order
        add.p["node_first"] = (
            f.through_reshapes(op_node.outputs[0]) == f.through_reshapes(op_add.inputs[0])
            or op_node.outputs[0] == op_add.inputs[0]
        )
    _check_fused_max(prog)
    return prog


def mask_one(prog: Program) -> int:
    """The mask's int8 code of 1.0 (an active edge); an inactive edge is its zero point (0.0)."""
    m = prog.mask
    return int(np.clip(quant._round_away(1.0 / quant.f32(m.scale)) + m.zero_point, -128, 127))


def _check_fused_max(prog: Program) -> None:
    """The generated C takes the max over senders of the wide layer's int32 accumulators and
    requantizes once, where TFLM requantizes every edge, multiplies by the mask and then takes
    the max. That is exact only when the MUL is non-decreasing in the wide layer's output and a
    masked edge (mask code = its zero point, product 0) never beats an active one: a positive MUL
    multiplier, the wide layer's outputs at or above the MUL's input zero point (its ReLU), and the
    code of 1.0 above the mask's zero point. Otherwise the C would not be bit-exact: refuse."""
    wide, mul, one = prog.msg_chain[-1], prog.mask_mul, mask_one(prog)
    if mul.mult <= 0:
        raise TFLiteError(f"the mask MUL's multiplier is {mul.mult}: the fused max needs it positive")
    if wide.act_min < mul.in1.zero_point:
        raise TFLiteError(
            f"{wide.name} outputs down to {wide.act_min}, below the mask MUL's input zero point "
            f"{mul.in1.zero_point}: the fused max needs the wide layer's ReLU"
        )
    if one <= mul.in2.zero_point:
        raise TFLiteError(f"the mask's code of 1.0 ({one}) is not above its zero point {mul.in2.zero_point}")
