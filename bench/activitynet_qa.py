"""ActivityNet-QA converter: start-up, cold (empty probe cache) and warm, against the reference
script, and probing at scale on threads, on processes, and as vlprep chooses.

The corpus is the real ActivityNet-QA test split when the shared fixtures are present (the first
60 or 200 videos and their questions; 800 videos is all of it), else a synthetic one of the same
shape. Videos are tiny generated clips (mp4, mkv, webm; 1 to 3 s) hard-linked under each video's
name, so every name is a separate file to find and probe. N is unlimited, so every video is
probed: the worst case. The baseline is the reference script's method (a folder walk and a probe
per question): with the machine's own ffprobe when it has one (what the reference runs, through
ffmpeg-python's `ffmpeg.probe`), and with the bundled `ffmpeg -i` standing in where there is no
ffprobe at all. Every figure is the median of _common.RUNS runs, wall time including start-up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import _common
from _common import BENCH_OUT, REPO, line, median_time, row, run_quiet

from pyutils.core.parallel import ParallelOptions
from pyutils.devtools.sample import make_video
from pyutils.video.probe_cache import ProbeCache, probe_videos

FIXTURE = REPO.parent / "shared" / "fixtures" / "activitynet-qa"
SEED_VIDEOS = [("mp4", 3.0), ("mkv", 2.5), ("webm", 3.0), ("mp4", 1.0), ("mkv", 1.5)]
QUESTIONS_PER_VIDEO = 10
# The reference costs the same for every question (a walk and a process): measured on the first
# this many, scaled to the whole.
REFERENCE_SAMPLE = 100
PROBED_AT_SCALE = 10_000


def questions_and_answers() -> tuple[list[dict], list[dict]]:
    if FIXTURE.is_dir():
        questions = json.loads((FIXTURE / "test_q.json").read_bytes())
        return questions, json.loads((FIXTURE / "test_a.json").read_bytes())
    questions, answers = [], []
    for video in range(800):
        for k in range(QUESTIONS_PER_VIDEO):
            question_id = f"v_synthetic{video:04d}_{k}"
            questions.append(
                {
                    "video_name": f"synthetic{video:04d}",
                    "question": "is it",
                    "question_id": question_id,
                }
            )
            answers.append({"answer": "yes", "type": 3, "question_id": question_id})
    return questions, answers


def seed(index: int) -> Path:
    """One of the few real clips every video name is a hard link to."""
    ext, seconds = SEED_VIDEOS[index % len(SEED_VIDEOS)]
    path = BENCH_OUT / "qa-seeds" / f"{index % len(SEED_VIDEOS)}.{ext}"
    if not path.exists():
        make_video(path, seconds, width=64, height=48, fps=10)
    return path


def linked(target: Path, index: int) -> Path:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(seed(index), target)
    return target


def build_corpus(root: Path, videos: int) -> Path:
    """`root/qa/test_{q,a}.json` for the first `videos` videos, and their clips in root/videos."""
    questions, answers = questions_and_answers()
    names = list(dict.fromkeys(q["video_name"] for q in questions))[:videos]
    wanted = set(names)
    chosen = [q for q in questions if q["video_name"] in wanted]
    ids = {q["question_id"] for q in chosen}
    (root / "qa").mkdir(parents=True, exist_ok=True)
    (root / "qa" / "test_q.json").write_text(json.dumps(chosen))
    (root / "qa" / "test_a.json").write_text(
        json.dumps([a for a in answers if a["question_id"] in ids])
    )
    for index, name in enumerate(names):
        linked(root / "videos" / f"v_{name}{seed(index).suffix}", index)
    return root


def run_vlprep(root: Path, cache: Path, env: dict[str, str]) -> None:
    args = ["-name", "test_q", "-type", "test", "-n", "1000000", "-seconds", "2"]
    args += ["--qa-dir", str(root / "qa"), "--videos", str(root / "videos")]
    args += ["--out", str(root / "out"), "--probe-cache", str(cache), "--jobs", str(os.cpu_count())]
    command = [sys.executable, "-m", "pyutils.llamafactory.activitynet_qa", *args]
    run_quiet(command, env)


def reference_method(root: Path, questions: int, probe_command: list[str]) -> None:
    """The reference's loop on the first questions: a folder walk and a media-tool run each
    (`probe_command` + the video: the reference's ffprobe, or `ffmpeg -i` standing in)."""
    for question in json.loads((root / "qa" / "test_q.json").read_bytes())[:questions]:
        stem = question["question_id"].rpartition("_")[0]
        for folder, _dirs, files in os.walk(root / "videos"):
            match = next((f for f in files if f.startswith(stem)), None)
            if match:
                video = os.path.join(folder, match)
                subprocess.run([*probe_command, video], capture_output=True, check=False)
                break


def cold_and_warm(videos: int, env: dict[str, str]) -> tuple[float, float]:
    """Median cold run (empty probe cache) and warm run (the cache filled)."""
    root = build_corpus(BENCH_OUT / f"qa-{videos}", videos)
    cache = root / "probe-cache.json"

    def cold() -> None:
        cache.unlink(missing_ok=True)
        run_vlprep(root, cache, env)

    cold_s = median_time(cold)
    return cold_s, median_time(lambda: run_vlprep(root, cache, env))


def probing_at_scale(backend: str, jobs: int = os.cpu_count() or 1) -> None:
    """Probing PROBED_AT_SCALE distinct files with nothing cached, in this process."""
    folder = BENCH_OUT / f"qa-probe-{PROBED_AT_SCALE}"
    paths = [str(linked(folder / f"{i:05d}{seed(i).suffix}", i)) for i in range(PROBED_AT_SCALE)]
    with contextlib.redirect_stderr(io.StringIO()):  # its "probing videos: ..." lines
        for _ in probe_videos(paths, ProbeCache(None), ParallelOptions(jobs, backend)):
            pass


def main() -> None:
    _common.header(
        "ActivityNet-QA to sharegpt JSON (every video probed; wall time incl. start-up); "
        f"each figure the median of {_common.RUNS} runs"
    )
    env = _common.user_env(None)  # vlprep probes with PyAV: no ffmpeg involved
    interpreter = median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    row("python interpreter alone (`python -c pass`)", interpreter)
    startup, noop = cold_and_warm(1, env)
    row("vlprep start-up: a no-op run (1 video, its probe cached)", noop)
    row("vlprep cold, 1 video / 10 questions", startup)
    root = build_corpus(BENCH_OUT / "qa-60", 60)
    questions = len(json.loads((root / "qa" / "test_q.json").read_bytes()))
    scale = questions / REFERENCE_SAMPLE
    references = []
    system = _common.system_ffmpeg()
    ffprobe = system and shutil.which("ffprobe", path=os.path.dirname(system))
    if ffprobe:
        version = _common.ffmpeg_version(system)
        probe = [ffprobe, "-show_format", "-show_streams", "-of", "json"]  # ffmpeg.probe's
        seconds = scale * median_time(lambda: reference_method(root, REFERENCE_SAMPLE, probe))
        references.append((f"the reference script (system ffprobe {version})", seconds))
    stand_in = [_common.bundled_ffmpeg(), "-hide_banner", "-i"]
    seconds = scale * median_time(lambda: reference_method(root, REFERENCE_SAMPLE, stand_in))
    references.append(("the reference method with the bundled `ffmpeg -i` for ffprobe", seconds))
    for label, seconds in references:
        text = f"{label[4:]}: a walk and a probe per question, {questions} questions"
        row(f"{text} ({REFERENCE_SAMPLE} measured, scaled)", seconds)
    cold, warm = cold_and_warm(60, env)
    for what, seconds in (("cold", cold), ("warm (probe cache)", warm)):
        ratios = "; ".join(f"{ref / seconds:.0f}x faster than {label}" for label, ref in references)
        line(f"vlprep {what}, 60 videos / {questions} questions", seconds, ratios)
    cold1, _ = cold_and_warm(200, env)
    row("vlprep cold, 200 videos / 2,000 questions", cold1)
    cold4, _ = cold_and_warm(800, env)
    # Linear growth: 4x the input costs at most about 4x the time (the start-up is shared).
    row("vlprep cold, 800 videos / 8,000 questions", cold4, cold4 / cold1, "the 200-video time")
    one = median_time(lambda: probing_at_scale("threading", jobs=1))
    row(f"probing {PROBED_AT_SCALE:,} videos in-process, one thread", one)
    threads = median_time(lambda: probing_at_scale("threading"))
    # faster than one thread only as far as PyAV lets go of the GIL while it opens and demuxes
    label = f"probing {PROBED_AT_SCALE:,} videos in-process, {os.cpu_count()} threads"
    row(label, threads, threads / one, "one thread")
    loky = median_time(lambda: probing_at_scale("loky"))
    row(f"probing {PROBED_AT_SCALE:,} videos, loky processes only", loky, loky / threads, "threads")
    auto = median_time(lambda: probing_at_scale("auto"))
    label = f"probing {PROBED_AT_SCALE:,} videos as vlprep chooses (threads, then processes)"
    row(label, auto, auto / min(threads, loky), "the faster of the two")


if __name__ == "__main__":
    main()
