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
# Empty BACKEND: each stage's own default (threads for ffmpeg-bound frames, loky for probing).
BACKEND ?=
SCHEDULER ?=

PY := $(VENV)/bin/python
# $(call q,TEXT): TEXT as one single-quoted shell word, whatever quotes it holds.
q = '$(subst ','\'',$(1))'

SETUP_STAMP := $(VENV)/.setup-stamp
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run

.PHONY: help setup lint test demo bench clean

help: ## list every target with one line each (default)
	@printf 'vlprep targets (variables: DATA=%s OUT=%s JOBS=%s):\n' $(call q,$(DATA)) $(call q,$(OUT)) $(call q,$(JOBS))
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
	$(PY) -m pyutils.devtools.demo --dir $(call q,$(DEMO))

bench: $(SETUP_STAMP) ## run the benchmarks in bench/ and print their ratios
	for script in $(filter-out bench/_common.py,$(wildcard bench/*.py)); do $(PY) "$$script"; done

clean: ## remove the demo sample, benchmark corpora and caches (never $(DATA) or $(OUT))
	rm -rf -- $(call q,$(DEMO)) bench/out .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

# ---- scale-out on Dask -------------------------------------------------------------------------
DASK_WORKERS ?= 2
DASK_PORT ?= 8786

.PHONY: dask-local

dask-local: $(SETUP_STAMP) ## start a Dask scheduler and DASK_WORKERS workers on 127.0.0.1:DASK_PORT (Ctrl-C stops)
	$(PY) -m pyutils.devtools.dask_local --workers $(call q,$(DASK_WORKERS)) --port $(call q,$(DASK_PORT))

# ---- AdaCLIP splits ----------------------------------------------------------------------------
# make annots DATASET=msrvtt|didemo|activitynet [VIDEOS=...] [SRC=...] [ANNOTS=...]
ANNOTS ?= annots
REFERENCE ?=
ANNOT_SRC_msrvtt := $(DATA)/msrvtt/msrvtt_data
ANNOT_SRC_didemo := $(DATA)/didemo/annotations
ANNOT_SRC_activitynet := $(DATA)/activitynet/captions
ANNOT_OUT_msrvtt := msrvtt-jsfusion
ANNOT_OUT_didemo := didemo
ANNOT_OUT_activitynet := activitynet
ANNOT_DATASETS := msrvtt didemo activitynet
SRC ?= $(if $(filter $(DATASET),$(ANNOT_DATASETS)),$(ANNOT_SRC_$(DATASET)))

.PHONY: annots annots-verify

# $(call annots_cmd,dataset,video folder,annotation folder)
annots_cmd = $(PY) annot_preprocess/$(1)_preprocess.py --video_dir $(call q,$(2)) --annot_dir $(call q,$(3)) \
  --output_folder $(call q,$(ANNOTS)/$(ANNOT_OUT_$(1)))

annots: $(SETUP_STAMP) ## AdaCLIP splits for DATASET=msrvtt|didemo|activitynet into $(ANNOTS)/
	$(if $(filter $(DATASET),$(ANNOT_DATASETS)),,$(error set DATASET= to one of: $(ANNOT_DATASETS)))
	$(call annots_cmd,$(DATASET),$(or $(VIDEOS),$(DATA)/$(DATASET)/videos),$(SRC))

annots-verify: $(SETUP_STAMP) ## compare $(ANNOTS)/ with the paper's split checksums [REFERENCE=dir]
	$(PY) -m pyutils.adaclip.verify --annots $(call q,$(ANNOTS)) $(if $(REFERENCE),--reference $(call q,$(REFERENCE)))

# ---- activitynet_qa: ActivityNet-QA to LLaMA-Factory sharegpt JSON, and dataset_info.json ----
N ?= 250
SECONDS ?= 20
TYPE ?= train
NAME ?= train_q_3000
QA_DIR ?= $(DATA)/activitynet-qa/dataset
QA_STEM := activitynet_qa_$(TYPE)_$(N)_limit_$(SECONDS)s

.PHONY: activitynet_qa dataset_info

# Always runs: the video folder may have changed, and the probe cache makes a rerun near-instant.
activitynet_qa: $(SETUP_STAMP) ## ActivityNet-QA (NAME, TYPE, N, SECONDS) to $(OUT)/activitynet_qa_*.json, registered
	$(PY) -m pyutils.llamafactory.activitynet_qa -name $(call q,$(NAME)) -type $(call q,$(TYPE)) -n $(call q,$(N)) -seconds $(call q,$(SECONDS)) \
	  --qa-dir $(call q,$(QA_DIR)) --videos $(call q,$(or $(VIDEOS),$(DATA)/activitynet/videos)) --out $(call q,$(OUT)) --report $(call q,$(OUT)/$(QA_STEM).report.jsonl) \
	  --jobs $(call q,$(JOBS)) $(if $(BACKEND),--backend $(call q,$(BACKEND))) --scheduler $(call q,$(SCHEDULER)) --register \
	  --media-dir $(call q,$(MEDIA_DIR))

dataset_info: $(SETUP_STAMP) ## merge caltech101, ActivityNet and $(OUT)/activitynet_qa_*.json into $(OUT)/dataset_info.json
	shopt -s nullglob; qa_files=($(call q,$(OUT))/activitynet_qa_*.json); \
	$(PY) -m pyutils.llamafactory.dataset_info --dir $(call q,$(OUT)) --media-dir $(call q,$(MEDIA_DIR)) --seed-entries "$${qa_files[@]}"

# ---- video datasets: DiDeMo videos, AdaCLIP config, contact sheet (issue 7) -----------------
DIDEMO_SRC ?= $(DATA)/didemo/originals
URLS ?= $(DATA)/didemo/video_urls.txt
FETCH_JOBS ?= 8
RETRIES ?= 3
ADACLIP ?=
VIDEO ?=
SHEET ?=

.PHONY: didemo-videos didemo-mp4 adaclip-config contact-sheet

didemo-videos: $(SETUP_STAMP) ## download every URL listed in URLS (URL[<TAB>name] lines) into DIDEMO_SRC
	$(PY) -m pyutils.fetch.fetch_list $(call q,$(URLS)) $(call q,$(DIDEMO_SRC)) --jobs $(call q,$(FETCH_JOBS)) --retries $(call q,$(RETRIES))

# The per-dataset default of VIDEOS: a target-specific value, so `VIDEOS=` on the command line
# still wins while other targets keep their own default.
didemo-mp4: VIDEOS = $(DATA)/didemo/videos
didemo-mp4: $(SETUP_STAMP) ## transcode DiDeMo originals in DIDEMO_SRC to VIDEOS/<name>.mp4 (H.264)
	$(PY) -m pyutils.video.transcode $(call q,$(DIDEMO_SRC)) $(call q,$(VIDEOS)) --jobs $(call q,$(JOBS))

adaclip-config: $(SETUP_STAMP) ## set frames_dir=FRAMES in ADACLIP/configs/DATASET.json, nothing else
	$(PY) -m pyutils.adaclip.config --adaclip $(call q,$(ADACLIP)) --dataset $(call q,$(DATASET)) --frames $(call q,$(FRAMES))

contact-sheet: $(SETUP_STAMP) ## PNG grid of sampled frames of a few videos in FRAMES (or VIDEO=stem) to SHEET
	$(PY) -m pyutils.video.contact_sheet $(call q,$(FRAMES)) $(if $(VIDEO),--video $(call q,$(VIDEO))) $(if $(SHEET),-o $(call q,$(SHEET)))

# ---- downloads and the CLIP image datasets ----------------------------------------------------
# Every registry file (scripts/downloads.tsv) a dataset uses has an override prefix: <NAME>_URL
# replaces its sources (space-separated, tried in order), <NAME>_SHA256 its checksum (`none`
# skips verification with a warning). Empty means the registry's.
DOWNLOAD_NAMES := CALTECH101 CALTECH101_SPLIT MINI_IMAGENET MINI_IMAGENET_CLASSNAMES \
  COCO_TRAIN2014 COCO_VAL2014 DATASET_JSON FLICKR30K FLICKR5K \
  MSRVTT MSRVTT_DATA ACTIVITYNET_CAPTIONS DIDEMO_YFCC100M_HASH \
  $(foreach split,TRAIN VAL TEST,DIDEMO_$(split)_DATA DIDEMO_$(split)_LIST \
    ACTIVITYNET_QA_$(split)_Q ACTIVITYNET_QA_$(split)_A)
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
# VIDEOS: where a video dataset's videos are checked (default its videos/ folder).
$(DATA)/%/.vlprep-complete: | $(SETUP_STAMP)
	$(PY) -m pyutils.catalog.prepare '$*' --data $(call q,$(DATA)) $(if $(VIDEOS),--videos $(call q,$(VIDEOS)))

check: $(SETUP_STAMP) ## table of datasets: complete/partial/missing, counts, size, fix (DATASETS="a b" limits)
	$(PY) -m pyutils.catalog.check --data $(call q,$(DATA)) --annots $(call q,$(ANNOTS)) $(DATASETS)

verify: $(SETUP_STAMP) ## re-hash every archive in $(DATA)/downloads against the registry and lock file
	$(PY) -m pyutils.fetch.download verify --data $(call q,$(DATA))

downloads-registry: $(SETUP_STAMP) ## copy checksums first seen in $(DATA)/downloads into scripts/downloads.tsv
	$(PY) -m pyutils.fetch.download register --data $(call q,$(DATA))

# ---- frames ----------------------------------------------------------------------------------
# Empty means native rate, native size, every frame; BACKEND=dask with SCHEDULER=tcp://host:8786
# runs the same per-video work on a Dask cluster. With DATASET=msrvtt (etc.), VIDEOS and FRAMES
# default to $(DATA)/<dataset>/videos and $(DATA)/<dataset>/frames.
FPS ?=
SIZE ?=
NUM_FRAMES ?=
FRAMES_VIDEOS = $(or $(VIDEOS),$(if $(DATASET),$(DATA)/$(DATASET)/videos))
FRAMES_OUT = $(or $(FRAMES),$(if $(DATASET),$(DATA)/$(DATASET)/frames))
FRAMES_OPTIONS = --jobs $(call q,$(JOBS)) $(if $(BACKEND),--backend $(call q,$(BACKEND))) \
  $(if $(FPS),--fps $(call q,$(FPS))) $(if $(SIZE),--short-side $(call q,$(SIZE))) \
  $(if $(NUM_FRAMES),--num-frames $(call q,$(NUM_FRAMES))) $(if $(SCHEDULER),--scheduler $(call q,$(SCHEDULER)))

.PHONY: frames

frames: $(SETUP_STAMP) ## extract frames: VIDEOS=folder FRAMES=folder [FPS= SIZE= NUM_FRAMES= JOBS=]
	@test -n $(call q,$(FRAMES_VIDEOS)) && test -n $(call q,$(FRAMES_OUT)) || { echo 'vlprep: error: set VIDEOS=<folder \
	  of videos> and FRAMES=<output folder>, or DATASET=msrvtt|didemo|activitynet' >&2; exit 2; }
	$(PY) -m pyutils.video.frames $(call q,$(FRAMES_VIDEOS)) $(call q,$(FRAMES_OUT)) $(FRAMES_OPTIONS)

# ---- video datasets end to end: msrvtt, didemo, activitynet, activitynet-qa (issue 7) --------
# `make <dataset>-ready` is a chain of stamp files, each inside the folder its step fills, so a
# stopped chain resumes at the first step without one. A step whose items partly failed (dead
# links, unreadable videos: exit 1, listed above it) lets the chain go on without its stamp, so
# the next run retries just those; any other failure stops the chain.
READY := .vlprep-ready
ready_videos = $(or $(VIDEOS),$(DATA)/$(1)/videos)
ready_frames = $(or $(FRAMES),$(DATA)/$(1)/frames)
tolerant = $(1) && touch '$@' || { status=$$?; test "$$status" -eq 1 || exit "$$status"; \
  echo 'vlprep: $@: some items failed (listed above); going on, the next run retries them' >&2; }

# Stamp files are make targets, and make splits target names at spaces: say so instead.
STAMP_GOALS := %-ready msrvtt didemo activitynet activitynet-qa-data
ifneq ($(filter $(STAMP_GOALS),$(MAKECMDGOALS)),)
$(foreach var,DATA ANNOTS FRAMES DIDEMO_SRC URLS,$(if $(word 2,$($(var))),$(error \
  $(var)='$($(var))': make targets cannot have spaces; use a path without them (or a symlink))))
endif

.PHONY: msrvtt didemo activitynet activitynet-qa-data msrvtt-ready didemo-ready activitynet-ready

msrvtt: $(DATA)/msrvtt/.vlprep-complete ## MSRVTT videos (flat in videos/) + CLIP4Clip's msrvtt_data/
didemo: $(DATA)/didemo/.vlprep-complete $(DATA)/didemo/video_urls.txt ## DiDeMo annotations + the video URL list for didemo-videos
activitynet: $(DATA)/activitynet/.vlprep-complete ## ActivityNet Captions; lists the videos missing from VIDEOS and where to request them
activitynet-qa-data: $(DATA)/activitynet-qa/.vlprep-complete ## ActivityNet-QA dataset/*.json from MILVLG/activitynet-qa

$(DATA)/didemo/video_urls.txt: $(DATA)/didemo/.vlprep-complete
	$(PY) -m pyutils.catalog.didemo_urls $(call q,$(DATA)/didemo/annotations) '$@'

# Frames, then splits, after the step $(2) that leaves the videos of dataset $(1).
define video_chain
$(call ready_frames,$(1))/$(READY): $(2) | $(SETUP_STAMP)
	mkdir -p '$$(@D)'
	$$(call tolerant,$$(PY) -m pyutils.video.frames $(call q,$(call ready_videos,$(1))) '$$(@D)' $$(FRAMES_OPTIONS))
$(ANNOTS)/$(ANNOT_OUT_$(1))/$(READY): $(call ready_frames,$(1))/$(READY)
	$$(call annots_cmd,$(1),$(call ready_videos,$(1)),$(ANNOT_SRC_$(1)))
	touch '$$@'
$(1)-ready: $(ANNOTS)/$(ANNOT_OUT_$(1))/$(READY)
endef

msrvtt-ready: ## download MSRVTT, extract frames, write its AdaCLIP splits (resumes where it stopped)
$(eval $(call video_chain,msrvtt,$(DATA)/msrvtt/.vlprep-complete))

# ActivityNet videos come by hand: the check lists the missing ones and the chain goes on with
# those present.
activitynet-ready: ## ActivityNet captions, check VIDEOS, frames, AdaCLIP splits (resumes)
$(DATA)/activitynet/$(READY): | $(SETUP_STAMP)
	$(call tolerant,$(PY) -m pyutils.catalog.prepare activitynet --data $(call q,$(DATA)) --videos $(call q,$(call ready_videos,activitynet)))
$(eval $(call video_chain,activitynet,$(DATA)/activitynet/$(READY)))

# DiDeMo videos: VIDEOS=<folder of <original>.mp4> skips download and transcode; URLS= (empty)
# with DIDEMO_SRC=<folder of originals> skips only the download.
didemo-ready: ## DiDeMo annotations, videos (didemo-videos or VIDEOS=), didemo-mp4, frames, splits
$(DIDEMO_SRC)/$(READY): $(URLS) | $(SETUP_STAMP)
	mkdir -p '$(@D)'
	$(call tolerant,$(PY) -m pyutils.fetch.fetch_list $(call q,$(URLS)) '$(@D)' --jobs $(call q,$(FETCH_JOBS)) --retries $(call q,$(RETRIES)))
$(DATA)/didemo/videos/$(READY): $(if $(URLS),$(DIDEMO_SRC)/$(READY),$(DATA)/didemo/.vlprep-complete)
	mkdir -p '$(@D)'
	$(call tolerant,$(PY) -m pyutils.video.transcode $(call q,$(DIDEMO_SRC)) '$(@D)' --jobs $(call q,$(JOBS)))
$(eval $(call video_chain,didemo,$(if $(VIDEOS),$(DATA)/didemo/.vlprep-complete,$(DATA)/didemo/videos/$(READY))))

# ---- preflight: replay what the trainers will do with what was prepared (issue 14) ------------
# LLaMA-Factory's own names and defaults (Qwen2-VL through the qwen2_vl template); MEDIA_DIR is
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

.PHONY: preflight

preflight: $(SETUP_STAMP) ## replay LLaMA-Factory/Qwen2-VL, AdaCLIP and CLIP loaders on what is prepared; $(OUT)/preflight.jsonl [DROP=1 DEEP=1]
	$(PY) -m pyutils.catalog.preflight --out $(call q,$(OUT)) --media-dir $(call q,$(MEDIA_DIR)) \
	  --lf-datasets $(call q,$(LF_DATASETS)) --video-fps $(call q,$(VIDEO_FPS)) --video-maxlen $(call q,$(VIDEO_MAXLEN)) \
	  --video-max-pixels $(call q,$(VIDEO_MAX_PIXELS)) --video-min-pixels $(call q,$(VIDEO_MIN_PIXELS)) \
	  --cutoff-len $(call q,$(CUTOFF_LEN)) --template $(call q,$(TEMPLATE)) --tokenizer $(call q,$(TOKENIZER)) \
	  --data $(call q,$(DATA)) --annots $(call q,$(ANNOTS)) --frames $(call q,$(FRAMES)) --dataset $(call q,$(DATASET)) \
	  --num-frm $(call q,$(NUM_FRM)) --jobs $(call q,$(JOBS)) $(if $(DEEP),--deep) $(if $(DROP),--drop)
