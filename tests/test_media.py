from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import orjson
import pytest

from pyutils.core import media
from pyutils.core.errors import MediaError, UserError
from pyutils.core.media import choose_ffmpeg, describe_ffmpeg, find_ffmpeg, parse_version, probe
from tests.conftest import (
    SAMPLE_VIDEOS,
    bundled_ffmpeg,
    calls,
    decoded_frame_count,
    old_ffmpeg_script,
    run_module,
)


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


def test_ffmpeg_env_variable_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_choice: None
) -> None:
    ubuntu = "4.4.2-0ubuntu0.22.04.1"
    script = old_ffmpeg_script(tmp_path / "mine", bundled_ffmpeg(), version=ubuntu)
    monkeypatch.setenv("FFMPEG", str(script))
    choice = choose_ffmpeg()
    assert find_ffmpeg() == str(script)
    assert choice.why == "set by FFMPEG" and choice.tool.version == "4.4.2"
    assert not choice.tool.input_bsf  # the user's word is final, even for an old ffmpeg


def test_bad_ffmpeg_env_variable_is_a_user_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_choice: None
) -> None:
    monkeypatch.setenv("FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(UserError, match=r"\$FFMPEG=/nonexistent/ffmpeg is not an executable"):
        find_ffmpeg()
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\n")
    silent.chmod(0o755)
    monkeypatch.setenv("FFMPEG", str(silent))
    media.choose_ffmpeg.cache_clear()
    with pytest.raises(UserError, match=r"silent does not answer `-version` as ffmpeg does"):
        find_ffmpeg()


def test_falls_back_to_bundled_ffmpeg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_choice: None
) -> None:
    monkeypatch.delenv("FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    choice = choose_ffmpeg()
    assert "imageio_ffmpeg" in choice.tool.path and os.access(choice.tool.path, os.X_OK)
    assert shutil.which("ffmpeg", path=str(tmp_path)) is None
    assert choice.why == "bundled: no ffmpeg on PATH"
    assert choice.tool.capable and choice.tool.version == "9.0.2"  # imageio-ffmpeg 0.8.1's


def test_old_ffmpeg_on_path_gives_way_to_the_bundled_one(
    old_ffmpeg: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    monkeypatch.delenv("FFMPEG", raising=False)
    monkeypatch.setenv("PATH", f"{old_ffmpeg.parent}{os.pathsep}{os.environ['PATH']}")
    old = media.inspect_ffmpeg(str(old_ffmpeg))
    assert old.version and not old.input_bsf  # 5.1.9 (the fake, Debian 12), 4.4.2 (Ubuntu)...
    choice = choose_ffmpeg()
    assert choice.tool.path == bundled_ffmpeg()
    assert choice.why == f"bundled: PATH's {old.version} {old.shortcomings()}"
    assert old.shortcomings().startswith("cannot seek by input bitstream filter")
    assert describe_ffmpeg() == f"ffmpeg 9.0.2 at {bundled_ffmpeg()} ({choice.why})"
    # what it was asked: its version, encoders, filters, and one input bitstream filter trial
    asked = calls(old_ffmpeg)
    assert len(asked) == 4 and sum("-bsf:v" in line for line in asked) == 1


def test_capable_ffmpeg_on_path_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    wrapper = old_ffmpeg_script(tmp_path / "bin", bundled_ffmpeg(), version=None)
    monkeypatch.delenv("FFMPEG", raising=False)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    assert choose_ffmpeg().tool.path == str(wrapper)
    assert choose_ffmpeg().why == "on PATH"


def test_what_an_ffmpeg_can_do_is_found_out_once(tmp_path: Path) -> None:
    script = old_ffmpeg_script(tmp_path / "bin", bundled_ffmpeg())
    first = media.inspect_ffmpeg(str(script))
    media.inspect_ffmpeg.cache_clear()  # a new run: only the disk cache remains
    assert media.inspect_ffmpeg(str(script)) == first
    assert len(calls(script)) == 4  # the second run read the cache
    stored = orjson.loads(media.tools_cache_path().read_bytes())["tools"][str(script)]
    assert stored["version"] == "5.1.9" and stored["input_bsf"] is False
    script.write_text(script.read_text().replace("5.1.9", "6.0.1"))  # an upgrade: new size
    media.inspect_ffmpeg.cache_clear()
    assert media.inspect_ffmpeg(str(script)).version == "6.0.1"
    assert len(calls(script)) == 8


def test_an_ffmpeg_without_libx264_is_refused_before_transcoding(
    sample_videos: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_choice: None,
) -> None:
    real = bundled_ffmpeg()
    lacking = tmp_path / "lacking" / "ffmpeg"  # lists no libx264 encoder
    lacking.parent.mkdir()
    lacking.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {tmp_path}/lacking/calls.log\n'
        f'case "$*" in *-encoders*) {real} "$@" | grep -v libx264; exit 0;; esac\n'
        f'exec {real} "$@"\n'
    )
    lacking.chmod(0o755)
    (tmp_path / "originals").mkdir()
    shutil.copy(sample_videos["clip.mp4"], tmp_path / "originals" / "x.mp4")
    monkeypatch.setenv("FFMPEG", str(lacking))
    result = run_module(
        "pyutils.video.transcode", str(tmp_path / "originals"), str(tmp_path / "mp4")
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"vlprep: error: ffmpeg 9.0.2 at {lacking} (set by FFMPEG) has no libx264, which transcode "
        "needs: set FFMPEG= to an ffmpeg that has, or unset it to use the bundled one "
        "(`make setup`)"
    )
    assert len(calls(lacking)) == 4  # the capability questions, and no transcoding attempt
    assert not (tmp_path / "mp4").exists()


@pytest.mark.parametrize(
    ("first_line", "version"),
    [
        ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2025", "5.1.9"),
        ("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright", "4.4.2"),
        ("ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright", "9.0.2"),
        ("ffmpeg version N-113000-g0123abcd Copyright", "N-113000-g0123abcd"),
        ("ffmpeg version 7.1 Copyright", "7.1"),
        ("usage: something else", ""),
    ],
)
def test_parse_version(first_line: str, version: str) -> None:
    assert parse_version(first_line + "\nbuilt with gcc") == version
