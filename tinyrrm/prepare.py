"""What the HIL stage needs from the full environment (torch, TensorFlow), made once.

``prepare(target)`` writes ``build/hil/<target>/``:

* ``scenes.npz`` — the first test scenes (the HIL's workload);
* ``reference.npz`` — their beamformers from WMMSE, the fp32 MPGNN and
  LR-MPGNN (PyTorch) and the generated C on the host;
* ``reference.json`` — model bytes (fp32 original, deployed int8) for the
  60x checks;
* ``gen_mpgnn/`` — generated C of the original full MPGNN (for the
  whole-firmware flash comparison; built with a large virtual flash).

The HIL suite (``hil_tests/``) then needs only numpy, the cross compiler and
QEMU: this folder is what goes into the lean Docker image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyrrm.training.fileio import write_text

OUT = Path("build/hil")


def prepare(target: str, mpgnn="models/mpgnn_paper", lrmpgnn="models/lrmpgnn_paper", test="data/test.npz",
            n: int = 4, calib="data/train.npz", out_dir=None, progress: bool = True) -> Path:
    from tinyrrm.export import codegen, size, stage, targets
    from tinyrrm.export.backends import c_backend
    from tinyrrm.training import checkpoint as ckpt
    from tinyrrm.training.evaluate import save_beamformers, torch_backend
    from tinyrrm.training.models import model_bytes
    from tinyrrm.training.scenes import load, save
    from tinyrrm.training.wmmse import wmmse

    targets.get(target)
    out = Path(out_dir) if out_dir else OUT / target
    scenes = load(test).subset(slice(0, n))
    W = {
        "W_mpgnn_torch": torch_backend(Path(mpgnn), scenes),
        "W_lrmpgnn_torch": torch_backend(Path(lrmpgnn), scenes),
        "W_lrmpgnn_c": c_backend(Path(lrmpgnn), scenes),
        "W_wmmse": wmmse(scenes.H, scenes.p_max, scenes.noise_var, scenes.weights, progress=progress),
    }
    exp = stage.ensure(mpgnn, calib_path=calib, progress=progress)
    codegen.generate(exp, "host", out / "gen_mpgnn")
    full, _ = ckpt.load(mpgnn)
    lr, _ = ckpt.load(lrmpgnn)
    ref = {
        "scenes": str(test), "n_scenes": scenes.N,
        "mpgnn": {"checkpoint": str(mpgnn), "bytes_fp32": model_bytes(full, "fp32"),
                  "bytes_int8_deployed": size.deployed_bytes_from_checkpoint(full)},
        "lrmpgnn": {"checkpoint": str(lrmpgnn), "bytes_fp32": model_bytes(lr, "fp32"),
                    "bytes_int8_deployed": size.deployed_bytes_from_checkpoint(lr)},
    }
    save(scenes, out / "scenes.npz")
    save_beamformers(out / "reference.npz", W)
    write_text(out / "reference.json", json.dumps(ref, indent=2, sort_keys=True) + "\n")
    return out


def load_reference(target: str, out_dir=None) -> tuple[dict, dict[str, np.ndarray], Path]:
    out = Path(out_dir) if out_dir else OUT / target
    if not (out / "reference.json").is_file():
        raise FileNotFoundError(f"{out}: no HIL reference (run `tinyrrm hil-prepare --target {target}`)")
    ref = json.loads((out / "reference.json").read_text())
    with np.load(out / "reference.npz") as z:
        W = {k: z[k] for k in z.files}
    return ref, W, out
