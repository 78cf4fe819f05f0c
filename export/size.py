"""Deployed size accounting, read from ``model_int8.tflite`` (``tinyrrm size``).

The checkpoint-side table (:mod:`tinyrrm.training.size`) counts int8 weights
and int32 biases. What a firmware stores per FULLY_CONNECTED is more: the
requantization of every output channel. The layout the generated C uses,
and that is counted here::

    int8  weight [d_out, d_in]      1 B per weight
    int32 bias   [d_out]            4 B per output channel (if the layer has one)
    int32 multiplier [d_out]        4 B per output channel (Q31)
    int8  shift      [d_out]        1 B per output channel

plus a few scalars per ADD / MUL (two input multipliers and shifts, output
multiplier and shift, zero points: counted as 32 B each). The flatbuffer
itself is larger (float scales and int64 zero points per channel, plus
metadata); a TFLM user ships that, so it is reported too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyrrm.training.size import format_size as checkpoint_format
from tinyrrm.training.size import size_report as checkpoint_report

from . import stage, tflite_reader
from .core import core_layers

REQUANT_BYTES_PER_CHANNEL = 5  # int32 multiplier + int8 shift
ELEMENTWISE_OP_BYTES = 32


def deployed_bytes(tflite_path) -> dict:
    """Per-FULLY_CONNECTED and total bytes of the deployed int8 core."""
    g = tflite_reader.read(tflite_path)
    fcs = []
    other = 0
    for op in g.ops:
        if op.opcode == "FULLY_CONNECTED":
            w = g.tensors[op.inputs[1]]
            b = g.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
            d_out, d_in = w.shape
            row = {
                "weight": w.name,
                "shape": [d_out, d_in],
                "weight_bytes": int(np.prod(w.shape)),
                "bias_bytes": 0 if b is None else 4 * d_out,
                "requant_bytes": REQUANT_BYTES_PER_CHANNEL * d_out,
            }
            row["bytes"] = row["weight_bytes"] + row["bias_bytes"] + row["requant_bytes"]
            fcs.append(row)
        elif op.opcode in ("ADD", "MUL"):
            other += ELEMENTWISE_OP_BYTES
    weights = sum(r["weight_bytes"] for r in fcs)
    biases = sum(r["bias_bytes"] for r in fcs)
    requant = sum(r["requant_bytes"] for r in fcs)
    return {
        "fully_connected": fcs,
        "weight_bytes": weights,
        "bias_bytes": biases,
        "requant_bytes": requant,
        "elementwise_bytes": other,
        "total": weights + biases + requant + other,
        "flatbuffer_bytes": Path(tflite_path).stat().st_size,
    }


def size_report(mpgnn_dir, lrmpgnn_dir, export: bool = True, progress: bool = True, calib=None) -> dict:
    """:func:`tinyrrm.training.size.size_report` plus, with ``export``, the deployed
    int8 bytes read from each model's ``model_int8.tflite`` and TFLM's arena (``calib``:
    the calibration scenes of an export not made yet; :func:`.stage.ensure`)."""
    rep = checkpoint_report(mpgnn_dir, lrmpgnn_dir)
    if not export:
        return rep
    for path in (mpgnn_dir, lrmpgnn_dir):
        stage.plan(path, calib_path=calib)  # both checked before any work
    for tag, path in (("mpgnn", mpgnn_dir), ("lrmpgnn", lrmpgnn_dir)):
        out = stage.ensure(path, calib_path=calib, progress=progress)
        rep[tag]["deployed_int8"] = deployed_bytes(out / "model_int8.tflite")
        rep[tag]["tflm_arena_bytes"] = stage.read_manifest(out)["tflm"]["arena"]["total"]
    full = rep["mpgnn"]["bytes_fp32"]
    lr = rep["lrmpgnn"]["deployed_int8"]
    rep["ratio"]["fp32_over_deployed_int8"] = full / lr["total"]
    rep["ratio"]["fp32_over_tflite_flatbuffer"] = full / lr["flatbuffer_bytes"]
    return rep


def format_size(rep: dict) -> str:
    lines = [checkpoint_format(rep)]
    if "deployed_int8" not in rep["lrmpgnn"]:
        return lines[0]
    lines.append("")
    lines.append(
        "deployed int8 core (read from model_int8.tflite; weights + int32 biases + "
        f"{REQUANT_BYTES_PER_CHANNEL} B requantization per output channel + ADD/MUL constants)"
    )
    lines.append(
        f"  {'model':<10}{'weights':>10}{'biases':>10}{'requant':>10}{'other':>8}{'total':>10}"
        f"{'.tflite':>10}{'TFLM arena':>13}"
    )
    for tag in ("mpgnn", "lrmpgnn"):
        d = rep[tag]["deployed_int8"]
        lines.append(
            f"  {tag:<10}{d['weight_bytes']:>10}{d['bias_bytes']:>10}{d['requant_bytes']:>10}"
            f"{d['elementwise_bytes']:>8}{d['total']:>10}{d['flatbuffer_bytes']:>10}"
            f"{rep[tag]['tflm_arena_bytes']:>13}"
        )
    lines.append(f"size ratio fp32 MPGNN / deployed int8 LR-MPGNN: {rep['ratio']['fp32_over_deployed_int8']:.2f}x")
    lines.append(
        f"size ratio fp32 MPGNN / LR-MPGNN .tflite flatbuffer: {rep['ratio']['fp32_over_tflite_flatbuffer']:.2f}x"
    )
    return "\n".join(lines)


def deployed_bytes_from_checkpoint(model) -> int:
    """The same count as :func:`deployed_bytes`, from the checkpoint's matrices
    (no TensorFlow needed); a test holds the two equal."""
    total = 0
    for layer in core_layers(model).values():
        for m in [*layer.parts.values(), *layer.chain]:
            d_in, d_out = m.weight.shape
            total += d_in * d_out + (4 * d_out if m.bias is not None else 0) + REQUANT_BYTES_PER_CHANNEL * d_out
    return total + 3 * ELEMENTWISE_OP_BYTES  # ADD (msg1), ADD (upd1), MUL (mask)
