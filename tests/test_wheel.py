"""``pip install .`` (a wheel, not the editable install): the package and its shipped data
(templates, kernels, board files, linker scripts, the reference tables, the committed grid
report, the default models) install into a fresh virtual environment, and ``tinyrrm`` works
there from a directory outside the checkout.

The wheel is built from a copy of the files git knows (tracked or not ignored), as a fresh
clone would build it, so nothing under build/, data/ or runs/ can reach it and the checkout's
build/ is not touched. The new environment sees the project environment's site-packages
through a plain path line in a ``.pth`` file (torch and TensorFlow are not installed again);
such a line is not a site directory, so the ``.pth`` files in it, the editable install's
finder among them, never run: a file the wheel does not carry is missing there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tinyrrm import paths

ROOT = Path(__file__).resolve().parents[1]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]


def _git_files(*args: str) -> list[str]:
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", *args], capture_output=True, check=True)
    return sorted({f for f in r.stdout.decode().split("\0") if f and (ROOT / f).is_file()})


def _expected_wheel_files() -> set[str]:
    """Every module under the folders pyproject.toml maps to packages, and the shipped data
    paths.py names: the templates, the default models, the reference tables, the grid report."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    files = _git_files("-co", "--exclude-standard")
    want = set()
    for pkg, src in package_dir.items():
        dest = pkg.replace(".", "/")
        want |= {dest + f[len(src) :] for f in files if f.startswith(src + "/") and f.endswith(".py")}
    for p in (paths.TEMPLATES, paths.MPGNN, paths.LRMPGNN, paths.PAPER_TABLES, paths.GRID_REPORT):
        rel = p.relative_to(paths.SHIPPED).as_posix()
        want |= {f"tinyrrm/{f}" for f in files if f == rel or f.startswith(rel + "/")}
    return want


def _run(cmd, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_wheel_installs_and_exports_outside_the_checkout(tmp_path):
    for tool in ("gcc", "arm-none-eabi-gcc", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run docker/provision.sh")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # the wheel, from the files a clone has
    src = tmp_path / "src"
    for f in _git_files("-co", "--exclude-standard"):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", src, "-w", dist], tmp_path, env)
    (whl,) = dist.glob("tinyrrm-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    meta = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    # exactly these: no test, no build output (build/, data/, runs/, generated/), no stray file
    assert set(names) - meta == _expected_wheel_files()

    # a fresh environment holding only the wheel; the dependencies come through a path line
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", whl], tmp_path, env)
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).stdout.strip()
    )
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "tinyrrm-test-deps.pth").write_text("".join(d + "\n" for d in deps))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    tinyrrm = venv / "bin" / "tinyrrm"

    work = tmp_path / "work"
    work.mkdir()
    assert not work.is_relative_to(ROOT)
    probe = (
        "import json, sys, tinyrrm, tinyrrm.paths as p; print(json.dumps({'module': tinyrrm.__file__,"
        " 'shipped': str(p.SHIPPED), 'finders': [repr(f) for f in sys.meta_path], 'path': sys.path}))"
    )
    where = json.loads(_run([python, "-c", probe], work, env).stdout)
    assert Path(where["module"]).is_relative_to(site), where["module"]
    assert Path(where["shipped"]) == site / "tinyrrm"
    assert not any("editable" in s for s in where["finders"] + where["path"]), where

    # the main job from a directory outside the checkout
    _run([tinyrrm, "scenes", "--out", "s.npz", "--n", "8", "--K", "50", "--Nt", "2", "--seed", "1"], work, env)
    _run([tinyrrm, "export", "target", "--target", "cortex-m4", "--calib", "s.npz"], work, env)
    g = work / "generated" / "cortex-m4"
    committed = ROOT / "generated" / "cortex-m4"
    for f in ("model.c", "model.h", "weights.c", "test_vectors.c", "model.mk", "report.json"):
        assert (g / f).is_file(), f
    # the kernels are verbatim copies of the shipped sources, whatever the model or calibration
    kernels = sorted(p.name for p in (committed / "kernels").iterdir())
    assert sorted(p.name for p in (g / "kernels").iterdir()) == kernels
    for k in kernels:
        assert (g / "kernels" / k).read_bytes() == (committed / "kernels" / k).read_bytes(), k
    rep, ref = (json.loads((d / "report.json").read_text()) for d in (g, committed))
    assert rep["kernels"] == ref["kernels"]  # sources recorded as in the checkout (firmware_templates/...)

    # the C builds: on the host against its own test vectors, and as the firmware (boards, linker scripts)
    srcs = [g / "model.c", g / "weights.c", *sorted((g / "kernels").glob("*.c")), g / "test_vectors.c"]
    vec = work / "vec"
    cc = ["gcc", *STRICT, "-O2", "-DTR_NO_DSP=1", "-DPREFIX=lrmpgnn", "-I", g, *srcs, ROOT / "tests/c/vectors_main.c"]
    _run([*cc, "-o", vec, "-lm"], work, env)
    assert "ok: 8 of 8 vectors bit-exact" in _run([vec], work, env).stdout
    r = _run([tinyrrm, "firmware", "--target", "cortex-m4"], work, env)
    assert (work / "build/fw/cortex-m4/deployed/firmware.elf").is_file(), r.stdout
    # the default models and the C backend from the export folder, all from the installed package
    assert "size ratio fp32 MPGNN / fp32 LR-MPGNN" in _run([tinyrrm, "size", "--no-export"], work, env).stdout
    again = work / "again"
    _run([tinyrrm, "export", "c", "--export-dir", "build/export/lrmpgnn_paper", "--out", again], work, env)
    made = sorted(p.relative_to(g) for p in g.rglob("*") if p.is_file())
    assert sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file()) == made
    for rel in made:  # the same bytes but for the command that made them
        a, b = ((d / rel).read_bytes().splitlines() for d in (again, g))
        assert [ln for ln in a if b"command:" not in ln] == [ln for ln in b if b"command:" not in ln], rel
