from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import pytest

from pyutils.core import media
from pyutils.core.errors import MediaError, UserError
from pyutils.core.media import find_ffmpeg, probe
from tests.conftest import SAMPLE_VIDEOS, decoded_frame_count


@pytest.mark.parametrize("name", sorted(SAMPLE_VIDEOS))
def test_probe_duration_size_rate(sample_videos: dict[str, Path], name: str) -> None:
    seconds, fps = SAMPLE_VIDEOS[name]
    info = probe(sample_videos[name])
    assert abs(info.duration - seconds) < 0.1
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(fps)


@pytest.mark.parametrize("name", sorted(SAMPLE_VIDEOS))
def test_counted_frames_equal_decoded_frames(sample_videos: dict[str, Path], name: str) -> None:
    info = probe(sample_videos[name], count_frames=True)
    assert info.frame_count_exact
    assert info.frame_count == decoded_frame_count(sample_videos[name])


def test_webm_duration_comes_from_the_container(sample_videos: dict[str, Path]) -> None:
    path = sample_videos["clip.webm"]
    with av.open(str(path)) as container:
        assert not container.streams.video[0].duration  # the case the fallback exists for
    assert abs(probe(path).duration - SAMPLE_VIDEOS["clip.webm"][0]) < 0.1


def test_truncated_video_is_a_clear_error(sample_videos: dict[str, Path], tmp_path: Path) -> None:
    data = sample_videos["clip.mp4"].read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match=r"broken\.mp4: not a readable video \(.+\)"):
        probe(broken)


def test_text_file_named_mp4_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(MediaError, match=r"notes\.mp4: not a readable video"):
        probe(fake)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "nothing.mp4")


def test_ffmpeg_env_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("FFMPEG", str(fake))
    media.find_ffmpeg.cache_clear()
    try:
        assert find_ffmpeg() == str(fake)
    finally:
        media.find_ffmpeg.cache_clear()


def test_bad_ffmpeg_env_variable_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFMPEG", "/nonexistent/ffmpeg")
    media.find_ffmpeg.cache_clear()
    try:
        with pytest.raises(UserError, match=r"\$FFMPEG=/nonexistent/ffmpeg is not an executable"):
            find_ffmpeg()
    finally:
        media.find_ffmpeg.cache_clear()


def test_falls_back_to_bundled_ffmpeg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    media.find_ffmpeg.cache_clear()
    try:
        found = find_ffmpeg()
    finally:
        media.find_ffmpeg.cache_clear()
    assert "imageio_ffmpeg" in found and os.access(found, os.X_OK)
    assert shutil.which("ffmpeg", path=str(tmp_path)) is None
