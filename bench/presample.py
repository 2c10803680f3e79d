"""`make activitynet_qa PRESAMPLE=1`: the trainer reading a record, from its video or from the
pre-sampled frame list, and the one-off cost of pre-sampling.

Corpus (generated once into bench/out): 30 s, 3 min and 10 min at 640x360 and 1280x720, 30 fps,
H.264 (800 kb/s and 2 Mb/s, a keyframe every 5 s), one ActivityNet-QA question each.

- The trainer's read of one record: LLaMA-Factory's `Qwen2VLPlugin._regularize_videos` on the
  video (open it with PyAV, `_get_video_sample_indices`, decode every frame and keep the sampled
  ones with `frame.to_image()`, then `_preprocess_image`'s resize) against the same function's
  frame-list branch (every frame checked with `os.path.exists`, opened, `_preprocess_image`, read
  into an array as the processor does). With Pillow installed these are its own calls; without
  it (vlprep's venv) `to_image` and the resize are PyAV's RGB conversion and bicubic scaling,
  and a JPEG is decoded by PyAV: the same decoding work, which is what the time is. Run it
  with a Python that has Pillow (`/path/to/python bench/presample.py`) for the trainer's own
  calls; the conversions always run with vlprep's `.venv`.
- The one-off cost: `activitynet_qa` with --presample against without it, and against decoding
  every selected video once, as the trainer does each epoch (its read, above) and as the floor
  (one single-threaded ffmpeg per core, `-f null`).

Timings are medians of 3 runs (1 for the 10-minute reads); the machine is shared with other
work, so compare the ratios, which are measured in the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
from _common import BENCH_OUT, REPO, header, row, timed

from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video
from pyutils.llamafactory.qwen_video import Budget, regularized_size, sample_indices

try:
    from PIL import Image
except ImportError:  # vlprep's own venv: PyAV stands in (see the docstring)
    Image = None

# name, seconds, width, height, bitrate
VIDEOS = [
    ("30s_360p", 30, 640, 360, "800k"),
    ("3min_360p", 180, 640, 360, "800k"),
    ("10min_360p", 600, 640, 360, "800k"),
    ("30s_720p", 30, 1280, 720, "2M"),
    ("3min_720p", 180, 1280, 720, "2M"),
    ("10min_720p", 600, 1280, 720, "2M"),
]
FPS, GOP = 30, 150
CPUS = os.cpu_count() or 1
BUDGET = Budget()


def corpus() -> Path:
    root = BENCH_OUT / "presample"
    questions, answers = [], []
    for name, seconds, width, height, bitrate in VIDEOS:
        video = root / "videos" / f"v_{name}.mp4"
        if not video.exists():
            make_video(video, seconds, width, height, FPS, gop=GOP, bitrate=bitrate)
        questions.append({"question": "what happens", "question_id": f"v_{name}_0"})
        answers.append({"answer": "something", "question_id": f"v_{name}_0"})
    (root / "qa").mkdir(exist_ok=True)
    (root / "qa" / "val_q.json").write_text(json.dumps(questions))
    (root / "qa" / "val_a.json").write_text(json.dumps(answers))
    return root


# ---- the trainer's read of one record -----------------------------------------------------------


def preprocess(image: object) -> object:
    """`MMPluginMixin._preprocess_image` (+ Qwen2VLPlugin's, a no-op at these sizes)."""
    width, height = image.width, image.height
    size = regularized_size(width, height, BUDGET.video_max_pixels, BUDGET.video_min_pixels)
    if size != (width, height):
        if Image:
            image = image.resize(size)
        else:
            image = image.reformat(*size, format="rgb24", interpolation="BICUBIC")
    return image.convert("RGB") if Image and image.mode != "RGB" else image


def read_video(path: Path) -> list[np.ndarray]:
    """`Qwen2VLPlugin._regularize_videos` on a video path, then the arrays the processor makes."""
    container = av.open(str(path), "r")
    video_stream = next(stream for stream in container.streams if stream.type == "video")
    duration = float(video_stream.duration * video_stream.time_base)
    picks = sample_indices(video_stream.frames, duration, BUDGET.video_fps, BUDGET.video_maxlen)
    sample = np.array(picks, dtype=np.int32)  # LLaMA-Factory keeps numpy's array: `in` scans it
    frames = []
    container.seek(0)
    for frame_idx, frame in enumerate(container.decode(video_stream)):
        if frame_idx in sample:
            frames.append(frame.to_image() if Image else frame.reformat(format="rgb24"))
    container.close()
    if len(frames) % 2:
        frames.append(frames[-1])
    return [as_array(preprocess(frame)) for frame in frames]


def read_frame_list(frames: list[str]) -> list[np.ndarray]:
    """The frame-list branch of `_regularize_videos`, then the arrays the processor makes."""
    for frame in frames:
        if not os.path.exists(frame):
            raise ValueError("Invalid image found in video frames.")
    listed = list(frames)
    if len(listed) % 2:
        listed.append(listed[-1])
    return [as_array(preprocess(open_image(frame))) for frame in listed]


def open_image(path: str) -> object:
    if Image:
        return Image.open(path)
    with av.open(path) as container:
        return next(container.decode(video=0)).reformat(format="rgb24")


def as_array(image: object) -> np.ndarray:
    return np.asarray(image) if Image else image.to_ndarray()


def median_time(func: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(func) for _ in range(runs))


# ---- the one-off cost ---------------------------------------------------------------------------


def convert(root: Path, out: Path, *extra: str) -> None:
    shutil.rmtree(out, ignore_errors=True)
    # vlprep's own Python, also when the reads are timed from an environment with Pillow.
    python = REPO / ".venv" / "bin" / "python"
    args = [str(python) if python.exists() else sys.executable]
    args += ["-m", "pyutils.llamafactory.activitynet_qa"]
    args += ["-name", "val_q", "-type", "val", "-n", "100", "-seconds", "20"]
    args += ["--qa-dir", str(root / "qa"), "--videos", str(root / "videos"), "--out", str(out)]
    args += ["--probe-cache", "", "--jobs", str(CPUS), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(args, check=True, env=env, capture_output=True)


def decode_floor(videos: list[Path]) -> None:
    """Decoding every frame and nothing else: one single-threaded ffmpeg per core, the longest
    videos first."""

    def decode(video: Path) -> None:
        command = [find_ffmpeg(), "-nostdin", "-v", "error", "-threads", "1", "-i", str(video)]
        subprocess.run([*command, "-f", "null", "-"], check=True)

    with ThreadPoolExecutor(CPUS) as pool:
        list(pool.map(decode, sorted(videos, key=lambda v: -v.stat().st_size)))


def main() -> None:
    root = corpus()
    videos = {name: root / "videos" / f"v_{name}.mp4" for name, *_ in VIDEOS}
    reader = "Pillow" if Image else "PyAV standing in for Pillow"
    header(f"presample: the trainer's read of a record, video vs frame list ({reader})")
    plain_out, frames_out = BENCH_OUT / "presample-plain", BENCH_OUT / "presample-frames"
    plain = median_time(lambda: convert(root, plain_out), 3)
    presampled = median_time(lambda: convert(root, frames_out, "--presample"), 3)
    folder = next(frames_out.glob("presampled_*"))
    reads = {}
    for name, path in videos.items():
        frames = [str(p) for p in sorted((folder / f"v_{name}").glob("*.jpg"))]
        runs = 1 if name.startswith("10min") else 3
        from_video = median_time(lambda path=path: read_video(path), runs)
        from_list = median_time(lambda frames=frames: read_frame_list(frames), 5)
        reads[name] = from_video
        row(f"trainer reads the {name} video ({len(frames)} frames kept)", from_video)
        row("trainer reads its frame list", from_list, from_video / from_list, "faster")
    once = sum(reads.values())
    floor = median_time(lambda: decode_floor(list(videos.values())), 3)
    header("presample: one-off cost on these 6 videos (18,900 s of video in all)")
    row("activitynet_qa, plain conversion", plain)
    row("activitynet_qa --presample", presampled, presampled / plain, "plain")
    extra = presampled - plain
    row("  of which pre-sampling", extra)
    row("trainer's read of every video once (an epoch)", once, extra / once, "(pre-sampling / it)")
    row("decode floor (ffmpeg -f null, one per core)", floor, extra / floor, "(pre-sampling / it)")
    shutil.rmtree(plain_out)
    shutil.rmtree(frames_out)


if __name__ == "__main__":
    main()
