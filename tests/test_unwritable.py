"""Outputs that cannot be written (a read-only folder, a path that is a file or under one, a
dataset_info.json that is a folder, a dangling or read-only link) are one line naming the Make
variable and the path, exit 2, before any work: frames, activitynet_qa (PRESAMPLE=1 too),
didemo-mp4, didemo-videos, dataset_info. Tests run as root, whom permissions do not stop: a
read-only bind mount (or an immutable folder) stands in, and the case is skipped where the test
has the rights for neither."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyutils.devtools.sample import make_video
from tests.conftest import REPO, run_module


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """`folder` made unwritable for whoever runs the tests."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    bind = ["mount", "--bind", str(folder), str(folder)]
    if subprocess.run(bind, capture_output=True).returncode == 0:
        try:
            remount = ["mount", "-o", "remount,ro,bind", str(folder)]
            if subprocess.run(remount, capture_output=True).returncode == 0:
                yield
                return
        finally:
            subprocess.run(["umount", str(folder)], capture_output=True)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        return
    pytest.skip("root without the rights to mount read-only or set the immutable flag")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    with _locked(folder):
        yield folder


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    make_video(folder / "v_a.mp4", 1.5, width=64, height=48, fps=10)
    return folder


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one error line of a refused run."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vlprep: error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "-s", "-C", str(REPO), "-o", ".venv/.setup-stamp", *args]
    return subprocess.run(command, capture_output=True, text=True)


# ---- frames -----------------------------------------------------------------------------------


def test_make_frames_into_a_read_only_folder(videos: Path, read_only: Path) -> None:
    result = make("frames", f"VIDEOS={videos}", f"FRAMES={read_only}")
    refused(result, f"FRAMES={read_only}", "cannot write there")


def test_frames_into_a_file_or_under_one_and_videos_a_file(videos: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for frames, says in ((a_file, "is a file"), (a_file / "sub", f"is under {a_file}")):
        result = run_module("pyutils.video.frames", str(videos), str(frames))
        refused(result, f"FRAMES={frames}", says)
    result = run_module("pyutils.video.frames", str(a_file), str(tmp_path / "frames"))
    refused(result, f"VIDEOS={a_file}", "is a file, not a folder")
    assert not (tmp_path / "frames").exists()


# ---- didemo-mp4, didemo-videos ----------------------------------------------------------------


def test_didemo_mp4_into_a_read_only_folder(videos: Path, read_only: Path) -> None:
    result = run_module("pyutils.video.transcode", str(videos), str(read_only / "mp4"))
    refused(result, f"VIDEOS={read_only / 'mp4'}", "cannot write there")


def test_didemo_videos_into_a_read_only_folder(tmp_path: Path, read_only: Path) -> None:
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:9/a.mp4\n")
    result = run_module("pyutils.fetch.fetch_list", str(tmp_path / "urls.txt"), str(read_only))
    refused(result, f"DIDEMO_SRC={read_only}", "cannot write there")


# ---- activitynet_qa, presample, dataset_info --------------------------------------------------


def qa(videos: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folder = out.parent / "qa"
    folder.mkdir(exist_ok=True)
    (folder / "val_q.json").write_text(json.dumps([{"question_id": "v_a_0", "question": "what"}]))
    (folder / "val_a.json").write_text(json.dumps([{"question_id": "v_a_0", "answer": "that"}]))
    args = ["-name", "val_q", "-type", "val", "-seconds", "1", "--qa-dir", str(folder)]
    args += ["--videos", str(videos), "--out", str(out), "--register", "--jobs", "1", *extra]
    return run_module("pyutils.llamafactory.activitynet_qa", *args)


def written(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.is_dir() else []


def test_activitynet_qa_into_a_read_only_out(videos: Path, read_only: Path) -> None:
    refused(qa(videos, read_only), f"OUT={read_only}", "cannot write there")


@pytest.mark.parametrize("kind", ["folder", "dangling-link", "read-only-link"])
def test_activitynet_qa_with_a_dataset_info_that_cannot_be_updated(
    videos: Path, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    info = out / "dataset_info.json"
    with contextlib.ExitStack() as stack:
        if kind == "folder":
            info.mkdir()
            says = "is a folder"
        elif kind == "dangling-link":
            info.symlink_to(tmp_path / "elsewhere" / "deep" / "dataset_info.json")
            says = "which does not exist"
        else:
            linked = tmp_path / "llamafactory-data"
            linked.mkdir()
            (linked / "dataset_info.json").write_text("{}\n")
            info.symlink_to(linked / "dataset_info.json")
            stack.enter_context(_locked(linked))
            says = "(through its link) is read-only"
        line = refused(qa(videos, out), f"OUT={out}", str(info), says)
    assert written(out) == ["dataset_info.json"], line  # nothing else: no QA JSON, no report
    assert not (tmp_path / "elsewhere").exists()  # the link was not followed into new folders


def test_presample_into_a_frames_folder_that_is_a_file(videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    frames = out / "presampled_fps2_maxlen128_pixels256-65536"
    frames.write_text("x")
    line = refused(qa(videos, out, "--presample"), "PRESAMPLE=1", str(frames), "is a file")
    assert written(out) == [frames.name], line


def test_dataset_info_through_a_dangling_link_creates_nothing_outside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").symlink_to(tmp_path / "elsewhere" / "dataset_info.json")
    result = run_module("pyutils.llamafactory.dataset_info", "--dir", str(out), "--seed-entries")
    refused(result, f"OUT={out}", "which does not exist")
    assert written(out) == ["dataset_info.json"] and not (tmp_path / "elsewhere").exists()
