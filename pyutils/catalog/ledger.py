"""`make ledger`: `$(OUT)/samples.parquet`, one row per sample of every prepared dataset.

    python -m pyutils.catalog.ledger --out OUT [--media-dir DIR] [--data DATA] [--annots ANNOTS]
        [--frames FRAMES] [--num-frm K] [--results OUT/preflight.jsonl] [--probe-cache FILE]
        [preflight's trainer settings: --video-fps ... --cutoff-len ... --template ...]

The rows are `make preflight`'s per-sample results (OUT/preflight.jsonl: the LLaMA-Factory
datasets of dataset_info.json, the AdaCLIP splits in ANNOTS, the CLIP sets in DATA), each joined
with what is known of its media: a video's probe from the probe cache (a video the cache lacks is
probed once and cached; none is opened when the cache holds it), a frame list's or frame
folder's frames. The schema is `SCHEMA` (docs/report.md, "The ledger"). The file is written
atomically, and not at all when its bytes would not change. The settings the rows were made
with are kept in the file's metadata (`settings_of`), so a ledger and a report can say them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pyutils.adaclip.frames_check import NUM_FRM
from pyutils.adaclip.splits import RECIPES
from pyutils.catalog import preflight
from pyutils.catalog.datasets import DATASETS
from pyutils.core.atomic import write_if_changed
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.parallel import AUTO, ParallelOptions
from pyutils.core.report import log
from pyutils.llamafactory.dataset_info import resolve_media
from pyutils.llamafactory.trainer_args import add_budget_options, budget_from, number
from pyutils.video.probe_cache import ProbeCache, default_cache_path, probe_videos

LEDGER_NAME = "samples.parquet"
METADATA_KEY = b"vlprep"
FINE = "fine"
LLAMAFACTORY, ADACLIP, CLIP = "llamafactory", "adaclip", "clip"

# Fixed column types: every reader (pandas, polars, duckdb, datasets) sees the same schema
# whatever rows a run has, nulls included.
SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("split", pa.string()),
        ("trainer", pa.string()),
        ("index", pa.int64()),
        ("media", pa.string()),
        ("media_kind", pa.string()),
        ("found", pa.bool_()),
        ("duration", pa.float64()),
        ("fps", pa.float64()),
        ("frame_count", pa.int64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("codec", pa.string()),
        ("container", pa.string()),
        ("size_bytes", pa.int64()),
        ("frames_sampled", pa.int64()),
        ("video_tokens", pa.int64()),
        ("text_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("status", pa.string()),
        ("problems", pa.list_(pa.string())),
        ("frames_dir", pa.string()),
    ]
)
MEDIA_FACTS = ("duration", "fps", "frame_count", "width", "height", "codec", "container")


# ---- preflight's results --------------------------------------------------------------------


def read_results(path: Path) -> list[dict[str, Any]]:
    """The per-sample results `make preflight` wrote (`preflight.write_report`), in its order."""
    if not path.is_file():
        raise UserError(f"{path}: no preflight results; run make preflight (it writes the ledger)")
    results = []
    for line_number, line in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{line_number}"
        try:
            result = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"{where}:{exc.colno}: malformed JSON line") from None
        if not isinstance(result, dict) or "dataset" not in result or "problems" not in result:
            raise UserError(f"{where}: not a preflight result (rerun make preflight)")
        results.append(result)
    return results


def trainer_of(result: dict[str, Any]) -> str:
    """Whose loader a result replays, by the key that names its media (replay's `videos`,
    frames_check's `video`, preflight's CLIP `image`)."""
    if "videos" in result:
        return LLAMAFACTORY
    return ADACLIP if "video" in result else CLIP


def status_of(problems: list[str]) -> str:
    return preflight.kind(problems[0]) if problems else FINE


# ---- media facts ------------------------------------------------------------------------------


def _file_size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _folder_jpgs(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if e.name.endswith(".jpg") and not e.name.startswith(".")]
    except OSError:
        return []


def probed(paths: Iterable[str], cache: ProbeCache, jobs: int) -> dict[str, dict[str, Any]]:
    """Probe facts per path, from the cache where it holds them; a video that cannot be probed
    has none (its preflight problem says why)."""
    facts = {}
    for result in probe_videos(paths, cache, ParallelOptions(jobs, backend=AUTO)):
        if result.info is not None:
            info = result.info
            values = (
                info.duration,
                info.fps,
                info.frame_count,
                info.width,
                info.height,
                info.codec or None,
                info.container or None,
            )
            facts[result.path] = dict(zip(MEDIA_FACTS, values, strict=True))
    return facts


def _empty_row() -> dict[str, Any]:
    return dict.fromkeys(SCHEMA.names)


def located(video: str | list[str], media_dir: Path) -> dict[str, Any]:
    """A `videos` entry as LLaMA-Factory's `_find_medias` resolves it (a frame list: each frame;
    `media` its first), with its size on disk; as written when not found."""
    if isinstance(video, str):
        path, _ = resolve_media(video, media_dir)
        media = os.path.abspath(path) if path else video
        size = _file_size(path) if path else None
        return {
            "media": media,
            "media_kind": "video",
            "found": path is not None,
            "size_bytes": size,
        }
    found = [resolve_media(frame, media_dir)[0] for frame in video]
    head = os.path.abspath(found[0]) if found[0] else None
    return {
        "media": head or video[0],
        "media_kind": "frame_list",
        "found": all(found),
        "frame_count": len(video),
        "size_bytes": sum(_file_size(p) or 0 for p in found if p),
        "frames_dir": os.path.dirname(head) if head else None,
    }


def llamafactory_row(result: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
    """A sample: its first video's `located` facts (the ledger has one media per row; every
    video's problems are in `problems`), and preflight's frames and tokens."""
    row = {**_empty_row(), **media}
    for key in ("video_frames", "video_tokens", "text_tokens", "total_tokens"):
        row["frames_sampled" if key == "video_frames" else key] = result.get(key)
    return row


def adaclip_dataset(label: str) -> str:
    """The AdaCLIP dataset of a split label (`msrvtt-jsfusion/train` -> msrvtt)."""
    folder = label.split("/", 1)[0]
    return next((n for n, r in RECIPES.items() if r.output_folder == folder), folder)


def adaclip_row(result: dict[str, Any], frames: Path, num_frm: int) -> dict[str, Any]:
    row = _empty_row()
    folder = frames / result["video"]
    jpgs = _folder_jpgs(folder)
    count = result["video_frames"] or 0
    row.update(media=os.path.abspath(folder), media_kind="frame_folder", found=count > 0)
    row.update(frame_count=count, frames_sampled=num_frm if count else 0)
    row.update(size_bytes=sum(e.stat().st_size for e in jpgs) if jpgs else None)
    row["frames_dir"] = os.path.abspath(folder) if count else None
    return row


def clip_paths(name: str, data: Path) -> dict[int, str]:
    """Sample index -> the image path the CLIP loader opens, numbered as preflight numbers them."""
    paths, index = {}, 0
    dataset = DATASETS.get(name)
    if dataset is None:  # not a dataset of this vlprep: its images are not found
        return paths
    for _reference, path, problem in preflight.referenced_images(dataset, data / dataset.folder):
        if problem:
            continue
        if path is not None:
            paths[index] = os.path.abspath(path)
        index += 1
    return paths


def ledger_rows(
    results: list[dict[str, Any]], args: argparse.Namespace, cache: ProbeCache
) -> list[dict[str, Any]]:
    """One row per sample of `results` (dataset-level problems, without an index, are not
    samples: the report lists them apart)."""
    samples = [r for r in results if r.get("index") is not None]
    media_dir = args.media_dir or args.out
    clip_found: dict[str, dict[int, str]] = {}
    media: dict[str | tuple[str, ...], dict[str, Any]] = {}  # samples of one video share it
    rows = []
    for result in samples:
        trainer, name = trainer_of(result), result["dataset"]
        if trainer == LLAMAFACTORY:
            first = result["videos"][0] if result["videos"] else None
            key = first if isinstance(first, str) else tuple(first or ())
            if key not in media and first:
                media[key] = located(first, media_dir)
            row = llamafactory_row(result, media.get(key, {}))
        elif trainer == ADACLIP:
            # The frame folder and NUM_FRM `make preflight` checked the split against.
            dataset = adaclip_dataset(name)
            frames = Path(args.frames) if args.frames else args.data / dataset / "frames"
            chosen = number(args.num_frm, "NUM_FRM", "--num-frm", int) if args.num_frm else 0
            num_frm = chosen or NUM_FRM.get(dataset, 0)
            row = adaclip_row(result, frames, num_frm)
            name, row["split"] = name.split("/", 1)[0], name.split("/", 1)[-1]
        else:
            if name not in clip_found:
                clip_found[name] = clip_paths(name, args.data)
            path = clip_found[name].get(result["index"])
            row = _empty_row()
            row.update(media=path or result["image"], media_kind="image", found=path is not None)
            row["size_bytes"] = _file_size(path) if path else None
        row.update(dataset=name, trainer=trainer, index=result["index"])
        row.update(problems=list(result["problems"]), status=status_of(result["problems"]))
        rows.append(row)
    videos = [r["media"] for r in rows if r["media_kind"] == "video" and r["found"]]
    facts = probed(videos, cache, args.jobs) if videos else {}
    for row in rows:
        row.update(facts.get(row["media"], {}))
    return rows


# ---- the file -------------------------------------------------------------------------------


def settings_of(args: argparse.Namespace) -> dict[str, str]:
    """The settings the rows depend on, under their Make names (what the report shows); folders
    absolute, so the same folder compares equal from any working directory."""
    budget = budget_from(args)
    folder = lambda path: os.path.abspath(path) if str(path) else ""  # noqa: E731
    return {
        "OUT": folder(args.out),
        "MEDIA_DIR": folder(args.media_dir or args.out),
        "DATA": folder(args.data),
        "ANNOTS": folder(args.annots),
        "FRAMES": folder(args.frames),
        "NUM_FRM": args.num_frm,
        "VIDEO_FPS": f"{budget.video_fps:g}",
        "VIDEO_MAXLEN": str(budget.video_maxlen),
        "VIDEO_MAX_PIXELS": str(budget.video_max_pixels),
        "VIDEO_MIN_PIXELS": str(budget.video_min_pixels),
        "CUTOFF_LEN": str(budget.cutoff_len),
        "TEMPLATE": args.template,
    }


def ledger_bytes(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> bytes:
    schema = SCHEMA.with_metadata(
        {METADATA_KEY: orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)}
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def read_metadata(path: Path) -> dict[str, Any]:
    schema = pq.read_schema(path)
    return orjson.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))


def check_settings(path: Path, settings: dict[str, str], digest: str) -> None:
    """Refuse settings other than those the ledger's rows were made with, for the same preflight
    results: the token figures and problems are preflight's, made under its settings."""
    try:
        before = read_metadata(path)
    except (OSError, pa.ArrowException, orjson.JSONDecodeError):
        return  # no ledger yet, or an unreadable one: nothing to compare, it is rewritten
    if before.get("results_sha256") != digest:
        return
    made = before.get("settings", {})
    for name, value in settings.items():
        if name in made and made[name] != value:
            raise UserError(
                f"{name}={value}: preflight ran with {name}={made[name]}, and its results are "
                f"unchanged; run make preflight {name}={value} first (it refreshes the ledger), "
                "or give preflight's settings"
            )


@dataclass(frozen=True)
class Ledger:
    """The ledger as written, and the preflight results it was made from."""

    path: Path
    rows: list[dict[str, Any]]
    metadata: dict[str, Any]
    results: list[dict[str, Any]]


def refresh(args: argparse.Namespace) -> Ledger:
    """Rebuild the ledger from preflight's results and the probe cache."""
    results_path = args.results or args.out / preflight.REPORT_NAME
    results = read_results(results_path)
    path = args.ledger or args.out / LEDGER_NAME
    digest = hashlib.sha256(results_path.read_bytes()).hexdigest()
    settings = settings_of(args)
    if not args.after_preflight:
        check_settings(path, settings, digest)
    rows = ledger_rows(results, args, ProbeCache(args.probe_cache or None))
    metadata = {"settings": settings, "results": str(results_path), "results_sha256": digest}
    metadata["dataset_problems"] = [
        {"dataset": r["dataset"], "problems": r["problems"]}
        for r in results
        if r.get("index") is None
    ]
    if write_if_changed(path, ledger_bytes(rows, metadata), "OUT"):
        log(f"ledger: {len(rows):,} samples written to {path}")
    else:
        log(f"ledger: {path} unchanged ({len(rows):,} samples)")
    return Ledger(path, rows, metadata, results)


def add_ledger_options(parser: argparse.ArgumentParser) -> None:
    """What the ledger is made from; the trainer settings are preflight's (the same Make
    variables, so the ledger says the settings its token figures were made with)."""
    parser.add_argument("--out", type=Path, default=Path("data"), help="OUT")
    parser.add_argument("--media-dir", type=Path, help="MEDIA_DIR (default OUT)")
    parser.add_argument("--data", type=Path, default=Path("datasets"), help="DATA")
    parser.add_argument("--annots", type=Path, default=Path("annots"), help="ANNOTS")
    parser.add_argument("--frames", default="", help="FRAMES (default DATA/<dataset>/frames)")
    parser.add_argument("--num-frm", default="", help="NUM_FRM (default AdaCLIP's)")
    add_budget_options(parser)
    parser.add_argument("--template", default="qwen2_vl", help="TEMPLATE")
    parser.add_argument(
        "--results", type=Path, help="preflight results (default OUT/preflight.jsonl)"
    )
    parser.add_argument("--ledger", type=Path, help=f"the ledger (default OUT/{LEDGER_NAME})")
    parser.add_argument("--probe-cache", default=str(default_cache_path()), help="probe cache file")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--after-preflight",
        action="store_true",
        help="the settings are those preflight has just run with (make preflight)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pyutils.catalog.ledger", description=__doc__, same_names=True)
    add_ledger_options(parser)
    refresh(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
