"""ActivityNet-QA converter: cold (empty probe cache) and warm, at 1x and 4x the input.

The corpus is the real ActivityNet-QA test split when the shared fixtures are present (the first
200 videos and their 2,000 questions; 4x is all 800 videos and 8,000 questions), else a synthetic
one of the same shape. Videos are tiny generated clips (mp4, mkv, webm; 1 to 3 s) hard-linked under
each video's name, so every name is a separate file to find and probe. N is unlimited, so every
video is probed: the worst case. The baseline is the reference script's method (a folder walk and
a probe per question), run on the 1x corpus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _common import BENCH_OUT, REPO, header, row, timed

from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video

FIXTURE = REPO.parent / "shared" / "fixtures" / "activitynet-qa"
SEED_VIDEOS = [("mp4", 3.0), ("mkv", 2.5), ("webm", 3.0), ("mp4", 1.0), ("mkv", 1.5)]
QUESTIONS_PER_VIDEO = 10


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
    seeds = BENCH_OUT / "qa-seeds"
    for index, (ext, seconds) in enumerate(SEED_VIDEOS):
        if not (seeds / f"{index}.{ext}").exists():
            make_video(seeds / f"{index}.{ext}", seconds, width=64, height=48, fps=10)
    for index, name in enumerate(names):
        ext = SEED_VIDEOS[index % len(SEED_VIDEOS)][0]
        target = root / "videos" / f"v_{name}.{ext}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(seeds / f"{index % len(SEED_VIDEOS)}.{ext}", target)
    return root


def run_vlprep(root: Path, cache: Path) -> None:
    args = ["-name", "test_q", "-type", "test", "-n", "1000000", "-seconds", "2"]
    args += ["--qa-dir", str(root / "qa"), "--videos", str(root / "videos")]
    args += ["--out", str(root / "out"), "--probe-cache", str(cache), "--jobs", str(os.cpu_count())]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pyutils.llamafactory.activitynet_qa", *args]
    subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)


def run_reference_method(root: Path, questions: int) -> None:
    """The reference's loop on the first questions: a folder walk and a media-tool run each.

    The reference runs ffprobe per question; with no ffprobe here, `ffmpeg -i` (which reads the
    same headers and also starts a process) stands in for it.
    """
    ffmpeg = find_ffmpeg()
    for question in json.loads((root / "qa" / "test_q.json").read_bytes())[:questions]:
        stem = question["question_id"].rpartition("_")[0]
        for folder, _dirs, files in os.walk(root / "videos"):
            match = next((f for f in files if f.startswith(stem)), None)
            if match:
                command = [ffmpeg, "-hide_banner", "-i", os.path.join(folder, match)]
                subprocess.run(command, capture_output=True, check=False)
                break


def measure(videos: int, repeats: int = 3) -> tuple[float, float]:
    """Best of `repeats` cold runs (empty probe cache) and warm runs (the cache filled)."""
    root = build_corpus(BENCH_OUT / f"qa-{videos}", videos)
    cache = root / "probe-cache.json"
    colds, warms = [], []
    for _ in range(repeats):
        cache.unlink(missing_ok=True)
        colds.append(timed(lambda: run_vlprep(root, cache)))
        warms.append(timed(lambda: run_vlprep(root, cache)))
    return min(colds), min(warms)


def main() -> None:
    header("ActivityNet-QA to sharegpt JSON (every video probed; wall time incl. start-up)")
    fixed, _ = measure(1)
    cold, warm = measure(200)
    # Linear by construction (one walk and one process per question): measured on a tenth.
    baseline = 10 * timed(lambda: run_reference_method(BENCH_OUT / "qa-200", 200))
    row("reference method, 2,000 questions (200 measured, x10)", baseline)
    row("vlprep cold, 1 video / 10 questions (start-up floor)", fixed)
    row("vlprep cold, 200 videos / 2,000 questions", cold, baseline / cold, "faster")
    row("vlprep warm, 200 videos / 2,000 questions", warm, baseline / warm, "faster")
    cold4, warm4 = measure(800)
    # Linear growth: 4x the input costs at most about 4x the time (the start-up is shared).
    row("vlprep cold, 800 videos / 8,000 questions", cold4, cold4 / cold, "the 1x time")
    row("vlprep warm, 800 videos / 8,000 questions", warm4, warm4 / warm, "the 1x time")


if __name__ == "__main__":
    main()
