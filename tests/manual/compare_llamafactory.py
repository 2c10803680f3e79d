"""Compare vlprep's replay of LLaMA-Factory/Qwen2-VL with the real functions (not in `make test`).

Needs a separate environment with torch (CPU is enough), transformers and PyAV, and a checkout of
LLaMA-Factory's `src/` (no model weights: the processor is built from Qwen2-VL's config values):

    python3 -m venv /tmp/lf
    /tmp/lf/bin/pip install torch transformers av pillow peft ffmpeg-python
    FFMPEG=$(.venv/bin/python -c 'import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())') \
        /tmp/lf/bin/python tests/manual/compare_llamafactory.py --source LLaMA-Factory/src

For generated videos (mp4, mkv, webm VP8/VP9; odd frame counts, shorter than 1/VIDEO_FPS, over
VIDEO_MAXLEN, over and under the pixel caps; MP4s with an edit list, cut by `ffmpeg -ss -c copy`)
and several trainer settings it compares:
- sample indices: `MMPluginMixin._get_video_sample_indices` on the PyAV stream;
- the video grid and token count: `Qwen2VLPlugin._get_qwen_video_grid_metadata` (tokens =
  grid.prod() // merge_size**2, as `process_messages` expands `<video>`);
- what decoding gives: `Qwen2VLPlugin._regularize_videos` (frames fed, frame size after
  `_preprocess_image`), then transformers' `smart_resize`, for every video, including the mkv/webm
  ones where the metadata path gives up; for an edit-list MP4 (the metadata path counts picks
  that decoding never reaches), whether video features and tokens disagree, as vlprep predicts;
- text + video tokens of a whole sample: `Template.encode_multiturn` of LLaMA-Factory's `qwen2_vl`
  template after `process_messages`, with a small tokenizer built here, against vlprep's count.
- pre-sampled frames (`make activitynet_qa PRESAMPLE=1`): for videos of natural-looking lavfi
  sources (mandelbrot, life) and testsrc2, mkv, webm, a BT.709-tagged one, one shorter than
  1/VIDEO_FPS and one small enough to be scaled up, `_regularize_videos` of the video against
  `_regularize_videos` of vlprep's frame list (of the MP4 remux where the trainer misreads the
  original: mkv, webm, an edit list): as many frames, the same sizes, the Qwen2.5-VL
  `second_per_grid_ts` integer part and the Qwen3-VL timestamps as vlprep predicts them, and the
  PSNR of each of vlprep's JPEGs against the trainer's own decoded-and-resized frame (printed
  per video, and checked to be at least PSNR_FLOOR dB).
Prints one line per comparison and exits 1 on any difference; exits 0 with a note when torch is
absent.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pyutils.devtools import sample  # noqa: E402
from pyutils.llamafactory import presample, qwen_video, remux, replay  # noqa: E402

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
    """A small byte-level BPE tokenizer with Qwen2's special tokens, trained here on a few
    sentences; saved as tokenizer.json for vlprep and wrapped for LLaMA-Factory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    specials += ["<|video_pad|>", "<|image_pad|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["You are a helpful assistant.", "what is the man doing in the video?", "yes", "no"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials)
    tokenizer.train_from_iterator(corpus * 50, trainer)
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

    def check(self, what: str, ours: object, theirs: object) -> None:
        if ours == theirs:
            self.same += 1
            print(f"same  {what}: {ours}")
        else:
            self.different += 1
            print(f"DIFF  {what}: vlprep {ours} != LLaMA-Factory {theirs}")


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


def compare_sample(
    plugin: object, template_module: types.ModuleType, path: Path, folder: Path, tally: Tally
) -> None:
    """Text + video tokens of one sharegpt sample, as LLaMA-Factory's supervised processor
    encodes it, against vlprep's exact count with the same tokenizer."""
    tokenizer = build_tokenizer(folder / "tokenizer")
    budget, vision = qwen_video.Budget(), qwen_video.VisionConfig()
    processor = processor_for(budget, vision)
    messages = [
        {"role": "user", "content": "<video>what is the man doing in the video?"},
        {"role": "assistant", "content": "he is dancing"},
    ]
    expanded = plugin.process_messages(messages, [], [str(path)], [], processor)
    template = template_module.TEMPLATES["qwen2_vl"]
    pairs = template.encode_multiturn(tokenizer, expanded, None, None)
    theirs = sum(len(source) + len(target) for source, target in pairs)
    record = {"messages": messages, "videos": [path.name]}
    dataset = replay.Dataset("sample", {}, folder / "sample.json", "sharegpt")
    dataset.columns = {"messages": "messages", "videos": "videos"}
    dataset.tags = {**replay.SHAREGPT_TAGS, "role_tag": "role", "content_tag": "content"}
    dataset.tags.update(user_tag="user", assistant_tag="assistant")
    dataset.path.write_text(json.dumps([record]))
    run = replay.Replay(
        budget=budget,
        vision=vision,
        template=replay.TEMPLATES["qwen2_vl"],
        media_dir=path.parent,
        count_tokens=replay.tokenizer_counter(folder / "tokenizer"),
    )
    (result,) = replay.replay_dataset(dataset, run)
    tally.check(f"{path.name}: whole sample, text + video tokens", result["total_tokens"], theirs)


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

    plugin = mm_plugin.get_mm_plugin(
        name="qwen2_vl", image_token="<|image_pad|>", video_token="<|video_pad|>"
    )
    tally = Tally()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        videos = make_videos(folder)
        for budget in SETTINGS:
            for path in videos:
                compare_video(plugin, path, budget, tally, smart_resize)
        compare_sample(plugin, template, videos[0], folder, tally)
        quality = {}
        for path in make_presample_videos(folder):
            for budget in PRESAMPLE_SETTINGS:
                values = compare_presampled(plugin, path, budget, folder, tally)
                if budget == qwen_video.Budget() and values:
                    quality[path.name] = values
    print("\nPSNR of vlprep's frames against LLaMA-Factory's own (default settings):")
    for name, values in quality.items():
        print(f"  {name:22s} min {min(values):6.2f}  mean {sum(values) / len(values):6.2f} dB")
    print(f"\n{tally.same} comparisons equal, {tally.different} different")
    return 1 if tally.different else 0


if __name__ == "__main__":
    sys.exit(main())
