"""Every path the package uses, in one place (a leaf: imports nothing of the project).

Two kinds:

* shipped data — ``firmware_templates/``, ``reference/``, ``models/`` and the committed
  ``reports/paper_grid.json`` — located from the package, so they are found from any working
  directory. In the checkout (the editable install of ``make setup``) the folders lie beside
  the packages; a wheel (``pip install .``) carries the same folders inside the package as
  package data (pyproject.toml maps them). :data:`SHIPPED` alone tells the two apart.
* default locations of inputs and outputs — ``data/``, ``build/`` and its parts,
  ``generated/``, ``reports/``, ``runs/`` — relative to the working directory.
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------- shipped data
_PACKAGE = Path(__file__).resolve().parent
#: the folder that holds the shipped data: the installed package itself when a wheel put the
#: folders in it, else the checkout's root beside the package; below it the layout is the same
SHIPPED = _PACKAGE if (_PACKAGE / "firmware_templates").is_dir() else _PACKAGE.parent
TEMPLATES = SHIPPED / "firmware_templates"
#: the C kernels the generated code copies verbatim
KERNELS = TEMPLATES / "kernels"
#: the firmware's Makefile, startup code and board ports
FIRMWARE = TEMPLATES / "firmware"
REFERENCE = SHIPPED / "reference"
PAPER_TABLES = REFERENCE / "paper_tables.json"
MODELS = SHIPPED / "models"
#: the default models: the paper's full MPGNN and its LR-MPGNN
MPGNN = MODELS / "mpgnn_paper"
LRMPGNN = MODELS / "lrmpgnn_paper"
#: the committed rank-grid report (measured: ``tinyrrm reproduce``), which the HIL figure sets beside
#: the paper's ratios
GRID_REPORT = SHIPPED / "reports" / "paper_grid.json"

# ------------------------------------------ inputs and outputs (working directory)
DATA = Path("data")
TRAIN = DATA / "train.npz"
VAL = DATA / "val.npz"
TEST = DATA / "test.npz"

BUILD = Path("build")
#: ``tinyrrm export tflite``'s folders, one per checkpoint
BUILD_EXPORT = BUILD / "export"
#: host builds of generated C (shared libraries for the host backends)
BUILD_HOST = BUILD / "host"
#: the C backend's generated code for the host
BUILD_C = BUILD / "c"
#: generated C for a target other than the committed one
BUILD_GEN = BUILD / "gen"
#: firmware builds
BUILD_FW = BUILD / "fw"
#: ``tinyrrm hil-prepare``'s reference folders, one per target
BUILD_HIL = BUILD / "hil"

#: ``tinyrrm export c``'s folders, one per target
GENERATED = Path("generated")
REPORTS = Path("reports")
HIL_REPORTS = REPORTS / "hil"
BENCH = REPORTS / "bench.json"
#: where the rank grid's cells keep their checkpoints
RUNS = Path("runs")
#: the docs whose figures ``make docs`` renders from the reports (``tinyrrm.docs``)
README = Path("README.md")
DOCS = Path("docs")
