"""Compare vlprep's replay of LLaMA-Factory's Qwen-VL video paths with the real ones (manual).

Needs a separate environment with torch (CPU is enough), transformers (with
`transformers.models.qwen3_vl`) and PyAV, and a checkout of LLaMA-Factory's `src/` (no model
weights: the processors are built from the models' config values; torchvision is not needed):

    python3 -m venv /tmp/lf
    /tmp/lf/bin/pip install torch transformers av pillow peft ffmpeg-python numpy tokenizers
    FFMPEG=$(.venv/bin/python -c 'import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())') \
        /tmp/lf/bin/python tests/manual/compare_llamafactory.py --source LLaMA-Factory/src

For generated videos (mp4, mkv, webm VP8/VP9; odd frame counts, shorter than 1/VIDEO_FPS, over
VIDEO_MAXLEN, over and under the pixel caps; MP4s with an edit list, cut by `ffmpeg -ss -c copy`)
and several trainer settings it compares, for Qwen2-VL (`Qwen2VLPlugin`, a processor of config
values):
- sample indices: `MMPluginMixin._get_video_sample_indices` on the PyAV stream;
- the video grid and token count: `Qwen2VLPlugin._get_qwen_video_grid_metadata` (tokens =
  grid.prod() // merge_size**2, as `process_messages` expands `<video>`);
- what decoding gives: `Qwen2VLPlugin._regularize_videos` (frames fed, frame size after
  `_preprocess_image`), then transformers' `smart_resize`, for every video, including the mkv/webm
  ones where the metadata path gives up; for an edit-list MP4 (the metadata path counts picks
  that decoding never reaches), whether video features and tokens disagree, as vlprep predicts;
for Qwen2.5-VL (`Qwen2VLPlugin._get_mm_inputs` with transformers' `Qwen2_5_VLProcessor` and
`Qwen2VLVideoProcessor` built offline, whose `model_input_names` carry `second_per_grid_ts`):
- `second_per_grid_ts` (`temporal_patch_size / fps_per_video`, `fps_per_video =
  len(sample_indices) / duration`, or VIDEO_FPS without a stream duration) against
  `qwen_video.second_per_grid`, its integer part (what `get_rope_index` uses), and whether the
  fit's Qwen2.5-VL timing traps fire for it; the `video_grid_thw` of the real video processor;
for Qwen3-VL (`Qwen3VLPlugin`, transformers' `Qwen3VLProcessor` and `Qwen3VLVideoProcessor` built
offline: 16-pixel patches, the published `size` 4096..25165824, one with longest_edge 200000 so
the frames x height x width bound bites, and transformers' class defaults 131072..786432):
- sample indices, `video_grid_thw` of `_get_qwen_video_grid_metadata` (`_get_qwen_video_resize`:
  transformers' Qwen3-VL `smart_resize` with the frame count) against `qwen_video.video_grid`;
- the `<video>` expansion of `Qwen3VLPlugin.process_messages` (`<t seconds><|vision_start|>` +
  pads + `<|vision_end|>` per temporal patch, timestamps from `processor._calculate_timestamps`):
  its `<|video_pad|>` count, its timestamp strings, its markers and its token count with the
  script's tokenizer, against `replay.Replay.price` (same tokenizer, so exact);
- the decode path, `Qwen3VLPlugin._get_mm_inputs` through the real video processor: its
  `video_grid_thw` against the metadata path's and vlprep's (for mkv/webm, where the metadata
  path gives up, against vlprep's count of the frames decoded), the timestamps of the
  `video_metadata` it returns, and for an edit-list MP4 whether features and tokens disagree;
- text + video tokens of a whole sample (the video first, and after text; a multi-turn one with
  a thought in one answer): `Template.encode_multiturn` of LLaMA-Factory's `qwen2_vl`, `qwen3_vl`
  (a ReasoningTemplate: an empty thought in each answer without one) and `qwen3_vl_nothink`
  templates after their plugin's `process_messages`, with a small tokenizer built here (Qwen2's
  pre-tokenizer, every byte in its alphabet), against vlprep's count (template render + price).
- pre-sampled frames (`make activitynet_qa PRESAMPLE=1`): for videos of natural-looking lavfi
  sources (mandelbrot, life) and testsrc2, mkv, webm, a BT.709-tagged one, one shorter than
  1/VIDEO_FPS and one small enough to be scaled up, `_regularize_videos` of the video against
  `_regularize_videos` of vlprep's frame list (of the MP4 remux where the trainer misreads the
  original: mkv, webm, an edit list): as many frames, the same sizes, the Qwen2.5-VL
  `second_per_grid_ts` integer part and the Qwen3-VL timestamps as vlprep predicts them, and the
  PSNR of each of vlprep's JPEGs against the trainer's own decoded-and-resized frame (printed
  per video, and checked to be at least PSNR_FLOOR dB).
Without torchvision (its wheel does not load beside the CPU torch) transformers' video
processors cannot run: the processor is then built from its values alone (what the metadata path
and `process_messages` read), and every check that runs the video processor (the decode paths,
Qwen2.5-VL's `second_per_grid_ts`) is printed as skipped.
Prints one line per comparison and a count per section, and exits 1 on any difference; exits 0
with a note when torch is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import importlib.machinery
import json
import math
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyutils.devtools import sample  # noqa: E402
from pyutils.llamafactory import fit, presample, qwen_video, remux, replay  # noqa: E402

# Pre-sampled frames: name, lavfi source (size, rate and duration appended), ffmpeg arguments.
H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
LIFE = "life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00"
PRESAMPLE_VIDEOS = [
    ("mandelbrot.mp4", "mandelbrot", 640, 360, 25, 6.0, H264),
    ("mandelbrot_720.mp4", "mandelbrot", 1280, 720, 25, 6.0, H264),
    ("life.mp4", LIFE, 640, 360, 25, 6.0, H264),
    ("testsrc2.mp4", "testsrc2", 640, 360, 25, 6.0, H264),
    ("testsrc2_720.mp4", "testsrc2", 1280, 720, 30, 6.0, H264),
    ("mandelbrot_bt709.mp4", "mandelbrot", 640, 360, 25, 3.0, [*H264, *BT709]),
    ("mandelbrot.mkv", "mandelbrot", 640, 360, 25, 3.0, [*H264, "-f", "matroska"]),
    ("testsrc2.webm", "testsrc2", 320, 240, 25, 2.0, ["-c:v", "libvpx-vp9", "-b:v", "1M"]),
    ("blink.mp4", "testsrc2", 320, 240, 30, 0.3, H264),
    ("tiny.mp4", "testsrc2", 64, 48, 10, 2.0, H264),
]
# Pre-sampled edit-list MP4s (testsrc2): name, seconds, cut at, width, height, fps.
PRESAMPLE_EDIT_LISTS = [("testsrc2_cut.mp4", 6.0, 2.3, 640, 360, 25)]
PRESAMPLE_SETTINGS = [
    qwen_video.Budget(),
    qwen_video.Budget(video_fps=1.0, video_maxlen=4),
    qwen_video.Budget(video_fps=0.5, video_max_pixels=400_000, video_min_pixels=50_000),
]
PSNR_FLOOR = 38.0

SETTINGS = [
    qwen_video.Budget(),
    qwen_video.Budget(video_fps=1.0, video_maxlen=16),
    qwen_video.Budget(video_fps=3.0, video_max_pixels=16384, video_min_pixels=256),
    qwen_video.Budget(video_fps=0.5, video_max_pixels=400_000, video_min_pixels=50_000),
]
# name, seconds, width, height, fps, ffmpeg codec arguments, container
VIDEOS = [
    ("clip.mp4", 3.0, 320, 240, 25, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("odd.mp4", 3.5, 160, 120, 2, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("blink.mp4", 0.3, 320, 240, 30, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("wide.mp4", 4.0, 1280, 720, 30, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("tiny.mp4", 2.0, 12, 10, 10, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("long.mp4", 70.0, 64, 48, 4, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mp4"),
    ("clip.mkv", 3.0, 320, 240, 25, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "matroska"),
    ("clip.webm", 2.0, 320, 240, 25, ["-c:v", "libvpx", "-b:v", "300k"], "webm"),
    ("vp9.webm", 2.0, 320, 240, 25, ["-c:v", "libvpx-vp9", "-b:v", "300k"], "webm"),
]
# name, seconds, cut at, width, height, fps: `make_edit_list_video` (keyframe every second)
EDIT_LIST_VIDEOS = [("cut.mp4", 4.0, 1.3, 320, 240, 25), ("cut_long.mp4", 12.0, 5.3, 640, 360, 30)]

# Qwen3-VL video processors: the published `size` (qwen_video.QWEN3_VISION), one whose
# longest_edge (frames x height x width) bites for all but the smallest videos, and
# transformers' class defaults (shortest_edge 128 x 32 x 32: it scales the small videos up).
QWEN3_SMALL = dataclasses.replace(qwen_video.QWEN3_VISION, max_pixels=200_000)
QWEN3_CLASS = dataclasses.replace(
    qwen_video.QWEN3_VISION, min_pixels=128 * 32 * 32, max_pixels=768 * 32 * 32
)
QWEN3_SETTINGS = [
    *((budget, qwen_video.QWEN3_VISION) for budget in SETTINGS),
    *((SETTINGS[i], QWEN3_SMALL) for i in (0, 1, 3)),
    (SETTINGS[0], QWEN3_CLASS),
]
# Whole samples (sharegpt messages): the video first, as `make activitynet_qa` writes it, with a
# second turn whose answer has a thought of its own (qwen3_vl adds the empty one to the other);
# and the video after text, whose last character the trainer tokenizes with the first `<t
# seconds>` (vlprep counts the two apart).
SAMPLES = {
    "video first": [
        {"role": "user", "content": "<video>what is the man doing in the video?"},
        {"role": "assistant", "content": "he is dancing"},
        {"role": "user", "content": "is he happy?"},
        {"role": "assistant", "content": "<think>\nhe is smiling\n</think>\n\nyes"},
    ],
    "video after text": [
        {"role": "user", "content": "Watch this: <video>what is he doing?"},
        {"role": "assistant", "content": "he is dancing"},
    ],
}
# Qwen2's pre-tokenizer (its tokenizer.json): digits one by one, punctuation runs with the
# newlines after them, a space joined to the word or punctuation after it.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
VIDEO_PAD, VISION_START, VISION_END = "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"
THINK = ("<think>", "</think>")


def stub_module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__path__ = []
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def import_llamafactory(source: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """LLaMA-Factory's mm_plugin and template modules from `source` (its src/ folder), without
    its package __init__ files (which import the whole trainer). Modules that only audio or image
    processing uses are stubbed when absent: torchaudio, HF datasets, and (after transformers
    decided it is unavailable) torchvision, which the CPU torch wheel cannot load."""
    sys.path.insert(0, str(source))
    for package in ("llamafactory", "llamafactory.data", "llamafactory.extras"):
        module = stub_module(package)
        module.__path__ = [str(source / package.replace(".", "/"))]
    for name in ("torchaudio", "datasets"):
        try:
            importlib.import_module(name)
        except ImportError:
            stub_module(
                name,
                DatasetDict=dict,
                concatenate_datasets=None,
                interleave_datasets=None,
                load=None,
            )
    import transformers.image_processing_backends  # noqa: F401
    import transformers.image_utils  # noqa: F401 - decides torchvision is absent first
    import transformers.video_utils  # noqa: F401

    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.v2"):
            stub_module(name)
        stub_module("torchvision.transforms.v2.functional")
    mm_plugin = importlib.import_module("llamafactory.data.mm_plugin")
    template = importlib.import_module("llamafactory.data.template")
    return mm_plugin, template


def make_videos(folder: Path) -> list[Path]:
    from pyutils.core.media import find_ffmpeg  # $FFMPEG, PATH, or imageio-ffmpeg's

    ffmpeg = find_ffmpeg()
    paths = []
    for name, seconds, width, height, fps, codec, muxer in VIDEOS:
        path = folder / name
        source = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"
        args = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *codec]
        subprocess.run([*args, "-f", muxer, str(path)], check=True)
        paths.append(path)
    for name, seconds, start, width, height, fps in EDIT_LIST_VIDEOS:
        video = {"width": width, "height": height, "fps": fps}
        paths.append(sample.make_edit_list_video(folder / name, seconds, start, **video))
    return paths


def processor_for(budget: qwen_video.Budget, vision: qwen_video.VisionConfig) -> SimpleNamespace:
    """What `_get_qwen_video_grid_metadata` reads of a Qwen2-VL processor, from config values
    (Qwen2-VL-7B-Instruct's preprocessor_config.json), plus LLaMA-Factory's video_* settings."""
    video_processor = SimpleNamespace(
        patch_size=vision.patch_size,
        temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.merge_size,
        size={"shortest_edge": vision.min_pixels, "longest_edge": vision.max_pixels},
    )
    return SimpleNamespace(
        image_processor=video_processor,
        video_processor=video_processor,
        video_fps=budget.video_fps,
        video_maxlen=budget.video_maxlen,
        video_max_pixels=budget.video_max_pixels,
        video_min_pixels=budget.video_min_pixels,
    )


def build_tokenizer(folder: Path) -> object:
    """A small byte-level BPE tokenizer with Qwen2's pre-tokenizer and special tokens (and
    Qwen3's `<think>`, `</think>`), every byte in its alphabet, trained here on a few sentences
    and timestamps; saved as tokenizer.json for vlprep and wrapped for LLaMA-Factory."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|im_start|>", "<|im_end|>", VISION_START, VISION_END]
    specials += [VIDEO_PAD, "<|image_pad|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["You are a helpful assistant.", "what is the man doing in the video?", "yes", "no"]
    corpus += ["he is dancing", "is he happy?", "he is smiling", "so what is he doing?"]
    corpus += ["Watch this: <1.5 seconds>", "this: what"]
    corpus += [f"<{t / 2:.1f} seconds>" for t in range(40)] + ["a <b> c", "x < y", "<think>\n"]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus * 50, trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        eos_token="<|im_end|>",
        additional_special_tokens=specials,
    )


class Tally:
    def __init__(self) -> None:
        self.same = self.different = 0
        self.sections: dict[str, list[int]] = {}
        self.current = ""

    def section(self, name: str) -> None:
        print(f"\n== {name}")
        self.current = name
        self.sections.setdefault(name, [0, 0])

    def check(self, what: str, ours: object, theirs: object) -> None:
        counts = self.sections.setdefault(self.current, [0, 0])
        if ours == theirs:
            self.same += 1
            counts[0] += 1
            print(f"same  {what}: {ours}")
        else:
            self.different += 1
            counts[1] += 1
            print(f"DIFF  {what}: vlprep {ours} != LLaMA-Factory {theirs}")

    def skip(self, what: str) -> None:
        self.skipped = getattr(self, "skipped", 0) + 1
        print(f"skip  {what}")


def compare_video(
    plugin: object, path: Path, budget: qwen_video.Budget, tally: Tally, smart_resize: object
) -> None:
    import av

    vision = qwen_video.VisionConfig()
    processor = processor_for(budget, vision)
    label = f"{path.name} fps={budget.video_fps:g} maxlen={budget.video_maxlen} pixels=" + (
        f"{budget.video_min_pixels}..{budget.video_max_pixels}"
    )
    info = qwen_video.read_stream(path)
    header = replay.read_header(str(path))
    cost = replay.video_cost(path.name, header, budget, vision)
    metadata = plugin._get_qwen_video_grid_metadata([str(path)], processor)
    # The metadata path answers for a stream with a frame count, a duration and a rate
    # (`_get_qwen_video_stream_metadata`), misread (an edit list) or not.
    if info.frames and info.duration is not None and info.average_fps:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            theirs = plugin._get_video_sample_indices(stream, budget.video_fps, budget.video_maxlen)
        ours = qwen_video.sample_indices(
            info.frames, info.duration, budget.video_fps, budget.video_maxlen
        )
        tally.check(f"{label}: sample indices", ours, [int(i) for i in theirs])
        grid = [int(x) for x in metadata["video_grid_thw"][0]]
        tally.check(f"{label}: tokens (metadata path)", cost.tokens, grid_tokens(grid, vision))
    else:
        tally.check(f"{label}: metadata path gives up on a misread video", None, metadata)
    regular = plugin._regularize_videos(
        [str(path)],
        image_max_pixels=budget.video_max_pixels,
        image_min_pixels=budget.video_min_pixels,
        video_fps=budget.video_fps,
        video_maxlen=budget.video_maxlen,
    )
    frames = regular["videos"][0]
    width, height = frames[0].size
    height, width = smart_resize(
        height, width, vision.factor, min_pixels=vision.min_pixels, max_pixels=vision.max_pixels
    )
    t = -(-len(frames) // vision.temporal_patch_size)
    decoded = [t, height // vision.patch_size, width // vision.patch_size]
    tally.check(f"{label}: frames fed (decode path)", cost.frames, len(frames))
    if metadata is None or not qwen_video.misread_reason(info):
        tally.check(f"{label}: tokens (decode path)", cost.tokens, grid_tokens(decoded, vision))
    else:  # tokens counted from the picks, features from the frames decoded
        counted = grid_tokens([int(x) for x in metadata["video_grid_thw"][0]], vision)
        predicted = any("will not match" in problem for problem in cost.problems)
        mismatch = counted != grid_tokens(decoded, vision)
        tally.check(f"{label}: features and tokens disagree", predicted, mismatch)


def grid_tokens(grid: list[int], vision: qwen_video.VisionConfig) -> int:
    return grid[0] * grid[1] * grid[2] // vision.merge_size**2


def ints(values: object) -> list[int]:
    return [int(v) for v in values]


def setting_label(path: Path, budget: qwen_video.Budget, vision: qwen_video.VisionConfig) -> str:
    return (
        f"{path.name} fps={budget.video_fps:g} maxlen={budget.video_maxlen} pixels="
        f"{budget.video_min_pixels}..{budget.video_max_pixels} size={vision.min_pixels}.."
        f"{vision.max_pixels}"
    )


def cost_grid(cost: replay.VideoCost, vision: qwen_video.VisionConfig) -> list[int] | None:
    """The grid vlprep's cost stands for: its frames in temporal patches, its resized size."""
    if cost.size is None:
        return None
    t = math.ceil(cost.frames / vision.temporal_patch_size)
    return [t, cost.size[1] // vision.patch_size, cost.size[0] // vision.patch_size]


def hf_processor(
    model: str, budget: qwen_video.Budget, vision: qwen_video.VisionConfig, tokenizer: object
) -> object:
    """transformers' Qwen2.5-VL or Qwen3-VL processor, built offline from config values (the
    image processor and the video processor with `vision`'s patch sizes and `size`, the script's
    tokenizer), with the attributes LLaMA-Factory's `patch_processor` sets (video_fps, ...)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    if model == "qwen3_vl":
        from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor as Processor
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
            Qwen3VLVideoProcessor as VideoProcessor,
        )
    else:
        from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import (
            Qwen2_5_VLProcessor as Processor,
        )
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import (
            Qwen2VLVideoProcessor as VideoProcessor,
        )
    patches = {
        "patch_size": vision.patch_size,
        "temporal_patch_size": vision.temporal_patch_size,
        "merge_size": vision.merge_size,
    }
    size = {"shortest_edge": vision.min_pixels, "longest_edge": vision.max_pixels}
    try:
        processor = Processor(
            image_processor=Qwen2VLImageProcessor(**patches),
            tokenizer=tokenizer,
            video_processor=VideoProcessor(**patches, size=size),
        )
        processor.decodes = True
    except (TypeError, ImportError):
        # No torchvision (transformers' video processors need it to run): the processor's
        # values only, which the metadata path and `process_messages` read; the decode-path
        # checks are skipped and said so.
        processor = SimpleNamespace(
            image_processor=SimpleNamespace(**patches),
            video_processor=SimpleNamespace(**patches, size=size),
            tokenizer=tokenizer,
            decodes=False,
        )
        timestamps = getattr(Processor, "_calculate_timestamps", None)
        if timestamps is not None:
            processor._calculate_timestamps = functools.partial(timestamps, processor)
    processor.video_fps = budget.video_fps
    processor.video_maxlen = budget.video_maxlen
    processor.video_max_pixels = budget.video_max_pixels
    processor.video_min_pixels = budget.video_min_pixels
    return processor


def compare_qwen25(
    plugin: object, processor: object, run: replay.Replay, path: Path, tally: Tally
) -> None:
    """Qwen2.5-VL's `second_per_grid_ts` from `Qwen2VLPlugin._get_mm_inputs` (the video decoded,
    the real video processor run) against vlprep's, its integer part, the fit's traps."""
    budget, vision = run.budget, run.vision
    label = setting_label(path, budget, vision) + " (Qwen2.5-VL)"
    info = qwen_video.read_stream(path)
    header = replay.read_header(str(path))
    located = replay.locate(path.name, path.parent)
    cost = replay.video_cost(path.name, header, budget, vision)
    if not processor.decodes:
        tally.skip(f"{label}: second_per_grid_ts (needs torchvision to run the video processor)")
        return
    mm_inputs = plugin._get_mm_inputs([], [str(path)], [], processor)
    grid = ints(mm_inputs["video_grid_thw"][0])
    tally.check(f"{label}: video_grid_thw (Qwen2VLVideoProcessor)", cost_grid(cost, vision), grid)
    theirs = float(mm_inputs["second_per_grid_ts"][0])
    if info.duration is None:  # `fps_per_video.append(video_fps)`
        ours = qwen_video.TEMPORAL_PATCH_SIZE / budget.video_fps
        what = "second_per_grid_ts (no stream duration: 2 / VIDEO_FPS)"
    else:
        fps, maxlen = budget.video_fps, budget.video_maxlen
        picks = len(qwen_video.sample_indices(info.frames, info.duration, fps, maxlen))
        ours = qwen_video.second_per_grid(picks, info.duration)
        what = "second_per_grid_ts"
    tally.check(f"{label}: {what}", ours, theirs)
    tally.check(f"{label}: int(second_per_grid_ts)", int(ours), int(theirs))
    if info.duration:  # the traps of the videos the fit prices (a duration, not a frame list)
        sample = replay.Priced("sample", 0, 0, ((located, header),))
        traps = fit.timing_traps([sample], run, budget)
        fired = (
            any("one temporal position" in trap for trap in traps),
            any("fraction Qwen2.5-VL drops" in trap for trap in traps),
        )
        # What the model does with LLaMA-Factory's value: several temporal patches at step
        # int(s) == 0, or a step of int(s) for s seconds (fit's threshold: 10 % off).
        shared = int(theirs) == 0 and grid[0] > 1
        shrunk = theirs >= 1 and (theirs - int(theirs)) / theirs > 0.1
        tally.check(f"{label}: fit's traps (shared, shrunk)", fired, (shared, shrunk))


def compare_qwen3_video(
    plugin: object,
    processor: object,
    run: replay.Replay,
    tokenizer: object,
    path: Path,
    tally: Tally,
) -> None:
    """One video under Qwen3VLPlugin: the metadata path, the `<video>` expansion of
    `process_messages` and the decode path, against `Replay.price`."""
    import av

    budget, vision = run.budget, run.vision
    label = setting_label(path, budget, vision) + " (Qwen3-VL)"
    info = qwen_video.read_stream(path)
    header = replay.read_header(str(path))
    located = replay.locate(path.name, path.parent)
    try:
        pads = replay.video_cost(path.name, header, budget, vision)  # `<|video_pad|>` tokens only
    except ValueError:
        # transformers 5.8.0's Qwen3-VL smart_resize raises for a side under 32 (after
        # `_preprocess_image`): vlprep calls such a video unreadable; LLaMA-Factory must raise
        try:
            plugin._get_qwen_video_grid_metadata([str(path)], processor)
            theirs = "no error"
        except ValueError:
            theirs = "raises"
        tally.check(f"{label}: a frame side under 32 raises", "raises", theirs)
        problems = run.price(located, header, budget).problems
        unreadable = any(problem.startswith(replay.UNREADABLE) for problem in problems)
        tally.check(f"{label}: preflight calls it unreadable", True, unreadable)
        return
    cost = run.price(located, header, budget)  # with the timestamps and markers
    metadata = plugin._get_qwen_video_grid_metadata([str(path)], processor)
    applies = bool(info.frames and info.duration is not None and info.average_fps)
    misread = bool(qwen_video.misread_reason(info))
    counted = None
    if applies:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            theirs = plugin._get_video_sample_indices(stream, budget.video_fps, budget.video_maxlen)
        indices = qwen_video.sample_indices(
            info.frames, info.duration, budget.video_fps, budget.video_maxlen
        )
        tally.check(f"{label}: sample indices", indices, ints(theirs))
        ours = list(qwen_video.video_grid(len(indices), info.width, info.height, budget, vision))
        counted = ints(metadata["video_grid_thw"][0])
        tally.check(f"{label}: video_grid_thw (metadata path)", ours, counted)
    else:
        tally.check(f"{label}: metadata path gives up on a misread video", None, metadata)
    if counted is None and not processor.decodes:  # process_messages would decode it
        tally.skip(f"{label}: <video> expansion (a misread video: needs torchvision)")
        return
    messages = [{"role": "user", "content": "<video>"}]
    (expanded,) = plugin.process_messages(messages, [], [str(path)], [], processor)
    expansion = expanded["content"]
    stamps = re.findall(r"<(\d+\.\d) seconds>", expansion)
    markers = expansion.count(VISION_START) + expansion.count(VISION_END)
    tokens = len(tokenizer.encode(expansion, add_special_tokens=False))
    tally.check(f"{label}: <|video_pad|> tokens", pads.tokens, expansion.count(VIDEO_PAD))
    tally.check(f"{label}: timestamps", cost.timestamps, stamps)
    tally.check(f"{label}: vision markers", 2 * len(cost.timestamps), markers)
    tally.check(f"{label}: <video> expansion tokens (price)", cost.tokens, tokens)
    # The decode path: frames decoded and regularized, then the real video processor.
    if not processor.decodes:
        tally.skip(f"{label}: decode path (needs torchvision to run the video processor)")
        return
    mm_inputs = plugin._get_mm_inputs([], [str(path)], [], processor)
    grid = ints(mm_inputs["video_grid_thw"][0])
    if counted is not None and misread:  # tokens counted from the picks, features from frames
        predicted = any("will not match" in problem for problem in pads.problems)
        mismatch = expansion.count(VIDEO_PAD) != grid_tokens(grid, vision)
        tally.check(f"{label}: features and tokens disagree", predicted, mismatch)
        return
    if counted is not None:
        tally.check(f"{label}: video_grid_thw (decode path = metadata path)", counted, grid)
    tally.check(f"{label}: video_grid_thw (decode path)", cost_grid(pads, vision), grid)
    (video_metadata,) = mm_inputs["video_metadata"]
    seconds = processor._calculate_timestamps(
        list(video_metadata.frames_indices), video_metadata.fps, vision.temporal_patch_size
    )
    decoded_stamps = [f"{t:.1f}" for t in seconds[: grid[0]]]
    tally.check(f"{label}: timestamps (decode path)", cost.timestamps, decoded_stamps)


def compare_sample(
    template_module: types.ModuleType,
    name: str,
    tag: str,
    messages: list[dict[str, str]],
    path: Path,
    context: SimpleNamespace,
    tally: Tally,
) -> None:
    """Text + video tokens of one sharegpt sample, as LLaMA-Factory's supervised processor
    encodes it (`mm_plugin.process_messages`, then `Template.encode_multiturn`), against
    vlprep's exact count with the same tokenizer."""
    budget, template = qwen_video.Budget(), replay.TEMPLATES[name]
    vision = replay.base_vision(template)
    if template.plugin == qwen_video.QWEN3_VL:
        processor = hf_processor("qwen3_vl", budget, vision, context.tokenizer)
    else:
        processor = processor_for(budget, vision)
    lf_template = template_module.TEMPLATES[name]
    expanded = lf_template.mm_plugin.process_messages(messages, [], [str(path)], [], processor)
    pairs = lf_template.encode_multiturn(context.tokenizer, expanded, None, None)
    theirs = sum(len(source) + len(target) for source, target in pairs)
    record = {"messages": messages, "videos": [path.name]}
    sample_file = context.folder / f"sample-{name}-{tag.replace(' ', '-')}.json"
    dataset = replay.Dataset("sample", {}, sample_file, "sharegpt")
    dataset.columns = {"messages": "messages", "videos": "videos"}
    dataset.tags = {**replay.SHAREGPT_TAGS, "role_tag": "role", "content_tag": "content"}
    dataset.tags.update(user_tag="user", assistant_tag="assistant")
    dataset.path.write_text(json.dumps([record]))
    run = replay.Replay(
        budget=budget,
        vision=vision,
        template=template,
        media_dir=path.parent,
        count_tokens=context.count_tokens,
    )
    (result,) = replay.replay_dataset(dataset, run)
    what = f"{path.name} {name} ({tag}): whole sample, text + video tokens"
    tally.check(what, result["total_tokens"], theirs)


def make_presample_videos(folder: Path) -> list[Path]:
    from pyutils.core.media import find_ffmpeg

    paths = []
    for name, source, width, height, fps, seconds, arguments in PRESAMPLE_VIDEOS:
        path = folder / name
        joint = ":" if "=" in source else "="
        lavfi = f"{source}{joint}size={width}x{height}:rate={fps}"
        if source.startswith("life="):  # 4x4-pixel cells, softened: less like a test pattern
            small = f"{width // 4}x{height // 4}"
            lavfi = f"{source}:size={small}:rate={fps},scale={width}:{height}"
        args = [find_ffmpeg(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi]
        subprocess.run([*args, "-t", str(seconds), *arguments, str(path)], check=True)
        paths.append(path)
    for name, seconds, start, width, height, fps in PRESAMPLE_EDIT_LISTS:
        video = {"width": width, "height": height, "fps": fps}
        paths.append(sample.make_edit_list_video(folder / name, seconds, start, **video))
    return paths


def psnr(ours: object, theirs: object) -> float:
    import numpy as np

    a = np.asarray(ours.convert("RGB"), dtype=np.float64)
    b = np.asarray(theirs.convert("RGB"), dtype=np.float64)
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def compare_presampled(
    plugin: object, path: Path, budget: qwen_video.Budget, folder: Path, tally: Tally
) -> list[float]:
    """The trainer's read of the video against its read of vlprep's frame list; returns the
    PSNR of each frame."""
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    label = f"{path.name} fps={budget.video_fps:g} maxlen={budget.video_maxlen} pixels=" + (
        f"{budget.video_min_pixels}..{budget.video_max_pixels}"
    )
    dest = folder / f"{path.name}-{budget.video_fps:g}-{budget.video_maxlen}"
    task = presample.PresampleTask(path.stem, str(path), str(dest), budget, 2)
    result = presample.presample_video(task)
    tally.check(f"{label}: pre-sampled", (result.status, result.error), ("ok", ""))
    if result.status != "ok" or result.sampling is None:
        return []
    frames = [str(p) for p in presample.frame_paths(dest, result.frames)]
    settings = {
        "image_max_pixels": budget.video_max_pixels,
        "image_min_pixels": budget.video_min_pixels,
        "video_fps": budget.video_fps,
        "video_maxlen": budget.video_maxlen,
    }
    from_video = plugin._regularize_videos([str(path)], **settings)
    from_list = plugin._regularize_videos([frames], **settings)
    theirs, ours = from_video["videos"][0], from_list["videos"][0]
    transcoded = False
    if qwen_video.misread_reason(qwen_video.read_stream(path)):  # compare with its MP4 remux
        remuxed = folder / f"{path.stem}.remux.mp4"
        done = remux.remux_one(remux.RemuxTask(str(path), str(remuxed), 2))
        tally.check(f"{path.name}: remuxed", done.error, "")
        transcoded = done.method == "transcode"
        from_video = plugin._regularize_videos([str(remuxed)], **settings)
        theirs = from_video["videos"][0]
    tally.check(f"{label}: frames fed", len(ours), len(theirs))
    tally.check(f"{label}: frame sizes", [f.size for f in ours], [f.size for f in theirs])
    second = [
        int(2 / fps) for fps in (from_list["fps_per_video"][0], from_video["fps_per_video"][0])
    ]
    tally.check(
        f"{label}: Qwen2.5-VL int(second_per_grid_ts) equal",
        result.sampling.qwen25_same,
        second[0] == second[1],
    )
    stamps = [
        Qwen3VLProcessor._calculate_timestamps(None, list(d["frames_indices"][0]), budget.video_fps)
        for d in (from_list, from_video)
    ]
    same = [f"{t:.1f}" for t in stamps[0]] == [f"{t:.1f}" for t in stamps[1]]
    tally.check(f"{label}: Qwen3-VL timestamps equal", result.sampling.qwen3_same, same)
    values = [psnr(a, b) for a, b in zip(ours, theirs, strict=False)]
    if not transcoded:  # a transcoded remux's frames differ from the original's by its own loss
        tally.check(f"{label}: every frame >= {PSNR_FLOOR:g} dB", min(values) >= PSNR_FLOOR, True)
    print(f"      PSNR {min(values):.2f} min, {sum(values) / len(values):.2f} mean dB ({label})")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="LLaMA-Factory's src/ folder")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed here: comparison skipped (see this file's docstring)")
        return 0
    mm_plugin, template = import_llamafactory(args.source.resolve())
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    tokens = {"image_token": "<|image_pad|>", "video_token": VIDEO_PAD}
    plugin = mm_plugin.get_mm_plugin(name="qwen2_vl", **tokens)
    qwen3_plugin = mm_plugin.get_mm_plugin(name="qwen3_vl", **tokens)
    tally = Tally()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        videos = make_videos(folder)
        tokenizer = build_tokenizer(folder / "tokenizer")
        context = SimpleNamespace(
            folder=folder,
            tokenizer=tokenizer,
            count_tokens=replay.tokenizer_counter(folder / "tokenizer"),
        )
        tally.section("Qwen2-VL: indices, grids, tokens, decode path")
        for budget in SETTINGS:
            for path in videos:
                compare_video(plugin, path, budget, tally, smart_resize)
        tally.section("Qwen2.5-VL: second_per_grid_ts, video processor grid, fit's traps")
        vision = qwen_video.VisionConfig()
        for budget in SETTINGS:
            processor = hf_processor("qwen2_5_vl", budget, vision, tokenizer)
            run = replay.Replay(budget, vision, replay.TEMPLATES["qwen2_vl"], folder)
            for path in videos:
                compare_qwen25(plugin, processor, run, path, tally)
        tally.section("Qwen3-VL: indices, grids, timestamps, <video> expansion, decode path")
        for budget, vision in QWEN3_SETTINGS:
            processor = hf_processor("qwen3_vl", budget, vision, tokenizer)
            run = replay.Replay(
                budget,
                vision,
                replay.TEMPLATES["qwen3_vl"],
                folder,
                count_tokens=context.count_tokens,
            )
            for path in videos:
                compare_qwen3_video(qwen3_plugin, processor, run, tokenizer, path, tally)
        tally.section("whole samples: Template.encode_multiturn")
        for name in ("qwen2_vl", "qwen3_vl", "qwen3_vl_nothink"):
            for tag, messages in SAMPLES.items():
                compare_sample(template, name, tag, messages, videos[0], context, tally)
        tally.section("pre-sampled frames")
        quality = {}
        for path in make_presample_videos(folder):
            for budget in PRESAMPLE_SETTINGS:
                values = compare_presampled(plugin, path, budget, folder, tally)
                if budget == qwen_video.Budget() and values:
                    quality[path.name] = values
    print("\nPSNR of vlprep's frames against LLaMA-Factory's own (default settings):")
    for name, values in quality.items():
        print(f"  {name:22s} min {min(values):6.2f}  mean {sum(values) / len(values):6.2f} dB")
    print()
    for name, (same, different) in tally.sections.items():
        print(f"  {name}: {same + different} comparisons, {different} different")
    print(f"\n{tally.same} comparisons equal, {tally.different} different")
    return 1 if tally.different else 0


if __name__ == "__main__":
    sys.exit(main())
