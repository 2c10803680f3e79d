# vlprep: one target per dataset and per stage. `make help` lists them; `make demo` and
# `make test` work on a fresh machine with no root and no system ffmpeg.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

# ---- variables (names are part of the interface: see README) -------------------------------
PYTHON3 ?= python3
VENV ?= .venv
DATA ?= datasets
OUT ?= data
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
DEMO ?= demo

PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run

.PHONY: help setup lint test demo bench clean

help: ## list every target with one line each (default)
	@printf 'vlprep targets (variables: DATA=%s OUT=%s JOBS=%s):\n' '$(DATA)' '$(OUT)' '$(JOBS)'
	@grep -hE '^[a-zA-Z0-9_.%-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  %-22s %s\n", $$1, $$2}'

# ---- project plumbing ------------------------------------------------------------------------
setup: $(SETUP_STAMP) ## create .venv with the machine's python3 and install the requirements (once)

$(SETUP_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lint: $(SETUP_STAMP) ## ruff check, ruff format --check, shellcheck on every script
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck --severity=style $(SHELL_SCRIPTS)

test: lint ## set up, lint, then run every test
	$(PY) -m pytest

demo: $(SETUP_STAMP) ## run every stage end to end on a generated sample in $(DEMO)/ (no download)
	$(PY) -m pyutils.demo --dir '$(DEMO)'

bench: $(SETUP_STAMP) ## run the benchmarks in bench/ and print their ratios
	for script in $(filter-out bench/_common.py,$(wildcard bench/*.py)); do $(PY) "$$script"; done

clean: ## remove the demo sample, benchmark corpora and caches (never $(DATA) or $(OUT))
	rm -rf -- '$(DEMO)' bench/out .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

# ---- frames ----------------------------------------------------------------------------------
# Empty means native rate, native size, every frame; BACKEND=dask with SCHEDULER=tcp://host:8786
# runs the same per-video work on a Dask cluster.
VIDEOS ?=
FRAMES ?=
FPS ?=
SIZE ?=
NUM_FRAMES ?=
BACKEND ?= loky
SCHEDULER ?=

.PHONY: frames

frames: $(SETUP_STAMP) ## extract frames: VIDEOS=folder FRAMES=folder [FPS= SIZE= NUM_FRAMES= JOBS=]
	@test -n '$(VIDEOS)' && test -n '$(FRAMES)' \
	  || { echo 'vlprep: error: set VIDEOS=<folder of videos> and FRAMES=<output folder>' >&2; exit 2; }
	$(PY) -m pyutils.frames '$(VIDEOS)' '$(FRAMES)' --jobs '$(JOBS)' --backend '$(BACKEND)' \
	  $(if $(FPS),--fps '$(FPS)') $(if $(SIZE),--short-side '$(SIZE)') \
	  $(if $(NUM_FRAMES),--num-frames '$(NUM_FRAMES)') $(if $(SCHEDULER),--scheduler '$(SCHEDULER)')
