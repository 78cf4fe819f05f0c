"""Export stage: checkpoint + calibration scenes -> an export folder.

``export_model(ckpt, out, calib)`` writes, all computed before the first
file is written (an error leaves nothing half-written)::

    out/model.onnx           fp32, all steps (onnx_export)
    out/model_int8.tflite    full-integer int8 core (tflite_export)
    out/model_fp32.tflite    the same core in fp32, for comparison
    out/model_data.c, .h     the int8 flatbuffer as an aligned C array + ops to register
    out/scene_inputs.npz     the int8 core inputs of the first calibration scene at its
                             first and last step (the real-scene test vectors)
    out/export.json          what went in (checkpoint and calibration hashes),
                             what came out (hashes, shapes, TFLM arena), and under
                             ``codegen`` everything code generation needs besides the
                             .tflite: the float front end, the edge cut, K, Nt, names

Code generation reads this folder only (the manifest, the .tflite and the
scene inputs), never the checkpoint or a scene file, so a copy of the folder
regenerates the C anywhere.

The calibration is part of the export: ``export.json`` records the scene file
(path, sha256, scenes used), and every later use of the folder (the evaluate
backends, codegen, the HIL) takes it from there. No calibration is implied:
without one given, :func:`ensure` reuses the folder's own or fails with one
line that says what to pass. A folder is never replaced by an export of other
calibration data or of another checkpoint unless asked to (``replace``:
``tinyrrm export model --force``), checked before any work (:func:`guard`).

:func:`ensure` reuses a folder whose manifest matches the checkpoint and
calibration hashes and whose ``.source`` stamp matches the exporter's own
source (:func:`source_digest`), so backends and codegen never recompute what
is on disk and never reuse what older code wrote. The stamp is kept out of
the manifest: ``generated/<target>/tflm/`` copies the manifest, and a comment
edited in the exporter must not make committed bytes stale.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tinyrrm import paths
from tinyrrm.errors import InputError, UsageError
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training import models
from tinyrrm.training.fileio import FolderMark, npz_bytes, portable, write_bytes, write_text
from tinyrrm.training.fileio import check_out_dir as check_dir
from tinyrrm.training.models import MPGNN
from tinyrrm.training.scenes import load as load_scenes

from . import cprefix, frontend, onnx_export, render, tflite_export, tflite_reader, tflm

FORMAT = "tinyrrm-export/1"
MANIFEST = "export.json"
#: int8 core inputs of a real scene for the test vectors (:func:`scene_inputs`)
SCENE_INPUTS = "scene_inputs.npz"
#: cache stamp beside the manifest: :func:`source_digest` of the code that wrote the folder
STAMP = ".source"
BUILD = paths.BUILD_EXPORT
#: calibration scenes used when ``--n-calib`` is not given (fewer if the file holds fewer)
DEFAULT_N_CALIB = 200
#: the files :func:`export_model` writes into its folder (nothing else there is touched)
WRITES = (
    "model.onnx",
    "model_int8.tflite",
    "model_fp32.tflite",
    "model_data.h",
    "model_data.c",
    SCENE_INPUTS,
    MANIFEST,
    STAMP,
)
#: an export folder knows itself by its manifest
FOLDER = FolderMark(MANIFEST, FORMAT, lambda doc: [*doc["files"], STAMP])
#: scenes on which ONNX Runtime is checked against PyTorch at export time
N_CHECK = 4


def default_dir(ckpt_dir) -> Path:
    return BUILD / Path(ckpt_dir).resolve().name


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_digest() -> str:
    """sha256 over the code whose output an export folder holds: the export
    package (ONNX, TFLite, quantisation, the renderer), the ``tflm/`` templates,
    and the training package (the model the graphs are traced from)."""
    roots = [Path(__file__).parent, Path(models.__file__).parent, paths.TEMPLATES / "tflm"]
    h = hashlib.sha256()
    for root in roots:
        for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".j2")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _role(model: MPGNN) -> str:
    """The model's default C prefix (:func:`.cprefix.default`; the full name goes in comments)."""
    return cprefix.default(model.cfg.name)


def _resolver_name(opcode: str) -> str:
    return "Add" + "".join(w.capitalize() for w in opcode.split("_"))


def _io(g: tflite_reader.Graph, index: int, name: str) -> dict:
    t = g.tensors[index]
    return {"name": name, "shape": list(t.shape), "scale": float(t.scale[0]), "zero_point": int(t.zero_point[0])}


def calibration(model: MPGNN, calib_path, n: int, progress: bool = True) -> tuple[list, dict]:
    """Core inputs of the fp32 model on the first ``n`` scenes of ``calib_path``."""
    scenes = load_scenes(calib_path)
    if (scenes.K, scenes.Nt) != (model.cfg.K, model.cfg.Nt):
        raise ckpt.CheckpointError(
            f"calibration scenes {calib_path} have K={scenes.K}, Nt={scenes.Nt}; the export of {model.cfg.name} "
            f"is fixed at K={model.cfg.K}, Nt={model.cfg.Nt}"
        )
    if n < 1:
        raise UsageError(f"need at least one calibration scene, got {n}")
    n = min(n, scenes.N)
    H = frontend.unit_noise(scenes)[:n]
    mask = scenes.edge_mask(model.cfg.cut_m)[:n]
    samples = []
    it = tflite_export.calibration_inputs(model, H, mask)
    for s in tqdm(
        it,
        total=n * model.cfg.steps,
        desc=f"{model.cfg.name} calibration",
        disable=None if progress else True,
        leave=False,
    ):
        samples.append(s)
    info = {
        "scenes": Path(calib_path).name,
        "path": portable(calib_path),
        "sha256": ckpt.file_sha256(calib_path),
        "n_scenes": n,
        "samples": len(samples),
    }
    return samples, info


def check_out_dir(out_dir) -> Path:
    """Up front: ``out_dir`` may take an export; none of :data:`WRITES` is in it unless it
    is an export folder already."""
    return check_dir(out_dir, FOLDER, writes=WRITES)


def scene_inputs(model: MPGNN, calib_path, core: tflm.TFLMCore, x_q: dict, e_q: dict) -> bytes:
    """The .npz of core inputs ``x_q [2, K, 4Nt]``, ``e_q [2, K, K, 2Nt]`` (int8) and
    ``edge [2, K, K]`` (bool) of the first scene of ``calib_path`` at its first and last step.

    The trajectory runs as on the target (the float front end around the int8 core under
    TFLM), so no BLAS enters and the bytes are the same on any machine. ``x_q``, ``e_q``:
    the quantization (``scale``, ``zero_point``) of the core's inputs.
    """
    scenes = load_scenes(calib_path).subset(slice(0, 1))
    edge = scenes.edge_mask(model.cfg.cut_m)[0]
    seen: list[tuple] = []

    def step(x, e, m):
        seen.append(
            (tflm.quantize(x, x_q["scale"], x_q["zero_point"]), tflm.quantize(e, e_q["scale"], e_q["zero_point"]))
        )
        return core(x, e, m)

    frontend.run(frontend.FrontEnd.of(model), step, frontend.unit_noise(scenes)[0], edge)
    picked = [seen[0], seen[-1]]
    return npz_bytes(
        [
            ("x_q", np.stack([p[0] for p in picked])),
            ("e_q", np.stack([p[1] for p in picked])),
            ("edge", np.stack([edge, edge])),
        ]
    )


def export_model(
    ckpt_dir,
    out_dir,
    calib_path,
    n_calib: int = DEFAULT_N_CALIB,
    opset: int = onnx_export.DEFAULT_OPSET,
    progress: bool = True,
    replace: bool = False,
) -> Path:
    """Export one checkpoint calibrated on ``calib_path`` (see the module docstring) into
    ``out_dir`` (None: :func:`default_dir`); returns the folder. An export folder there of
    another checkpoint or other calibration is refused before any work (:func:`guard`)
    unless ``replace``."""
    out = check_out_dir(Path(out_dir) if out_dir is not None else default_dir(ckpt_dir))
    model, doc = ckpt.load(ckpt_dir)
    if model.cfg.top_m is not None:  # the generated report and the HIL build the graph from cut_m alone
        raise UsageError(
            f"{ckpt_dir}: a top-{model.cfg.top_m} interferer graph does not export yet (only a distance cut)"
        )
    _check_calib_file(calib_path)
    if not replace:
        guard(out, ckpt_dir, calib_path, n_calib)
    # the canonical command, whatever triggered the export: same inputs, same bytes
    command = " ".join(
        shlex.quote(str(a))
        for a in (
            "tinyrrm",
            "export",
            "model",
            "--checkpoint",
            portable(ckpt_dir),
            "--calib",
            portable(calib_path),
            "--n-calib",
            n_calib,
            "--opset",
            opset,
        )
    )

    samples, cal = calibration(model, calib_path, n_calib, progress)
    onnx_bytes = onnx_export.to_onnx(model, opset)
    _check_onnx(model, onnx_bytes, samples)
    int8 = tflite_export.convert(model, samples, int8=True)
    fp32 = tflite_export.convert(model, samples, int8=False)
    g = tflite_reader.read(int8)
    core = tflm.TFLMCore(int8)
    core(*samples[0])  # the arena is known after the first invoke
    arena = core.arena()

    sha8 = _sha(int8)
    inputs = [_io(g, i, n) for i, n in zip(g.inputs, tflite_export.INPUTS)]
    ctx = {
        "provenance": render.provenance(command, sha8),
        "name": model.cfg.name,
        "prefix": "TINYRRM_" + _role(model).upper(),
        "guard": f"TINYRRM_{_role(model).upper()}_MODEL_DATA_H",
        "symbol": f"{_role(model)}_model_data",
        "header": "model_data.h",
        "ops": [{"name": op, "resolver": _resolver_name(op)} for op in g.opcodes],
        "inputs": inputs,
        "output": _io(g, g.outputs[0], tflite_export.OUTPUT),
        "arena": arena["total"],
        "length": len(int8),
        "data": np.frombuffer(int8, np.uint8),
    }
    files = {
        "model.onnx": onnx_bytes,
        "model_int8.tflite": int8,
        "model_fp32.tflite": fp32,
        "model_data.h": render.render("tflm/model_data.h.j2", **ctx).encode(),
        "model_data.c": render.render("tflm/model_data.c.j2", **ctx).encode(),
        SCENE_INPUTS: scene_inputs(model, calib_path, core, inputs[0], inputs[1]),
    }
    manifest = {
        "format": FORMAT,
        "model": model.cfg.to_dict(),
        "name": model.cfg.name,
        "checkpoint": {
            "path": portable(ckpt_dir),
            "weights_sha256": ckpt.file_sha256(Path(ckpt_dir) / ckpt.WEIGHTS),
            "training_data_sha256": doc.get("data", {}).get("sha256"),
        },
        "calibration": {**cal, "is_training_data": cal["sha256"] == doc.get("data", {}).get("sha256")},
        "onnx": {
            "file": "model.onnx",
            "opset": opset,
            "inputs": list(onnx_export.INPUTS),
            "outputs": list(onnx_export.OUTPUTS),
        },
        "tflite": {"ops": g.opcodes, "inputs": [ctx["inputs"][i] for i in range(3)], "output": ctx["output"]},
        "tflm": {"arena": arena},
        # what code generation needs besides the .tflite (it never opens the checkpoint)
        "codegen": {
            "frontend": frontend.FrontEnd.of(model).to_dict(),
            "cut_m": model.cfg.cut_m,
            "K": model.cfg.K,
            "Nt": model.cfg.Nt,
            "prefix": _role(model),
            "scene_inputs": SCENE_INPUTS,
        },
        "files": {name: {"sha256": _sha(b), "bytes": len(b)} for name, b in sorted(files.items())},
        "tools": _tool_versions(),
    }
    for name, data in files.items():
        write_bytes(out / name, data)
    write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text(out / STAMP, source_digest() + "\n")
    return out


def _check_onnx(model: MPGNN, onnx_bytes: bytes, samples: list) -> None:
    """ONNX Runtime against the PyTorch core trajectory's first step, at export time."""
    import torch

    ort = onnx_export.ORTModel(onnx_bytes)
    nt = model.cfg.Nt
    step0 = samples[:: model.cfg.steps][:N_CHECK]
    x0 = np.stack([s[0] for s in step0])
    e = np.stack([s[1] for s in step0])
    mask = np.stack([s[2][..., 0] > 0.5 for s in step0])
    d = x0[..., 2 * nt :]
    with torch.no_grad():
        ref = model.propagate(*(torch.from_numpy(a) for a in (x0, d, e, mask))).numpy()
    err = float(np.abs(ort(x0, d, e, mask) - ref).max())
    if not err <= 1e-5:
        raise RuntimeError(f"ONNX Runtime differs from PyTorch by {err:.3g} (> 1e-5)")


def _tool_versions() -> dict:
    return {p: version(p) for p in ("torch", "onnx", "onnxruntime", "tensorflow-cpu", "tflite-micro")}


def read_manifest(out_dir) -> dict | None:
    p = Path(out_dir) / MANIFEST
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _check_calib_file(calib_path) -> None:
    if not Path(calib_path).is_file():
        raise FileNotFoundError(f"calibration scenes {calib_path} not found")


def _own_manifest(out_dir) -> dict | None:
    """The manifest of an export folder (None: no folder, or not an export folder)."""
    m = read_manifest(out_dir)
    return m if isinstance(m, dict) and m.get("format") == FORMAT else None


def _same_checkpoint(m: dict, ckpt_dir) -> bool:
    """The folder's export is of ``ckpt_dir``: its weights, or the same checkpoint folder
    (retrained in place)."""
    rec = m.get("checkpoint", {})
    return rec.get("path") == portable(ckpt_dir) or rec.get("weights_sha256") == ckpt.file_sha256(
        Path(ckpt_dir) / ckpt.WEIGHTS
    )


def _used(calib_path, n_calib: int) -> int:
    """Scenes of ``calib_path`` that a calibration on ``n_calib`` scenes uses."""
    return min(n_calib, load_scenes(calib_path).N)


def _guard_checkpoint(m: dict, out_dir, ckpt_dir) -> None:
    if not _same_checkpoint(m, ckpt_dir):
        raise FileExistsError(
            f"{out_dir}: holds the export of another checkpoint ({m['checkpoint']['path']}), not replaced by "
            f"{ckpt_dir}'s; export it elsewhere (tinyrrm export model --checkpoint {ckpt_dir} --calib F --out D) "
            "or replace it (… --force)"
        )


def guard(out_dir, ckpt_dir, calib_path, n_calib: int = DEFAULT_N_CALIB) -> None:
    """Refuse, before any work, to replace the export folder ``out_dir`` by an export of
    ``ckpt_dir`` calibrated on ``n_calib`` scenes of ``calib_path`` when it holds an export
    of another checkpoint or of other calibration data (sha256 or scene count). A missing
    folder, or one of the same checkpoint and calibration (stale: older exporter code,
    retrained weights), passes."""
    m = _own_manifest(out_dir)
    if m is None:
        return
    _guard_checkpoint(m, out_dir, ckpt_dir)
    rec = m["calibration"]
    sha, used = ckpt.file_sha256(calib_path), _used(calib_path, n_calib)
    if (sha, used) != (rec["sha256"], rec["n_scenes"]):
        what = "other scenes" if sha != rec["sha256"] else f"{used} scenes"
        raise FileExistsError(
            f"{out_dir}: exported with calibration {rec['path']} ({rec['n_scenes']} scenes), not replaced by "
            f"{calib_path} ({what}); pass --calib {rec['path']} to use it, or replace it "
            f"(tinyrrm export model --checkpoint {ckpt_dir} --calib {calib_path} --force)"
        )


def recorded_calibration(out_dir) -> dict | None:
    """The calibration an export folder records (``path``, ``sha256``, ``n_scenes``, …), or None."""
    m = _own_manifest(out_dir)
    return m.get("calibration") if m else None


def is_current(out_dir, ckpt_dir, calib_path=None, n_calib: int = DEFAULT_N_CALIB) -> bool:
    """True when ``out_dir`` holds an export of exactly this checkpoint, written by the
    current exporter, with its files intact; with ``calib_path``, also calibrated on
    ``n_calib`` scenes of it (None: whatever calibration the folder records)."""
    m = _own_manifest(out_dir)
    if not m:
        return False
    try:
        if (Path(out_dir) / STAMP).read_text().strip() != source_digest():  # first: the cheapest check
            return False
        if m["checkpoint"]["weights_sha256"] != ckpt.file_sha256(Path(ckpt_dir) / ckpt.WEIGHTS):
            return False
        if calib_path is not None and (m["calibration"]["sha256"], m["calibration"]["n_scenes"]) != (
            ckpt.file_sha256(calib_path),
            _used(calib_path, n_calib),
        ):
            return False
        return all(_sha((Path(out_dir) / f).read_bytes()) == v["sha256"] for f, v in m["files"].items())
    except (OSError, KeyError):
        return False


def calibration_for(out_dir, ckpt_dir, calib_path=None, n_calib: int | None = None) -> tuple[Path, int]:
    """The calibration an export of ``ckpt_dir`` into ``out_dir`` uses: ``(scene file, scenes)``.

    ``calib_path`` None: the one the folder records, whose file must still be there unchanged;
    no export of the checkpoint there is one error line naming ``--calib``. ``n_calib`` None:
    the folder's scene count for its own calibration file, else :data:`DEFAULT_N_CALIB`.
    """
    m = _own_manifest(out_dir)
    rec = m["calibration"] if m else None
    if calib_path is None:
        if rec is None:
            ckpt.load(ckpt_dir)  # not a checkpoint at all: that error first
            raise UsageError(
                f"no calibration for {ckpt_dir}: pass --calib F, the scenes to calibrate its int8 quantization on "
                f"(its training scenes); {out_dir} holds no export whose calibration could be used"
            )
        _guard_checkpoint(m, out_dir, ckpt_dir)
        path = Path(rec["path"])
        if not path.is_file() or ckpt.file_sha256(path) != rec["sha256"]:
            raise InputError(
                f"{out_dir}: its calibration {rec['path']} is {'gone' if not path.is_file() else 'changed since'} "
                f"(sha256 {rec['sha256'][:12]}…); pass --calib F to export again "
                f"(tinyrrm export model --checkpoint {ckpt_dir} --calib F --force replaces the folder)"
            )
        return path, rec["n_scenes"] if n_calib is None else n_calib
    _check_calib_file(calib_path)
    if n_calib is None:
        same_file = rec is not None and rec["sha256"] == ckpt.file_sha256(calib_path)
        n_calib = rec["n_scenes"] if same_file else DEFAULT_N_CALIB
    return Path(calib_path), n_calib


def plan(ckpt_dir, out_dir=None, calib_path=None, n_calib: int | None = None) -> tuple[Path, Path | None, int]:
    """What :func:`ensure` will do, checked without any work: ``(folder, calibration, scenes)``,
    calibration None when the folder is reused as it is. Raises what :func:`ensure` would
    (no calibration to be had; a folder of another checkpoint or other calibration)."""
    out = Path(out_dir) if out_dir is not None else default_dir(ckpt_dir)
    if calib_path is None and is_current(out, ckpt_dir):
        return out, None, 0
    calib_path, n_calib = calibration_for(out, ckpt_dir, calib_path, n_calib)
    if is_current(out, ckpt_dir, calib_path, n_calib):
        return out, None, 0
    check_out_dir(out)
    guard(out, ckpt_dir, calib_path, n_calib)
    return out, calib_path, n_calib


def ensure(ckpt_dir, out_dir=None, calib_path=None, n_calib: int | None = None, progress: bool = True) -> Path:
    """The export folder of ``ckpt_dir`` (``out_dir`` None: :func:`default_dir`), exporting
    only if it is missing or stale.

    ``calib_path`` None: the calibration the folder records (a stale folder is exported again
    on it); no folder to take it from is one error line naming ``--calib``. Given: it must be
    the folder's own calibration (:func:`guard`), or there is no export there yet. The folder
    is never replaced by an export of another checkpoint or other calibration.
    """
    out, calib_path, n_calib = plan(ckpt_dir, out_dir, calib_path, n_calib)
    if calib_path is None:
        return out
    return export_model(ckpt_dir, out, calib_path, n_calib, progress=progress, replace=True)


def summary(out_dir) -> str:
    """A person's view of an export folder."""
    m = read_manifest(out_dir)
    if m is None:
        raise FileNotFoundError(f"{out_dir}: no {MANIFEST}")
    cal = m["calibration"]
    lines = [
        f"{m['name']} -> {out_dir}  (calibrated on {cal['n_scenes']} scenes of {cal['scenes']}, "
        f"{cal['samples']} samples; TFLM arena {m['tflm']['arena']['total']:,} B; ops {', '.join(m['tflite']['ops'])})"
    ]
    lines += [f"  {name:<20}{f['bytes']:>12,} B  sha256 {f['sha256'][:16]}" for name, f in m["files"].items()]
    return "\n".join(lines)
