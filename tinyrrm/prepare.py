"""What the HIL stage needs from the full environment (torch, TensorFlow), made once.

``prepare(target)`` writes ``build/hil/<target>/``:

* ``scenes.npz`` — the first test scenes (the HIL's workload);
* ``reference.npz`` — their beamformers from WMMSE, the fp32 MPGNN and
  LR-MPGNN (PyTorch) and the generated C on the host;
* ``reference.json`` — model bytes (fp32 original, deployed int8) for the
  60x checks;
* ``gen_mpgnn/`` — generated C of the original full MPGNN (for the
  whole-firmware flash comparison; built with a large virtual flash);
* ``yardstick_rates.json`` — sum rates on all the test scenes, host C, of WMMSE-k
  as the generated policy, MRT, the deployed model and the full MPGNN, each over
  WMMSE-100 (:mod:`tinyrrm.hil.yardstick`).

The HIL suite (``hil_tests/``) then needs only numpy, the cross compiler and
QEMU: this folder is what goes into the lean Docker image.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinyrrm import paths
from tinyrrm.codegen import generate as codegen
from tinyrrm.codegen import targets
from tinyrrm.codegen.host import read_report
from tinyrrm.evaluate import save_beamformers, torch_backend
from tinyrrm.evaluate.backends import c_backend
from tinyrrm.export import size, stage
from tinyrrm.hil import yardstick
from tinyrrm.hil.session import gen_dir_for
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training.fileio import write_text
from tinyrrm.training.models import model_bytes
from tinyrrm.training.scenes import load, save
from tinyrrm.training.wmmse import wmmse

OUT = paths.BUILD_HIL


def prepare(
    target: str,
    mpgnn=paths.MPGNN,
    lrmpgnn=paths.LRMPGNN,
    test=paths.TEST,
    n: int = 4,
    calib=paths.TRAIN,
    out_dir=None,
    progress: bool = True,
) -> Path:

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
        "scenes": str(test),
        "n_scenes": scenes.N,
        "mpgnn": {
            "checkpoint": str(mpgnn),
            "bytes_fp32": model_bytes(full, "fp32"),
            "bytes_int8_deployed": size.deployed_bytes_from_checkpoint(full),
        },
        "lrmpgnn": {
            "checkpoint": str(lrmpgnn),
            "bytes_fp32": model_bytes(lr, "fp32"),
            "bytes_int8_deployed": size.deployed_bytes_from_checkpoint(lr),
        },
    }
    lr_gen = gen_dir_for(target)
    rates = yardstick.cached_test_rates(
        test,
        {
            "lrmpgnn_c": (lr_gen, read_report(lr_gen)["model"]["cut_m"]),
            "mpgnn_c": (out / "gen_mpgnn", read_report(out / "gen_mpgnn")["model"]["cut_m"]),
        },
    )
    write_text(out / yardstick.RATES, json.dumps(rates, indent=2, sort_keys=True) + "\n")
    save(scenes, out / "scenes.npz")
    save_beamformers(out / "reference.npz", W)
    write_text(out / "reference.json", json.dumps(ref, indent=2, sort_keys=True) + "\n")
    return out
