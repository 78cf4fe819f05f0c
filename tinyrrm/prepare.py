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
  WMMSE-100 (:mod:`tinyrrm.hil.yardstick`); on a core whose RAM cannot hold the WMMSE
  policy at the scenes' K, also ``yardstick_rates_k<K>.json``: WMMSE-k and MRT on the first
  K links of each test scene, K the largest of the yardstick's ladder that fits.

The HIL suite (``hil_tests/``) then needs only numpy, the cross compiler and
QEMU: this folder is what goes into the lean Docker image.

``prepare_model(target, model, scenes)`` does the same for one model of your own
(a checkpoint or an export folder) and your own scenes, into
``build/hil/<target>/models/<name>/`` with the model's C generated for the core
there (``gen/``): the HIL then measures that model (no original to compare with).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import generate as codegen
from tinyrrm.codegen import targets
from tinyrrm.codegen.host import HostModel, read_report
from tinyrrm.errors import InputError, UsageError
from tinyrrm.evaluate import save_beamformers, torch_backend
from tinyrrm.evaluate.backends import c_backend
from tinyrrm.export import size, stage
from tinyrrm.export.frontend import unit_noise
from tinyrrm.hil import yardstick
from tinyrrm.hil.session import gen_dir_for
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training.fileio import portable, write_text
from tinyrrm.training.models import model_bytes
from tinyrrm.training.scenes import check_cut, load, save
from tinyrrm.training.wmmse import wmmse

OUT = paths.BUILD_HIL


def prepare(
    target: str,
    mpgnn=paths.MPGNN,
    lrmpgnn=paths.LRMPGNN,
    test=paths.TEST,
    n: int = 4,
    calib=None,
    out_dir=None,
    progress: bool = True,
) -> Path:
    """``calib``: the calibration scenes of the models' exports (None: the ones their export
    folders record; :func:`.stage.ensure`)."""
    targets.get(target)
    for ck in (mpgnn, lrmpgnn):
        stage.plan(ck, calib_path=calib)  # both checked before any work
    out = Path(out_dir) if out_dir else OUT / target
    scenes = load(test).subset(slice(0, n))
    W = {
        "W_mpgnn_torch": torch_backend(Path(mpgnn), scenes),
        "W_lrmpgnn_torch": torch_backend(Path(lrmpgnn), scenes),
        "W_lrmpgnn_c": c_backend(Path(lrmpgnn), scenes, calib),
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
    k, _ = yardstick.ladder_k(target, scenes.K, scenes.Nt)
    if k is not None and k != scenes.K:  # the yardstick at fewer links: WMMSE-k and MRT there
        sub = yardstick.cached_test_rates(test, {}, links=k)
        write_text(out / yardstick.rates_name(k), json.dumps(sub, indent=2, sort_keys=True) + "\n")
    save(scenes, out / "scenes.npz")
    save_beamformers(out / "reference.npz", W)
    write_text(out / "reference.json", json.dumps(ref, indent=2, sort_keys=True) + "\n")
    return out


def model_hil_dir(target: str, model_dir) -> Path:
    """Where the HIL of one model of your own runs on ``target``:
    ``build/hil/<target>/models/<model folder's name>/`` (``make hil MODEL=DIR`` spells the same)."""
    return OUT / target / MODELS / Path(model_dir).resolve().name


#: the subfolder of ``build/hil/<target>/`` that holds the HIL runs of models of your own
MODELS = "models"


def _model_facts(model_dir, calib) -> tuple[dict, Path | None]:
    """``({name, K, Nt, cut_m}, checkpoint or None)`` of ``model_dir``: a checkpoint, or an
    export folder (which carries its own calibration, so ``calib`` is refused). No work is done."""
    model_dir = Path(model_dir)
    if (model_dir / stage.MANIFEST).is_file():
        man = stage.read_manifest(model_dir)
        if stage.recorded_calibration(model_dir) is None or "codegen" not in man:
            raise InputError(f"{model_dir}/{stage.MANIFEST}: not an export manifest of this tinyrrm (export again)")
        if calib is not None:
            raise UsageError(f"{model_dir} is an export folder: it carries its own calibration; drop --calib")
        return {"name": man["name"], **{k: man["codegen"][k] for k in ("K", "Nt", "cut_m")}}, None
    if not (model_dir / ckpt.CONFIG).is_file():
        raise InputError(f"{model_dir}: neither a checkpoint ({ckpt.CONFIG}) nor an export folder ({stage.MANIFEST})")
    cfg = ckpt.load(model_dir)[0].cfg  # a bad checkpoint: its own error, before any work
    stage.plan(model_dir, calib_path=calib)  # no calibration to be had, or one that would replace another
    return {"name": cfg.name, "K": cfg.K, "Nt": cfg.Nt, "cut_m": cfg.cut_m}, model_dir


def prepare_model(
    target: str, model_dir, scenes_path, n: int = 4, calib=None, out_dir=None, progress: bool = True
) -> Path:
    """The HIL reference of one model of your own (a checkpoint or an export folder) on
    ``target`` and the first ``n`` scenes of ``scenes_path``, into ``out_dir`` (None:
    :func:`model_hil_dir`)::

        gen/            the model's generated C for ``target`` (never the committed generated/)
        scenes.npz      the scenes the HIL runs
        reference.npz   W_model_c (the same C on the host), W_model_torch (fp32, a checkpoint
                        only), W_wmmse
        reference.json  what went in, and where the generated C is

    What does not fit is one error before the HIL starts: scenes of another K or Nt than the
    model serves (checked before any export), a model too big for the core's flash or RAM
    (:class:`FitError` of code generation).
    """
    t = targets.get(target)
    if n < 1:
        raise UsageError(f"--n must be at least 1 scene, got {n}")
    out = Path(out_dir) if out_dir else model_hil_dir(target, model_dir)
    head = load(scenes_path)
    facts, checkpoint = _model_facts(model_dir, calib)
    K, Nt, cut = facts["K"], facts["Nt"], facts["cut_m"]
    if head.Nt != Nt or head.K > K:
        raise InputError(
            f"scenes {scenes_path} have K={head.K}, Nt={head.Nt}; {facts['name']} ({model_dir}) serves "
            f"K <= {K}, Nt={Nt}"
        )
    check_cut(head, cut, str(scenes_path))
    scenes = head.subset(slice(0, n))
    exp = Path(model_dir) if checkpoint is None else stage.ensure(checkpoint, calib_path=calib, progress=progress)
    gen = codegen.generate(exp, t.name, out / "gen")  # too big for the core: FitError, one line
    hm = HostModel(gen)
    H = unit_noise(scenes)
    mask = scenes.edge_mask(cut)
    W = {
        "W_model_c": (np.stack([hm.infer(H[i], mask[i]) for i in range(scenes.N)]) * np.sqrt(scenes.p_max)).astype(
            np.complex64
        ),
        "W_wmmse": wmmse(scenes.H, scenes.p_max, scenes.noise_var, scenes.weights, progress=progress),
    }
    model = {"path": portable(model_dir), "export": portable(exp), "name": facts["name"]}
    if checkpoint is not None:
        W["W_model_torch"] = torch_backend(checkpoint, scenes)
        model["bytes_fp32"] = model_bytes(ckpt.load(checkpoint)[0], "fp32")
    ref = {
        "scenes": portable(scenes_path),
        "n_scenes": scenes.N,
        "role": "model",
        "gen": portable(gen),
        "model": model,
    }
    save(scenes, out / "scenes.npz")
    save_beamformers(out / "reference.npz", W)
    write_text(out / "reference.json", json.dumps(ref, indent=2, sort_keys=True) + "\n")
    return out
