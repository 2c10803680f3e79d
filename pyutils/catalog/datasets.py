"""The datasets as declarative records: what each one downloads, where it goes, how it is checked.

A dataset is its folder under $(DATA), its parts (registry files, the `<VAR>_URL`/`<VAR>_SHA256`
prefix that overrides each, and where their contents go) and its layout (how `make check` verifies
it). Adding a dataset is adding a record here and lines to scripts/downloads.tsv.

Each part is placed once: its stamp `.vlprep-placed-<file>` makes a rerun skip it (and its
archive may then be deleted). `.vlprep-complete` is written when the layout checks complete.
A video dataset's download is complete when its annotations are there and (unless a later step
makes them, as for DiDeMo) a video for every annotated id; what is missing is listed in
`missing.txt` beside them. Its `chain` says how `make <dataset>-ready` goes on to frames and AdaCLIP
splits: the Makefile's rules for it are generated from these records (pyutils/catalog/makefile.py
writes datasets.mk), and `make check` names the same stamps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pyutils.adaclip.splits import RECIPES, SplitRecipe
from pyutils.catalog.layout import (
    ClassFolders,
    Inspection,
    ReferencedFiles,
    VideoFiles,
    Where,
    activitynet_video_ids,
    coop_split_paths,
    didemo_video_ids,
    msrvtt_video_ids,
)
from pyutils.catalog.xtune import (
    caption_train_paths,
    coco_folder,
    coco_train_paths,
    coco_train_records,
    resplit,
    rewrite_images,
    valtest_paths,
)
from pyutils.core.errors import UserError

COMPLETE_STAMP = ".vlprep-complete"
PLACED_STAMP = ".vlprep-placed-"
MISSING_LIST = "missing.txt"  # beside the annotations: every annotated video not found


@dataclass(frozen=True)
class Place:
    """Move the first of `candidates` found in the extracted archive to `dest` (relative to the
    dataset folder). Candidates are also looked for under the archive's single top folder."""

    dest: str
    candidates: tuple[str, ...]


# Places -> (places, notes): puts what the archive holds into the form the trainer reads, in the
# extraction folder before anything is moved into the dataset folder; `work` is a free folder there.
Arrange = Callable[[dict[str, Path], Path], tuple[dict[str, Path], list[str]]]
# A JSON rewrite: the parsed file -> (the rewritten data, what was changed, by kind).
Rewrite = Callable[[object], tuple[object, dict[str, int]]]


@dataclass(frozen=True)
class Part:
    """One registry file of a dataset. No `places`: the file itself is copied in as `dest`
    (default: its registry name). `arrange` runs on the extracted places; `rewrites` (dest ->
    rewrite) turn placed JSON files into the trainer's form, the original kept in downloads/."""

    file: str
    var: str
    places: tuple[Place, ...] = ()
    dest: str = ""
    arrange: Arrange | None = None
    rewrites: tuple[tuple[str, Rewrite], ...] = ()


@dataclass(frozen=True)
class Originals:
    """Videos that come as originals from a URL list made from the annotations, downloaded into
    their own folder and transcoded into the videos folder (DiDeMo)."""

    folder_var: str  # the Make variable of the originals folder
    folder: str  # its default, under the dataset folder
    url_list: str  # the URL list, under the dataset folder; the Make variable URLS overrides it
    url_list_maker: str  # the module that writes it: `python -m MODULE ANNOTATIONS LIST`


# How a chain gets its videos: the download leaves them; they come by hand and are checked (the
# chain goes on with those present); or they are fetched as originals and transcoded.
DOWNLOADED, BY_HAND, FROM_ORIGINALS = "downloaded", "by_hand", "originals"


@dataclass(frozen=True)
class Step:
    """One step of a `make <dataset>-ready` chain. Its stamp `.vlprep-<dataset>-<name>` goes in the
    folder the step fills, so a chain resumes at the first step without one, a folder carries its
    own proof of completion, and two datasets' chains never share a stamp whatever paths are set."""

    name: str
    folder: str  # which folder: "dataset", "videos", "frames", "originals" or "splits"

    def stamp(self, dataset: str) -> str:
        return f".vlprep-{dataset}-{self.name}"


@dataclass(frozen=True)
class VideoChain:
    videos: str  # DOWNLOADED, BY_HAND or FROM_ORIGINALS
    help: str  # the `make help` line of `<dataset>-ready`
    originals: Originals | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        """In order; the first step's input is the dataset's completed download."""
        first = {
            DOWNLOADED: (),
            BY_HAND: (Step("check", "dataset"),),
            FROM_ORIGINALS: (Step("originals", "originals"), Step("videos", "videos")),
        }[self.videos]
        return (*first, Step("frames", "frames"), Step("splits", "splits"))


@dataclass(frozen=True)
class Dataset:
    name: str  # the make target
    folder: str  # under $(DATA)
    parts: tuple[Part, ...]
    layout: ClassFolders | ReferencedFiles | VideoFiles
    summary: str
    trainer: str  # who reads it: "CLIP", "AdaCLIP" or "LLaMA-Factory"
    chain: VideoChain | None = None  # video datasets: `make <name>-ready`

    @property
    def ready(self) -> str:
        """The make target of the whole chain, or "" for a dataset without one."""
        return f"{self.name}-ready" if self.chain else ""

    @property
    def splits(self) -> SplitRecipe:
        assert isinstance(self.layout, VideoFiles), self.name
        return self.layout.splits

    @property
    def annotations(self) -> str:
        """The folder (under the dataset folder) its AdaCLIP splits are made from."""
        assert isinstance(self.layout, VideoFiles), self.name
        return self.layout.indexes[0].rpartition("/")[0]

    def step_folder(self, step: Step, data: Path, annots: Path) -> Path:
        """Where a chain step's stamp is, with every folder at its default."""
        root = data / self.folder
        if step.folder == "splits":
            return annots / self.splits.output_folder
        if step.folder == "originals":
            assert self.chain and self.chain.originals
            return root / self.chain.originals.folder
        return root if step.folder == "dataset" else root / step.folder


SPLITS = ("train", "val", "test")
TRAIN_READERS = {"train": caption_train_paths}  # xtune reads val and test with read_valtest_data


def _caption_dataset(name: str, images: Part, prefix: str, summary: str) -> Dataset:
    """Flickr30k and Flickr5k: an image archive, and caption JSONs from wangjilong/dataset-json
    (`data/<name>/<prefix>_<split>.json`, also under the seed's `.json.json` names), their image
    paths written as xtune's ITC_Flickr/ITC_Flickr5k open them: under the images' folder."""
    jsons = tuple(
        Place(
            f"{prefix}_{split}.json",
            tuple(f"data/{name}/{prefix}_{split}.json{extra}" for extra in ("", ".json")),
        )
        for split in SPLITS
    )
    under_images = partial(rewrite_images, folder_of=lambda _name: images.places[0].dest)
    return Dataset(
        name=name,
        folder=name,
        parts=(
            images,
            Part(
                "dataset-json.zip",
                "DATASET_JSON",
                jsons,
                rewrites=tuple((place.dest, under_images) for place in jsons),
            ),
        ),
        layout=ReferencedFiles(
            tuple(
                (f"{prefix}_{split}.json", TRAIN_READERS.get(split, valtest_paths))
                for split in SPLITS
            ),
            what="images the caption JSONs reference",
        ),
        summary=summary,
        trainer="CLIP",
    )


def _files(var_prefix: str, names: tuple[str, ...], registry: str, folder: str) -> tuple[Part, ...]:
    """Plain files (raw GitHub annotation files): registry name `<registry>_<name>`, placed as
    `<folder>/<name>`, overridden by `<VAR_PREFIX>_<NAME without extension, upper case>_URL`."""
    return tuple(
        Part(
            f"{registry}_{name}",
            f"{var_prefix}_{name.rsplit('.', 1)[0].upper().replace('-', '_')}",
            dest=f"{folder}/{name}",
        )
        for name in names
    )


ACTIVITYNET_FORM = (
    "the videos come only from the owners: request them with the form linked from "
    "http://activity-net.org/download.html, then put them (v_<id>.mp4/.mkv/.webm) in VIDEOS"
)
DIDEMO_ANNOTATIONS = tuple(f"{s}_data.json" for s in SPLITS) + tuple(
    f"{s}_list.txt" for s in SPLITS
)
QA_FILES = tuple(f"{s}_{kind}.json" for s in SPLITS for kind in ("q", "a"))

VIDEO_DATASETS = (
    Dataset(
        name="msrvtt",
        folder="msrvtt",
        parts=(
            # Frozen-in-Time's copy nests the 10,000 videos in MSRVTT/videos/all/: placed flat.
            Part("MSRVTT.zip", "MSRVTT", (Place("videos", ("MSRVTT/videos/all", "videos/all")),)),
            Part("msrvtt_data.zip", "MSRVTT_DATA", (Place("msrvtt_data", ("msrvtt_data",)),)),
        ),
        layout=VideoFiles(
            annotations=tuple(
                f"msrvtt_data/{name}"
                for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv")
            ),
            indexes=("msrvtt_data/MSRVTT_data.json",),
            reader=msrvtt_video_ids,
            splits=RECIPES["msrvtt"],
        ),
        summary="MSRVTT videos (Frozen in Time) and CLIP4Clip's msrvtt_data",
        trainer="AdaCLIP",
        chain=VideoChain(
            DOWNLOADED,
            "download MSRVTT, extract frames, write its AdaCLIP splits (resumes where it stopped)",
        ),
    ),
    Dataset(
        name="didemo",
        folder="didemo",
        parts=_files("DIDEMO", (*DIDEMO_ANNOTATIONS, "yfcc100m_hash.txt"), "didemo", "annotations"),
        layout=VideoFiles(
            annotations=tuple(f"annotations/{name}" for name in DIDEMO_ANNOTATIONS),
            indexes=tuple(f"annotations/{s}_data.json" for s in SPLITS),
            reader=didemo_video_ids,
            splits=RECIPES["didemo"],
            videos_downloaded=False,
            by_hand="dead links are listed by make didemo-videos; ask the LocalizingMoments "
            "authors for the rest, then make didemo-mp4",
        ),
        summary="DiDeMo annotations and video URL list; videos by make didemo-videos",
        trainer="AdaCLIP",
        chain=VideoChain(
            FROM_ORIGINALS,
            "DiDeMo annotations, videos (didemo-videos or VIDEOS=), didemo-mp4, frames, splits",
            Originals("DIDEMO_SRC", "originals", "video_urls.txt", "pyutils.catalog.didemo_urls"),
        ),
    ),
    Dataset(
        name="activitynet",
        folder="activitynet",
        parts=(
            Part(
                "activitynet-captions.zip",
                "ACTIVITYNET_CAPTIONS",
                tuple(
                    Place(f"captions/{name}", (name, f"captions/{name}"))
                    for name in ("train.json", "val_1.json", "val_2.json")
                ),
            ),
        ),
        layout=VideoFiles(
            annotations=("captions/train.json", "captions/val_1.json", "captions/val_2.json"),
            indexes=("captions/train.json", "captions/val_1.json"),
            reader=activitynet_video_ids,
            splits=RECIPES["activitynet"],
            by_hand=ACTIVITYNET_FORM,
        ),
        summary="ActivityNet Captions; videos by request from the owners",
        trainer="AdaCLIP",
        chain=VideoChain(
            BY_HAND, "ActivityNet captions, check VIDEOS, frames, AdaCLIP splits (resumes)"
        ),
    ),
    Dataset(
        name="activitynet-qa-data",
        folder="activitynet-qa",
        parts=_files("ACTIVITYNET_QA", QA_FILES, "activitynet-qa", "dataset"),
        layout=ReferencedFiles(tuple((f"dataset/{name}", lambda data: ()) for name in QA_FILES)),
        summary="ActivityNet-QA questions and answers (MILVLG/activitynet-qa)",
        trainer="LLaMA-Factory",
    ),
)

DATASETS = {
    d.name: d
    for d in (
        Dataset(
            name="caltech101",
            folder="caltech-101",
            parts=(
                Part(
                    "101_ObjectCategories.tar.gz",
                    "CALTECH101",
                    (Place("101_ObjectCategories", ("101_ObjectCategories",)),),
                ),
                Part("split_zhou_Caltech101.json", "CALTECH101_SPLIT"),
            ),
            layout=ReferencedFiles(
                (("split_zhou_Caltech101.json", coop_split_paths),),
                folder="101_ObjectCategories",
                what="images of the CoOp split",
            ),
            summary="Caltech101 images and the CoOp split",
            trainer="CLIP",
        ),
        Dataset(
            name="mini-imagenet",
            folder="mini-imagenet",
            parts=(
                Part(
                    "mini-imagenet.tar",
                    "MINI_IMAGENET",
                    tuple(Place(split, (split,)) for split in SPLITS),
                    arrange=resplit,
                ),
                Part("classnames.txt", "MINI_IMAGENET_CLASSNAMES"),
            ),
            layout=ClassFolders(SPLITS, 100, "classnames.txt", 600),
            summary="mini-ImageNet (archive placed by hand: says where) and CLIP's class names",
            trainer="CLIP",
        ),
        Dataset(
            name="mscoco2014",
            folder="mscoco2014",
            parts=(
                Part("train2014.zip", "COCO_TRAIN2014", (Place("train2014", ("train2014",)),)),
                Part("val2014.zip", "COCO_VAL2014", (Place("val2014", ("val2014",)),)),
                Part(
                    "dataset-json.zip",
                    "DATASET_JSON",
                    tuple(
                        Place(name, (f"data/mscoco2014/{name}", f"data/mscococ2014/{name}"))
                        for name in (
                            "captions_train.json",
                            "coco_karpathy_val.json",
                            "coco_karpathy_test.json",
                        )
                    ),
                    rewrites=(
                        ("captions_train.json", coco_train_records),
                        *(
                            (name, partial(rewrite_images, folder_of=coco_folder))
                            for name in ("coco_karpathy_val.json", "coco_karpathy_test.json")
                        ),
                    ),
                ),
            ),
            layout=ReferencedFiles(
                (
                    ("captions_train.json", coco_train_paths),
                    ("coco_karpathy_val.json", valtest_paths),
                    ("coco_karpathy_test.json", valtest_paths),
                ),
                what="images xtune opens for the caption JSONs",
            ),
            summary="COCO 2014 train/val images and Karpathy caption JSONs (Kaggle credentials)",
            trainer="CLIP",
        ),
        _caption_dataset(
            "flickr",
            Part(
                "flickr30k.zip",
                "FLICKR30K",
                # eeshawn/flickr30k nests its images; the loaders want flickr30k-images/.
                (
                    Place(
                        "flickr30k-images",
                        (
                            "flickr30k-images",
                            "flickr30k_images/flickr30k_images",
                            "flickr30k_images",
                        ),
                    ),
                ),
            ),
            "flickr30k",
            "Flickr30k images and caption JSONs (Kaggle credentials)",
        ),
        _caption_dataset(
            "flickr5k",
            Part(
                "self-data.zip",
                "FLICKR5K",
                (Place("flickr5k-images", ("flickr5k-images", "flickr5k_images")),),
            ),
            "flickr5k",
            "Flickr5k images and caption JSONs (Kaggle credentials)",
        ),
        *VIDEO_DATASETS,
    )
}


def find_dataset(name: str) -> Dataset:
    """By make target (`caltech101`) or folder name (`caltech-101`, the stamp rule's stem)."""
    for dataset in DATASETS.values():
        if name in (dataset.name, dataset.folder):
            return dataset
    raise UserError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def inspect(dataset: Dataset, data: Path, where: Where | None = None) -> Inspection:
    return dataset.layout.inspect(data / dataset.folder, where)
