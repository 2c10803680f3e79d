"""`make preflight` on 10,000 LLaMA-Factory samples, against decoding the videos.

The corpus has the shape of ActivityNet-QA: 10,000 sharegpt samples, 10 questions per video, so
1,000 videos (hard links of a few generated 3 s 320x240 clips, mp4 and mkv, each a separate file
to open), plus a worst case of 10,000 samples on 10,000 distinct videos. Preflight reads container
headers only. The baseline is what knowing the frames by decoding costs (PyAV decoding every frame
of each video, as LLaMA-Factory's `_regularize_videos` does), measured on 100 videos and scaled,
since it is linear in the videos. Real videos are minutes long and larger than these clips:
decoding grows with them, reading a header does not, so the ratio here is the least it will be.

The fit (`pyutils.llamafactory.fit`, run when samples are over CUTOFF_LEN) is timed twice: as part
of preflight on the 10,000 videos with a CUTOFF_LEN they are over, and, since those clips share a
few headers that it prices once each, in-process on 10,000 samples whose videos all differ
(duration, rate and size drawn at random, as in a real dataset), against one pricing pass of the
same samples (the verdict's arithmetic, which every setting it tries repeats).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import av
from _common import BENCH_OUT, REPO, header, row, timed

from pyutils.devtools.sample import make_video
from pyutils.llamafactory import fit, replay
from pyutils.llamafactory.dataset_info import sharegpt_video_entry
from pyutils.llamafactory.qwen_video import Budget, StreamInfo

SEEDS = [("mp4", 3.0), ("mp4", 2.0), ("mkv", 3.0), ("mp4", 4.0)]
SAMPLES = 10_000


def build(root: Path, videos: int) -> Path:
    """OUT with dataset_info.json and one sharegpt file of SAMPLES samples over `videos` videos."""
    seeds = BENCH_OUT / "preflight-seeds"
    for index, (ext, seconds) in enumerate(SEEDS):
        if not (seeds / f"{index}.{ext}").exists():
            make_video(seeds / f"{index}.{ext}", seconds, width=320, height=240, fps=25)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    names = []
    for n in range(videos):
        index = n % len(SEEDS)
        name = f"videos/v_{n:05d}.{SEEDS[index][0]}"
        if not (root / name).exists():
            os.link(seeds / f"{index}.{SEEDS[index][0]}", root / name)
        names.append(name)
    per_video = SAMPLES // videos
    records = [
        {
            "messages": [
                {"content": f"<video>what happens in part {k} of the video?", "role": "user"},
                {"content": "someone is cooking", "role": "assistant"},
            ],
            "videos": [name],
        }
        for name in names
        for k in range(per_video)
    ]
    (root / "qa.json").write_text(json.dumps(records))
    (root / "dataset_info.json").write_text(json.dumps({"qa": sharegpt_video_entry("qa.json")}))
    return root


def run_preflight(root: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pyutils.catalog.preflight", "--out", str(root), *extra]
    command += ["--sections", "llamafactory", "--jobs", str(os.cpu_count() or 1)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # 1: the mkv samples are misread, as they should be
        raise SystemExit(result.stderr)


def decode_all(root: Path, videos: int) -> None:
    for n in range(videos):
        index = n % len(SEEDS)
        with av.open(str(root / f"videos/v_{n:05d}.{SEEDS[index][0]}")) as container:
            for _frame in container.decode(video=0):
                pass


def distinct_samples(count: int, seed: int = 0) -> list[replay.Priced]:
    """`count` samples, each on its own video: 20-300 s at 24, 25, 30 or 60 fps, 480p to 1080p."""
    chance = random.Random(seed)
    samples = []
    for index in range(count):
        fps = chance.choice([24.0, 25.0, 30.0, 60.0])
        seconds = round(chance.uniform(20, 300), 2)
        width, height = chance.choice([(854, 480), (1280, 720), (1920, 1080), (640, 360)])
        info = StreamInfo(int(seconds * fps), seconds, fps, width, height, seconds, "h264")
        located = replay.Located(f"v{index}.mp4", f"v{index}.mp4", True)
        header = replay.Header(f"v{index}.mp4", info)
        samples.append(replay.Priced("qa", index, 60, ((located, header),)))
    return samples


def fit_rows() -> None:
    samples = distinct_samples(10_000)
    run = replay.Replay(Budget(), replay.VisionConfig(), replay.TEMPLATES["qwen2_vl"], Path("."))
    one_pass = min(timed(lambda: fit.Pricer(samples, run).totals(run.budget)) for _ in range(3))
    row("one pricing pass, 10,000 samples on 10,000 distinct videos (in-process)", one_pass)
    for keep in fit.KEEP_CHOICES:
        seconds = min(timed(lambda k=keep: fit.search(samples, run, 1.0, k)) for _ in range(2))
        row(f"the fit, FIT_KEEP={keep}, same samples", seconds, seconds / one_pass, "passes")


def main() -> None:
    header("preflight: 10,000 LLaMA-Factory samples (wall time incl. start-up)")
    shared = build(BENCH_OUT / "preflight-1000", 1000)
    distinct = build(BENCH_OUT / "preflight-10000", 10_000)
    baseline = 10 * min(timed(lambda: decode_all(shared, 100)) for _ in range(2))
    row("decoding every frame of 1,000 videos (100 measured, x10)", baseline)
    shared_time = min(timed(lambda: run_preflight(shared)) for _ in range(3))
    row("preflight, 10,000 samples on 1,000 videos", shared_time, baseline / shared_time, "faster")
    distinct_time = min(timed(lambda: run_preflight(distinct)) for _ in range(2))
    row(
        "preflight, 10,000 samples on 10,000 videos",
        distinct_time,
        10 * baseline / distinct_time,
        "faster than decoding them",
    )
    over = min(timed(lambda: run_preflight(distinct, "--cutoff-len", "100")) for _ in range(2))
    row("preflight with the fit (CUTOFF_LEN=100), 10,000 samples on 10,000 videos", over,
        over / distinct_time, "preflight without it")  # fmt: skip
    fit_rows()


if __name__ == "__main__":
    main()
