"""TFLite export: checkpoint -> ``model_int8.tflite`` (and ``model_fp32.tflite``).

The graph is the one-step core of :mod:`.core` (the float front end of
:mod:`.frontend` runs around it), built with TensorFlow from the same
weights and converted with full-integer post-training quantization:
int8 inputs and outputs, per-channel int8 weights with zero point 0,
int32 biases, asymmetric int8 activations, calibrated on the core inputs
that the fp32 model meets on training scenes over all of its steps.

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
import os
import warnings
from typing import Iterator

import numpy as np

from tinyrrm.training.models import MPGNN

from . import frontend
from .core import CoreLayer, Matrix, core_layers, core_numpy

# TensorFlow reads these at import: keep its C++ start-up chatter out of the user's terminal
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

INPUTS = ("x", "e", "mask")
OUTPUT = "o"


class ExportError(ValueError):
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

        @tf.function(input_signature=[
            tf.TensorSpec([K, 4 * nt], tf.float32, name="x"),
            tf.TensorSpec([K, K, 2 * nt], tf.float32, name="e"),
            tf.TensorSpec([K, K, 1], tf.float32, name="mask"),
        ])
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

        def core(x, e, m):
            seen.append([x.copy(), e, m])
            return core_numpy(L, x, e, m, np.float32)

        frontend.run(fe, core, H[i], mask[i])
        yield from seen


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
        from .tflm import _capture_fd

        with warnings.catch_warnings(), _capture_fd(2):  # the converter's C++ chatter
            warnings.simplefilter("ignore")
            return bytes(conv.convert())
