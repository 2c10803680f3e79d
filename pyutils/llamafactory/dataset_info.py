"""LLaMA-Factory's `dataset_info.json`: register our datasets without disturbing anyone else's.

Existing entries keep their content and their order; ours are updated in place or appended. The
file is rewritten in the formatting it already uses (recognised by re-serialising it), and not at
all when nothing changes, so a second run leaves it byte for byte as it was. Every sharegpt video
file is validated before it is registered: one `<video>` token per video, every video on disk.
Concurrent registrations (two `make activitynet_qa` into one OUT) take turns under an flock, so
none loses another's entries; a symlinked dataset_info.json is updated through the link.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.atomic import (
    atomic_write_bytes,
    check_writable_folder,
    exclusive_lock,
    remove_stale_temporaries,
    write_target,
)
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import read_json, write_json
from pyutils.core.report import log

INFO_NAME = "dataset_info.json"
# The placeholders LLaMA-Factory counts in every message (extras/constants.py: IMAGE_PLACEHOLDER,
# VIDEO_PLACEHOLDER, AUDIO_PLACEHOLDER; `MMPluginMixin._validate_messages` raises unless each
# occurs as often as the sample has images, videos, audios), by the column that holds the media.
VIDEO_TOKEN = "<video>"
PLACEHOLDERS = {"images": "<image>", "videos": VIDEO_TOKEN, "audios": "<audio>"}

# The entries of the seed layout whose data files start out empty lists.
SEED_ENTRIES = {"caltech101": "caltech101.json", "ActivityNet": "ActivityNet.json"}

SHAREGPT_VIDEO = {
    "formatting": "sharegpt",
    "columns": {"messages": "messages", "videos": "videos"},
    "tags": {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
    },
}

Formatter = Callable[[Any], bytes]

# Ways a dataset_info.json is commonly written (LLaMA-Factory's own is the first); a file that
# none of them reproduces is rewritten in the first.
FORMATTERS: list[Formatter] = [
    lambda obj: orjson.dumps(obj, option=orjson.OPT_INDENT_2),
    lambda obj: json.dumps(obj, indent=4, ensure_ascii=False).encode(),
    lambda obj: json.dumps(obj, indent=2).encode(),
    lambda obj: json.dumps(obj, indent=4).encode(),
    lambda obj: json.dumps(obj).encode(),
    orjson.dumps,
]


def sharegpt_video_entry(file_name: str) -> dict[str, Any]:
    return {"file_name": file_name, **SHAREGPT_VIDEO}


def file_name_in(folder: Path, data_file: Path) -> str:
    """How LLaMA-Factory's dataset_dir `folder` should name `data_file`: relative when inside."""
    try:
        return data_file.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(data_file.resolve())


def media_path(video: str | os.PathLike[str], media_dir: Path) -> str:
    """How a sharegpt file names `video` so that LLaMA-Factory finds it from any working
    directory: relative to `media_dir` (`..` where the video lies outside it), POSIX style."""
    relative = os.path.relpath(os.path.abspath(video), os.path.abspath(media_dir))
    return Path(relative).as_posix()


def resolve_media(video: str, media_dir: Path) -> tuple[str | None, bool]:
    """Where LLaMA-Factory's converter (`DatasetConverter._find_medias`) finds `video`:
    `os.path.join(media_dir, video)` if that is a file, else `video` as written, which a
    relative path makes relative to the trainer's working directory. Returns (path, portable):
    portable is False when only the working-directory fallback found it."""
    joined = os.path.join(media_dir, video)
    if os.path.isfile(joined):
        return joined, True
    if os.path.isfile(video):
        return video, False
    return None, False


def validate_sharegpt_video(path: Path, media_dir: Path) -> int:
    """Check a sharegpt video file as LLaMA-Factory will read it; return its record count.

    Videos (and the frames of a video given as a list of frames) are looked up as LLaMA-Factory
    does, under `media_dir` (absolute paths as written).
    One found only relative to the current folder is an error: LLaMA-Factory would find it only
    when started from this same folder.
    """
    records = read_json(path)
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of records, found {type(records).__name__}")
    validate_records(records, str(path), media_dir)
    return len(records)


def placeholder_mismatch(contents: list[str], media: dict[str, int]) -> str:
    """Why `_validate_messages` raises on messages with these `contents` and `media` (how many
    images, videos, audios the sample has; absent: none), "" when it does not."""
    for column, placeholder in PLACEHOLDERS.items():
        written = sum(content.count(placeholder) for content in contents)
        if written != media.get(column, 0):
            return (
                f"{written} {placeholder} placeholder(s) but {media.get(column, 0)} {column}: "
                "LLaMA-Factory's _validate_messages raises"
            )
    return ""


def validate_records(records: list[Any], where_from: str, media_dir: Path) -> None:
    """`validate_sharegpt_video` on records in memory (`where_from` names them in errors), so a
    stage checks what it is about to write before it writes it."""
    found: set[str] = set()  # records share videos, and so frames: each is looked up once
    for index, record in enumerate(records):
        where = f"{where_from}: record {index}"
        messages = record.get("messages") if isinstance(record, dict) else None
        videos = record.get("videos") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not isinstance(videos, list):
            raise UserError(f"{where}: expected an object with lists 'messages' and 'videos'")
        contents = [str(m.get("content", "")) if isinstance(m, dict) else "" for m in messages]
        mismatch = placeholder_mismatch(contents, {"videos": len(videos)})
        if mismatch:
            raise UserError(f"{where}: {mismatch}")
        for video in videos:
            if isinstance(video, list):  # a video given as its frames: each one must be found
                if not video:
                    raise UserError(f"{where}: an empty list of frames")
                for frame in video:
                    _check_found(str(frame), media_dir, where, "frame", found)
            else:
                _check_found(str(video), media_dir, where, "video", found)


def _check_found(media: str, media_dir: Path, where: str, what: str, found: set[str]) -> None:
    if media in found:
        return
    path, portable = resolve_media(media, media_dir)
    if path is None:
        raise UserError(f"{where}: {what} not found: {media} (nor under {media_dir})")
    if not portable:
        raise UserError(
            f"{where}: {what} {media} is not under media_dir {media_dir}, only under the "
            "current folder: LLaMA-Factory would find it only when started here; write "
            "it relative to media_dir (MEDIA_DIR=, --media-dir)"
        )
    found.add(media)


def _formatter_of(original: bytes, data: Any) -> Formatter:
    body = original.removesuffix(b"\n")
    for formatter in FORMATTERS:
        if formatter(data) == body:
            return formatter
    log(f"{INFO_NAME}: formatting not recognised; rewriting it with 2-space indentation")
    return FORMATTERS[0]


def check_registrable(folder: Path, variable: str = "OUT") -> None:
    """Refuse before any work, in one line, a `folder/dataset_info.json` that cannot be
    updated: a folder of that name, a link to nothing (following it would create folders outside
    OUT), a read-only file, or a file in a folder that cannot be written (the update is a new
    file renamed over it, in the folder of the file a link points to)."""
    info = folder / INFO_NAME
    where = f"{variable}={folder}: {info}"
    if info.is_symlink() and not info.exists():
        raise UserError(
            f"{where} is a link to {os.readlink(info)}, which does not exist; remove the link, "
            "or point it at LLaMA-Factory's data/dataset_info.json"
        )
    if info.is_dir():
        raise UserError(f"{where} is a folder, not LLaMA-Factory's file; move it away")
    target = write_target(info)
    if target.exists() and not os.access(target, os.W_OK):
        link = " (through its link)" if target != info else ""
        raise UserError(
            f"{where}{link} is read-only; make it writable, or set {variable}= elsewhere"
        )
    linked = f"{where} (a link into {target.parent})" if target != info else None
    check_writable_folder(target.parent, variable, linked)


def merge_dataset_info(info_path: Path, entries: dict[str, dict[str, Any]]) -> bool:
    """Add or update `entries` in `info_path`, keeping all others; return whether it changed."""
    remove_stale_temporaries(info_path.parent)
    # Beside the file actually written, so that two OUT folders linking one file also take turns.
    target = write_target(info_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.with_name(f".{target.name}.lock")):
        return _merge(info_path, entries)


def read_dataset_info(info_path: Path) -> dict[str, Any] | None:
    """The datasets an existing `dataset_info.json` declares (None when there is none yet); a
    malformed one is a UserError. A stage that registers its output calls this before it writes
    anything, so that a file it could not merge into stops it while nothing is written."""
    if not info_path.exists():
        return None
    existing = read_json(info_path)
    if not isinstance(existing, dict):
        raise UserError(f"{info_path}: expected a JSON object of datasets, found a list or value")
    return existing


def _merge(info_path: Path, entries: dict[str, dict[str, Any]]) -> bool:
    existing = read_dataset_info(info_path)
    if existing is None:
        write_json(info_path, entries)
        return True
    original = info_path.read_bytes()
    merged = {**existing, **entries}  # updated keys keep their place; new ones go last
    if merged == existing:
        return False
    formatter = _formatter_of(original, existing)
    ending = b"\n" if original.endswith(b"\n") else b""
    atomic_write_bytes(info_path, formatter(merged) + ending)
    return True


def register(
    folder: Path, data_files: list[Path], media_dir: Path | None = None, seed: bool = False
) -> dict[str, dict[str, Any]]:
    """Validate `data_files` and merge their entries (and the seed ones) into folder's info."""
    entries: dict[str, dict[str, Any]] = {}
    if seed:
        for name, file_name in SEED_ENTRIES.items():
            if not (folder / file_name).exists():
                write_json(folder / file_name, [])
            entries[name] = {"file_name": file_name}
    for data_file in data_files:
        count = validate_sharegpt_video(data_file, media_dir or folder)
        entries[data_file.stem] = sharegpt_video_entry(file_name_in(folder, data_file))
        log(f"{data_file}: {count} records valid (placeholders match videos, all found)")
    info_path = folder / INFO_NAME
    changed = merge_dataset_info(info_path, entries)
    log(f"{info_path}: {'updated' if changed else 'unchanged'} ({', '.join(entries)})")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        make_names={"dir": "OUT", "media_dir": "MEDIA_DIR"},
        prog="python -m pyutils.llamafactory.dataset_info",
        description="Register sharegpt video datasets in LLaMA-Factory's dataset_info.json, "
        "keeping every existing entry and its order; a rerun changes nothing.",
    )
    parser.add_argument("files", nargs="*", type=Path, help="sharegpt video JSON files to add")
    parser.add_argument("--dir", type=Path, default=Path("data"), help="LLaMA-Factory data folder")
    parser.add_argument(
        "--media-dir", type=Path, help="where relative video paths are resolved (default: --dir)"
    )
    parser.add_argument(
        "--seed-entries",
        action="store_true",
        help="also add caltech101 and ActivityNet, creating their empty JSON lists if absent",
    )
    args = parser.parse_args(argv)
    if not args.files and not args.seed_entries:
        parser.error("nothing to register: give sharegpt JSON files and/or --seed-entries")
    check_writable_folder(args.dir, "OUT")
    check_registrable(args.dir)
    args.dir.mkdir(parents=True, exist_ok=True)
    register(args.dir, args.files, args.media_dir, args.seed_entries)
    return 0


if __name__ == "__main__":
    run_cli(main)
