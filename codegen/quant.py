"""TFLite Micro's integer arithmetic, in Python: parameters and the exact ops.

Two halves:

* parameter derivation from a flatbuffer's float scales — exactly as TFLM's
  kernels prepare them (double arithmetic, ``frexp``, round half away from
  zero), so the generated C receives the very multipliers and shifts TFLM
  computes at ``Prepare`` time;
* the integer primitives (``srdhm``, ``rdbpot``, ``mbqm``) vectorised over
  numpy int64, used by :mod:`.intref`, the integer reference of the
  streaming C, and by the tests.

Fixed-point conventions (gemmlowp, as in TFLM's reference kernels, without
``TFLITE_SINGLE_ROUNDING``)::

    mbqm(x, M, s) = rdbpot(srdhm(x · 2^max(s,0), M), max(-s,0))
"""

from __future__ import annotations

import math

import numpy as np

from tinyrrm.errors import InputError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ADD_LEFT_SHIFT = 20  # TFLM's left_shift for int8 ADD


def _round_away(x: float) -> int:
    """C's ``round`` (TfLiteRound): halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(m: float) -> tuple[int, int]:
    """``m`` (a positive double) -> (Q31 multiplier, shift) as TFLM's ``QuantizeMultiplier``."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = _round_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def f32(x) -> float:
    """A float32 value (as stored in the flatbuffer) widened to double, as C does."""
    return float(np.float32(x))


def fc_params(in_scale: float, w_scales: np.ndarray, out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) of a FULLY_CONNECTED: ``s_in · s_w[c] / s_out`` in double."""
    mult, shift = zip(*(quantize_multiplier(f32(in_scale) * f32(s) / f32(out_scale)) for s in w_scales))
    return np.asarray(mult, np.int64), np.asarray(shift, np.int64)


def add_params(s1: float, s2: float, s_out: float) -> dict:
    """ADD (int8): inputs rescaled to ``2·max(s1, s2)`` after a left shift of 20."""
    twice_max = 2.0 * max(f32(s1), f32(s2))
    m1, sh1 = quantize_multiplier(f32(s1) / twice_max)
    m2, sh2 = quantize_multiplier(f32(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * f32(s_out)))
    return {
        "left_shift": ADD_LEFT_SHIFT,
        "mult1": m1,
        "shift1": sh1,
        "mult2": m2,
        "shift2": sh2,
        "mult_out": mo,
        "shift_out": sho,
    }


def mul_params(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    return quantize_multiplier(f32(s1) * f32(s2) / f32(s_out))


def activation_range(activation: str, zero_point: int, scale: float) -> tuple[int, int]:
    """int8 clamp of a fused activation (TFLM's CalculateActivationRangeQuantized)."""
    if activation == "NONE":
        return -128, 127
    if activation == "RELU":
        return max(-128, zero_point), 127
    if activation == "RELU6":
        return max(-128, zero_point), min(127, zero_point + _round_away(6.0 / f32(scale)))
    raise InputError(f"fused activation {activation} is not supported by the generator")


# ---- integer primitives over int64 arrays (values stay in int32 range) ----------


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul (a, b int32): the high 32 bits of 2·a·b, rounded."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b  # fits: |a·b| < 2^62
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbpot(x, exponent):
    """RoundingDivideByPOT: x / 2^exponent, rounded half away from zero."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x, mult, shift):
    """MultiplyByQuantizedMultiplier (double rounding)."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = np.asarray(x, np.int64) * (np.int64(1) << left)
    xs = ((xs + 2**31) % 2**32) - 2**31  # the int32 product wraps in C: keep the same bits
    return rdbpot(srdhm(xs, mult), right)


def mbqm_smaller_than_one(x, mult, shift):
    """MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0)."""
    return rdbpot(srdhm(x, mult), -np.asarray(shift, np.int64))
