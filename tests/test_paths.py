"""``tinyrrm.paths`` owns every path: shipped data is found from the package, from any working
directory; the default inputs and outputs are relative to the working directory."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tinyrrm import paths

from .test_layers import MODULES

ROOT = Path(__file__).resolve().parents[1]
TINYRRM = Path(sys.executable).parent / "tinyrrm"


def test_shipped_data_is_found_from_the_package():
    for d in (paths.TEMPLATES, paths.KERNELS, paths.FIRMWARE, paths.MPGNN, paths.LRMPGNN):
        assert d.is_absolute() and d.is_dir(), d
    assert paths.PAPER_TABLES.is_absolute() and paths.PAPER_TABLES.is_file()
    for p in (
        paths.DATA,
        paths.TRAIN,
        paths.BUILD,
        paths.BUILD_EXPORT,
        paths.BUILD_FW,
        paths.BUILD_HIL,
        paths.GENERATED,
        paths.REPORTS,
        paths.HIL_REPORTS,
        paths.RUNS,
    ):
        assert not p.is_absolute(), p


def test_no_module_but_paths_spells_a_path():
    """``Path("...")`` with a literal belongs in tinyrrm/paths.py and nowhere else."""
    wrong = []
    for module, file in MODULES.items():
        if module == "tinyrrm.paths":
            continue
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Path"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                wrong.append(f"{module}:{node.lineno}: Path({node.args[0].value!r})")
    assert not wrong, "\n".join(wrong)


def _run(cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(TINYRRM), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_commands_find_the_shipped_data_from_another_directory(tmp_path):
    """The default models, the templates and the kernels resolve through paths.py, not the working directory."""
    r = _run(tmp_path, "size", "--no-export")
    assert r.returncode == 0, r.stderr
    assert "size ratio fp32 MPGNN / fp32 LR-MPGNN" in r.stdout
    committed = ROOT / "generated/cortex-m4"
    r = _run(
        tmp_path, "export", "c", "--export-dir", committed / "tflm", "--target", "cortex-m4", "--out", tmp_path / "x"
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # nothing written beside it
    made = sorted(p.relative_to(tmp_path / "x") for p in (tmp_path / "x").rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    for rel in made:  # the same files but for the command that made them
        a, b = ((d / rel).read_bytes().splitlines() for d in (tmp_path / "x", committed))
        assert [ln for ln in a if b"command:" not in ln] == [ln for ln in b if b"command:" not in ln], rel
