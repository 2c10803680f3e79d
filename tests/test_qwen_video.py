"""LLaMA-Factory / Qwen2-VL arithmetic against cases worked by hand (and NumPy's linspace)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyutils.devtools.sample import make_video
from pyutils.llamafactory.qwen_video import (
    Budget,
    VisionConfig,
    frames_fed,
    linspace_int,
    misread_reason,
    qwen3_same_timestamps,
    qwen3_timestamps,
    qwen25_same_positions,
    read_stream,
    regularized_size,
    sample_indices,
    smart_resize,
    video_grid,
    video_tokens,
)

DEFAULTS = Budget()  # VIDEO_FPS 2, VIDEO_MAXLEN 128, VIDEO_MAX_PIXELS 65536, VIDEO_MIN_PIXELS 256
QWEN = VisionConfig()  # patch 14, merge 2, temporal 2, processor min 3136, max 12845056


# ---- _get_video_sample_indices ---------------------------------------------------------------


def test_three_seconds_at_25_fps_gives_six_frames() -> None:
    # floor(3.0 s x 2) = 6 < 75 frames, < 128; linspace(0, 74, 6): step 14.8 -> 0 14.8 29.6 ...
    assert sample_indices(75, 3.0, 2.0, 128) == [0, 14, 29, 44, 59, 74]


def test_odd_frame_count_is_padded_to_even() -> None:
    # 7 frames over 3.5 s: floor(7.0) = 7 samples, every frame; the plugin repeats the last.
    indices = sample_indices(7, 3.5, 2.0, 128)
    assert indices == [0, 1, 2, 3, 4, 5, 6]
    assert frames_fed(indices, 7) == 8
    # 8 frames -> 4 temporal patches of a 320x240 video (295x221 -> 224x308 -> 16 x 22 patches)
    assert video_grid(7, 320, 240, DEFAULTS, QWEN) == (4, 16, 22)
    assert video_tokens((4, 16, 22), QWEN) == 4 * 16 * 22 // 4 == 352


def test_video_shorter_than_one_sample_interval_gives_one_frame() -> None:
    # 0.3 s < 1 / VIDEO_FPS: floor(0.6) = 0, max(1, 0) = 1 sample, index 0, padded to 2 frames.
    indices = sample_indices(9, 0.3, 2.0, 128)
    assert indices == [0]
    assert frames_fed(indices, 9) == 2
    assert video_grid(1, 320, 240, DEFAULTS, QWEN)[0] == 1


def test_long_video_stops_at_maxlen() -> None:
    # 100 s x 2 = 200 > 128: 128 samples over 3000 frames, step 2999/127 = 23.614...
    indices = sample_indices(3000, 100.0, 2.0, 128)
    assert len(indices) == 128
    assert indices[:4] == [0, 23, 47, 70] and indices[-1] == 2999


def test_no_frame_count_is_an_infinite_video() -> None:
    # stream.frames == 0 (mkv, webm): the first VIDEO_MAXLEN decoded frames, whatever the length.
    assert sample_indices(0, None, 2.0, 128) == list(range(128))
    assert frames_fed(list(range(128)), 45) == 46  # a 45-frame video: all 45, plus one repeat
    with pytest.raises(TypeError):
        sample_indices(30, None, 2.0, 128)  # a count but no duration: LLaMA-Factory fails too


@given(
    st.integers(min_value=1, max_value=100_000),
    st.floats(min_value=0.01, max_value=20_000, allow_nan=False),
    st.floats(min_value=0.1, max_value=30),
    st.integers(min_value=1, max_value=512),
)
def test_indices_equal_numpy(frames: int, seconds: float, fps: float, maxlen: int) -> None:
    wanted = min(frames, maxlen, max(1, int(np.floor(seconds * fps))))
    expected = np.linspace(0, frames - 1, wanted).astype(np.int32).tolist()
    assert sample_indices(frames, seconds, fps, maxlen) == expected


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(0, 600))
def test_linspace_equals_numpy(stop: float, num: int) -> None:
    assert linspace_int(stop, num) == np.linspace(0, stop, num).astype(np.int32).tolist()


# ---- _preprocess_image / _get_qwen_video_size_after_regularization --------------------------


def test_frames_over_max_pixels_are_scaled_down_and_truncated() -> None:
    # 640x360 = 230,400 > 65,536: factor sqrt(65536/230400) = 0.5333..; 341.33 -> 341, 192.0
    assert regularized_size(640, 360, 65536, 256) == (341, 192)
    # then smart_resize: round(192/28 = 6.86) = 7 -> 196, round(341/28 = 12.18) = 12 -> 336
    assert smart_resize(192, 341, 28, 3136, 12845056) == (196, 336)
    assert video_grid(6, 640, 360, DEFAULTS, QWEN) == (3, 14, 24)  # 3 x 14 x 24 / 4 = 252 tokens


def test_frames_under_min_pixels_are_scaled_up_then_to_28() -> None:
    # 12x10 = 120 < 256: factor sqrt(256/120) = 1.4606; 17.53 -> 17, 14.61 -> 14 (238 pixels:
    # still under, LLaMA-Factory does not repeat), then each side at least 28.
    assert regularized_size(12, 10, 65536, 256) == (28, 28)
    # smart_resize: 28x28 = 784 < processor min 3136: beta = sqrt(3136/784) = 2 -> 56x56.
    assert smart_resize(28, 28, 28, 3136, 12845056) == (56, 56)
    assert video_grid(2, 12, 10, DEFAULTS, QWEN) == (1, 4, 4)


def test_extreme_aspect_ratio_is_cut_to_180() -> None:
    # 10000x20: factor sqrt(65536/200000) = 0.5724 -> 5724x11 -> 5724x28 (ratio 204 > 200)
    # -> width = 28 x 180.
    assert regularized_size(10000, 20, 65536, 256) == (5040, 28)


def test_smart_resize_caps_the_processor_max_and_rounds_half_to_even() -> None:
    # 1920x1080 with max 602112: 1092x1932 too big; beta = sqrt(1080*1920/602112) = 1.8558;
    # floor(1080/1.8558/28) = 20 -> 560, floor(1920/1.8558/28) = 36 -> 1008.
    assert smart_resize(1080, 1920, 28, 3136, 602112) == (560, 1008)
    # Python's round: 42/28 = 1.5 -> 2, 70/28 = 2.5 -> 2 (half to even), both 56.
    assert smart_resize(42, 70, 28, 1, 10**9) == (56, 56)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)


# ---- the stream header as PyAV gives it -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "misread"),
    [("a.mp4", ""), ("a.mkv", "no frame count and no stream duration"), ("a.webm", "no frame")],
)
def test_pyav_header_of_each_container(tmp_path: Path, name: str, misread: str) -> None:
    info = read_stream(make_video(tmp_path / name, 1.2, width=64, height=48, fps=10))
    assert (info.width, info.height, info.average_fps) == (64, 48, 10.0)
    assert misread_reason(info).startswith(misread)
    if not misread:
        assert (info.frames, info.duration) == (12, 1.2)
    else:
        assert (info.frames, info.duration) == (0, None)
        assert info.container_seconds == pytest.approx(1.2, abs=0.05)


# ---- a video given as a list of its frames: what the timing models see -----------------------


def test_qwen25_keeps_only_the_integer_part_of_second_per_grid() -> None:
    # 30.3 s, 60 frames (floor(60.6)): 2 / (60 / 30.3) = 1.01 -> 1, as the list's 2 / 2.0
    assert qwen25_same_positions(60, 30.3, 2.0)
    # capped: 128 frames of 100 s: 1.5625 -> 1, still the same positions
    assert qwen25_same_positions(128, 100.0, 2.0)
    # 128 frames of 180 s: 2.8125 -> 2, against the list's 1: timed as 64 s instead of 180
    assert not qwen25_same_positions(128, 180.0, 2.0)
    # VIDEO_FPS 1, a 1.9 s video sampled once: 2 / (1 / 1.9) = 3.8 -> 3 against 2
    assert not qwen25_same_positions(1, 1.9, 1.0)


def test_qwen3_timestamps_are_pair_means_to_one_decimal() -> None:
    assert qwen3_timestamps([0.0, 1.0, 2.0], 2.0) == ["0.2", "1.0"]  # 0.25 rounds to even
    assert qwen3_timestamps([0.0], 2.0) == ["0.0"]
    # 10 frames picked over 5 s at 25 fps are 0.52 s apart, the list assumes 0.5: they drift.
    picks = sample_indices(125, 5.0, 2.0, 128)
    assert picks[:4] == [0, 13, 27, 41]
    assert not qwen3_same_timestamps(picks, 25.0, 2.0)
    assert qwen3_same_timestamps([0], 25.0, 2.0)  # one frame: "0.0" either way
    assert qwen3_same_timestamps([0, 25, 50, 75], 25.0, 1.0)  # exactly 1/VIDEO_FPS apart
