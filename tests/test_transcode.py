"""`python -m pyutils.video.transcode`: originals of every container (and none) to `<name>.mp4`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from pyutils.core.atomic import is_temporary
from pyutils.core.media import probe
from pyutils.devtools.sample import make_video
from pyutils.video.transcode import is_original
from tests.conftest import REPO, run_module
from tests.test_frames import late_video

# original name -> (seconds, container forced for names that carry no usable extension)
ORIGINALS = {
    "10015567@N08_3655084291_d8b58466fa.mov": (1.6, None),
    "clip with spaces.m4v": (1.2, None),
    'it\'s "quoted" $(touch pwned).avi': (2.0, None),
    "phone clip.3gp": (1.0, None),
    "10052357@N03_7585070382_5762149bfc.": (1.4, "mp4"),  # DiDeMo's bare-dot names
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("originals")
    for name, (seconds, container) in ORIGINALS.items():
        make_video(folder / name, seconds, width=162, height=122, container=container)
    (folder / "notes.txt").write_text("not an original\n")
    return folder


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix == ".mp4"}


def test_every_original_becomes_a_playable_h264_mp4(originals: Path, tmp_path: Path) -> None:
    dest = tmp_path / "videos"
    result = run_module(
        "pyutils.video.transcode", str(originals), str(dest), "--jobs", "2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert _outputs(dest) == {f"{name}.mp4" for name in ORIGINALS}
    for name in ORIGINALS:
        output = dest / f"{name}.mp4"
        assert abs(probe(output).duration - probe(originals / name).duration) < 0.1
        with av.open(str(output)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.codec_context.width, stream.codec_context.height) == (162, 122)
            assert not container.streams.audio
    assert not (tmp_path / "pwned").exists()
    assert not [p for p in dest.iterdir() if is_temporary(p)]

    again = run_module("pyutils.video.transcode", str(originals), str(dest), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{len(ORIGINALS)} originals in {originals}, {len(ORIGINALS)} done" in again.stderr


def test_output_bytes_do_not_depend_on_jobs_or_backend(originals: Path, tmp_path: Path) -> None:
    name = "clip with spaces.m4v"
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(originals / name, source / name)
    runs = {"1": ["--jobs", "1"], "2": ["--jobs", "2"], "loky": ["--backend", "loky"]}
    for label, options in runs.items():
        result = run_module("pyutils.video.transcode", str(source), str(tmp_path / label), *options)
        assert result.returncode == 0, result.stderr
    outputs = {(tmp_path / label / f"{name}.mp4").read_bytes() for label in runs}
    assert len(outputs) == 1
    spark = run_module(
        "pyutils.video.transcode", str(source), str(tmp_path / "x"), "--backend", "x"
    )
    assert spark.returncode == 2 and "invalid choice: 'x'" in spark.stderr


def test_corrupt_original_among_good_ones(originals: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    good = "phone clip.3gp"
    shutil.copy(originals / good, source / good)
    data = (originals / "clip with spaces.m4v").read_bytes()
    (source / "broken.m4v").write_bytes(data[: len(data) // 3])
    (source / "page.").write_text("<html><body>404</body></html>")  # a bare-dot name, not a video
    dest = tmp_path / "videos"
    result = run_module("pyutils.video.transcode", str(source), str(dest), "--jobs", "2")
    assert result.returncode == 1
    assert _outputs(dest) == {f"{good}.mp4"}
    assert "transcode: 1 ok, 2 failed" in result.stdout
    assert "FAILED broken.m4v: " in result.stdout
    assert "Invalid data found when processing input" in result.stdout  # ffmpeg's own words
    failures = (dest / "transcode_failures.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["item"] for line in failures) == ["broken.m4v", "page."]
    assert not [p for p in dest.iterdir() if is_temporary(p)]


def test_killed_run_then_rerun_leaves_complete_outputs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    names = ["a.mov", "b.avi", "c."]
    for name in names:
        container = "mp4" if name.endswith(".") else None
        make_video(source / name, 6.0, width=640, height=480, container=container)
    dest = tmp_path / "videos"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "pyutils.video.transcode", str(source), str(dest), "--jobs", "1"]
    process = subprocess.Popen(args, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    while process.poll() is None and not (dest.is_dir() and any(map(is_temporary, dest.iterdir()))):
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(_outputs(dest)) < len(names), "the run finished before it could be killed"

    rerun = run_module("pyutils.video.transcode", str(source), str(dest), "--jobs", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert _outputs(dest) == {f"{name}.mp4" for name in names}
    assert not [p for p in dest.iterdir() if is_temporary(p)]
    for name in names:
        assert abs(probe(dest / f"{name}.mp4").duration - 6.0) < 0.1


def test_same_folder_for_originals_and_outputs_is_refused(originals: Path) -> None:
    result = run_module("pyutils.video.transcode", str(originals), str(originals))
    assert result.returncode == 2
    assert "not here" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.mov", True),
        ("x.MTS", True),
        ("x.", True),
        ("x", True),
        ("x.txt", False),
        ("transcode_failures.jsonl", False),
        (".hidden.mov", False),
        (".x.mov.mp4.vlprep-tmp-12", False),
    ],
)
def test_which_files_are_originals(name: str, expected: bool) -> None:
    assert is_original(name) is expected


def test_a_matroska_original_whose_video_starts_late_is_whole(tmp_path: Path) -> None:
    """Its container declares 4 s from 0, its video runs from 0.6 s: 3.4 s transcoded is all of it
    (85% of the declaration, below the 90% that passes for whole without a look at the frames)."""
    late_video(tmp_path / "src" / "late.mkv", after_audio=0.6)
    dest = tmp_path / "videos"
    result = run_module("pyutils.video.transcode", str(tmp_path / "src"), str(dest), "--jobs", "1")
    assert result.returncode == 0, result.stdout
    assert probe(dest / "late.mkv.mp4").duration == pytest.approx(3.4, abs=0.05)


def test_an_original_cut_short_does_not_become_a_short_healthy_mp4(tmp_path: Path) -> None:
    """A Matroska original whose download ended half-way still decodes (its first half), and its
    header still declares the whole duration: the transcode compares the two and refuses."""
    source = tmp_path / "src"
    whole = make_video(tmp_path / "whole.mkv", 4.0, width=160, height=120)
    data = whole.read_bytes()
    (source / "cut.mkv").parent.mkdir()
    (source / "cut.mkv").write_bytes(data[: len(data) // 2])
    shutil.copy(whole, source / "whole.mkv")
    dest = tmp_path / "videos"
    result = run_module("pyutils.video.transcode", str(source), str(dest), "--jobs", "1")
    assert result.returncode == 1
    assert _outputs(dest) == {"whole.mkv.mp4"}
    assert "FAILED cut.mkv: the original is cut short:" in result.stdout
    assert "s its container declares" in result.stdout
