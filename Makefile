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
DATASET ?=
# Empty VIDEOS/FRAMES mean "the stage's default for DATASET" (e.g. $(DATA)/msrvtt/videos).
VIDEOS ?=
FRAMES ?=
# Empty BACKEND: each stage's own default (threads for ffmpeg-bound frames; threads for probing,
# loky processes past 2,000 videos).
BACKEND ?=
SCHEDULER ?=

PY := $(VENV)/bin/python
# Recipes are not echoed (make -n still shows them); V=1 echoes them and keeps the tools' logs.
V ?=
Q := $(if $(V),,@)
# Commands run from make name Make variables in their errors, not their flags (pyutils/core/cli.py).
export VLPREP_FROM_MAKE := 1
# $(call q,TEXT): TEXT as one single-quoted shell word, whatever quotes it holds.
q = '$(subst ','\'',$(1))'

# Two stamps: the runtime requirements for every stage (setup, demo, the datasets), the
# development tools on top for `make lint`, `make test` and `make bench` only.
SETUP_STAMP := $(VENV)/.setup-stamp
DEV_STAMP := $(VENV)/.dev-stamp
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run

.PHONY: help setup lint test demo bench clean

help: ## list every target with one line each (default)
	@printf 'vlprep targets (variables: DATA=%s OUT=%s JOBS=%s):\n' $(call q,$(DATA)) $(call q,$(OUT)) $(call q,$(JOBS))
	@grep -hE '^[a-zA-Z0-9_.%-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  %-22s %s\n", $$1, $$2}'

# ---- project plumbing ------------------------------------------------------------------------
setup: $(SETUP_STAMP) ## create .venv with the machine's python3 and install the runtime requirements (once)

# $(call pip_install,requirements file,what): one line saying the step, then pip: its own
# progress on a terminal, quiet in a log (where a bar is only noise). An existing venv (one
# shared through a symlink, say) is used as it is.
pip_install = test -x $(PY) || { echo 'vlprep: setup: creating $(VENV) with $(PYTHON3)' >&2; \
  $(PYTHON3) -m venv $(VENV); }; \
  echo 'vlprep: setup: installing $(2) ($(1)) into $(VENV); a minute or two the first time' >&2; \
  quiet=(); test -t 1 || quiet=(--quiet); \
  $(PY) -m pip install "$${quiet[@]}" --disable-pip-version-check -r $(1) && touch $@ && \
  echo 'vlprep: setup: $(2) installed' >&2

$(SETUP_STAMP): requirements.txt
	$(Q)$(call pip_install,requirements.txt,the runtime requirements)

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(SETUP_STAMP)
	$(Q)$(call pip_install,requirements-dev.txt,the development tools)

lint: $(DEV_STAMP) ## ruff check, ruff format --check, shellcheck on every script
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck --severity=style $(SHELL_SCRIPTS)

test: lint ## set up, lint, then run every test
	$(PY) -m pytest

demo: $(SETUP_STAMP) ## run every stage end to end on a generated sample in $(DEMO)/ (no download)
	$(Q)$(PY) -m pyutils.devtools.demo --dir $(call q,$(DEMO)) $(if $(V),--verbose)

# frames first: the longest, and the one a machine's other work disturbs most.
BENCH_SCRIPTS = bench/frames.py $(filter-out bench/_common.py bench/frames.py,$(wildcard bench/*.py))

bench: $(DEV_STAMP) ## run the benchmarks in bench/ and print their ratios
	for script in $(BENCH_SCRIPTS); do $(PY) "$$script"; done

clean: ## remove the demo sample, benchmark corpora and caches (never $(DATA) or $(OUT))
	rm -rf -- $(call q,$(DEMO)) bench/out .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

# ---- scale-out on Dask -------------------------------------------------------------------------
DASK_WORKERS ?= 2
DASK_PORT ?= 8786

.PHONY: dask-local

dask-local: $(SETUP_STAMP) ## start a Dask scheduler and DASK_WORKERS workers on 127.0.0.1:DASK_PORT (Ctrl-C stops)
	$(Q)$(PY) -m pyutils.devtools.dask_local --workers $(call q,$(DASK_WORKERS)) --port $(call q,$(DASK_PORT))

# ---- the datasets: `make <dataset>`, `make <dataset>-ready`, `make check` ---------------------
# Every registry file (scripts/downloads.tsv) a dataset uses has an override prefix: <NAME>_URL
# replaces its sources (space-separated, tried in order), <NAME>_SHA256 its checksum (`none`
# skips verification with a warning). Empty means the registry's. Make hands command-line
# variables to the recipes' environment, where pyutils.catalog.prepare reads them.
ANNOTS ?= annots
SRC ?=
DATASETS ?=
JSON ?=

# Paths become make targets in the chains below: make splits target names at spaces and reads
# % : ; * ? [ as pattern, rule and wildcard syntax, so such a path is refused in one line naming
# its variable. A `$` in a path the user gives would be expanded by make itself (a `$(shell ...)`
# in it would run), so it is refused before anything expands it.
PATH_VARIABLES := DATA OUT ANNOTS FRAMES VIDEOS SRC DIDEMO_SRC URLS QA_DIR REPORT
TARGET_PATHS := DATA ANNOTS FRAMES DIDEMO_SRC URLS
user_given = $(filter command line environment%,$(origin $(1)))
$(foreach var,$(PATH_VARIABLES),$(if $(call user_given,$(var)),$(if $(findstring $$,$(value $(var))),\
  $(error $(var): a path with a $$ in it cannot go through make; rename it or use a symlink))))
path_problem = $(strip $(if $(word 2,$(1)),spaces)$(foreach c,% : ; * ? [,$(if $(findstring $(c),$(1)), '$(c)')))
BAD_PATHS := $(strip $(foreach var,$(TARGET_PATHS),$(if $(call user_given,$(var)),$(if $(call path_problem,$(value $(var))),$(var)))))
include datasets.mk
ifneq ($(BAD_PATHS),)
ifneq ($(filter %-ready $(DATASET_TARGETS) clip-datasets,$(MAKECMDGOALS)),)
$(foreach var,$(firstword $(BAD_PATHS)),$(error $(var)='$(value $(var))': make targets cannot \
  hold $(call path_problem,$(value $(var))); use a path without them (or a symlink)))
endif
endif

.PHONY: check verify downloads-registry rules

# The stamp is written only when the dataset's layout checks complete, so a second run does nothing.
# VIDEOS: where a video dataset's videos are checked (default its videos/ folder).
ifeq ($(BAD_PATHS),)
$(DATA)/%/.vlprep-complete: | $(SETUP_STAMP)
	$(Q)$(PY) -m pyutils.catalog.prepare '$*' --data $(call q,$(DATA)) $(if $(VIDEOS),--videos $(call q,$(VIDEOS)))
endif

check: $(SETUP_STAMP) ## table of datasets: complete/partial/missing, counts, size, fix (DATASETS="a b" limits; JSON=1)
	$(Q)$(PY) -m pyutils.catalog.check --data $(call q,$(DATA)) --annots $(call q,$(ANNOTS)) $(if $(JSON),--json) $(DATASETS)

verify: $(SETUP_STAMP) ## re-hash every archive in $(DATA)/downloads against the registry and lock file
	$(Q)$(PY) -m pyutils.fetch.download verify --data $(call q,$(DATA))

downloads-registry: $(SETUP_STAMP) ## copy checksums first seen in $(DATA)/downloads into scripts/downloads.tsv
	$(Q)$(PY) -m pyutils.fetch.download register --data $(call q,$(DATA))

rules: $(SETUP_STAMP) ## regenerate datasets.mk from the dataset records (after adding a dataset)
	$(Q)$(PY) -m pyutils.catalog.makefile > datasets.mk.tmp && mv datasets.mk.tmp datasets.mk

# ---- the steps of the -ready chains (datasets.mk says which dataset has which, where) ----------
# $(call step_<name>,dataset) is the recipe of that step; $(dataset)_VIDEOS etc. are its folders.
# A step whose items partly failed (dead links, unreadable videos: exit 1, listed above it) lets
# the chain go on without its stamp, so the next run retries just those; any other failure stops.
tolerant = $(1) && touch $(call q,$@) || { status=$$?; test "$$status" -eq 1 || exit "$$status"; \
  echo 'vlprep: '$(call q,$@)': some items failed (listed above); going on, the next run retries them' >&2; }
step_check = $(call tolerant,$(PY) -m pyutils.catalog.prepare $(1) --data $(call q,$(DATA)) \
  --videos $(call q,$($(1)_VIDEOS)))
step_originals = mkdir -p $(call q,$(@D)) && $(call tolerant,$(call fetch_cmd,$($(1)_URLS),$(@D)))
step_videos = mkdir -p $(call q,$(@D)) && $(call tolerant,$(call transcode_cmd,$($(1)_ORIGINALS),$(@D)))
step_frames = mkdir -p $(call q,$(@D)) && $(call tolerant,$(call frames_cmd,$($(1)_VIDEOS),$(@D)))
step_splits = $(call annots_cmd,$(1)) && touch $(call q,$@)

# ---- stages: frames, AdaCLIP splits, DiDeMo videos ----------------------------------------------
# Empty FPS/SIZE/NUM_FRAMES mean native rate, native size, every frame; BACKEND=dask with
# SCHEDULER=tcp://host:8786 runs the same per-video work on a Dask cluster. With DATASET=msrvtt
# (etc.), VIDEOS and FRAMES default to that dataset's folders.
FPS ?=
SIZE ?=
NUM_FRAMES ?=
# Non-empty: new FPS/SIZE/NUM_FRAMES replace the frames a folder holds made with others (else
# refused, naming both), and new trainer settings those of a PRESAMPLE folder.
REPLACE ?=
REFERENCE ?=
FETCH_JOBS ?= 8
RETRIES ?= 3
# The stall limit: a transfer with no byte for this many seconds is cut and retried (wget's
# --timeout for the registry's files, fetch_list's for URL lists).
FETCH_TIMEOUT ?= 60
known_dataset = $(if $(filter $(DATASET),$(VIDEO_DATASETS)),$(DATASET))
# $(call of_dataset,FOLDER): DATASET's default folder, e.g. $(msrvtt_VIDEOS); empty without one
of_dataset = $(if $(known_dataset),$($(known_dataset)_$(1)))
# Where per-video work runs, the same for every ffmpeg-bound stage.
PARALLEL_OPTIONS = --jobs $(call q,$(JOBS)) $(if $(BACKEND),--backend $(call q,$(BACKEND))) \
  $(if $(SCHEDULER),--scheduler $(call q,$(SCHEDULER)))
FRAMES_OPTIONS = $(PARALLEL_OPTIONS) $(if $(FPS),--fps $(call q,$(FPS))) \
  $(if $(SIZE),--short-side $(call q,$(SIZE))) $(if $(NUM_FRAMES),--num-frames $(call q,$(NUM_FRAMES))) \
  $(if $(REPLACE),--replace)
# $(call frames_cmd,videos,frames)
frames_cmd = $(PY) -m pyutils.video.frames $(call q,$(1)) $(call q,$(2)) $(FRAMES_OPTIONS)
# $(call annots_cmd,dataset)
annots_cmd = $(PY) annot_preprocess/$(1)_preprocess.py --video_dir $(call q,$($(1)_VIDEOS)) \
  --annot_dir $(call q,$($(1)_SRC)) --output_folder $(call q,$($(1)_SPLITS))
# $(call fetch_cmd,url list,folder) and $(call transcode_cmd,originals,folder)
fetch_cmd = $(PY) -m pyutils.fetch.fetch_list $(call q,$(1)) $(call q,$(2)) \
  --jobs $(call q,$(FETCH_JOBS)) --retries $(call q,$(RETRIES)) --timeout $(call q,$(FETCH_TIMEOUT))
transcode_cmd = $(PY) -m pyutils.video.transcode $(call q,$(1)) $(call q,$(2)) $(PARALLEL_OPTIONS)
need_dataset = $(if $(known_dataset),,$(error set DATASET= to one of: $(VIDEO_DATASETS)))

.PHONY: frames annots annots-verify didemo-videos didemo-mp4

frames: $(SETUP_STAMP) ## extract frames: VIDEOS=folder FRAMES=folder [FPS= SIZE= NUM_FRAMES= JOBS=]
	$(Q)$(if $(or $(known_dataset),$(and $(VIDEOS),$(FRAMES))),,@echo 'vlprep: error: set VIDEOS=<folder of videos> and FRAMES=<output folder>, or DATASET=<one of: $(VIDEO_DATASETS)>' >&2; exit 2)
	$(Q)$(call frames_cmd,$(or $(VIDEOS),$(call of_dataset,VIDEOS)),$(or $(FRAMES),$(call of_dataset,FRAMES)))

annots: $(SETUP_STAMP) ## AdaCLIP splits for DATASET=msrvtt|didemo|activitynet into $(ANNOTS)/
	$(Q)$(need_dataset)$(call annots_cmd,$(DATASET))

annots-verify: $(SETUP_STAMP) ## compare $(ANNOTS)/ with the paper's split checksums [REFERENCE=dir]
	$(Q)$(PY) -m pyutils.adaclip.verify --annots $(call q,$(ANNOTS)) $(if $(REFERENCE),--reference $(call q,$(REFERENCE)))

didemo-videos: $(SETUP_STAMP) ## download every URL listed in URLS (URL[<TAB>name] lines) into DIDEMO_SRC
	$(Q)$(call fetch_cmd,$(didemo_URLS),$(didemo_ORIGINALS))

didemo-mp4: $(SETUP_STAMP) ## transcode DiDeMo originals in DIDEMO_SRC to VIDEOS/<name>.mp4 (H.264)
	$(Q)$(call transcode_cmd,$(didemo_ORIGINALS),$(didemo_VIDEOS))

# ---- activitynet_qa: ActivityNet-QA to LLaMA-Factory sharegpt JSON, and dataset_info.json ----
N ?= 250
SECONDS ?= 20
TYPE ?= train
# The questions file of TYPE as ActivityNet-QA publishes it (train_q.json); the reference
# script's train_q_3000 was a local subset of it: N= keeps the first N usable pairs.
NAME ?= $(TYPE)_q
QA_DIR ?= $(DATA)/activitynet-qa/dataset
QA_STEM := activitynet_qa_$(TYPE)_$(N)_limit_$(SECONDS)s
# Non-empty: also the frames LLaMA-Factory would sample of each video, at the size it resizes them
# to, as a second JSON ($(QA_STEM)_presampled.json), with the trainer settings of `preflight`
# (VIDEO_FPS, VIDEO_MAXLEN, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS).
PRESAMPLE ?=
PRESAMPLE_OPTIONS = $(if $(PRESAMPLE),--presample --video-fps $(call q,$(VIDEO_FPS)) --video-maxlen $(call q,$(VIDEO_MAXLEN)) \
  --video-max-pixels $(call q,$(VIDEO_MAX_PIXELS)) --video-min-pixels $(call q,$(VIDEO_MIN_PIXELS)) \
  $(if $(REPLACE),--replace))

.PHONY: activitynet_qa dataset_info

# Always runs: the video folder may have changed, and the probe cache makes a rerun near-instant.
activitynet_qa: $(SETUP_STAMP) ## ActivityNet-QA (NAME, TYPE, N, SECONDS) to $(OUT)/activitynet_qa_*.json, registered [PRESAMPLE=1]
	$(Q)$(PY) -m pyutils.llamafactory.activitynet_qa -name $(call q,$(NAME)) -type $(call q,$(TYPE)) -n $(call q,$(N)) -seconds $(call q,$(SECONDS)) \
	  --qa-dir $(call q,$(QA_DIR)) --videos $(call q,$(activitynet_VIDEOS)) --out $(call q,$(OUT)) --report $(call q,$(OUT)/$(QA_STEM).report.jsonl) \
	  $(PARALLEL_OPTIONS) --register --media-dir $(call q,$(MEDIA_DIR)) $(PRESAMPLE_OPTIONS)

dataset_info: $(SETUP_STAMP) ## merge caltech101, ActivityNet and $(OUT)/activitynet_qa_*.json into $(OUT)/dataset_info.json
	$(Q)shopt -s nullglob; qa_files=($(call q,$(OUT))/activitynet_qa_*.json); \
	$(PY) -m pyutils.llamafactory.dataset_info --dir $(call q,$(OUT)) --media-dir $(call q,$(MEDIA_DIR)) \
	  --seed-entries "$${qa_files[@]}"

# ---- AdaCLIP config, contact sheet ----------------------------------------------------------
ADACLIP ?=
VIDEO ?=
SHEET ?=

.PHONY: adaclip-config contact-sheet

adaclip-config: $(SETUP_STAMP) ## set frames_dir=FRAMES in ADACLIP/configs/DATASET.json, nothing else
	$(Q)$(PY) -m pyutils.adaclip.config --adaclip $(call q,$(ADACLIP)) --dataset $(call q,$(DATASET)) --frames $(call q,$(FRAMES))

contact-sheet: $(SETUP_STAMP) ## PNG grid of sampled frames of a few videos in FRAMES (or VIDEO=stem) to SHEET
	$(Q)$(PY) -m pyutils.video.contact_sheet $(call q,$(FRAMES)) $(if $(VIDEO),--video $(call q,$(VIDEO))) $(if $(SHEET),-o $(call q,$(SHEET)))

# ---- preflight: replay what the trainers will do with what was prepared (issue 14) ------------
# LLaMA-Factory's own names and defaults (Qwen2-VL through the qwen2_vl template), also what
# `activitynet_qa PRESAMPLE=1` samples with; MEDIA_DIR is
# what LLaMA-Factory resolves video paths against (its media_dir, default its dataset_dir = OUT).
VIDEO_FPS ?= 2.0
VIDEO_MAXLEN ?= 128
VIDEO_MAX_PIXELS ?= 65536
VIDEO_MIN_PIXELS ?= 256
CUTOFF_LEN ?= 2048
TEMPLATE ?= qwen2_vl
MEDIA_DIR ?= $(OUT)
# Empty: every dataset of $(OUT)/dataset_info.json with a videos column.
LF_DATASETS ?=
# Empty: text tokens estimated from characters; a local Hugging Face tokenizer folder: exact.
TOKENIZER ?=
# Empty: AdaCLIP's per-dataset num_frm (msrvtt 16, didemo 32, activitynet 64).
NUM_FRM ?=
DROP ?=
DEEP ?=
# The fit preflight prescribes when samples are over CUTOFF_LEN: the share of samples it must
# fit (the rest are DROP=1's to drop), and what it keeps while giving up the other (frames or
# pixels).
FIT_SHARE ?= 1
FIT_KEEP ?= frames

.PHONY: preflight ledger report

# The settings that decide frames and tokens, given alike to preflight, the ledger and the report.
TRAINER_SETTINGS = --video-fps $(call q,$(VIDEO_FPS)) --video-maxlen $(call q,$(VIDEO_MAXLEN)) \
  --video-max-pixels $(call q,$(VIDEO_MAX_PIXELS)) --video-min-pixels $(call q,$(VIDEO_MIN_PIXELS)) \
  --cutoff-len $(call q,$(CUTOFF_LEN)) --template $(call q,$(TEMPLATE)) \
  --out $(call q,$(OUT)) --media-dir $(call q,$(MEDIA_DIR)) --data $(call q,$(DATA)) --annots $(call q,$(ANNOTS)) \
  --frames $(call q,$(FRAMES)) --num-frm $(call q,$(NUM_FRM)) --jobs $(call q,$(JOBS))
preflight_cmd = $(PY) -m pyutils.catalog.preflight $(TRAINER_SETTINGS) --lf-datasets $(call q,$(LF_DATASETS)) \
  --tokenizer $(call q,$(TOKENIZER)) --dataset $(call q,$(DATASET)) $(if $(DEEP),--deep) $(if $(DROP),--drop) \
  --fit-share $(call q,$(FIT_SHARE)) --fit-keep $(call q,$(FIT_KEEP))
ledger_cmd = $(PY) -m pyutils.catalog.ledger $(TRAINER_SETTINGS)
# Preflight's results, made first when there are none yet or dataset_info.json is newer than them
# (exit 1, samples with problems, is a result: the ledger shows them).
preflight_first = results=$(call q,$(OUT)/preflight.jsonl); \
  if [ ! -f "$$results" ] || [ $(call q,$(OUT)/dataset_info.json) -nt "$$results" ]; then \
  $(preflight_cmd) || test "$$?" -eq 1; fi
REPORT ?=

preflight: $(SETUP_STAMP) ## replay LLaMA-Factory (Qwen2/2.5/3-VL), AdaCLIP and CLIP loaders on what is prepared; the settings that fit; $(OUT)/preflight.jsonl [DROP=1 DEEP=1]
	$(Q)status=0; $(preflight_cmd) || status=$$?; \
	  if [ "$$status" -le 1 ]; then $(ledger_cmd) --after-preflight; fi; exit "$$status"

ledger: $(SETUP_STAMP) ## $(OUT)/samples.parquet: one row per prepared sample (probe, frames, tokens, problems), from preflight's results
	$(Q)$(preflight_first); $(ledger_cmd)

report: $(SETUP_STAMP) ## $(OUT)/report.html (REPORT=file): one offline page of counts, histograms, problems and sampled frames
	$(Q)$(preflight_first); $(PY) -m pyutils.catalog.report_page $(TRAINER_SETTINGS) $(if $(REPORT),--report $(call q,$(REPORT)))

# ---- what the user typed ----------------------------------------------------------------------
# A command-line variable that no target reads is a typo that would silently change the result
# (NUM_FRAME=8 extracts every frame instead of 8 per video, hours on a large dataset). One that
# is a near miss of a known name stops here, before any work, naming the name meant; STRICT=0
# makes that a warning. Any other unknown name is a warning (STRICT=1 stops on those too).
# Known: every `NAME ?=` of the makefiles, the download overrides, and the tuning the wrappers
# read from their environment.
STRICT ?=
KNOWN_VARIABLES := $(shell sed -n 's/^\([A-Z][A-Z0-9_]*\) ?=.*/\1/p' $(MAKEFILE_LIST)) \
  $(foreach name,$(DOWNLOAD_VARIABLES),$(name)_URL $(name)_SHA256) \
  FETCH_TRIES FETCH_WAITRETRY FETCH_PROGRESS FFMPEG \
  KAGGLE_USERNAME KAGGLE_KEY KAGGLE_API_TOKEN KAGGLE_CONFIG_DIR
TYPED_VARIABLES := $(foreach var,$(.VARIABLES),$(if $(filter command line,$(origin $(var))),$(var)))
UNKNOWN_VARIABLES := $(filter-out $(KNOWN_VARIABLES),$(TYPED_VARIABLES))
# $(call unknown_hint,name closest): "; did you mean closest?", or nothing without a closest
unknown_hint = $(if $(word 2,$(1)),; did you mean $(word 2,$(1))?)
ifneq ($(UNKNOWN_VARIABLES),)
# name=closest pairs from the machine's python3 (standard library only: no venv needed)
unknown_line = $(word 1,$(1)) is not a vlprep variable$(call unknown_hint,$(1))
# $(call stops,name closest): whether that unknown name ends the run
stops = $(if $(filter 0,$(STRICT)),,$(or $(STRICT),$(word 2,$(1))))
stop_hint = nothing done; STRICT=0 runs without it
warn_hint = ignored: no target reads it; STRICT=1 stops here
$(foreach pair,$(shell $(PYTHON3) -m pyutils.core.names $(UNKNOWN_VARIABLES) -- $(KNOWN_VARIABLES) | tr ' ' '='),\
  $(if $(call stops,$(subst =, ,$(pair))),$(error $(call unknown_line,$(subst =, ,$(pair))) ($(stop_hint))),\
  $(shell printf 'vlprep: warning: %s\n' $(call q,$(call unknown_line,$(subst =, ,$(pair))) ($(warn_hint))) >&2)))
endif

# ---- a goal that no rule makes -------------------------------------------------------------------
# Make's own answer to `make frmaes` ("No rule to make target") names nothing to type instead:
# this last-resort rule looks the goal up among the targets `make help` lists (exit 2). A missing
# file that another target needs (URLS= naming no file) is said in one line too.
HELP_TARGETS = $(shell sed -n 's/^\([a-zA-Z0-9_.-]*\):.*## .*/\1/p' $(MAKEFILE_LIST))
unknown_target = no target '$(1)'$(call unknown_hint,$(shell $(PYTHON3) -m pyutils.core.names $(1) -- \
  $(HELP_TARGETS))) (make help lists them all)
.DEFAULT:
	$(if $(filter $@,$(MAKECMDGOALS)),$(error $(call unknown_target,$@)),$(error $@: no such file, and no rule makes it))
