"""AdaCLIP split generation: MSRVTT, DiDeMo and ActivityNet annotations -> AdaCLIP's JSON splits.

The output is what SamsungLabs/AdaCLIP's `annot_preprocess/*.py` write (Python's `json.dump(obj, f)`
with default separators, keys in the order the annotations meet each video), so with the paper's
videos on disk the files equal the paper's byte for byte. What differs is speed (sets and dicts
instead of list membership and pandas row look-ups), errors (file, line, key), atomic writes, and
missing videos: listed once in `missing_<split>.txt`, never written with an empty extension.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyutils.core.atomic import atomic_write_text, remove_stale_temporaries
from pyutils.core.errors import UserError
from pyutils.core.jsonio import expect_keys, expect_type, read_json, read_text
from pyutils.core.report import log
from pyutils.core.video_index import SPLIT_EXTENSIONS


class VideoFolder:
    """Answers "which extension does video X have here" from one listing of the folder.

    Present means what the reference's `os.path.isfile(join(folder, X + "." + ext))` means: a
    regular file (or a link to one), of any size, directly in the folder.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"{self.folder}: video folder not found; set VIDEOS= (--video_dir)")
        with os.scandir(self.folder) as entries:
            self.files = {entry.name for entry in entries if entry.is_file()}

    def extension(self, video_id: str) -> str:
        """The extension of `video_id`'s file, or "" when there is none."""
        # An id with a slash names a file below the folder: ask the file system, as the
        # reference does, rather than the top-level listing.
        nested = "/" in video_id
        for ext in SPLIT_EXTENSIONS:
            name = f"{video_id}.{ext}"
            if (self.folder / name).is_file() if nested else name in self.files:
                return ext
        return ""


@dataclass
class Split:
    """One output file: `entries` in AdaCLIP's format, and the ids whose video was not found."""

    name: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: dict[str, None] = field(default_factory=dict)  # an ordered set: one line per video

    def add(self, video_id: str, videos: VideoFolder, fields: dict[str, Any]) -> dict | None:
        """Enter `video_id` as {"extension", **fields}; None, and listed missing, without a file."""
        extension = videos.extension(video_id)
        if not extension:
            self.missing[video_id] = None
            return None
        entry = self.entries[video_id] = {"extension": extension, **fields}
        return entry


# ---- reading the published annotation files ---------------------------------------------------


def read_lines(path: Path) -> list[str]:
    return read_text(path).splitlines()


def read_csv_columns(path: Path, *columns: str) -> list[tuple[str, ...]]:
    """The named columns of a CSV file with a header, row by row; every row must be complete."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # a byte order mark is no text
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: empty file, expected a CSV header with {columns[0]!r}")
            for column in columns:
                if column not in header:
                    raise UserError(
                        f"{path}:1: missing column {column!r} (header: {','.join(header)})"
                    )
            indexes = [header.index(column) for column in columns]
            rows = []
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise UserError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields "
                        f"({','.join(header)}), found {len(row)}"
                    )
                rows.append(tuple(row[i] for i in indexes))
            return rows
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_json_of(path: Path, kind: type) -> Any:
    data = read_json(path)
    if not isinstance(data, kind):
        raise UserError(f"{path}: expected a JSON {kind.__name__}, found {type(data).__name__}")
    return data


# ---- the three datasets -------------------------------------------------------------------------


def msrvtt_splits(annot_dir: Path, videos: VideoFolder, names: list[str]) -> list[Split]:
    """Train: the 9k list, all captions. Val: JSFUSION, its one sentence. Order of `videos[]`."""
    data_path = annot_dir / "MSRVTT_data.json"
    data = read_json_of(data_path, dict)
    expect_keys(data, ("videos", "sentences"), str(data_path))
    for key in ("videos", "sentences"):
        expect_type(data[key], list, f"{data_path}: {key!r}")
    train_ids = set()
    if "train" in names:
        train_csv = annot_dir / "MSRVTT_train.9k.csv"
        train_ids = {video_id for (video_id,) in read_csv_columns(train_csv, "video_id")}
    val_order: list[str] = []
    first_sentence: dict[str, str] = {}
    if "val" in names:
        jsfusion = annot_dir / "MSRVTT_JSFUSION_test.csv"
        for video_id, sentence in read_csv_columns(jsfusion, "video_id", "sentence"):
            val_order.append(video_id)
            first_sentence.setdefault(video_id, sentence)
    train, val = Split("train"), Split("val")
    for index, record in enumerate(data["videos"]):
        where = f"{data_path}: videos[{index}]"
        expect_keys(record, ("video_id", "start time", "end time"), where)
        # An id of another type would match no CSV row and vanish from every split unnoticed.
        video_id = expect_type(record["video_id"], str, f"{where}: 'video_id'")
        # A video in both lists goes to train, as in the reference.
        split = train if video_id in train_ids else val if video_id in first_sentence else None
        if split is None:
            continue
        timestamps = [[record["start time"], record["end time"]]]
        split.add(video_id, videos, {"timestamps": timestamps, "sentences": []})
    for index, record in enumerate(data["sentences"]):
        where = f"{data_path}: sentences[{index}]"
        expect_keys(record, ("video_id", "caption"), where)
        entry = train.entries.get(expect_type(record["video_id"], str, f"{where}: 'video_id'"))
        if entry is not None:
            entry["sentences"].append(record["caption"])
    # The reference appends the first JSFUSION sentence once per CSV row of the video.
    for video_id in val_order:
        entry = val.entries.get(video_id)
        if entry is not None:
            entry["sentences"].append(first_sentence[video_id])
    return [split for split in (train, val) if split.name in names]


def didemo_split(annot_dir: Path, videos: VideoFolder, name: str) -> Split:
    """Annotations of listed videos whose file exists; sentences end in '.', in annotation order."""
    data_path = annot_dir / f"{name}_data.json"
    listed = set(read_lines(annot_dir / f"{name}_list.txt"))
    annotations = read_json_of(data_path, list)
    split = Split(name)
    for index, record in enumerate(annotations):
        where = f"{data_path}: [{index}]"
        expect_keys(record, ("video", "description"), where)
        video = expect_type(record["video"], str, f"{where}: 'video'")
        if video not in listed:
            continue
        entry = split.entries.get(video)
        if entry is None:
            if video in split.missing:
                continue
            entry = split.add(video, videos, {"sentences": []})
            if entry is None:
                continue
        description = expect_type(record["description"], str, f"{where}: 'description'")
        entry["sentences"].append(description if description.endswith(".") else description + ".")
    return split


def activitynet_split(annot_dir: Path, videos: VideoFolder, name: str) -> Split:
    """Per present video: sentences, timestamps and duration as published (leading spaces kept)."""
    data_path = annot_dir / ACTIVITYNET_SOURCES[name]
    annotations = read_json_of(data_path, dict)
    split = Split(name)
    for video_id, record in annotations.items():
        expect_keys(record, ("sentences", "timestamps", "duration"), f"{data_path}: {video_id}")
        fields = {key: record[key] for key in ("sentences", "timestamps", "duration")}
        split.add(video_id, videos, fields)
    return split


ACTIVITYNET_SOURCES = {"train": "train.json", "val": "val_1.json"}


@dataclass(frozen=True)
class SplitRecipe:
    """How AdaCLIP's splits of one dataset are made. The dataset catalogue's record of the dataset
    (pyutils/catalog/datasets.py) points here, so the split folder name lives only here."""

    output_folder: str  # under annots/, as AdaCLIP's configs name it
    inputs: dict[str, tuple[str, ...]]  # split -> the files it is made from, in the annot dir
    build: Callable[[Path, VideoFolder, list[str]], list[Split]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.inputs)


def _per_split(
    build_one: Callable[[Path, VideoFolder, str], Split],
) -> Callable[[Path, VideoFolder, list[str]], list[Split]]:
    return lambda annot_dir, videos, names: [build_one(annot_dir, videos, n) for n in names]


RECIPES = {
    "msrvtt": SplitRecipe(
        "msrvtt-jsfusion",
        {
            "train": ("MSRVTT_data.json", "MSRVTT_train.9k.csv"),
            "val": ("MSRVTT_data.json", "MSRVTT_JSFUSION_test.csv"),
        },
        msrvtt_splits,
    ),
    "didemo": SplitRecipe(
        "didemo",
        {s: (f"{s}_data.json", f"{s}_list.txt") for s in ("train", "val", "test")},
        _per_split(didemo_split),
    ),
    "activitynet": SplitRecipe(
        "activitynet",
        {s: (source,) for s, source in ACTIVITYNET_SOURCES.items()},
        _per_split(activitynet_split),
    ),
}


# ---- running and writing ------------------------------------------------------------------------


def present_splits(dataset: str, annot_dir: Path) -> list[str]:
    """The splits whose input files all exist; a warning names each absent one's missing files."""
    if not annot_dir.is_dir():
        raise UserError(f"{annot_dir}: annotation folder not found; set SRC= (--annot_dir)")
    names = []
    for name, files in RECIPES[dataset].inputs.items():
        absent = [f for f in files if not (annot_dir / f).is_file()]
        if absent:
            log(f"{dataset}: skipping split {name!r}: {', '.join(absent)} not in {annot_dir}")
        else:
            names.append(name)
    if not names:
        wanted = sorted({f for files in RECIPES[dataset].inputs.values() for f in files})
        raise UserError(
            f"{annot_dir}: no {dataset} annotation files found (expected {', '.join(wanted)})"
        )
    return names


def build_splits(dataset: str, annot_dir: Path, video_dir: Path) -> list[Split]:
    names = present_splits(dataset, annot_dir)
    return RECIPES[dataset].build(annot_dir, VideoFolder(video_dir), names)


def split_text(split: Split) -> str:
    """Exactly what the reference's `json.dump(obj, f)` writes (orjson cannot produce this)."""
    return json.dumps(split.entries)


def write_if_changed(path: Path, text: str) -> None:
    # Rewriting identical bytes would only touch the mtime; skipping keeps a rerun a no-op.
    if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
        atomic_write_text(path, text)


def write_split(split: Split, output_folder: Path) -> str:
    """Write `<split>.json` and `missing_<split>.txt` atomically; return a one-line summary."""
    target = output_folder / f"{split.name}.json"
    write_if_changed(target, split_text(split))
    missing_list = output_folder / f"missing_{split.name}.txt"
    summary = f"{target}: {len(split.entries)} videos"
    if split.missing:
        write_if_changed(missing_list, "".join(f"{video}\n" for video in split.missing))
        summary += f", {len(split.missing)} missing (listed in {missing_list})"
    else:
        missing_list.unlink(missing_ok=True)
    return summary


def generate(dataset: str, annot_dir: Path, video_dir: Path, output_folder: Path) -> list[Split]:
    splits = build_splits(dataset, annot_dir, video_dir)
    output_folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output_folder)
    for split in splits:
        log(write_split(split, output_folder))
    return splits


def cli(dataset: str) -> Callable[[list[str] | None], int]:
    """The `main(argv)` of `annot_preprocess/<dataset>_preprocess.py` (the reference's options)."""

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(
            prog=f"{dataset}_preprocess.py",
            description=f"Write AdaCLIP's {dataset} splits for the videos found in --video_dir.",
        )
        parser.add_argument("--video_dir", type=Path, required=True, help="downloaded videos")
        parser.add_argument("--annot_dir", type=Path, required=True, help="annotation files")
        parser.add_argument(
            "--output_folder",
            type=Path,
            default=Path("annots") / RECIPES[dataset].output_folder,
            help="where the split JSON files go (default: %(default)s)",
        )
        args = parser.parse_args(argv)
        generate(dataset, args.annot_dir, args.video_dir, args.output_folder)
        return 0

    return main
