"""OPEA xtune's CLIP dataset classes as rules: the paths and labels they build, the forms they read.

The classes are GenAIComps' comps/finetuning/src/integrations/xtune/clip_finetune/datasets/
(commit 77f48c49c) on Dassl, whose `Datum.__init__` asserts that every image path is a file: a
path xtune builds that does not exist stops training. Each function names the method it follows;
tests/manual/compare_xtune.py runs the real classes on what `make <dataset>` leaves.

Readers (for `make check` and `make preflight`) give the path, relative to the dataset folder,
that xtune opens for each record, and raise UserError where xtune would crash or misread.
Rewriters (for `make <dataset>`) turn the published forms into the one xtune reads.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pyutils.core.errors import UserError
from pyutils.core.jsonio import expect_type

# Every class writes `preprocessed.pkl` (mini-ImageNet, MSCOCO, Flickr) or `split_fewshot/*.pkl`
# (all) into its dataset folder and reads it back before looking at the data again.
CACHES = ("preprocessed.pkl", "split_fewshot")

# ITC_Mscoco.read_train_data: "train2014/COCO_train2014_000000" + str(ann["image_id"]) + ".jpg".
# COCO's files are COCO_train2014_<id, 12 digits>.jpg: only a 6-character id string fits.
COCO_TRAIN_PREFIX = "train2014/COCO_train2014_000000"
COCO_NAME = re.compile(r"COCO_(train|val)2014_(\d{12})\.jpg$")
COCO_ID_DIGITS = 6

# mini-ImageNet re-split (see resplit): of each class's images, ordered by the SHA-256 of their
# file names, the first tenth goes to val, the next tenth to test, the rest to train.
VAL_SHARE = TEST_SHARE = 10  # 1/10 each


# ---- readers ---------------------------------------------------------------------------------


def _records(data: Any) -> list[Any]:
    return expect_type(data, list, "top level (xtune iterates a list of records)")


def _field(record: Any, index: int, key: str, kind: type) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise UserError(f"[{index}]: no {key!r} (xtune reads ann[{key!r}])")
    return expect_type(record[key], kind, f"[{index}]: {key!r}")


def caption_train_paths(data: Any) -> Iterable[str]:
    """ITC_Flickr / ITC_Flickr5k.read_train_data: reads ann["image_id"], a string
    ann["caption"] (pre_caption lowercases it) and opens os.path.join(dataset_dir, ann["image"])."""
    for index, ann in enumerate(_records(data)):
        _field(ann, index, "image_id", object)
        _field(ann, index, "caption", str)
        yield _field(ann, index, "image", str)


def coco_train_path(image_id: Any) -> str:
    return f"{COCO_TRAIN_PREFIX}{image_id}.jpg"


def coco_train_paths(data: Any) -> Iterable[str]:
    """ITC_Mscoco.read_train_data: ignores ann["image"]; opens coco_train_path(ann["image_id"])
    with a string ann["caption"]."""
    for index, ann in enumerate(_records(data)):
        _field(ann, index, "caption", str)
        image_id = _field(ann, index, "image_id", object)
        yield coco_train_path(image_id)


def valtest_paths(data: Any) -> Iterable[str]:
    """read_valtest_data (MSCOCO, Flickr, Flickr5k): iterates ann["caption"] as a list of
    captions (a string would give one caption per letter) and opens dataset_dir + ann["image"]."""
    for index, ann in enumerate(_records(data)):
        for caption in _field(ann, index, "caption", list):
            expect_type(caption, str, f"[{index}]: a caption in 'caption'")
        yield _field(ann, index, "image", str)


def read_classnames(text: str) -> dict[str, str]:
    """MiniImageNet.read_classnames: per line, the first space-separated word is the folder."""
    names = {}
    for line in text.splitlines():
        words = line.strip().split(" ")
        names[words[0]] = " ".join(words[1:])
    return names


def split_classes(split_dir: Path) -> list[str]:
    """MiniImageNet.read_data: the class folders of one split, sorted; a class's label is its
    position here, so labels agree across splits only when every split has the same folders."""
    try:
        with os.scandir(split_dir) as entries:
            return sorted(e.name for e in entries if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def class_folder_problems(
    root: Path, splits: tuple[str, ...], classes: int, classnames: str, images_per_class: int
) -> list[str]:
    """What makes xtune's MiniImageNet misread or crash on `root`: splits whose sorted class folders
    differ (the same label names another class), a count other than `classes`, a folder with no
    line in `classnames` (KeyError in read_data), an image file name in two splits, and classes
    with fewer than `images_per_class` images in all splits together."""
    problems = []
    folders = {split: split_classes(root / split) for split in splits}
    first = splits[0]
    for split in splits:
        if len(folders[split]) != classes:
            problems.append(f"{split}/: {len(folders[split])} class folders, expected {classes}")
        if split != first and folders[split] != folders[first]:
            other = sorted(set(folders[split]) ^ set(folders[first]))
            problems.append(
                f"{split}/ and {first}/ hold different class folders (first: {other[0]}): "
                "xtune numbers each split's folders separately, so labels would disagree"
            )
    try:
        names = read_classnames((root / classnames).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"missing {classnames}")
    else:
        unnamed = sorted({c for found in folders.values() for c in found} - names.keys())
        if unnamed:
            first = unnamed[0]
            problems.append(f"{len(unnamed)} class folders not in {classnames} (first: {first})")
    seen: dict[str, str] = {}
    twice: dict[str, None] = {}
    per_class: Counter[str] = Counter()
    for split in splits:
        for folder in folders[split]:
            for name in sorted(_image_names(root / split / folder)):
                per_class[folder] += 1
                if seen.setdefault(name, split) != split:
                    twice[f"{folder}/{name}"] = None
    if twice:
        problems.append(f"{len(twice)} images in more than one split (first: {next(iter(twice))})")
    short = sorted(c for c, n in per_class.items() if n < images_per_class)
    if short:
        problems.append(
            f"{len(short)} classes with fewer than {images_per_class} images (first: {short[0]})"
        )
    return problems


def _image_names(folder: Path) -> list[str]:
    """dassl.utils.listdir_nohidden, as read_data lists a class folder."""
    return [name for name in os.listdir(folder) if not name.startswith(".")]


# ---- rewriters: the published forms -> the one xtune reads -------------------------------------


def _order(name: str) -> tuple[str, str]:
    """Where an image stands among its class's images: by the SHA-256 of its file name."""
    return hashlib.sha256(name.encode()).hexdigest(), name


def resplit(sources: dict[str, Path], work: Path) -> tuple[dict[str, Path], list[str]]:
    """mini-ImageNet as xtune's DATASETS.md ends it: train/, val/, test/ each holding the same class
    folders. `sources` are the archive's split folders (extracted, not yet placed); when their
    class folders already agree they are kept as they are. Otherwise every class's images are
    pooled, ordered by the SHA-256 of their file names (so the same on every machine), and the
    first 1/VAL_SHARE go to val, the next 1/TEST_SHARE to test, the rest to train. The new
    folders are built under `work` by renames (same file system); returns them and a note."""
    found = {split: split_classes(path) for split, path in sources.items()}
    if len({tuple(classes) for classes in found.values()}) == 1:
        return sources, []
    pooled: dict[str, dict[str, Path]] = {}
    for split, path in sources.items():
        for folder in found[split]:
            images = pooled.setdefault(folder, {})
            for name in _image_names(path / folder):
                if name in images:
                    raise UserError(
                        f"{folder}/{name} is in two splits of the archive: cannot re-split"
                    )
                images[name] = path / folder / name
    targets = {split: work / split for split in sources}
    for folder, images in sorted(pooled.items()):
        ordered = sorted(images, key=_order)
        n_val, n_test = max(1, len(ordered) // VAL_SHARE), max(1, len(ordered) // TEST_SHARE)
        shares = {
            "val": ordered[:n_val],
            "test": ordered[n_val : n_val + n_test],
            "train": ordered[n_val + n_test :],
        }
        for split, names in shares.items():
            (targets[split] / folder).mkdir(parents=True)
            for name in names:
                os.replace(images[name], targets[split] / folder / name)
    counts = ", ".join(f"{split} {len(classes)}" for split, classes in found.items())
    note = (
        f"re-split: the archive's classes differ per split ({counts}); pooled into "
        f"{len(pooled)} classes in each of {', '.join(sources)} (per class, by SHA-256 of the "
        f"file names: 1/{VAL_SHARE} val, 1/{TEST_SHARE} test, the rest train)"
    )
    return targets, [note]


def _coco_id(record: dict[str, Any], index: int, files: dict[int, str]) -> int | str:
    """The COCO image id of a captions_train.json record, or the name of the split that the image
    is in when it is not train2014 (which xtune's train reader cannot open)."""
    image_id = record.get("image_id")
    name = record.get("image") or record.get("file_name")
    if name is None and isinstance(image_id, int):
        name = files.get(image_id)  # COCO's own form: the file name of the image record
    if isinstance(name, str):
        match = COCO_NAME.search(name)
        if match is None:
            raise UserError(f"[{index}]: {name!r} is not a COCO 2014 file name")
        return int(match[2]) if match[1] == "train" else f"{match[1]}2014"
    if isinstance(image_id, int) or (isinstance(image_id, str) and image_id.isdigit()):
        return int(image_id)
    raise UserError(f"[{index}]: no COCO image id (image_id {image_id!r}, no image file name)")


def coco_train_records(data: Any) -> tuple[list[dict[str, str]], Counter[str]]:
    """Any published captions_train.json -> [{"image_id", "caption"}] as read_train_data reads it.

    Accepted: a list of {image_id, caption}; COCO's own {"images": [...], "annotations": [...]};
    BLIP's Karpathy list ({image: "train2014/COCO_train2014_<12 digits>.jpg", caption,
    image_id: "coco_N"}, where the id is not COCO's: the file name says it). The id is written as
    the 6-digit zero-padded string, so coco_train_path builds the real file name; a caption list
    becomes one record per caption; records of val2014 images are left out (xtune's train
    reader opens only train2014/). Also returns what was changed, by kind."""
    changes: Counter[str] = Counter()
    files: dict[int, str] = {}
    if isinstance(data, dict) and "annotations" in data:
        images = expect_type(data.get("images", []), list, "'images'")
        files = {image["id"]: image["file_name"] for image in images if isinstance(image, dict)}
        data = expect_type(data["annotations"], list, "'annotations'")
        changes["COCO's {images, annotations} form flattened into a list"] += 1
    out = []
    for index, record in enumerate(_records(data)):
        if not isinstance(record, dict):
            raise UserError(f"[{index}]: expected a JSON object")
        coco_id = _coco_id(record, index, files)
        captions = record.get("caption")
        if isinstance(captions, str):
            captions = [captions]
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise UserError(f"[{index}]: 'caption' is not a string or a list of strings")
        if isinstance(coco_id, str):
            changes[f"left out: captions of {coco_id} images (xtune opens only train2014/)"] += 1
            continue
        if coco_id >= 10**COCO_ID_DIGITS:
            raise UserError(f"[{index}]: COCO id {coco_id} has over {COCO_ID_DIGITS} digits")
        image_id = f"{coco_id:0{COCO_ID_DIGITS}d}"
        if str(record.get("image_id")) != image_id:
            changes["image_id written as the 6-digit string of the COCO id"] += 1
        if len(captions) != 1:
            changes["caption lists split into one record per caption"] += 1
        out += [{"image_id": image_id, "caption": caption} for caption in captions]
    return out, changes


def rewrite_images(
    data: Any, folder_of: Callable[[str], str]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """A caption JSON whose `image` paths xtune joins to the dataset folder as written: each
    becomes `folder_of(file name)/<file name>` where it is not already that (bare names, other
    roots, absolute paths, backslashes). Everything else in a record is kept."""
    changes: Counter[str] = Counter()
    out = []
    for index, record in enumerate(_records(data)):
        image = _field(record, index, "image", str)
        name = posixpath.basename(image.replace("\\", "/"))
        wanted = posixpath.join(folder_of(name), name)
        if image != wanted:
            changes[f"image paths rewritten to {posixpath.dirname(wanted)}/<file name>"] += 1
            record = {**record, "image": wanted}
        out.append(record)
    return out, changes


def coco_folder(name: str) -> str:
    """The 2014 folder a COCO file name belongs to (Karpathy val/test: val2014)."""
    match = COCO_NAME.search(name)
    return f"{match[1]}2014" if match else "val2014"


# ---- caches --------------------------------------------------------------------------------------


def remove_caches(root: Path) -> list[str]:
    """Remove xtune's caches from a dataset folder vlprep has changed; the names removed."""
    removed = []
    for name in CACHES:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name + ("/" if name == "split_fewshot" else ""))
    return removed


def cache_files(root: Path) -> list[Path]:
    """xtune's cache files in `root` (an empty split_fewshot/, made by every class, is none)."""
    files = [root / CACHES[0]] if (root / CACHES[0]).is_file() else []
    fewshot = root / CACHES[1]
    if fewshot.is_dir():
        files += sorted(p for p in fewshot.iterdir() if p.is_file())
    return files


def stale_cache_problem(root: Path, data_files: Iterable[Path]) -> str:
    """A problem when an xtune cache in `root` is older than the newest of `data_files`: xtune
    would train on what it cached from the data before, not on the data now there."""
    newest = max((p.stat().st_mtime for p in data_files if p.exists()), default=0.0)
    stale = [p for p in cache_files(root) if p.stat().st_mtime < newest]
    if not stale:
        return ""
    first = stale[0].relative_to(root).as_posix()
    return (
        f"{len(stale)} xtune cache files older than the data (first: {first}): xtune would read "
        f"them instead; remove {root / CACHES[0]} and {root / CACHES[1]}/"
    )
