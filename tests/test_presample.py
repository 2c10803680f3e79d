"""Pre-sampled frames for LLaMA-Factory (`make activitynet_qa PRESAMPLE=1`, issue 15): the frames
its sampler picks, at the size its resize gives, atomically and resumably, in a second JSON that
preflight costs exactly as the plain one."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from pyutils.devtools.sample import make_edit_list_video, make_video
from pyutils.llamafactory import presample
from pyutils.llamafactory.qwen_video import Budget
from pyutils.llamafactory.remux import RemuxTask, copy_command, remux_one
from tests.conftest import REPO, decoded_frame_count, kill_once_one_is_done, run_module

FOLDER = "presampled_fps2_maxlen128_pixels256-65536"  # the default settings' frame folder


def trainer_indices(path: Path, fps: float, maxlen: int) -> list[int]:
    """LLaMA-Factory's `_get_video_sample_indices`, written out again here with numpy, over the
    frames ffmpeg decodes and the stream duration PyAV reports."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
    total = decoded_frame_count(path)
    count = min(total, maxlen, max(1, math.floor(duration * fps)))
    return [int(i) for i in np.linspace(0, total - 1, count).astype(np.int32)]


def trainer_frames(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame as the trainer has it: `frame.to_image()` (RGB, swscale's bilinear), then
    resized to `size`, here with swscale's bicubic on RGB instead of PIL's (PIL is not a vlprep
    dependency; the two differ by far less than one frame from the next)."""
    with av.open(str(path)) as container:
        return [
            frame.reformat(format="rgb24", interpolation="BILINEAR")
            .reformat(*size, format="rgb24", interpolation="BICUBIC")
            .to_ndarray()
            for frame in container.decode(video=0)
        ]


def read_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def jpeg_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def extract(video: Path, dest: Path, budget: Budget | None = None) -> presample.PresampleResult:
    result = presample.presample_video(
        presample.PresampleTask(video.stem, str(video), str(dest), budget or Budget(), 1)
    )
    assert result.status == "ok", result.error
    assert result.sampling is not None
    return result


@pytest.mark.parametrize(
    ("seconds", "fps", "budget", "expected"),
    [
        (3.5, 2, Budget(), 7),  # 7 frames, 7 samples: an odd count, written as it is
        (0.3, 30, Budget(), 1),  # shorter than 1/VIDEO_FPS: floor(0.6) = 0, so one frame
        (3.0, 25, Budget(video_fps=3.0), 9),
        (20.0, 8, Budget(video_maxlen=24), 24),  # capped by VIDEO_MAXLEN
    ],
)
def test_count_and_indices_are_llamafactorys(
    tmp_path: Path, seconds: float, fps: int, budget: Budget, expected: int
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds, 96, 64, fps)
    result = extract(video, tmp_path / "frames", budget)
    wanted = trainer_indices(video, budget.video_fps, budget.video_maxlen)
    assert len(wanted) == expected
    assert list(result.sampling.indices) == wanted
    assert sorted(os.listdir(tmp_path / "frames")) == [
        f"image_{n:05d}.jpg" for n in range(1, expected + 1)
    ]
    assert result.sampling.capped == (expected == budget.video_maxlen)


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (640, 360, (341, 192)),  # sqrt(65536 / 230400) = 0.5333: 341.33 x 192 truncated
        (1280, 720, (341, 192)),
        (360, 640, (192, 341)),  # portrait stays portrait
        (160, 120, (160, 120)),  # within VIDEO_MAX_PIXELS: untouched
        (12, 10, (28, 28)),  # under VIDEO_MIN_PIXELS: 17 x 14, then at least 28 a side
    ],
)
def test_frame_size_is_the_trainers_resize(
    tmp_path: Path, width: int, height: int, size: tuple[int, int]
) -> None:
    video = make_video(tmp_path / "v.mp4", 1.0, width, height, 10)
    extract(video, tmp_path / "frames")
    frames = sorted((tmp_path / "frames").iterdir())
    assert frames and {jpeg_size(f) for f in frames} == {size}


@pytest.mark.parametrize(
    ("seconds", "gop", "budget", "method"),
    [
        (12.0, 50, Budget(video_fps=0.5, video_maxlen=128), "seek_bsf"),  # 6 of 300 frames
        (3.0, 250, Budget(), "sequential"),  # 6 of 75 frames in one GOP
    ],
)
def test_each_frame_is_the_trainers_frame_at_its_index(
    tmp_path: Path, seconds: float, gop: int, budget: Budget, method: str
) -> None:
    """Each written frame is closer to the trainer's frame at its index than to the frames just
    before and after it, whichever way it was extracted."""
    video = make_video(tmp_path / "v.mp4", seconds, 320, 240, 25, gop=gop)
    result = extract(video, tmp_path / "frames", budget)
    assert result.method == method
    size = result.sampling.size
    theirs = trainer_frames(video, size)
    for number, index in enumerate(result.sampling.indices, start=1):
        ours = read_rgb(tmp_path / "frames" / f"image_{number:05d}.jpg").astype(np.float64)
        error = {
            i: float(((ours - theirs[i]) ** 2).mean())
            for i in (index - 1, index, index + 1)
            if 0 <= i < len(theirs)
        }
        assert min(error, key=error.get) == index, (index, error)
        assert 10 * math.log10(255**2 / error[index]) > 35  # the same picture, not merely close


def test_mkv_is_sampled_from_its_real_frame_count_and_duration(tmp_path: Path) -> None:
    """PyAV reports no frame count or stream duration for Matroska (LLaMA-Factory would take the
    first 128 frames); pre-sampling counts them: 5 s at 25 fps is 125 frames, 10 samples, the
    ones its MP4 remux gives the trainer."""
    mkv = make_video(tmp_path / "v.mkv", 5.0, 96, 64, 25)
    result = extract(mkv, tmp_path / "mkv")
    assert result.sampling.counted
    assert (result.sampling.frame_count, result.sampling.duration) == (125, 5.0)
    assert len(result.sampling.indices) == 10 == len(os.listdir(tmp_path / "mkv"))
    mp4 = tmp_path / "v.mp4"
    subprocess.run(copy_command(str(mkv), str(mp4)), check=True)
    assert result.sampling.indices == extract(mp4, tmp_path / "mp4").sampling.indices
    assert tree_md5s(tmp_path / "mkv") == tree_md5s(tmp_path / "mp4")  # the same frames


def test_an_edit_list_is_sampled_from_the_frames_it_shows(tmp_path: Path) -> None:
    """`ffmpeg -ss 1.3 -c copy` of 4 s at 25 fps: PyAV counts 75 frames, decoding yields 67
    (2.68 s). Pre-sampling spreads its picks over those 67: the picks the trainer makes of the
    MP4 remux that holds exactly them, every one a frame decoding yields."""
    cut = make_edit_list_video(tmp_path / "cut.mp4", 4.0, 1.3, width=96, height=64, fps=25)
    result = extract(cut, tmp_path / "cut")
    assert result.sampling.counted
    assert (result.sampling.frame_count, result.sampling.duration) == (67, 2.68)
    assert result.sampling.indices == (0, 16, 33, 49, 66)  # linspace(0, 66, floor(2.68 x 2))
    assert len(os.listdir(tmp_path / "cut")) == 5
    remuxed = remux_one(RemuxTask(str(cut), str(tmp_path / "remux.mp4"), 1))
    assert (remuxed.method, remuxed.error) == ("transcode", "")
    assert extract(Path(remuxed.target), tmp_path / "remux").sampling.indices == (0, 16, 33, 49, 66)


def tree_md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.jpg"))
    }


# ---- the whole conversion -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight videos (mp4, an h264 mkv, a VP8 webm, one capped at VIDEO_MAXLEN), two questions
    each."""
    root = tmp_path_factory.mktemp("corpus")
    specs = [("mp4", 3.3, 25), ("mkv", 4.0, 30), ("webm", 2.6, 25), ("mp4", 70.0, 4)]
    specs += [("mp4", 3.0 + n / 2, 24) for n in range(4)]
    questions, answers = [], []
    for n, (ext, seconds, fps) in enumerate(specs):
        make_video(root / "videos" / f"v_{n}.{ext}", seconds, 160, 120, fps)
        for k in range(2):
            qid = f"v_{n}_{k}"
            questions.append({"question": f"what is {k}", "question_id": qid})
            answers.append({"answer": f"a{k}", "question_id": qid})
    (root / "qa").mkdir()
    (root / "qa" / "val_q.json").write_text(json.dumps(questions))
    (root / "qa" / "val_a.json").write_text(json.dumps(answers))
    return root


def convert_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("-name", "val_q", "-type", "val", "-n", "100", "-seconds", "2"),
        *("--qa-dir", str(corpus / "qa"), "--videos", str(corpus / "videos")),
        *("--out", str(out), "--probe-cache", "", "--register", "--presample", *extra),
    ]


def convert(corpus: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = convert_args(corpus, out, "--jobs", "2", *extra)
    return run_module("pyutils.llamafactory.activitynet_qa", *args)


def test_second_json_has_the_same_records_as_frame_lists_and_is_registered(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    result = convert(corpus, out)
    assert result.returncode == 0, result.stderr + result.stdout
    plain = json.loads((out / "activitynet_qa_val_100_limit_2s.json").read_bytes())
    frames = json.loads((out / "activitynet_qa_val_100_limit_2s_presampled.json").read_bytes())
    assert len(plain) == len(frames) == 16
    assert [r["messages"] for r in plain] == [r["messages"] for r in frames]
    manifest = read_manifest(out / FOLDER)
    for record in frames:
        (frame_list,) = record["videos"]
        stem = Path(frame_list[0]).parent.name
        assert len(frame_list) == len(manifest[stem]["sampling"]["indices"])
        for frame in frame_list:
            assert frame.startswith(f"{FOLDER}/{stem}/image_") and not os.path.isabs(frame)
            assert os.path.isfile(out / frame)  # as LLaMA-Factory joins media_dir (= OUT)
    assert len(frames[6]["videos"][0]) == 128  # the 70 s video: capped at VIDEO_MAXLEN
    info = json.loads((out / "dataset_info.json").read_bytes())
    entry = info["activitynet_qa_val_100_limit_2s_presampled"]
    assert entry["file_name"] == "activitynet_qa_val_100_limit_2s_presampled.json"
    assert entry["columns"] == {"messages": "messages", "videos": "videos"}
    said = result.stdout
    assert "presample: 1 of 8 videos capped at VIDEO_MAXLEN=128 frames: the trainer" in said
    # What differs, for which model, and what to do about it.
    assert "presample: Qwen2-VL: every frame list is seen exactly as its video" in said
    qwen3 = re.search(r"Qwen3-VL: (\d+) of 8 videos get other <t seconds> time stamps", said)
    assert qwen3 and int(qwen3[1]) > 0 and "train Qwen3-VL on the plain JSON" in said
    assert "README, PRESAMPLE" not in said


def read_manifest(folder: Path) -> dict[str, dict]:
    lines = (folder / "frames_manifest.jsonl").read_text().splitlines()
    return {record["stem"]: record for record in map(json.loads, lines)}


def test_frame_paths_follow_media_dir(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = convert(
        corpus, out, "--media-dir", str(corpus), "--presample-dir", str(tmp_path / "f")
    )
    assert result.returncode == 0, result.stderr
    frames = json.loads((out / "activitynet_qa_val_100_limit_2s_presampled.json").read_bytes())
    first = frames[0]["videos"][0][0]
    assert first == os.path.relpath(tmp_path / "f" / "v_0" / "image_00001.jpg", corpus)
    assert all(os.path.isfile(corpus / f) for r in frames for f in r["videos"][0])


def test_preflight_costs_the_presampled_dataset_as_the_plain_one(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    assert convert(corpus, out).returncode == 0
    result = run_module(
        "pyutils.catalog.preflight", "--out", str(out), "--sections", "llamafactory"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    by_dataset: dict[str, list[dict]] = {}
    for line in (out / "preflight.jsonl").read_text().splitlines():
        sample = json.loads(line)
        by_dataset.setdefault(sample["dataset"], []).append(sample)
    plain = by_dataset["activitynet_qa_val_100_limit_2s"]
    frames = by_dataset["activitynet_qa_val_100_limit_2s_presampled"]
    keys = ("index", "video_frames", "video_tokens", "frame_size", "problems")
    assert [[s[k] for k in keys] for s in frames] == [[s[k] for k in keys] for s in plain]
    assert {s["video_frames"] for s in plain} == {6, 8, 10, 128}  # 7 and 9 padded to even
    assert all(s["video_tokens"] > 0 for s in plain)


def test_rerun_does_nothing_and_other_settings_get_their_own_folder(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    assert convert(corpus, out).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (out / FOLDER).rglob("*.jpg")}
    again = convert(corpus, out)
    assert again.returncode == 0 and "8 already done, 0 to do" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / FOLDER).rglob("*.jpg")} == before
    other = convert(corpus, out, "--video-fps", "1", "--video-maxlen", "16")
    assert other.returncode == 0, other.stderr
    assert (out / "presampled_fps1_maxlen16_pixels256-65536" / "v_3").is_dir()
    assert {p: p.stat().st_mtime_ns for p in (out / FOLDER).rglob("*.jpg")} == before


def test_other_settings_into_a_folder_of_frames_are_refused_unless_replace(
    corpus: Path, tmp_path: Path
) -> None:
    out, folder = tmp_path / "data", tmp_path / "frames"
    first = ["-n", "1", "--presample-dir", str(folder)]
    assert convert(corpus, out, *first).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg")}
    refused = convert(corpus, out, *first, "--video-fps", "1")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"vlprep: error: {folder} holds frames of 1 video made with VIDEO_FPS=2.0; asked for "
        "VIDEO_FPS=1.0: set REPLACE=1 (--replace) to replace them, or --presample-dir to another "
        "folder\n"
    )
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg")} == before
    replaced = convert(corpus, out, *first, "--video-fps", "1", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg")} != before


def test_kill_midway_then_rerun_gives_the_same_bytes(corpus: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert convert(corpus, reference).returncode == 0
    out = tmp_path / "data"
    folder = out / FOLDER
    args = ["pyutils.llamafactory.activitynet_qa", *convert_args(corpus, out, "--jobs", "1")]
    done = kill_once_one_is_done(args, folder, "v_")
    assert 1 <= len(done) < 8, "the kill came too late to interrupt anything"
    assert not (out / "activitynet_qa_val_100_limit_2s_presampled.json").exists()
    rerun = convert(corpus, out)
    assert rerun.returncode == 0, rerun.stderr
    # A video whose folder was renamed into place but whose manifest line the kill cut off is
    # simply done again: at most the finished ones count as done.
    already = re.search(r"(\d+) already done", rerun.stderr)
    assert already and int(already[1]) <= len(done)
    assert tree_md5s(folder) == tree_md5s(reference / FOLDER)
    assert not [p for p in folder.rglob("*") if ".vlprep-tmp" in p.name]
    name = "activitynet_qa_val_100_limit_2s_presampled.json"
    assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_a_video_that_cannot_be_presampled_is_left_out_and_fails(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyutils.llamafactory import activitynet_qa
    from pyutils.video import frame_extract, frame_plan

    real = frame_extract.extract_video

    def failing(task: frame_plan.FrameTask) -> frame_extract.FrameResult:
        if task.stem == "v_1":
            return frame_extract.FrameResult(task.stem, task.source, "failed", error="boom")
        return real(task)

    monkeypatch.setattr(presample, "extract_video", failing)
    out = tmp_path / "data"
    status = activitynet_qa.main(convert_args(corpus, out, "--jobs", "1"))
    assert status == 1
    frames = json.loads((out / "activitynet_qa_val_100_limit_2s_presampled.json").read_bytes())
    assert len(frames) == 14  # the two questions of v_1 left out, the others in order
    assert all("/v_1/" not in r["videos"][0][0] for r in frames)
    failures = (out / FOLDER / "presample_failures.jsonl").read_text()
    assert "v_1.mkv" in failures and "boom" in failures


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--video-fps", "x"), "VIDEO_FPS=x (--video-fps): expected a positive number"),
        (("--video-maxlen", "0"), "VIDEO_MAXLEN=0 (--video-maxlen): expected a whole number >= 1"),
        (
            ("--video-max-pixels", "100", "--video-min-pixels", "200"),
            "VIDEO_MAX_PIXELS=100 is below VIDEO_MIN_PIXELS=200",
        ),
    ],
)
def test_settings_errors_are_one_line_exit_2_before_any_work(
    corpus: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = convert(corpus, tmp_path / "data", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vlprep: error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_make_passes_presample_and_the_trainer_settings(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out dir"
    make = [
        "make", "--no-print-directory", "activitynet_qa", f"OUT={out}",
        f"QA_DIR={corpus / 'qa'}", f"VIDEOS={corpus / 'videos'}",
        "NAME=val_q", "TYPE=val", "N=4", "SECONDS=2", "JOBS=2",
        "PRESAMPLE=1", "VIDEO_FPS=1", "VIDEO_MAXLEN=4", "VIDEO_MAX_PIXELS=4096",
    ]  # fmt: skip
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(make, capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    frames = json.loads((out / "activitynet_qa_val_4_limit_2s_presampled.json").read_bytes())
    assert [len(r["videos"][0]) for r in frames] == [3, 3, 4, 4]  # 3.3 s and 4.0 s at 1 per s
    first = out / frames[0]["videos"][0][0]
    assert first.parent.parent.name == "presampled_fps1_maxlen4_pixels256-4096"
    assert jpeg_size(first) == (73, 55)  # 160x120 -> sqrt(4096 / 19200) = 0.4619
    plain = subprocess.run(make[:-4], capture_output=True, text=True, cwd=REPO, env=env)
    assert plain.returncode == 0 and "presample:" not in plain.stdout + plain.stderr
    bad = subprocess.run([*make, "VIDEO_FPS=x"], capture_output=True, text=True, cwd=REPO, env=env)
    assert bad.returncode == 2 and "vlprep: error: VIDEO_FPS=x (--video-fps)" in bad.stderr
