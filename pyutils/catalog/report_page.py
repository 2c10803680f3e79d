"""`make report`: `$(OUT)/report.html`, one static page that shows what vlprep prepared.

    python -m pyutils.catalog.report_page --out OUT [--report FILE] [--per-dataset 4]
        [the ledger's options: --media-dir --data --annots --frames --num-frm, preflight's
         trainer settings]

Refreshes the ledger (`pyutils.catalog.ledger`: preflight's results and the probe cache), then
renders from it, `make check`'s rows and the stages' failure lists: per dataset its counts and
size, duration and token histograms (CUTOFF_LEN marked), problems by kind with examples, the
failed samples, and a strip of the frames the trainer samples for a few videos. Everything is
inline (SVG charts, base64 JPEG thumbnails, one style element): the page opens from the file,
offline, in any browser, and loads nothing. It is rewritten only when its bytes change.
"""

from __future__ import annotations

import argparse
import base64
import datetime
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2
import orjson

from pyutils.adaclip.frames_check import IMG_TMPL, uniform_indices
from pyutils.catalog import ledger, preflight
from pyutils.catalog.charts import histogram_svg
from pyutils.catalog.check import check, human_size
from pyutils.catalog.layout import MISSING
from pyutils.core.atomic import write_if_changed
from pyutils.core.cli import Parser
from pyutils.core.errors import run_cli
from pyutils.core.report import log
from pyutils.llamafactory.dataset_info import resolve_media
from pyutils.llamafactory.qwen_video import Budget, sample_indices
from pyutils.llamafactory.trainer_args import budget_from
from pyutils.video.contact_sheet import spread
from pyutils.video.thumbnail import jpeg_thumbnail, video_thumbnails

REPORT_NAME = "report.html"
TEMPLATE = Path(__file__).with_name("report_page.html.j2")
THUMB_HEIGHT = 64
STRIP = 8  # frames shown per video
LISTED = 25  # failed samples listed per dataset, examples per problem kind: 3
EXAMPLES = 3


def trainer_thumbnails(
    row: dict[str, Any], budget: Budget, frame_list: list[str | None]
) -> tuple[int, list[bytes]]:
    """(frames the trainer reads, thumbnails of up to STRIP of them) for a row: a frame list's
    frames (pre-sampled: all of them, in order), an AdaCLIP folder's uniform picks
    (`BaseDataset.sample_images`, eval mode), a video's sampled frames (a fine video's probe
    figures are its header's, which `_get_video_sample_indices` reads). `frame_list`: a frame
    list's frames as the trainer resolves them."""
    if row["media_kind"] == "video":
        picks = sample_indices(
            row["frame_count"], row["duration"], budget.video_fps, budget.video_maxlen
        )
        return len(picks), video_thumbnails(
            row["media"], spread(picks, min(STRIP, len(picks))), THUMB_HEIGHT
        )
    folder = Path(row["frames_dir"])
    if row["media_kind"] == "frame_folder":
        count, wanted = row["frame_count"] or 0, row["frames_sampled"] or 0
        picks = sorted(set(uniform_indices(count, wanted))) if count and wanted else []
        frames = [folder / IMG_TMPL.format(i + 1) for i in picks]
    else:
        frames = [Path(p) for p in frame_list if p]
    shown = spread(frames, min(STRIP, len(frames))) if frames else []
    thumbs = [jpeg_thumbnail(p, THUMB_HEIGHT) for p in shown]
    return len(frames), [t for t in thumbs if t]


def strips(
    rows: list[dict[str, Any]], videos: int, budget: Budget, lists: FrameLists
) -> list[dict[str, Any]]:
    """Thumbnails of the trainer's frames for `videos` fine videos spread over the dataset."""
    shown_kinds = ("video", "frame_list", "frame_folder")
    usable = [r for r in rows if r["media_kind"] in shown_kinds and r["status"] == ledger.FINE]
    chosen = list({id(r): r for r in spread(usable, videos)}.values()) if usable else []
    shown = []
    for row in chosen[:videos]:
        count, thumbs = trainer_thumbnails(row, budget, lists.frames(row))
        if thumbs:
            split = f"{row['split']} " if row["split"] else ""
            label = f"{split}#{row['index']} {Path(row['media']).name}"
            uris = [f"data:image/jpeg;base64,{base64.b64encode(t).decode()}" for t in thumbs]
            shown.append({"label": label, "count": count, "thumbs": uris})
    return shown


class FrameLists:
    """The frame lists of preflight's LLaMA-Factory results, resolved as the trainer does."""

    def __init__(self, results: list[dict[str, Any]], media_dir: Path) -> None:
        self.media_dir = media_dir
        self.lists = {
            (r["dataset"], r["index"]): r["videos"][0]
            for r in results
            if r.get("videos") and isinstance(r["videos"][0], list)
        }

    def frames(self, row: dict[str, Any]) -> list[str | None]:
        written = self.lists.get((row["dataset"], row["index"]), [])
        return [resolve_media(frame, self.media_dir)[0] for frame in written]


def dataset_view(
    name: str, rows: list[dict[str, Any]], budget: Budget, videos: int, lists: FrameLists
) -> dict:
    cutoff = budget.cutoff_len
    kinds: Counter[str] = Counter(preflight.kind(p) for r in rows for p in r["problems"])
    failed = [r for r in rows if r["status"] != ledger.FINE]
    durations = [r["duration"] for r in rows if r["duration"] is not None]
    totals = [r["total_tokens"] for r in rows if r["total_tokens"] is not None]
    charts = []
    if durations:
        charts.append(histogram_svg(durations, f"{name}: video durations", "seconds"))
    if totals:
        charts.append(
            histogram_svg(
                totals, f"{name}: tokens per sample", "tokens", cutoff, f"CUTOFF_LEN {cutoff:,}"
            )
        )
    sizes = [r["size_bytes"] for r in rows if r["size_bytes"] is not None]
    return {
        "name": name,
        "trainer": rows[0]["trainer"],
        "samples": len(rows),
        "fine": len(rows) - len(failed),
        "failed": failed[:LISTED],
        "more_failed": max(0, len(failed) - LISTED),
        "kinds": sorted(kinds.items()),
        "size": human_size(sum(sizes)),
        "over": sum(t > cutoff for t in totals),
        "charts": charts,
        "strips": strips(rows, videos, budget, lists),
    }


def problem_kinds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for row in rows:
        for problem in row["problems"]:
            found[preflight.kind(problem)].append((row, problem))
    return [
        {"kind": kind, "count": len(items), "examples": items[:EXAMPLES]}
        for kind, items in sorted(found.items(), key=lambda item: -len(item[1]))
    ]


def failure_lists(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stages' `<stage>_failures.jsonl` in OUT and beside the frame folders in use."""
    folders = {out} | {Path(d).parent for d in {r["frames_dir"] for r in rows} if d}
    lists = []
    for path in sorted(p for folder in folders for p in folder.glob("*_failures.jsonl")):
        failures = [f for f in map(_json_line, path.read_bytes().splitlines()) if f]
        lists.append({"path": str(path), "count": len(failures), "failures": failures[:LISTED]})
    return lists


def _json_line(line: bytes) -> dict[str, Any] | None:
    """A failure record ({"item", "error"}), or None for a line that is not one."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def render(args: argparse.Namespace, made: ledger.Ledger) -> str:
    rows, metadata = made.rows, made.metadata
    settings = metadata["settings"]
    lists = FrameLists(made.results, args.media_dir or args.out)
    budget = budget_from(args)  # preflight's: the ledger refuses others for its results
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_dataset[row["dataset"]].append(row)
    on_disk = check([], args.data, args.annots)
    # When preflight made the results (the page's own time would rewrite it on every rerun).
    results_time = Path(metadata["results"]).stat().st_mtime
    built = datetime.datetime.fromtimestamp(results_time, datetime.UTC)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["number"] = lambda n: f"{n:,}"
    environment.filters["human_size"] = human_size
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        built=built.strftime("%Y-%m-%d %H:%M:%S UTC"),
        settings=settings,
        samples=len(rows),
        datasets=[
            dataset_view(n, r, budget, args.per_dataset, lists) for n, r in by_dataset.items()
        ],
        kinds=problem_kinds(rows),
        dataset_problems=metadata["dataset_problems"],
        present=[r for r in on_disk if r["status"] != MISSING],
        absent=[r["dataset"] for r in on_disk if r["status"] == MISSING],
        failure_lists=failure_lists(args.out, rows),
        ledger_path=str(made.path),
    )


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.catalog.report_page", description=__doc__, same_names=True
    )
    ledger.add_ledger_options(parser)
    parser.add_argument("--report", type=Path, help=f"the page (REPORT; default OUT/{REPORT_NAME})")
    parser.add_argument("--per-dataset", type=int, default=4, help="videos shown per dataset")
    args = parser.parse_args(argv)
    made = ledger.refresh(args)
    path = args.report or args.out / REPORT_NAME
    written = write_if_changed(path, render(args, made).encode(), "REPORT")
    log(f"report: {path}" + ("" if written else " (unchanged)"))
    return 0


if __name__ == "__main__":
    run_cli(main)
