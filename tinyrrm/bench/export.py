"""Export benchmarks for ``make bench``: export time and TFLM time per scene.

Wall-clock on the machine that runs the command; never a test assertion.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tinyrrm.evaluate.backends import pad_links
from tinyrrm.export import frontend, stage, tflm
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training.scenes import load as load_scenes


def export_bench(ckpt_dir, calib_path, test_path, n_scenes: int = 20, progress: bool = True) -> dict:
    """Time one full export of ``ckpt_dir`` and TFLM inference on ``n_scenes`` test scenes."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        out = stage.export_model(ckpt_dir, Path(tmp) / "export", calib_path, progress=progress)
        export_s = time.perf_counter() - t
        blob = (out / "model_int8.tflite").read_bytes()
    model, _ = ckpt.load(ckpt_dir)
    scenes = load_scenes(test_path).subset(slice(0, n_scenes))
    H, mask = pad_links(frontend.unit_noise(scenes), scenes.edge_mask(model.cfg.cut_m), model.cfg.K)
    core = tflm.TFLMCore(blob)
    fe = frontend.FrontEnd.of(model)
    frontend.run(fe, core, H[0], mask[0])  # warm-up
    t = time.perf_counter()
    for i in range(scenes.N):
        frontend.run(fe, core, H[i], mask[i])
    per_scene = (time.perf_counter() - t) / scenes.N
    return {
        "model": model.cfg.name,
        "export_seconds": export_s,
        "calibration_scenes": stage.DEFAULT_N_CALIB,
        "tflm_seconds_per_scene": per_scene,
        "tflm_invokes_per_scene": model.cfg.steps,
        "tflm_scenes": int(scenes.N),
        "tflite_bytes": len(blob),
    }
