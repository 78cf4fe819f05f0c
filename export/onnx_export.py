"""ONNX export: checkpoint -> ``model.onnx`` (fp32, fixed K, all steps).

The graph is :meth:`MPGNN.propagate` — the dense form's message passing
over real features, traced with the plain (unfused) max — so ONNX Runtime
is compared with exactly what PyTorch trains. The float front end
(:func:`.frontend.features`: companding, standardisation, MRT start) stays
outside, as for every exported backend.

Inputs and outputs (batch ``N`` is dynamic, K and Nt are fixed)::

    x0   float32 [N, K, 4Nt]     initial node state [Re v0, Im v0, d]
    d    float32 [N, K, 2Nt]     standardised direct channel
    e    float32 [N, K, K, 2Nt]  edge features, [n, k, j] = edge j -> k
    mask bool    [N, K, K]       edge j -> k exists
    v    float32 [N, K, 2Nt]     beamformers [Re, Im], ||v_k|| <= 1
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch
from torch import nn

from tinyrrm.errors import UsageError
from tinyrrm.training.models import MPGNN

INPUTS = ("x0", "d", "e", "mask")
OUTPUTS = ("v",)
#: opsets the exporter is tested with (17 or newer)
MIN_OPSET, MAX_OPSET = 17, 21
DEFAULT_OPSET = 17


class _Propagate(nn.Module):
    def __init__(self, model: MPGNN):
        super().__init__()
        self.model = model

    def forward(self, x0, d, e, mask):
        return self.model.propagate(x0, d, e, mask)


def to_onnx(model: MPGNN, opset: int = DEFAULT_OPSET) -> bytes:
    """Serialized ONNX model (bytes) of ``model.propagate``; checked with ``onnx.checker``."""
    import onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"unsupported ONNX opset {opset}; use {MIN_OPSET}..{MAX_OPSET}")
    cfg = model.cfg
    K, nt = cfg.K, cfg.Nt
    model = model.eval()
    fused = model.fused
    model.fused = False  # plain masked amax: exportable ops
    try:
        args = (
            torch.zeros(1, K, 4 * nt),
            torch.zeros(1, K, 2 * nt),
            torch.zeros(1, K, K, 2 * nt),
            torch.ones(1, K, K, dtype=torch.bool),
        )
        buf = io.BytesIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Propagate(model),
                args,
                buf,
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
                dynamic_axes={n: {0: "N"} for n in INPUTS + OUTPUTS},
            )
    finally:
        model.fused = fused
    proto = onnx.load_from_string(buf.getvalue())
    proto.producer_name = "tinyrrm"
    proto.doc_string = f"{cfg.name}: K={K}, Nt={nt}, steps={cfg.steps}"
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


class ORTModel:
    """ONNX Runtime session over ``model.onnx`` bytes, single-threaded (deterministic)."""

    def __init__(self, onnx_bytes: bytes):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])

    def __call__(self, x0: np.ndarray, d: np.ndarray, e: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {
            "x0": x0.astype(np.float32),
            "d": d.astype(np.float32),
            "e": e.astype(np.float32),
            "mask": mask.astype(bool),
        }
        return self.sess.run(["v"], feeds)[0]
