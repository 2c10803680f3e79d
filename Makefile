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

# ---- downloads and the CLIP image datasets ----------------------------------------------------
# Every registry file (scripts/downloads.tsv) a dataset uses has an override prefix: <NAME>_URL
# replaces its sources (space-separated, tried in order), <NAME>_SHA256 its checksum (`none`
# skips verification with a warning). Empty means the registry's.
DOWNLOAD_NAMES := CALTECH101 CALTECH101_SPLIT MINI_IMAGENET MINI_IMAGENET_CLASSNAMES \
  COCO_TRAIN2014 COCO_VAL2014 DATASET_JSON FLICKR30K FLICKR5K
$(foreach name,$(DOWNLOAD_NAMES),$(eval $(name)_URL ?=)$(eval $(name)_SHA256 ?=))
export $(foreach name,$(DOWNLOAD_NAMES),$(name)_URL $(name)_SHA256)
DATASETS ?=

.PHONY: caltech101 mini-imagenet mscoco2014 flickr flickr5k clip-datasets check verify downloads-registry

caltech101: $(DATA)/caltech-101/.vlprep-complete ## Caltech101 images + CoOp split in $(DATA)/caltech-101
mini-imagenet: $(DATA)/mini-imagenet/.vlprep-complete ## mini-ImageNet (archive placed by hand; says where) + classnames.txt
mscoco2014: $(DATA)/mscoco2014/.vlprep-complete ## COCO 2014 train/val images + caption JSONs (Kaggle credentials)
flickr: $(DATA)/flickr/.vlprep-complete ## Flickr30k images + caption JSONs (Kaggle credentials)
flickr5k: $(DATA)/flickr5k/.vlprep-complete ## Flickr5k images + caption JSONs (Kaggle credentials)
clip-datasets: caltech101 mini-imagenet mscoco2014 flickr flickr5k ## every CLIP image dataset

# The stamp is written only when the dataset's layout checks complete, so a second run does nothing.
$(DATA)/%/.vlprep-complete: | $(SETUP_STAMP)
	$(PY) -m pyutils.datasets '$*' --data '$(DATA)'

check: $(SETUP_STAMP) ## table of datasets: complete/partial/missing, counts, size, fix (DATASETS="a b" limits)
	$(PY) -m pyutils.check --data '$(DATA)' $(DATASETS)

verify: $(SETUP_STAMP) ## re-hash every archive in $(DATA)/downloads against the registry and lock file
	$(PY) -m pyutils.download verify --data '$(DATA)'

downloads-registry: $(SETUP_STAMP) ## copy checksums first seen in $(DATA)/downloads into scripts/downloads.tsv
	$(PY) -m pyutils.download register --data '$(DATA)'
