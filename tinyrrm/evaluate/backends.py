"""Evaluation backends of the exported models (``tinyrrm evaluate --backend``).

Each follows the contract of :mod:`tinyrrm.evaluate`::

    backend(checkpoint_dir, scenes, calib=None) -> V complex64 [N, K, Nt], ||v_k||^2 <= p_max

and runs the float front end of :mod:`.frontend` around the exported graph,
as a firmware would. The export folder comes from :func:`.stage.ensure`:
``calib`` (the calibration scenes) exports on first use; None reuses the
calibration the checkpoint's export folder records (none there: one error
naming ``--calib``); a folder of other calibration is never replaced.

* ``onnx``        — ``model.onnx`` (all steps, fp32) under ONNX Runtime;
* ``tflite``      — ``model_int8.tflite`` under TensorFlow Lite's interpreter;
* ``tflite_fp32`` — ``model_fp32.tflite`` under TensorFlow Lite's interpreter;
* ``tflm``        — ``model_int8.tflite`` under TFLite Micro: the reference;
* ``c``           — the generated C (host build, portable kernels) with its
  own float front end, K below K_MAX running natively (``in.k``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tinyrrm import paths
from tinyrrm.codegen import generate as codegen
from tinyrrm.codegen import host
from tinyrrm.export import frontend, onnx_export, stage, tflm
from tinyrrm.hil.protocol import check_hello
from tinyrrm.hil.run import build_firmware, infer_scenes, instructions, open_target
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training.models import MPGNN
from tinyrrm.training.scenes import Scenes


def _model(checkpoint_dir: Path, scenes: Scenes) -> MPGNN:
    model, _ = ckpt.load(checkpoint_dir)
    ckpt.check_compatible(model, scenes.K, scenes.Nt, str(checkpoint_dir))
    return model


def _setup(checkpoint_dir: Path, scenes: Scenes, calib):
    """Model, unit-noise channels and edges padded to the export's K, export folder."""
    model = _model(checkpoint_dir, scenes)
    H, mask = pad_links(frontend.unit_noise(scenes), scenes.edge_mask(model.cfg.cut_m), model.cfg.K)
    return model, H, mask, stage.ensure(checkpoint_dir, calib_path=calib)


def pad_links(H: np.ndarray, mask: np.ndarray, k_max: int):
    """Scenes with K < K_MAX links -> K_MAX links, the extra ones inactive.

    Inactive links have zero channels and no edges, so they neither send nor
    receive messages; their outputs are dropped by the caller (``V[:, :K]``).
    Shapes: H ``[N, K, K, Nt]``, mask ``[N, K, K]`` -> ``[N, K_MAX, K_MAX, Nt]``, ``[N, K_MAX, K_MAX]``.
    """
    N, K = H.shape[:2]
    if K == k_max:
        return H, mask
    Hp = np.zeros((N, k_max, k_max, H.shape[-1]), H.dtype)
    Hp[:, :K, :K] = H
    mp = np.zeros((N, k_max, k_max), bool)
    mp[:, :K, :K] = mask
    return Hp, mp


def _per_scene(model: MPGNN, core, H, mask, scenes: Scenes, label: str) -> np.ndarray:
    fe = frontend.FrontEnd.of(model)
    V = [
        frontend.run(fe, core, H[i], mask[i])
        for i in tqdm(range(H.shape[0]), desc=f"{model.cfg.name} on {label}", leave=False, disable=None)
    ]
    return (np.stack(V)[:, : scenes.K] * math.sqrt(scenes.p_max)).astype(np.complex64)


def onnx_backend(checkpoint_dir: Path, scenes: Scenes, calib=None, batch: int = 25) -> np.ndarray:
    model, H, mask, out = _setup(checkpoint_dir, scenes, calib)
    ort = onnx_export.ORTModel((out / "model.onnx").read_bytes())
    fe = frontend.FrontEnd.of(model)
    nt = scenes.Nt
    V = []
    for s in tqdm(range(0, scenes.N, batch), desc=f"{model.cfg.name} on onnxruntime", leave=False, disable=None):
        v0, d, e = frontend.features(fe, H[s : s + batch])
        v = ort(np.concatenate([v0, d], -1), d, e, mask[s : s + batch])
        V.append(v[..., :nt] + 1j * v[..., nt:])
    return (np.concatenate(V)[:, : scenes.K] * math.sqrt(scenes.p_max)).astype(np.complex64)


class TFLiteCore:
    """A .tflite core under TensorFlow Lite's own interpreter (int8 or fp32 I/O)."""

    def __init__(self, model_bytes: bytes):
        import tensorflow as tf

        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": still the TFLite reference here
            warnings.simplefilter("ignore")
            self.ip = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
        self.ip.allocate_tensors()
        self.ins = self.ip.get_input_details()
        self.out = self.ip.get_output_details()[0]

    def __call__(self, x, e, mask):
        for d, a in zip(self.ins, (x, e, mask)):
            if d["dtype"] == np.int8:
                s, z = d["quantization"]
                a = tflm.quantize(a, s, z)
            self.ip.set_tensor(d["index"], np.ascontiguousarray(a, d["dtype"]))
        self.ip.invoke()
        o = self.ip.get_tensor(self.out["index"])
        if self.out["dtype"] == np.int8:
            s, z = self.out["quantization"]
            o = tflm.dequantize(o, s, z)
        return o


def tflite_backend(checkpoint_dir: Path, scenes: Scenes, calib=None) -> np.ndarray:
    model, H, mask, out = _setup(checkpoint_dir, scenes, calib)
    return _per_scene(model, TFLiteCore((out / "model_int8.tflite").read_bytes()), H, mask, scenes, "tflite int8")


def tflite_fp32_backend(checkpoint_dir: Path, scenes: Scenes, calib=None) -> np.ndarray:
    model, H, mask, out = _setup(checkpoint_dir, scenes, calib)
    return _per_scene(model, TFLiteCore((out / "model_fp32.tflite").read_bytes()), H, mask, scenes, "tflite fp32")


def tflm_backend(checkpoint_dir: Path, scenes: Scenes, calib=None) -> np.ndarray:
    model, H, mask, out = _setup(checkpoint_dir, scenes, calib)
    return _per_scene(model, tflm.TFLMCore((out / "model_int8.tflite").read_bytes()), H, mask, scenes, "tflm")


def c_backend(checkpoint_dir: Path, scenes: Scenes, calib=None) -> np.ndarray:
    model = _model(checkpoint_dir, scenes)
    out = stage.ensure(checkpoint_dir, calib_path=calib)
    mask = scenes.edge_mask(model.cfg.cut_m)  # the C runs K < K_MAX natively: no padding
    H = frontend.unit_noise(scenes)
    gen = codegen.generate(out, "host", C_BUILD / out.name)
    hm = host.HostModel(gen)
    V = [
        hm.infer(H[i], mask[i])
        for i in tqdm(range(scenes.N), desc=f"{model.cfg.name} on generated C", leave=False, disable=None)
    ]
    return (np.stack(V) * math.sqrt(scenes.p_max)).astype(np.complex64)


C_BUILD = paths.BUILD_C


def firmware_for(checkpoint_dir: Path, target: str, calib=None) -> tuple[Path, str]:
    """Generated C and firmware of a checkpoint for ``target`` -> (elf, generated folder).

    The committed ``generated/<target>`` is used when it holds this
    checkpoint's export; otherwise C is generated under ``build/gen``. A
    model that does not fit the board (the full MPGNN) is built with a large
    virtual flash (the QEMU machine's whole code memory), so the original's
    whole-firmware flash can be measured too.
    """
    out = stage.ensure(checkpoint_dir, calib_path=calib)
    sha = stage.read_manifest(out)["files"]["model_int8.tflite"]["sha256"]
    committed = paths.GENERATED / target
    rep = committed / "report.json"
    if rep.is_file() and json.loads(rep.read_text())["model"]["tflite_sha256"] == sha:
        gen, big = committed, False
    else:
        gen = paths.BUILD_GEN / target / out.name
        try:
            codegen.generate(out, target, gen)
            big = False
        except codegen.FitError:
            codegen.generate(out, "host", gen)
            big = True
    elf = build_firmware(target, gen, paths.BUILD_FW / target / out.name, host.prefix_of(gen), big_flash=big)
    return elf, gen


def expected_hello(gen_dir: Path) -> dict[str, str]:
    """The HELLO fields that name the model a firmware of ``gen_dir`` serves (its report.json)."""
    m = json.loads((Path(gen_dir) / "report.json").read_text())["model"]
    return {"prefix": m["prefix"], "k_max": str(m["K_MAX"]), "nt": str(m["Nt"]), "steps": str(m["steps"])}


def qemu_backend(
    checkpoint_dir: Path,
    scenes: Scenes,
    calib=None,
    target: str = "cortex-m4",
    port: str | None = None,
    measured: dict | None = None,
) -> np.ndarray:
    """The firmware under QEMU, or with ``port`` on a board, which must run this model's
    firmware (a HELLO that differs is an error naming the fields). ``measured`` (a dict) gets
    ``instructions_per_decision`` (QEMU ``-icount``; a board: ``cycles_per_decision``), the mean."""
    model = _model(checkpoint_dir, scenes)
    elf, gen = firmware_for(checkpoint_dir, target, calib)
    with open_target(target, None if port else elf, port) as client:
        if port:
            check_hello(client.hello(), expected_hello(gen), f"the board on {port}", model.cfg.name)
        stats = client.stats()
        V, ticks = infer_scenes(client, scenes, model.cfg.cut_m)
    if measured is not None:
        if port:
            measured["cycles_per_decision"] = float(np.mean(ticks))
        else:
            measured["instructions_per_decision"] = float(np.mean([instructions(t, stats) for t in ticks]))
    return V


BACKENDS = {
    "onnx": onnx_backend,
    "tflite": tflite_backend,
    "tflite_fp32": tflite_fp32_backend,
    "tflm": tflm_backend,
    "c": c_backend,
    "qemu": qemu_backend,
}
