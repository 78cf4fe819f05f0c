"""TFLite Micro on the host: the reference every downstream byte is held to.

:class:`TFLMCore` runs ``model_int8.tflite`` with the ``tflite-micro``
package (TFLM's reference kernels compiled for the host) and wraps it in
the float front end's quantize/dequantize, so it plugs into
:func:`.frontend.run` like any other core.

Quantization of the float inputs (the rule the generated C front end also
follows): ``q = clamp(round_half_away(x / scale) + zero_point, -128, 127)``,
as TFLite's QUANTIZE kernel does (``TfLiteRound`` = ``std::round``).

TFLM against TFLite's own interpreter: TFLite's interpreter (XNNPACK
delegate, optimized kernels) may differ from TFLM's reference kernels by a
LSB or two in requantization; TFLM runs the same reference arithmetic as
the firmware, so it — not ``tf.lite.Interpreter`` — is the reference.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

import numpy as np

#: arena for the host interpreter; K=50 at the ``paper`` widths needs ~15 MB
HOST_ARENA = 256 << 20


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 with round-half-away-from-zero and saturation.

    As TFLite's QUANTIZE and the generated C (``roundf(x / scale)``): the quotient in float32,
    rounded exactly. The ``+ 0.5`` runs in float64: in float32 ``0.49999997 + 0.5`` rounds up to
    1.0 and the value would round to 1 instead of 0.
    """
    y = np.asarray(x, np.float32) / np.float32(scale)
    r = np.sign(y) * np.floor(np.abs(y).astype(np.float64) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((np.asarray(q, np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


@contextlib.contextmanager
def _capture_fd(fd: int = 2):
    """Capture what C code writes to a file descriptor (TFLM's MicroPrintf: stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        box: list[str] = []
        try:
            yield box
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            box.append(tmp.read().decode(errors="replace"))


def parse_allocations(text: str) -> dict:
    """TFLM's ``print_allocations`` dump -> ``{"total": .., "head": .., "tail": .., "parts": {...}}``."""
    out: dict = {"parts": {}}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", text)
        if m:
            out[key] = int(m.group(1))
    for m in re.finditer(r"'([^']+)' used (\d+) bytes", text):
        out["parts"][m.group(1)] = int(m.group(2))
    if "total" not in out:
        raise RuntimeError(f"no arena total in TFLM's allocation printout: {text[:200]!r}")
    return out


class TFLMCore:
    """The int8 core under TFLite Micro; ``core(x, e, mask)`` in float."""

    def __init__(self, model_bytes: bytes, arena_size: int = HOST_ARENA):
        from tflite_micro.python.tflite_micro import runtime

        self._ip = runtime.Interpreter(bytes(model_bytes), [], arena_size)
        self.inputs = [self._ip.get_input_details(i) for i in range(3)]
        self.output = self._ip.get_output_details(0)

    @staticmethod
    def _qp(d) -> tuple[float, int]:
        q = d["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])

    def quantize_inputs(self, x, e, mask) -> list[np.ndarray]:
        return [quantize(a, *self._qp(d)) for a, d in zip((x, e, mask), self.inputs)]

    def invoke_int8(self, xq: np.ndarray, eq: np.ndarray, mq: np.ndarray) -> np.ndarray:
        """One invoke on int8 inputs -> int8 output ``[K, 2Nt]``."""
        for i, a in enumerate((xq, eq, mq)):
            self._ip.set_input(np.ascontiguousarray(a, np.int8), i)
        self._ip.invoke()
        return np.array(self._ip.get_output(0), np.int8)

    def __call__(self, x, e, mask) -> np.ndarray:
        return dequantize(self.invoke_int8(*self.quantize_inputs(x, e, mask)), *self._qp(self.output))

    def arena(self) -> dict:
        """TFLM's own account of its arena (needs one invoke first)."""
        with _capture_fd() as box:
            self._ip.print_allocations()
        return parse_allocations(box[0])
