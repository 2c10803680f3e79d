"""`make demo`: build a small generated sample and run every vlprep stage on it, end to end.

Each stage adds one row to the summary table; a stage that fails makes the demo exit non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from rich.table import Table

from pyutils.adaclip.splits import RECIPES, generate
from pyutils.catalog import ledger, preflight, report_page
from pyutils.catalog.check import human_size
from pyutils.catalog.datasets import DATASETS, inspect
from pyutils.catalog.prepare import prepare
from pyutils.core.errors import UserError, run_cli
from pyutils.core.media import describe_ffmpeg, probe
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import failure_list, stdout_console
from pyutils.devtools.local_server import LocalServer
from pyutils.devtools.sample import (
    DEMO_VIDEOS,
    build_caltech_archive,
    build_demo_sample,
    make_video,
)
from pyutils.llamafactory import activitynet_qa, dataset_info, fit, replay
from pyutils.llamafactory.qwen_video import Budget, VisionConfig
from pyutils.video import frames, manifest
from pyutils.video.contact_sheet import write_contact_sheet
from pyutils.video.frame_extract import extract_video
from pyutils.video.frame_plan import FrameOptions, FrameTask
from pyutils.video.transcode import transcode_all


def probe_sample(root: Path, table: Table) -> None:
    for name, seconds in DEMO_VIDEOS:
        info = probe(root / "videos" / name)
        hostile = " (a name with quotes and $(...): text, never run)" if "$(" in name else ""
        table.add_row(
            "probe",
            name + hostile,
            f"{info.duration:.2f} s (generated {seconds:.2f} s), {info.width}x{info.height}, "
            f"{info.fps:g} fps, {info.frame_count} frames",
        )


def adaclip_splits(root: Path, table: Table) -> None:
    """AdaCLIP splits from the demo's tiny MSRVTT, DiDeMo and ActivityNet annotation sets."""
    video_folders = {"msrvtt": "videos", "didemo": "didemo/videos", "activitynet": "videos"}
    for dataset, videos in video_folders.items():
        output = root / "annots" / RECIPES[dataset].output_folder
        for split in generate(dataset, root / "annotations" / dataset, root / videos, output):
            missing = f", missing: {', '.join(split.missing)}" if split.missing else ""
            table.add_row(
                "annots",
                f"{RECIPES[dataset].output_folder}/{split.name}.json",
                f"{len(split.entries)} videos{missing}",
            )


def activitynet_qa_sample(root: Path, table: Table) -> None:
    """QA JSON with a 2.5 s threshold (keeps demoA 3 s and demoB 4.5 s, drops demoC 2 s)."""
    out, report = root / "data", root / "data" / "activitynet_qa.report.jsonl"
    status = activitynet_qa.main(
        [*("-name", "val_q", "-type", "val", "-n", "10", "-seconds", "2.5", "--jobs", "1")]
        + [*("--qa-dir", str(root / "annotations" / "activitynet-qa"), "--out", str(out))]
        + [*("--videos", str(root / "videos"), "--report", str(report), "--register")]
        + ["--probe-cache", str(root / "probe-cache.json"), "--presample"]
    )
    if status:
        raise UserError(f"activitynet_qa failed on the demo sample (exit {status})")
    outcomes = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    for outcome in outcomes:
        duration = f" ({outcome['duration']:.2f} s)" if outcome["duration"] else ""
        table.add_row("activitynet_qa", outcome["question_id"], outcome["status"] + duration)
    kept = sum(outcome["status"] == "kept" for outcome in outcomes)
    written = activitynet_qa.output_name("val", 10, 2.5)
    table.add_row("activitynet_qa", written, f"{kept} of {len(outcomes)} questions written")
    presampled = activitynet_qa.presampled_name(out / written)
    for record in orjson.loads(presampled.read_bytes()):
        frames_list = record["videos"][0]
        table.add_row(
            "presample",
            frames_list[0].rpartition("/")[0],
            f"{len(frames_list)} frames as LLaMA-Factory samples and resizes them",
        )
    dataset_info.register(out, [], seed=True)
    info = orjson.loads((out / dataset_info.INFO_NAME).read_bytes())
    table.add_row("dataset_info", str(out / dataset_info.INFO_NAME), f"{len(info)} entries")


def preflight_sample(root: Path, table: Table) -> None:
    """`make preflight` on the QA file just written: what LLaMA-Factory/Qwen2-VL will make of
    each sample with its default settings (the mkv has been remuxed, so it reads as intended)."""
    run = replay.Replay(
        Budget(), VisionConfig(), replay.TEMPLATES["qwen2_vl"], media_dir=root / "data"
    )
    datasets, _, _ = replay.declared_datasets(root / "data", [])
    priced: list[replay.Priced] = []
    for dataset in datasets:
        for result in replay.replay_dataset(dataset, run, priced):
            problems = "; ".join(p.split(":", 1)[0] for p in result["problems"]) or "fits"
            table.add_row(
                "preflight",
                f"{dataset.name} #{result['index']}",
                f"{result['video_frames']} frames {result['frame_size']}, "
                f"{result['video_tokens']} video + {result['text_tokens']} text tokens: {problems}",
            )
    # The fit preflight prescribes when samples are over budget, here under a CUTOFF_LEN of 256.
    tight = replace(run, budget=Budget(cutoff_len=256))
    found = fit.search(priced, tight, 1.0, "frames")
    table.add_row("preflight fit", "CUTOFF_LEN=256", fit.describe(found, 1.0, "frames")[-1])


# DiDeMo-style originals: odd containers, and a bare-dot name whose format only its bytes tell.
DIDEMO_ORIGINALS = [
    ("10015567@N08_3655084291_d8b58466fa.mov", 2.0, None),
    ("video 'odd' $(touch pwned).avi", 1.5, None),
    ("10052357@N03_7585070382_5762149bfc.", 1.0, "mp4"),
]


def transcode_didemo(root: Path, table: Table) -> None:
    source, dest = root / "didemo-mp4" / "originals", root / "didemo-mp4" / "videos"
    for name, seconds, container in DIDEMO_ORIGINALS:
        if not (source / name).exists():
            make_video(source / name, seconds, container=container)
    if transcode_all(source, dest, ParallelOptions(jobs=2)):
        raise UserError(f"didemo-mp4 failed on the demo sample: see {dest}")
    for name, seconds, _ in DIDEMO_ORIGINALS:
        info = probe(dest / f"{name}.mp4")
        table.add_row("didemo-mp4", f"{name}.mp4", f"{info.duration:.2f} s (original {seconds} s)")


def contact_sheet(root: Path, table: Table) -> None:
    """A PNG grid of the 8 uniform frames that the frames stage extracted, one row per video."""
    sheet = root / "frames" / "contact_sheet.png"
    stems = write_contact_sheet(root / "frames" / "8-frames", sheet, columns=8)
    table.add_row("contact-sheet", str(sheet), f"{len(stems)} videos x 8 frames")


def download_caltech101(root: Path, table: Table) -> None:
    """The real download path (fetch.sh, verify, extract, place, check) against a local server
    serving a Caltech101-shaped archive built from the demo images."""
    archive = build_caltech_archive(
        root / "images", root / "served" / "101_ObjectCategories.tar.gz"
    )
    split = root / "annotations" / "caltech101" / "split_zhou_Caltech101.json"
    data = root / "datasets"
    shutil.rmtree(data, ignore_errors=True)  # the stage shows a first download every time
    served = {"101_ObjectCategories.tar.gz": archive.read_bytes(), "split.json": split.read_bytes()}
    with LocalServer(served, cut={"101_ObjectCategories.tar.gz"}) as server:
        overrides = {
            "CALTECH101_URL": server.url("101_ObjectCategories.tar.gz"),
            "CALTECH101_SHA256": hashlib.sha256(served["101_ObjectCategories.tar.gz"]).hexdigest(),
            "CALTECH101_SPLIT_URL": server.url("split.json"),
            "CALTECH101_SPLIT_SHA256": "none",
        }
        if prepare(DATASETS["caltech101"], data, overrides) != 0:
            raise UserError("demo: make caltech101 against the local server failed (see above)")
        resumed = server.ranges_seen("101_ObjectCategories.tar.gz")
    table.add_row(
        "download",
        "101_ObjectCategories.tar.gz",
        f"{archive.stat().st_size:,} bytes, cut half-way and resumed ({', '.join(resumed)}), "
        "sha256 verified",
    )
    found = inspect(DATASETS["caltech101"], data)
    table.add_row(
        "check",
        "caltech101",
        f"{found.status}: {found.files} files, {human_size(found.size)} in {data / 'caltech-101'}",
    )


def extract_frames(root: Path, table: Table) -> None:
    """Every frame at native rate, then AdaCLIP's 8 uniform frames, each into its own folder."""
    for label, options in (("native", []), ("8 frames", ["--num-frames", "8"])):
        out = root / "frames" / label.replace(" ", "-")
        if frames.main([str(root / "videos"), str(out), *options]) != 0:
            raise UserError(f"frames ({label}) failed: see {failure_list('frames', out)}")
        for stem, record in sorted(manifest.read_manifest(out / manifest.MANIFEST).items()):
            table.add_row(
                f"frames ({label})", stem, f"{record['frames']} frames ({record['method']})"
            )


def fps_in_parts(root: Path, table: Table) -> None:
    """`--fps` on a 12 s video with one job: given the machine's cores, the video is cut at
    keyframes into parts decoded side by side (`fps_parts`; one pass on one core), and its frames
    are byte for byte those of one single-threaded pass."""
    video = make_video(root / "long" / "long_demo.mp4", 12, 160, 120, gop=50)
    out = root / "frames" / "fps-5"
    if frames.main([str(video.parent), str(out), "--fps", "5", "--jobs", "1"]) != 0:
        raise UserError(f"frames (5 fps) failed: see {failure_list('frames', out)}")
    record = manifest.read_manifest(out / manifest.MANIFEST)[video.stem]
    options = FrameOptions("5", None, None, 2, "image_%05d.jpg")
    one_pass = root / "frames" / "fps-5-one-pass"
    extract_video(FrameTask(video.stem, str(video), str(one_pass), options, threads=1))
    if _digests(out / video.stem) != _digests(one_pass):
        raise UserError(f"{out / video.stem}: frames differ from one pass's ({one_pass})")
    said = f"{record['frames']} frames ({record['method']}), the bytes of one pass"
    table.add_row("frames (5 fps)", video.name, said)


def report_sample(root: Path, table: Table) -> None:
    """`make preflight` then `make report` on the demo's outputs: its LLaMA-Factory datasets, the
    MSRVTT split against the 8-frame folders (NUM_FRM 8) and caltech101, as one page."""
    where = ["--out", str(root / "data"), "--data", str(root / "datasets")]
    where += ["--annots", str(root / "annots"), "--frames", str(root / "frames" / "8-frames")]
    where += ["--num-frm", "8", "--jobs", "2"]
    if preflight.main([*where, "--dataset", "msrvtt"]) > 1:
        raise UserError("demo: make preflight failed on the demo sample (see above)")
    cache = ["--probe-cache", str(root / "probe-cache.json"), "--after-preflight"]
    report_page.main([*where, *cache])
    page = root / "data" / report_page.REPORT_NAME
    rows = pq.read_metadata(root / "data" / ledger.LEDGER_NAME).num_rows
    table.add_row(
        "report", str(page), f"{rows} samples in the ledger, {human_size(page.stat().st_size)}"
    )


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# Each stage and, in one line, what it shows.
STAGES = [
    (probe_sample, "PyAV reads mp4, mkv and webm durations in-process, no ffprobe"),
    (download_caltech101, "a download cut half-way resumes, verifies, extracts and checks"),
    (extract_frames, "frames land atomically in AdaCLIP's layout, every frame or 8 uniform"),
    (fps_in_parts, "--fps with cores to spare: parts at keyframes side by side, one pass's bytes"),
    (contact_sheet, "a contact sheet shows AdaCLIP's 8 picks per video, rows labelled"),
    (adaclip_splits, "AdaCLIP splits list the videos present and set aside the missing"),
    (activitynet_qa_sample, "ActivityNet-QA becomes sharegpt JSON, plus pre-sampled frame lists"),
    (preflight_sample, "preflight replays LLaMA-Factory's sampling and token count per sample"),
    (transcode_didemo, "DiDeMo originals (mov, avi, no extension) become H.264 mp4"),
    (report_sample, "the ledger and one offline page of counts, histograms and sampled frames"),
]

README = """\
# vlprep demo

Made by `make demo` from generated videos (no download); safe to delete (`make clean`).

- `videos/`: the generated sample, including a file named `video 'odd' $(touch pwned).mp4`:
  every stage must treat quotes and `$(...)` in names as text (nothing is ever run through a
  shell), so no file `pwned` may appear anywhere.
- `datasets/`: a `DATA` root, as `make caltech101 DATA=...` leaves it (downloads/, caltech-101/).
- `data/`: an `OUT` folder for LLaMA-Factory: the QA JSON, `dataset_info.json`, MP4 remuxes;
  preflight's results, the ledger (`samples.parquet`) and the report page (`report.html`).
- `frames/`: `make frames` outputs (every frame; 8 uniform frames; 5 per second of `long/`,
  beside one single-threaded pass of it) and `contact_sheet.png`.
- `annots/`: AdaCLIP splits; `annotations/`: the tiny annotation files they are made from.
- `didemo-mp4/`: DiDeMo-style originals and their H.264 transcodes.
"""


@contextmanager
def captured(verbose: bool) -> Iterator[None]:
    """The tools' own output (wget logs, progress, summaries) goes to a file unless `verbose`,
    and is shown only when the stage fails. Descriptors, not sys.stdout: child processes too."""
    if verbose:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        _restore(saved)


def _restore(saved: list[int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for target, descriptor in enumerate(saved, start=1):
        os.dup2(descriptor, target)
        os.close(descriptor)
    saved.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.devtools.demo", description=__doc__)
    parser.add_argument("--dir", default="demo", help="where the sample and outputs go")
    parser.add_argument("--verbose", action="store_true", help="show the tools' own logs (V=1)")
    args = parser.parse_args(argv)
    console = stdout_console()
    console.print(f"{describe_ffmpeg()}; probing in-process with PyAV: no ffprobe")
    root = build_demo_sample(Path(args.dir))
    (root / "README.md").write_text(README, encoding="utf-8")
    table = Table(title=f"vlprep demo ({root}; what is where: {root / 'README.md'})")
    for column in ("stage", "item", "result"):
        table.add_column(column)
    for stage, shows in STAGES:
        with captured(args.verbose):
            stage(root, table)
        console.print(f"ok  {stage.__name__}: {shows}")
    console.print(table)
    console.print(f"report: {root / 'data' / report_page.REPORT_NAME}")
    pwned = [str(p) for p in root.rglob("pwned")]
    if pwned:
        raise UserError(f"a file name was run as a command: {pwned[0]}")
    return 0


if __name__ == "__main__":
    run_cli(main)
