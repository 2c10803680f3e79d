"""What LLaMA-Factory's Qwen-VL paths do with one video, replayed without a GPU or a model.

Each function is the arithmetic of one place in LLaMA-Factory 0.9.5 (unchanged up to 0.9.6.dev,
`src/llamafactory/data/mm_plugin.py`) or transformers 5.x, kept importable on its own so that the
preflight check and a later frame pre-sampler compute exactly what the trainer will:

- `read_stream` reads what `av.open(video)` and its first video stream report (frame count,
  stream duration, time base, average rate, size), as `MMPluginMixin._regularize_videos` and
  `Qwen2VLPlugin._get_qwen_video_stream_metadata` read them. No frame is decoded.
- `sample_indices` is `MMPluginMixin._get_video_sample_indices`.
- `regularized_size` is `Qwen2VLPlugin._get_qwen_video_size_after_regularization`, the frame
  size that `MMPluginMixin._preprocess_image` + `Qwen2VLPlugin._preprocess_image` produce.
- `smart_resize` is transformers' `models/qwen2_vl/image_processing_qwen2_vl.smart_resize`
  (Qwen2-VL, Qwen2.5-VL); `qwen3_smart_resize` is `models/qwen3_vl/video_processing_qwen3_vl.
  smart_resize`, which `Qwen3VLPlugin._get_qwen_video_resize` calls with the frame count: its pixel
  bounds hold for all the frames together.
- `video_tokens` is the grid of `Qwen2VLPlugin._get_qwen_video_grid_metadata` and the expansion
  of `Qwen2VLPlugin.process_messages` (grid t*h*w // merge_size**2 `<|video_pad|>` tokens).

`tests/manual/compare_llamafactory.py` runs these side by side with the real functions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from pyutils.core.media import header_gaps, hidden_frames

# LLaMA-Factory's defaults (hparams/model_args.py, hparams/data_args.py), under its own names.
VIDEO_FPS = 2.0
VIDEO_MAXLEN = 128
VIDEO_MAX_PIXELS = 256 * 256
VIDEO_MIN_PIXELS = 16 * 16
CUTOFF_LEN = 2048

# The Qwen2-VL / Qwen2.5-VL vision encoder (preprocessor_config.json of Qwen2-VL-7B-Instruct and
# Qwen2.5-VL-7B-Instruct): 14-pixel patches, 2 frames per temporal patch, 2x2 patches merged per
# token, and the processor's own pixel bounds (`min_pixels`, `max_pixels`), which smart_resize
# applies after LLaMA-Factory's own VIDEO_MIN_PIXELS/VIDEO_MAX_PIXELS resize.
PATCH_SIZE = 14
TEMPORAL_PATCH_SIZE = 2
MERGE_SIZE = 2
PROCESSOR_MIN_PIXELS = 56 * 56
PROCESSOR_MAX_PIXELS = 28 * 28 * 16384
QWEN2_VL, QWEN3_VL = "qwen2_vl", "qwen3_vl"  # LLaMA-Factory's mm_plugin names


@dataclass(frozen=True)
class VisionConfig:
    """The processor values `_get_qwen_video_grid_metadata` reads (`patch_size`,
    `temporal_patch_size`, `merge_size`, `size.shortest_edge/longest_edge`), and which plugin
    reads them (`plugin`: Qwen2VLPlugin or Qwen3VLPlugin)."""

    patch_size: int = PATCH_SIZE
    temporal_patch_size: int = TEMPORAL_PATCH_SIZE
    merge_size: int = MERGE_SIZE
    min_pixels: int = PROCESSOR_MIN_PIXELS
    max_pixels: int = PROCESSOR_MAX_PIXELS
    plugin: str = QWEN2_VL

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


# Qwen3-VL's video processor as its models publish it (video_preprocessor_config.json of
# Qwen3-VL-2B/4B/8B/32B-Instruct: 16-pixel patches, `size` {"shortest_edge": 4096,
# "longest_edge": 25165824}); transformers' class defaults (128 and 768 x 32 x 32) are not what a
# model folder loads, so the published file is the default here.
QWEN3_VISION = VisionConfig(patch_size=16, min_pixels=4096, max_pixels=25165824, plugin=QWEN3_VL)


@dataclass(frozen=True)
class Budget:
    """The trainer settings that decide frames and tokens (LLaMA-Factory's names)."""

    video_fps: float = VIDEO_FPS
    video_maxlen: int = VIDEO_MAXLEN
    video_max_pixels: int = VIDEO_MAX_PIXELS
    video_min_pixels: int = VIDEO_MIN_PIXELS
    cutoff_len: int = CUTOFF_LEN


@dataclass(frozen=True)
class StreamInfo:
    """A video's first video stream as PyAV reports it, with nothing filled in.

    `frames` is `stream.frames` (0 when the container has no count: Matroska, WebM, fragmented
    MP4); `duration` is `float(stream.duration * stream.time_base)`, None when the stream has no
    duration; `container_seconds` is the container's duration (what a player shows).
    """

    frames: int
    duration: float | None
    average_fps: float | None
    width: int
    height: int
    container_seconds: float | None
    codec: str
    hidden: int = 0  # of `frames`, those decoding never yields (edit list: `hidden_frames`)

    @property
    def decodable(self) -> int:
        """Frames `container.decode(video_stream)` yields: the ones the edit list shows."""
        return self.frames - self.hidden


def read_stream(path: str | os.PathLike[str]) -> StreamInfo:
    """Open `path` as `av.open(video, "r")` does and read its first video stream's header.

    Raises `av.FFmpegError` / `OSError` for what PyAV cannot open, `ValueError` when there is
    no video stream (LLaMA-Factory's `next(...)` then raises StopIteration).
    """
    import av  # here, so the arithmetic above imports without PyAV

    with av.open(os.fspath(path), "r", metadata_errors="ignore") as container:
        stream = next((s for s in container.streams if s.type == "video"), None)
        if stream is None:
            raise ValueError("no video stream")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        rate = stream.average_rate
        container_seconds = container.duration / av.time_base if container.duration else None
        return StreamInfo(
            frames=stream.frames,
            duration=duration,
            average_fps=float(rate) if rate else None,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            container_seconds=container_seconds,
            codec=stream.codec_context.name,
            hidden=hidden_frames(container.format.name, stream),
        )


def misread_reason(info: StreamInfo) -> str:
    """Why LLaMA-Factory would misread this stream ("" when it reads it as intended).

    With no frame count `_get_video_sample_indices` takes the video as infinite and keeps its
    *first* VIDEO_MAXLEN decoded frames; with no stream duration the token metadata path gives
    up and the decode path times the frames as 1/VIDEO_FPS apart (or, with a frame count,
    multiplies None and fails); with no average rate `float(average_rate)` fails; with frames
    an edit list hides, the indices are spread over more frames than decoding yields, and the
    picks past the last shown frame are never decoded (`frames_fed`). The probe
    records the same for each video (`VideoInfo.header_gaps`), so a cached probe answers this
    without opening the file.
    """
    return header_gaps(info.frames, info.duration, info.average_fps, info.hidden)


def linspace_int(stop: float, num: int) -> list[int]:
    """`np.linspace(0, stop, num).astype(np.int32)` in plain Python, bit for bit.

    NumPy computes element i as `i * (stop / (num - 1)) + 0` and sets the last one to `stop`;
    a single element is `[0]`. The cast truncates toward zero.
    """
    if num <= 0:
        return []
    if num == 1:
        return [0]
    step = stop / (num - 1)
    values = [float(i) * step + 0.0 for i in range(num)]
    values[-1] = float(stop)
    return [int(v) for v in values]


def sample_indices(frames: int, duration: float | None, fps: float, maxlen: int) -> list[int]:
    """`MMPluginMixin._get_video_sample_indices(video_stream, video_fps, video_maxlen)`.

        total_frames = video_stream.frames
        if total_frames == 0:  # infinite video
            return np.linspace(0, video_maxlen - 1, video_maxlen).astype(np.int32)
        sample_frames = max(1, math.floor(float(duration * time_base) * video_fps))
        sample_frames = min(total_frames, video_maxlen, sample_frames)
        return np.linspace(0, total_frames - 1, sample_frames).astype(np.int32)

    `duration` is the stream duration in seconds; None with a frame count fails there as it
    does in LLaMA-Factory (None * time_base).
    """
    if frames == 0:
        return linspace_int(maxlen - 1, maxlen)
    if duration is None:
        raise TypeError("stream has a frame count but no duration: LLaMA-Factory fails here")
    wanted = max(1, math.floor(duration * fps))
    return linspace_int(frames - 1, min(frames, maxlen, wanted))


def frames_fed(indices: list[int], decodable: int) -> int:
    """Frames `_regularize_videos` collects: decoded frames whose index is sampled, then one
    repeated if the count is odd (`if len(frames) % 2 != 0: frames.append(frames[-1])`). Its
    loop `for frame_idx, frame in enumerate(container.decode(video_stream)): if frame_idx in
    sample_indices` numbers the frames decoding yields, so an index at or past `decodable` (the
    "infinite video" guess, or `stream.frames` counting frames an edit list hides) takes none."""
    count = len({i for i in indices if i < decodable})
    return count + count % 2


def regularized_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """`Qwen2VLPlugin._get_qwen_video_size_after_regularization`: (width, height) of each frame
    after `_preprocess_image` (scale by sqrt(max/(w*h)) and truncate when over `max_pixels`,
    likewise up to `min_pixels`, at least 28 on each side, aspect ratio at most 200)."""
    if width * height > max_pixels:
        factor = math.sqrt(max_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    if width * height < min_pixels:
        factor = math.sqrt(min_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    if min(width, height) < 28:
        width, height = max(width, 28), max(height, 28)
    if width / height > 200:
        width, height = height * 180, height
    if height / width > 200:
        width, height = width, width * 180
    return width, height


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 14 * 14 * 4 * 1280,
) -> tuple[int, int]:
    """transformers' Qwen2-VL `smart_resize`: (height, width), both multiples of `factor`,
    nearest to the input (Python's round: halves go to even), pixels within the bounds."""
    return _within_bounds(height, width, factor, min_pixels, max_pixels)


def qwen3_smart_resize(
    num_frames: int,
    height: int,
    width: int,
    temporal_factor: int = 2,
    factor: int = 32,
    min_pixels: int = 4096,
    max_pixels: int = 25165824,
) -> tuple[int, int]:
    """transformers' Qwen3-VL video `smart_resize` as LLaMA-Factory's pin (transformers
    <= 5.8.0) has it: like Qwen2-VL's, but the bounds are on frames x height x width (the frame
    count rounded up to `temporal_factor`), so more frames means smaller ones, and a side under
    `factor` raises (later transformers scale it up instead)."""
    if height < factor or width < factor:
        raise ValueError(f"height:{height} or width:{width} must be larger than factor:{factor}")
    rounded = math.ceil(num_frames / temporal_factor) * temporal_factor
    return _within_bounds(height, width, factor, min_pixels, max_pixels, num_frames, rounded)


def _within_bounds(
    height: int,
    width: int,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    frames: int = 1,
    rounded_frames: int = 1,
) -> tuple[int, int]:
    """The arithmetic both smart_resizes share, on `frames` frames (1: Qwen2-VL's, per image):
    the nearest multiples of `factor`, scaled down (up) by the square root of the pixels'
    excess (shortfall) when `rounded_frames` x the result is over (under) the bounds."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got "
            f"{max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if rounded_frames * h_bar * w_bar > max_pixels:
        beta = math.sqrt((frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif rounded_frames * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def video_grid(
    frames: int, width: int, height: int, budget: Budget, vision: VisionConfig
) -> tuple[int, int, int]:
    """`video_grid_thw` of `_get_qwen_video_grid_metadata` for `frames` sampled frames of a
    `width` x `height` video: the even frame count, the regularized size, then the plugin's
    `_get_qwen_video_resize` (Qwen2VLPlugin: smart_resize; Qwen3VLPlugin: the Qwen3-VL one)."""
    frames += frames % 2
    w, h = regularized_size(width, height, budget.video_max_pixels, budget.video_min_pixels)
    if vision.plugin == QWEN3_VL:
        resized_h, resized_w = qwen3_smart_resize(
            frames,
            h,
            w,
            vision.temporal_patch_size,
            vision.factor,
            vision.min_pixels,
            vision.max_pixels,
        )
    else:
        resized_h, resized_w = smart_resize(
            h, w, vision.factor, vision.min_pixels, vision.max_pixels
        )
    return (
        math.ceil(frames / vision.temporal_patch_size),
        resized_h // vision.patch_size,
        resized_w // vision.patch_size,
    )


def video_tokens(grid: tuple[int, int, int], vision: VisionConfig) -> int:
    """`<|video_pad|>` tokens one `<video>` expands to: `video_grid_thw.prod() // merge_length`."""
    t, h, w = grid
    return t * h * w // vision.merge_size**2


# ---- a video given as a list of frame images -----------------------------------------------
# `_regularize_videos` takes a list of frame paths (`_check_video_is_nested_images`) as it is:
# no sampling, no VIDEO_MAXLEN cap, every frame through `_preprocess_image`, and it assumes they
# were sampled VIDEO_FPS apart: `fps_per_video.append(video_fps)`, `durations.append(len(frames) /
# video_fps)`, `frames_indices.append(list(range(len(frames))))`. From the video itself it has
# `fps_per_video = len(sample_indices) / duration` and `frames_indices = [idx / average_fps *
# video_fps for idx in sample_indices]`. Qwen2-VL uses neither; the two below say whether the
# models that do see the same thing.


def second_per_grid(sampled: int, duration: float, temporal_patch_size: int = TEMPORAL_PATCH_SIZE):
    """Qwen2.5-VL's `second_per_grid_ts` for a video: `temporal_patch_size / fps_per_video`,
    with `fps_per_video = len(sample_indices) / duration` (Qwen2VLPlugin._get_mm_inputs)."""
    return temporal_patch_size / (sampled / duration)


def qwen25_same_positions(sampled: int, duration: float, video_fps: float) -> bool:
    """Whether Qwen2.5-VL gives a frame list the temporal position ids of its video.

    Its `get_rope_index` multiplies the temporal grid index by `second_per_grid_t` and
    `tokens_per_second` after casting `second_per_grid_t` to the index's integer dtype
    (transformers 4.5x: `torch.as_tensor(second_per_grid_t, dtype=range_tensor.dtype)`; 5.x:
    `tokens_per_second * int(next(second_per_grid_ts))`), so only the integer part counts: the
    video's `2 / (sampled / duration)` against the list's `2 / video_fps`.
    """
    return int(second_per_grid(sampled, duration)) == int(TEMPORAL_PATCH_SIZE / video_fps)


def qwen3_timestamps(frames_indices: list[float], video_fps: float) -> list[str]:
    """The `<t seconds>` text Qwen3-VL puts before each temporal patch: the processor's
    `_calculate_timestamps(frames_indices, video_fps, merge_size=2)` (pad to an even count with
    the last index, `idx / video_fps`, mean of each pair), formatted `{:.1f}` as
    `Qwen3VLPlugin.process_messages` writes it."""
    indices = list(frames_indices)
    if len(indices) % TEMPORAL_PATCH_SIZE:
        indices += [indices[-1]] * (TEMPORAL_PATCH_SIZE - len(indices) % TEMPORAL_PATCH_SIZE)
    seconds = [idx / video_fps for idx in indices]
    pairs = range(0, len(seconds), TEMPORAL_PATCH_SIZE)
    return [f"{(seconds[i] + seconds[i + TEMPORAL_PATCH_SIZE - 1]) / 2:.1f}" for i in pairs]


def qwen3_same_timestamps(indices: list[int], average_fps: float, video_fps: float) -> bool:
    """Whether Qwen3-VL writes the same timestamps for a frame list as for its video: the video's
    frames are `idx / average_fps` s into it, the list's are assumed `i / video_fps`."""
    from_video = [idx / average_fps * video_fps for idx in indices]
    from_list = [float(i) for i in range(len(indices))]
    return qwen3_timestamps(from_video, video_fps) == qwen3_timestamps(from_list, video_fps)
