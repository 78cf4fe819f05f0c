# tinyrrm — thin wrapper over the `tinyrrm` CLI. Every target installs what it
# needs itself: the venv (pinned requirements.txt) and, where firmware is
# involved, the Debian packages through docker/provision.sh.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TINYRRM := $(BIN)/tinyrrm
TARGET  ?= cortex-m4
TARGETS := cortex-m0 cortex-m3 cortex-m4 cortex-m7 cortex-m33 cortex-m55
JOBS    ?= 2

# Full-size data of the paper: 2000 training, 500 test scenes, K=50, Nt=2.
DATA    := data
TRAIN   := $(DATA)/train.npz
TEST    := $(DATA)/test.npz
VAL     := $(DATA)/val.npz

.PHONY: help setup provision lint format check test export firmware hil hil-prepare hil-docker flash train-default ablation \
        deploy-probe reproduce front bench docs data wheel clean
help:
	@echo "make export TARGET=cortex-m4   main job on the committed default models"
	@echo "make test                      lint, then all tests (HIL included)"
	@echo "make check                     the fast tests only (pytest -m 'not slow', a few minutes)"
	@echo "make lint                      ruff (lint, format) and clang-format, checked; make format applies them"
	@echo "make firmware TARGET=cortex-m4 the HIL firmware (build/fw/<target>/deployed/firmware.elf)"
	@echo "make hil TARGET=cortex-m4      emulated HIL suite under QEMU (hil_tests/)"
	@echo "make hil TARGET=T MODEL=DIR SCENES=F [CALIB=F]   the same for your own checkpoint or export folder"
	@echo "make hil-docker TARGET=...     the same suite inside the lean image (buildah)"
	@echo "make flash TARGET=cortex-m4 BOARD=stm32f4disco [DRY_RUN=1]   program a real board (pyocd)"
	@echo "make data                      2000/500/200 seeded scenes (K=50, Nt=2)"
	@echo "make train-default             retrain the two committed default models"
	@echo "make ablation                  what each training choice is worth -> reports/ablation.txt"
	@echo "make deploy-probe              which LR-MPGNN to deploy -> reports/deploy_probe.txt"
	@echo "make reproduce                 the paper's rank grid -> reports/paper_grid.*"
	@echo "make front                     the deployment front (rate against instructions) -> reports/front.*"
	@echo "make bench                     throughput and training speed -> reports/bench.json"
	@echo "make wheel                     the installable package with its shipped data -> dist/"
	@echo "make docs                      render the figures of README.md and docs/ from reports/"

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

provision:
	bash docker/provision.sh

# The conventions: ruff (pyproject.toml [tool.ruff]) on the Python, clang-format (.clang-format)
# on the hand-written C. generated/ is excluded: the exporter writes it.
C_SOURCES = $(shell find firmware_templates tests/c -name '*.[ch]' | sort)
lint: setup provision
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	clang-format --dry-run -Werror $(C_SOURCES)

format: setup provision
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	clang-format -i $(C_SOURCES)

# The fast tier: every test not marked slow (no QEMU, TensorFlow export or training runs).
check: setup provision
	$(BIN)/python -m pytest -q -m "not slow"

# All tests: lint, Python units, host C against TFLite Micro, every core under QEMU
# (tests/), then the full emulated HIL suite on cortex-m4 (hil_tests/), which
# writes under build/hil/ only: `make test` changes no committed file.
test: setup provision lint
	$(BIN)/python -m pytest -q
	$(MAKE) hil-prepare TARGET=cortex-m4
	$(BIN)/python -m pytest -q hil_tests --target cortex-m4


$(TRAIN): | setup
	$(TINYRRM) scenes --out $@ --n 2000 --K 50 --Nt 2 --seed 1
$(TEST): | setup
	$(TINYRRM) scenes --out $@ --n 500 --K 50 --Nt 2 --seed 2
$(VAL): | setup
	$(TINYRRM) scenes --out $@ --n 200 --K 50 --Nt 2 --seed 3
data: $(TRAIN) $(TEST) $(VAL)

export: setup provision $(TRAIN)
	$(TINYRRM) export target --target $(TARGET) --calib $(TRAIN)

firmware: setup provision
	$(TINYRRM) firmware --target $(TARGET)

# MODEL=DIR SCENES=F [CALIB=F]: the HIL of a model of your own (a checkpoint, or an export
# folder) on your own scenes, prepared and measured under build/hil/$(TARGET)/models/<DIR's name>/
# (reports/ untouched); without MODEL, the committed default deployment on the paper's data.
HIL_DIR := $(if $(MODEL),build/hil/$(TARGET)/models/$(notdir $(abspath $(MODEL))))
hil-prepare: setup provision $(if $(MODEL),,$(TRAIN) $(TEST))
	$(TINYRRM) hil-prepare --target $(TARGET) \
	    $(if $(MODEL),--model $(MODEL) $(if $(SCENES),--scenes $(SCENES)) $(if $(CALIB),--calib $(CALIB)),--calib $(TRAIN))

# The HIL suite: pytest drives the firmware under QEMU (PORT=/dev/ttyACM0 for a board) and
# writes what it measured to reports/hil/$(TARGET).{json,md,png} (MODEL=DIR: under $(HIL_DIR))
hil: hil-prepare
	$(BIN)/python -m pytest -q hil_tests --target $(TARGET) $(if $(MODEL),--hil-dir $(HIL_DIR),--update-report) \
	    $(if $(PORT),--port $(PORT))

hil-docker: hil-prepare
	bash docker/provision.sh --container
	bash docker/hil-docker.sh $(TARGET)

# Program a real board through pyocd (boards and their pyocd target names: docs/BOARDS.md)
BOARD ?= stm32f4disco
flash: firmware
	$(BIN)/python -m tinyrrm.hil.flash --target $(TARGET) --board $(BOARD) $(if $(DRY_RUN),--dry-run)

# The committed defaults (models/): see README "Default models". Two stages:
# (1) Adam at the paper's constant lr 1e-3, best validation epoch kept (the
# committed runs stopped at epoch 34 / 40); (2) a fine-tune of 20 epochs with
# augmented fading (random receiver phases and transmitter unitaries) and a
# cosine lr 5e-4 -> 1e-5. Rerunning resumes either stage.
EPOCHS_MPGNN ?= 34
EPOCHS_LR ?= 40
FT_EPOCHS ?= 20
FT := --mode finetune --epochs $(FT_EPOCHS) --lr 5e-4 --lr-final 1e-5 --augment
train-default: data
	$(TINYRRM) train --scenes $(TRAIN) --val $(VAL) --out runs/default/mpgnn_scratch --arch paper --epochs $(EPOCHS_MPGNN)
	$(TINYRRM) train --scenes $(TRAIN) --val $(VAL) --out models/mpgnn_paper --arch paper \
	    --init runs/default/mpgnn_scratch $(FT)
	$(TINYRRM) train --scenes $(TRAIN) --val $(VAL) --out runs/default/lrmpgnn_scratch --arch paper \
	    --a1 4 --a2 16 --epochs $(EPOCHS_LR)
	$(TINYRRM) train --scenes $(TRAIN) --val $(VAL) --out models/lrmpgnn_paper --arch paper --a1 4 --a2 16 \
	    --init runs/default/lrmpgnn_scratch $(FT)

# What each training choice of docs/DESIGN-NOTES.md is worth: the full `paper`
# MPGNN on 400 scenes for 6 epochs, the defaults against one change each.
ABL := runs/ablation
ABLATIONS := default:--scale-agg no-scale-agg:--no-scale-agg no-residual:--no-residual no-compand:--no-compand
$(ABL)/train400.npz: | setup
	$(TINYRRM) scenes --out $@ --n 400 --K 50 --Nt 2 --seed 1
$(ABL)/val100.npz: | setup
	$(TINYRRM) scenes --out $@ --n 100 --K 50 --Nt 2 --seed 3
ablation: $(ABL)/train400.npz $(ABL)/val100.npz
	for v in $(ABLATIONS); do \
	    $(TINYRRM) train --scenes $(ABL)/train400.npz --val $(ABL)/val100.npz --out $(ABL)/$${v%%:*} \
	        --arch paper --epochs 6 --no-resume $${v#*:} || exit 1; \
	done
	mkdir -p reports
	$(TINYRRM) history $(foreach v,$(ABLATIONS),$(ABL)/$(firstword $(subst :, ,$(v)))) | tee reports/ablation.txt

# Which LR-MPGNN to deploy: every (a1, a2) whose int8 model is at least 60x
# below the fp32 MPGNN (`tinyrrm size`), trained as in `make ablation`.
PROBE := runs/probe
DEPLOY_CELLS := 4:4 4:16 16:4
deploy-probe: $(ABL)/train400.npz $(ABL)/val100.npz
	for c in $(DEPLOY_CELLS); do \
	    $(TINYRRM) train --scenes $(ABL)/train400.npz --val $(ABL)/val100.npz \
	        --out $(PROBE)/a1-$${c%%:*}_a2-$${c#*:} --arch paper --a1 $${c%%:*} --a2 $${c#*:} \
	        --epochs 6 --no-resume || exit 1; \
	done
	mkdir -p reports
	$(TINYRRM) history $(foreach c,$(DEPLOY_CELLS),$(PROBE)/a1-$(firstword $(subst :, ,$(c)))_a2-$(lastword $(subst :, ,$(c)))) \
	    | tee reports/deploy_probe.txt

# Jobs with a record in reports/paper_grid_jobs.json are not trained again; cells of an earlier
# report of the same recipe (CARRY) stay in the report until a job here measures them.
CARRY ?= reports/grid_carried/paper_grid.json
reproduce: data
	$(TINYRRM) reproduce --train $(TRAIN) --test $(TEST) --val $(VAL) --jobs $(JOBS) --out reports \
	    $(if $(CARRY),--carry $(CARRY))

# The deployment front: WMMSE-k (dense, top-m), learned starts and hybrids -> reports/front.*
front: data
	$(TINYRRM) front --train $(TRAIN) --test $(TEST) --val $(VAL) --jobs $(JOBS) --out reports

bench: data
	$(TINYRRM) bench --train $(TRAIN) --test $(TEST) --out reports/bench.json

# The wheel `pip install .` builds: the package with the templates, kernels, board files,
# reference tables and default models as package data (pyproject.toml). setuptools stages it
# in build/lib, emptied first so that no file of an earlier build ships.
wheel: setup
	rm -rf build/lib build/bdist.* dist
	$(BIN)/python -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation . -w dist
	@ls -l dist/*.whl

# Every measured figure of README.md and docs/*.md sits between generated markers and is
# rendered from reports/ (tinyrrm/docs.py); tests/test_docs.py holds the committed docs to it.
docs: setup
	$(BIN)/python -m tinyrrm.docs

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
