"""TFLite export: checkpoint -> ``model_int8.tflite`` (and ``model_fp32.tflite``).

The graph is the one-step core of :mod:`.core` (the float front end of
:mod:`.frontend` runs around it), built with TensorFlow from the same
weights and converted with full-integer post-training quantization:
int8 inputs and outputs, per-channel int8 weights with zero point 0,
int32 biases, asymmetric int8 activations, calibrated on the core inputs
that the fp32 model meets on training scenes over all of its steps.

Calibrated ranges are snapped before quantization (:func:`snap_ranges`):
the float kernels that produce them (numpy for the core inputs, TFLite's
calibrator for the rest) pick SIMD paths by CPU, and on a machine with
AVX-512 five activation scales came out 1e-7 apart from an AVX2 machine's,
which moved 525 bytes of the int8 model (biases and requantization by 1).
Each calibrated [min, max] is widened outward to multiples of
``2**(floor(log2(max - min)) - RANGE_BITS)``, less than one int8 step at
each end, so the same checkpoint and scenes give the same bytes on any x86.

Every matrix of :func:`.core.core_layers` becomes one FULLY_CONNECTED, so
each low-rank layer's U and V stay two separate weights in the flatbuffer.
Ops used (the list a TFLM user registers): FULLY_CONNECTED, ADD, RESHAPE,
MUL, REDUCE_MAX, and QUANTIZE/DEQUANTIZE only in the fp32 file.

Tensor shapes of the core (K fixed at export, Nt antennas)::

    x    [K, 4Nt]      node state [Re v, Im v, d]
    e    [K, K, 2Nt]   edge features, [k, j] = edge j -> k
    mask [K, K, 1]     1.0 where the edge exists, else 0.0
    o    [K, 2Nt]      update-net output (v <- P(o + v) in the front end)
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator

import numpy as np

from tinyrrm.errors import TinyrrmError
from tinyrrm.training.models import MPGNN

from . import frontend
from .core import CoreLayer, Matrix, core_layers, core_numpy
from .tflm import _capture_fd

# TensorFlow reads these at import: keep its C++ start-up chatter out of the user's terminal
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

INPUTS = ("x", "e", "mask")
OUTPUT = "o"


class ExportError(TinyrrmError, ValueError):
    """Bad input to an export stage (one line, for the CLI)."""


@contextlib.contextmanager
def _quiet_tf():
    """TensorFlow's Python logging would bury the progress output (its C++ logging is
    silenced by the environment variables set at import of this module)."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    yield tf


def tf_core(model: MPGNN):
    """A ``tf.function`` of the core with the model's weights as constants."""
    with _quiet_tf() as tf:
        cfg = model.cfg
        K, nt = cfg.K, cfg.Nt
        L = core_layers(model)

        def lin(m: Matrix, t):  # t [n, d_in] -> [n, d_out]
            y = tf.matmul(t, tf.constant(m.weight))
            return y if m.bias is None else tf.nn.bias_add(y, tf.constant(m.bias))

        def act(m: Matrix, t):
            return tf.nn.relu(t) if m.relu else t

        def chain(layer: CoreLayer, t):
            for m in layer.chain:
                t = act(m, lin(m, t))
            return t

        @tf.function(
            input_signature=[
                tf.TensorSpec([K, 4 * nt], tf.float32, name="x"),
                tf.TensorSpec([K, K, 2 * nt], tf.float32, name="e"),
                tf.TensorSpec([K, K, 1], tf.float32, name="mask"),
            ]
        )
        def core(x, e, mask):
            p = L["msg1"].parts
            a = lin(p["x"], x)  # (K, r1) sender part
            c = lin(p["e"], tf.reshape(e, [K * K, 2 * nt]))  # (K·K, r1) edge part
            r1 = c.shape[-1]
            t = tf.reshape(a, [1, K, r1]) + tf.reshape(c, [K, K, r1])  # broadcast over receivers
            t = act(p["x"], tf.reshape(t, [K * K, r1]))
            t = chain(L["msg1"], t)  # (K·K, h1)
            m2 = L["msg2"].parts[""]
            t = chain(L["msg2"], act(m2, lin(m2, t)))  # (K·K, h2), >= 0
            h2 = t.shape[-1]
            t = tf.reshape(t, [K, K, h2]) * mask  # masked messages -> 0
            agg = tf.reduce_max(t, axis=1)  # (K, h2)
            p = L["upd1"].parts
            y = act(p["x"], lin(p["x"], x) + lin(p["m"], agg))
            u = chain(L["upd1"], y)  # (K, u1)
            u2 = L["upd2"].parts[""]
            o = chain(L["upd2"], act(u2, lin(u2, u)))  # (K, 2Nt)
            return {OUTPUT: o}

        return core


def calibration_inputs(model: MPGNN, H: np.ndarray, mask: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Core inputs ``[x, e, mask]`` of every step of the fp32 model on each scene.

    Shapes: H ``[N, K, K, Nt]`` complex (unit noise), mask ``[N, K, K]`` bool.
    """
    fe = frontend.FrontEnd.of(model)
    L = core_layers(model)
    for i in range(H.shape[0]):
        seen: list[list[np.ndarray]] = []

        def core(x, e, m, seen=seen):
            seen.append([x.copy(), e, m])
            return core_numpy(L, x, e, m, np.float32)

        frontend.run(fe, core, H[i], mask[i])
        yield from seen


#: calibrated ranges are widened to multiples of 2^-RANGE_BITS of their width's power of two
RANGE_BITS = 8


def snap_range(lo: float, hi: float, bits: int = RANGE_BITS) -> tuple[float, float]:
    """``[lo, hi]`` widened outward to the grid ``g = 2**(floor(log2(hi - lo)) - bits)``
    (``g <= (hi - lo) / 2**bits``: less than one int8 step per end); float32 values.
    An empty or degenerate range (``hi <= lo``) is returned as it is."""
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        return float(np.float32(lo)), float(np.float32(hi))
    g = 2.0 ** (math.floor(math.log2(hi - lo)) - bits)
    a, b = math.floor(lo / g) * g, math.ceil(hi / g) * g  # exact in float64 (power-of-two grid)
    a32, b32 = np.float32(a), np.float32(b)
    if a32 > a:  # float32 rounding must not narrow the range
        a32 = np.nextafter(a32, np.float32(-np.inf))
    if b32 < b:
        b32 = np.nextafter(b32, np.float32(np.inf))
    return float(a32), float(b32)


def snap_ranges(model_bytes: bytes, bits: int = RANGE_BITS) -> tuple[bytes, int]:
    """A calibrated flatbuffer with every tensor's recorded [min, max] snapped
    (:func:`snap_range`), edited in place; and how many tensors had a range."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    buf = bytearray(model_bytes)
    m = fb.Model.GetRootAs(buf, 0)
    n = 0
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for t in range(sg.TensorsLength()):
            q = sg.Tensors(t).Quantization()
            if q is None or q.MinLength() == 0 or q.MinLength() != q.MaxLength():
                continue
            lo, hi = q.MinAsNumpy(), q.MaxAsNumpy()  # float32 views into buf
            for i in range(len(lo)):
                lo[i], hi[i] = snap_range(lo[i], hi[i], bits)
            n += 1
    return bytes(buf), n


@contextlib.contextmanager
def _snapped_calibration(seen: list[int]):
    """TFLite's converter with :func:`snap_ranges` between its calibration and its MLIR
    quantizer, the converter's own path otherwise (``lite._mlir_quantize``, private: a
    TensorFlow that no longer takes that path fails the export rather than skip the snap)."""
    from tensorflow.lite.python import lite

    real = lite._mlir_quantize

    def quantize(calibrated, *args, **kw):
        snapped, n = snap_ranges(calibrated)
        seen.append(n)
        return real(snapped, *args, **kw)

    lite._mlir_quantize = quantize
    try:
        yield
    finally:
        lite._mlir_quantize = real


def convert(model: MPGNN, calib: list[list[np.ndarray]], int8: bool = True) -> bytes:
    """Flatbuffer bytes of the core: full-integer int8 (``int8=True``) or fp32."""
    with _quiet_tf() as tf:
        fn = tf_core(model)
        cf = fn.get_concrete_function()
        conv = tf.lite.TFLiteConverter.from_concrete_functions([cf], fn)
        if int8:
            if not calib:
                raise ExportError("int8 export needs calibration scenes, got none")

            def rep():
                for x, e, m in calib:
                    yield [x, e, m]

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8

        seen: list[int] = []
        snap = _snapped_calibration(seen) if int8 else contextlib.nullcontext()
        with warnings.catch_warnings(), _capture_fd(2), snap:  # the converter's C++ chatter
            warnings.simplefilter("ignore")
            out = bytes(conv.convert())
        if int8 and not (len(seen) == 1 and seen[0] > 0):
            raise ExportError(
                f"TensorFlow {tf.__version__}'s converter did not pass its calibrated ranges "
                "through tflite_export.snap_ranges: the int8 bytes would depend on the CPU"
            )
        return out
