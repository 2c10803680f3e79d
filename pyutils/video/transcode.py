"""`make didemo-mp4`: transcode every original video to `<original name>.mp4` (H.264, yuv420p).

The AdaCLIP DiDeMo splits key each video by its original file name (`x.mov`, `x.avi`, and names
ending in a bare `.` that carry no extension at all) and read `<original name>.mp4`. Inputs are
opened by content (ffmpeg probes the bytes, not the name), so an extensionless original works like
any other, and a file that is not a video fails with ffmpeg's own reason.

Each output is written under a temporary name in DEST and renamed when ffmpeg succeeded and the
result probes as a video; a rerun removes stale temporaries and skips finished outputs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from pyutils.core.atomic import atomic_file, is_temporary, remove_stale_temporaries
from pyutils.core.errors import MediaError, UserError, run_cli
from pyutils.core.media import find_ffmpeg, probe
from pyutils.core.parallel import run_parallel, threads_per_task
from pyutils.core.report import FailureLog, log, track
from pyutils.core.video_index import ORIGINAL_EXTENSIONS


def is_original(name: str) -> bool:
    """A video by its extension, or a name with no extension (`x.` or `x`): decided by content."""
    if name.startswith(".") or is_temporary(name):
        return False
    stem, dot, extension = name.rpartition(".")
    if not dot or not extension:
        return True
    return extension.lower() in ORIGINAL_EXTENSIONS


def find_originals(source: Path, dest: Path) -> list[Path]:
    """The originals directly in `source` (DiDeMo is one flat folder), sorted."""
    if not source.is_dir():
        raise UserError(f"{source}: folder of original videos not found; set DIDEMO_SRC=")
    if source.resolve() == dest.resolve():
        raise UserError(f"{source}: write the .mp4 files to another folder (VIDEOS=), not here")
    return sorted(p for p in source.iterdir() if p.is_file() and is_original(p.name))


def ffmpeg_args(source: str, target: str, threads: int, crf: int, preset: str) -> list[str]:
    """One transcode. x264 gets a fixed thread count because its output bytes depend on it, and
    the same inputs must give the same files whatever JOBS is; decoding and scaling get `threads`.
    Odd frame sizes are rounded down to even ones, which yuv420p requires."""
    return [
        find_ffmpeg(),
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-threads",
        str(threads),
        "-i",
        source,
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
        "-filter_threads",
        str(threads),
        "-c:v",
        "libx264",
        "-x264-params",
        "threads=1",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        target,
    ]


def transcode_one(task: dict) -> dict:
    """Worker: transcode `task["source"]` to `task["target"]`; never raises, reports instead."""
    source = task["source"]
    try:
        with atomic_file(task["target"]) as temporary:
            args = ffmpeg_args(source, str(temporary), task["threads"], task["crf"], task["preset"])
            result = subprocess.run(args, capture_output=True, text=True, errors="replace")
            if result.returncode != 0:
                reason = result.stderr.strip() or f"ffmpeg exited with status {result.returncode}"
                raise MediaError(reason)
            probe(temporary)  # an output that does not read back as a video is not done
        return {"source": source, "error": None}
    except (OSError, MediaError) as exc:
        return {"source": source, "error": str(exc)}


def transcode_all(
    source: Path,
    dest: Path,
    jobs: int,
    crf: int = 20,
    preset: str = "veryfast",
    failures: Path | None = None,
) -> int:
    originals = find_originals(source, dest)
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest)
    todo = [p for p in originals if not (dest / f"{p.name}.mp4").exists()]
    log(f"transcode: {len(originals)} originals in {source}, {len(originals) - len(todo)} done")
    threads = threads_per_task(jobs)
    tasks = [
        {
            "source": str(p),
            "target": str(dest / f"{p.name}.mp4"),
            "threads": threads,
            "crf": crf,
            "preset": preset,
        }
        for p in todo
    ]
    report = FailureLog("transcode", failures or dest / "transcode_failures.jsonl")
    results = run_parallel(transcode_one, tasks, jobs)
    for result in track(results, len(tasks), "transcode"):
        if result["error"]:
            report.fail(Path(result["source"]).name, result["error"])
        else:
            report.ok()
    return report.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.video.transcode", description=__doc__)
    parser.add_argument("source", type=Path, help="folder of original videos (flat)")
    parser.add_argument("dest", type=Path, help="folder for the <original name>.mp4 files")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel ffmpegs")
    parser.add_argument("--crf", type=int, default=20, help="x264 quality (lower is better)")
    parser.add_argument("--preset", default="veryfast", help="x264 speed preset")
    parser.add_argument("--failures", type=Path, help="JSON-lines list of failures")
    args = parser.parse_args(argv)
    return transcode_all(
        args.source, args.dest, args.jobs, args.crf, args.preset, failures=args.failures
    )


if __name__ == "__main__":
    run_cli(main)
