"""Names of any bytes and any length among good videos: a path that is not UTF-8 (a Latin-1 name
from an old archive, made here with real bytes) is that one item's failure in `make frames`,
`make didemo-mp4` and `make activitynet_qa`, never the end of the others; names of 231-251
bytes get temporaries that fit the file system. Also the small ones of issue 22: never upscale,
an audio-only original, a `.vob` original, a registered dataset whose file is missing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import orjson
import pytest

from pyutils.core.media import find_ffmpeg
from pyutils.devtools.sample import make_video
from tests.conftest import run_module

LATIN1 = b"caf\xe9 cr\xe8me.mp4"  # no UTF-8 sequence: what a Latin-1 system wrote
SHOWN = "caf\\xe9 cr\\xe8me.mp4"  # how vlprep names it in its lists and messages
# Exactly 231 and 251 bytes (UTF-8), each a valid name: its temporaries must fit in 255.
LONG = [f"{'é' * 100}{'v' * (length - 204)}.mp4" for length in (231, 251)]


def ffmpeg(*args: str) -> None:
    import subprocess

    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    make_video(folder / "good.mp4", 0.4, width=64, height=48, fps=10)
    os.link(folder / "good.mp4", os.path.join(os.fsencode(folder), LATIN1))
    for name in LONG:
        os.link(folder / "good.mp4", folder / name)
    return folder


def jpeg_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as image:
        frame = next(image.decode(video=0))
        return frame.width, frame.height


def lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_frames_refuses_a_non_utf8_name_alone_and_does_the_others(
    videos: Path, tmp_path: Path
) -> None:
    assert any(os.fsencode(p.name) == LATIN1 for p in videos.iterdir())
    frames = tmp_path / "frames"
    result = run_module("pyutils.video.frames", str(videos), str(frames), "--jobs", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    stems = sorted(Path(name).stem for name in ["good.mp4", *LONG])
    assert sorted(p.name for p in frames.iterdir() if p.is_dir()) == stems
    assert all(len(os.listdir(frames / stem)) == 4 for stem in stems)
    (failure,) = lines(frames / "frames_failures.jsonl")
    assert failure["item"] == str(videos / SHOWN) and "not UTF-8" in failure["error"]
    assert "'café crème.mp4'" in failure["error"]  # the rename it suggests
    assert sorted(r["stem"] for r in lines(frames / "frames_manifest.jsonl")) == stems
    again = run_module("pyutils.video.frames", str(videos), str(frames))
    assert again.returncode == 1 and "3 already done, 0 to do, 1 refused" in again.stderr


def test_didemo_mp4_refuses_a_non_utf8_name_alone(videos: Path, tmp_path: Path) -> None:
    originals = tmp_path / "originals"
    originals.mkdir()
    for entry in videos.iterdir():
        os.link(entry, os.path.join(os.fsencode(originals), os.fsencode(entry.name)))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(originals / "sound.mp4"))
    os.link(videos / "good.mp4", originals / "dvd.vob")
    mp4 = tmp_path / "mp4"
    result = run_module("pyutils.video.transcode", str(originals), str(mp4), "--jobs", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    done = sorted(p.name for p in mp4.iterdir() if p.suffix == ".mp4")
    assert done == sorted(f"{name}.mp4" for name in ["good.mp4", "dvd.vob", *LONG])
    failures = {f["item"]: f["error"] for f in lines(mp4 / "transcode_failures.jsonl")}
    assert set(failures) == {SHOWN, "sound.mp4"}
    assert "not UTF-8" in failures[SHOWN]
    assert failures["sound.mp4"].startswith("no video stream (it holds audio only)")


def test_activitynet_qa_refuses_a_video_under_a_non_utf8_folder_alone(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "later" / "v_a.mp4", 1.5, width=64, height=48, fps=10)
    os.rename(videos / "later", os.path.join(os.fsencode(videos), b"vid\xe9os"))
    make_video(videos / "good" / "v_b.mp4", 1.5, width=64, height=48, fps=10)
    qa = tmp_path / "qa"
    qa.mkdir()
    questions = [{"question_id": f"v_{v}_0", "question": "what"} for v in "ab"]
    (qa / "val_q.json").write_text(json.dumps(questions))
    (qa / "val_a.json").write_text(json.dumps([{**q, "answer": "that"} for q in questions]))
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    args = ["-name", "val_q", "-type", "val", "-seconds", "1", "--qa-dir", str(qa), "--jobs", "1"]
    args += ["--videos", str(videos), "--out", str(out), "--report", str(report), "--register"]
    result = run_module("pyutils.llamafactory.activitynet_qa", *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    written = json.loads((out / "activitynet_qa_val_250_limit_1s.json").read_text())
    assert [record["videos"] for record in written] == [["../videos/good/v_b.mp4"]]
    refused = next(r for r in lines(report) if r["question_id"] == "v_a_0")
    assert refused["status"] == "unreadable" and "not UTF-8" in refused["error"]
    assert refused["video"] == f"{videos}/vid\\xe9os/v_a.mp4"


def test_preflight_says_a_registered_file_that_is_missing(tmp_path: Path) -> None:
    entry = {"file_name": "gone.json", "formatting": "sharegpt", "columns": {"videos": "videos"}}
    (tmp_path / "dataset_info.json").write_text(json.dumps({"gone": entry}))
    result = run_module(
        "pyutils.catalog.preflight", "--out", str(tmp_path), "--sections", "llamafactory"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"missing: {tmp_path / 'gone.json'}: registered in" in result.stdout
    assert "skipped" not in result.stderr


def test_a_small_video_is_never_upscaled(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name, size in (("one.mp4", "1x1"), ("odd.mp4", "65x47"), ("big.mp4", "640x361")):
        source = f"color=c=red:size={size}:rate=5:duration=0.4"
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            source,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
            str(videos / name),
        )
    frames = tmp_path / "frames"
    result = run_module("pyutils.video.frames", str(videos), str(frames), "--short-side", "224")
    assert result.returncode == 0, result.stderr
    sizes = {stem: jpeg_size(frames / stem / "image_00001.jpg") for stem in ("one", "odd", "big")}
    assert sizes == {"one": (1, 1), "odd": (65, 47), "big": (398, 224)}
