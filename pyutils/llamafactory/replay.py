"""Replay what LLaMA-Factory does with each sample of a registered dataset, before training.

For every dataset in `dataset_info.json` with a `videos` column: read its records as LLaMA-Factory's
converters do (sharegpt or alpaca, with the entry's columns and tags), resolve each video as
`DatasetConverter._find_medias` does (`media_dir`, then the path as written), read each video's
stream header as PyAV gives it to `Qwen2VLPlugin` (a video given as a list of frame images, as
`make activitynet_qa PRESAMPLE=1` writes it: its frames counted and its first frame's size read),
and count the tokens the sample becomes under
the `qwen2_vl` template (Qwen2-VL, Qwen2.5-VL) or `qwen3_vl`/`qwen3_vl_nothink` (Qwen3-VL): the
video's `<|video_pad|>` tokens (`pyutils.llamafactory.qwen_video`), with Qwen3-VL's timestamp text
before each temporal patch, and the text's (estimated from characters, or exact with a local
Hugging Face tokenizer folder).

One result per sample: a plain dict with `dataset`, `index`, `videos`, `video_frames`,
`video_tokens`, `text_tokens`, `total_tokens`, `frame_size` and `problems`, each problem a string
starting with its kind (`missing:`, `cwd_only:`, `misread:`, `unreadable:`, `token_mismatch:`,
`invalid:`, `over_cutoff:`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.errors import UserError
from pyutils.core.jsonio import read_json
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import plural
from pyutils.core.stage import run_stage
from pyutils.llamafactory.dataset_info import (
    INFO_NAME,
    VIDEO_TOKEN,
    placeholder_mismatch,
    resolve_media,
)
from pyutils.llamafactory.qwen_video import (
    QWEN2_VL,
    QWEN3_VISION,
    QWEN3_VL,
    Budget,
    StreamInfo,
    VisionConfig,
    frames_fed,
    misread_reason,
    qwen3_timestamps,
    read_stream,
    sample_indices,
    video_grid,
    video_tokens,
)

# Problem kinds, as each problem string starts.
MISSING, CWD_ONLY, MISREAD, UNREADABLE = "missing", "cwd_only", "misread", "unreadable"
TOKEN_MISMATCH, INVALID, OVER_CUTOFF = "token_mismatch", "invalid", "over_cutoff"

# Characters per token for the estimate without a tokenizer. Qwen2's tokenizer averages about 4
# on English; 3 errs on the side of more tokens, so an estimate that fits is likely to fit.
CHARS_PER_TOKEN = 3
_SPECIAL = re.compile(r"<\|[A-Za-z0-9_]+\|>")


@dataclass(frozen=True)
class Template:
    """A chat template as LLaMA-Factory's `data/template.py` registers it (the slots that a
    user/assistant exchange with a video uses)."""

    name: str
    system: str
    user: str
    assistant: str
    default_system: str
    vision_start: str
    vision_end: str
    plugin: str = QWEN2_VL  # the mm_plugin: how a video is resized and what it expands to
    # ReasoningTemplate (qwen3_vl): an assistant turn with no `<think>` gets an empty thought,
    # `add_thought()` of the default thought_words, in its prompt or its response.
    empty_thought: str = ""

    def render(self, turns: list[tuple[str, str]], system: str) -> str:
        """The text of a conversation as `Template._encode` lays it out, each `<video>`
        replaced by the vision markers around its (separately counted) pad tokens; for
        Qwen3VLPlugin, which puts markers around each temporal patch, by nothing (the markers
        and timestamps are counted with the video: `Replay.price`)."""
        parts = []
        system = system or self.default_system
        if system:
            parts.append(self.system.format(system))
        for role, content in turns:
            thought = "<think>" in content or "</think>" in content
            if role == "assistant" and self.empty_thought and not thought:
                content = self.empty_thought + content
            parts.append((self.user if role == "user" else self.assistant).format(content))
        text = "".join(parts)
        markers = "" if self.plugin == QWEN3_VL else self.vision_start + self.vision_end
        return text.replace(VIDEO_TOKEN, markers)


# `qwen2_vl` in LLaMA-Factory (data/template.py): the template of Qwen2-VL and Qwen2.5-VL (their
# model groups in extras/constants.py both name it), with Qwen2VLPlugin (<|vision_start|> ...
# <|vision_end|>). `qwen3_vl` and `qwen3_vl_nothink`: the same turns, no default system prompt,
# Qwen3VLPlugin; `qwen3_vl` is a ReasoningTemplate (an empty thought in each assistant turn).
_QWEN_TURNS = {
    "system": "<|im_start|>system\n{}<|im_end|>\n",
    "user": "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
    "assistant": "{}<|im_end|>\n",
    "vision_start": "<|vision_start|>",
    "vision_end": "<|vision_end|>",
}
TEMPLATES = {
    "qwen2_vl": Template(
        name="qwen2_vl", default_system="You are a helpful assistant.", **_QWEN_TURNS
    ),
    "qwen3_vl": Template(
        name="qwen3_vl",
        default_system="",
        plugin=QWEN3_VL,
        empty_thought="<think>\n\n</think>\n\n",
        **_QWEN_TURNS,
    ),
    "qwen3_vl_nothink": Template(
        name="qwen3_vl_nothink", default_system="", plugin=QWEN3_VL, **_QWEN_TURNS
    ),
}
MODELS = {QWEN2_VL: "Qwen2-VL, Qwen2.5-VL", QWEN3_VL: "Qwen3-VL"}


def find_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise UserError(
            f"TEMPLATE={name} (--template): not supported; supported: {', '.join(TEMPLATES)} "
            "(Qwen2-VL and Qwen2.5-VL: qwen2_vl; Qwen3-VL: qwen3_vl, qwen3_vl_nothink; other "
            "plugins resize and count differently)"
        )
    return TEMPLATES[name]


def base_vision(template: Template) -> VisionConfig:
    """The published processor values of the template's models (before TOKENIZER='s own)."""
    return QWEN3_VISION if template.plugin == QWEN3_VL else VisionConfig()


# ---- counting text tokens -------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Special tokens (`<|im_start|>` ...) count one each, the rest CHARS_PER_TOKEN characters."""
    specials = _SPECIAL.findall(text)
    plain = len(text) - sum(len(s) for s in specials)
    return len(specials) + math.ceil(plain / CHARS_PER_TOKEN)


def tokenizer_counter(folder: Path) -> Callable[[list[str]], list[int]]:
    """Exact counts with the `tokenizer.json` of a local Hugging Face tokenizer folder."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"TOKENIZER={folder} (--tokenizer): no tokenizer.json in that folder")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise UserError(
            "TOKENIZER= needs the `tokenizers` package (pip install tokenizers in .venv); "
            "leave TOKENIZER empty for the estimate"
        ) from None
    tokenizer = Tokenizer.from_file(str(path))

    def count(texts: list[str]) -> list[int]:
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    return count


# A model folder's processor settings; transformers prefers the second for videos.
PROCESSOR_CONFIGS = ("preprocessor_config.json", "video_preprocessor_config.json")


def vision_config_from(folder: Path | None, base: VisionConfig) -> VisionConfig:
    """The processor values of a model folder's `preprocessor_config.json` (and
    `video_preprocessor_config.json`, which transformers prefers for videos), else `base`."""
    values = asdict(base)
    if folder is None:
        return base
    for name in PROCESSOR_CONFIGS:
        path = folder / name
        if not path.is_file():
            continue
        config = read_json(path)
        size = config.get("size") if isinstance(config.get("size"), dict) else {}
        for key in ("patch_size", "temporal_patch_size", "merge_size"):
            values[key] = int(config.get(key, values[key]))
        values["min_pixels"] = int(
            size.get("shortest_edge", config.get("min_pixels", values["min_pixels"]))
        )
        values["max_pixels"] = int(
            size.get("longest_edge", config.get("max_pixels", values["max_pixels"]))
        )
    return VisionConfig(**values)


# ---- datasets as dataset_info.json declares them ----------------------------------------------


@dataclass
class Dataset:
    """One dataset_info.json entry, with LLaMA-Factory's defaults for what it leaves out."""

    name: str
    entry: dict[str, Any]
    path: Path
    formatting: str = "alpaca"
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def has_videos(self) -> bool:
        return bool(self.columns.get("videos"))


SHAREGPT_COLUMNS = {"messages": "conversations"}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def load_dataset_info(out: Path) -> dict[str, dict[str, Any]]:
    path = out / INFO_NAME
    if not path.is_file():
        raise UserError(
            f"{path}: not found; run make activitynet_qa / make dataset_info, or set OUT="
        )
    info = read_json(path)
    if not isinstance(info, dict):
        raise UserError(f"{path}: expected a JSON object of datasets")
    return info


def declared_datasets(
    out: Path, names: list[str]
) -> tuple[list[Dataset], list[str], dict[str, str]]:
    """The datasets to replay (every local one with a `videos` column, or `names`), a note for
    each entry skipped (on the hub, a script), and the problem of each whose registered file is
    not there: LLaMA-Factory's `_load_single_dataset` raises `File ... not found` for it (a
    `file_name` names a file or a folder of files under dataset_dir), so training stops."""
    info = load_dataset_info(out)
    unknown = [n for n in names if n not in info]
    if unknown:
        known = [n for n, e in info.items() if isinstance(e, dict) and _columns(e).get("videos")]
        raise UserError(
            f"LF_DATASETS (--lf-datasets): {unknown[0]!r} is not in {out / INFO_NAME} "
            f"(with videos there: {', '.join(known) or 'none'})"
        )
    chosen, notes, missing = [], [], {}
    for name in names or list(info):
        entry = info[name]
        if not isinstance(entry, dict):
            raise UserError(f"{out / INFO_NAME}: entry {name!r} is not an object")
        columns = _columns(entry)
        if not names and not columns.get("videos"):
            continue
        file_name = entry.get("file_name")
        path = out / str(file_name) if file_name else None
        if path is not None and not path.exists():
            missing[name] = (
                f"{MISSING}: {path}: registered in {out / INFO_NAME} as {name!r} but not there "
                "(LLaMA-Factory stops on it: File not found); make it again or remove the entry"
            )
            continue
        if path is None or path.suffix not in (".json", ".jsonl") or not path.is_file():
            where = "hub or script" if not file_name else f"file {path}"
            notes.append(f"{name}: skipped ({where} is not a local .json/.jsonl file)")
            if names:
                raise UserError(f"LF_DATASETS (--lf-datasets): {notes[-1]}")
            continue
        formatting = entry.get("formatting", "alpaca")
        tags = {**SHAREGPT_TAGS, **entry.get("tags", {})} if formatting == "sharegpt" else {}
        chosen.append(Dataset(name, entry, path, formatting, columns, tags))
    return chosen, notes, missing


def _columns(entry: dict[str, Any]) -> dict[str, str]:
    defaults = SHAREGPT_COLUMNS if entry.get("formatting") == "sharegpt" else ALPACA_COLUMNS
    columns = entry.get("columns")
    return {**defaults, **(columns if isinstance(columns, dict) else {})}


def read_records(path: Path) -> list[Any]:
    if path.suffix == ".jsonl":
        records = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise UserError(f"{path}:{number}:{exc.colno}: malformed JSON line") from None
        return records
    records = read_json(path)
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of records, found {type(records).__name__}")
    return records


def conversation(record: Any, dataset: Dataset) -> tuple[list[tuple[str, str]], str, list, str]:
    """(turns as (user|assistant, content), system prompt, videos, problem) as LLaMA-Factory's
    converter reads the record; `problem` says why it would drop the record ("" if none)."""
    if not isinstance(record, dict):
        return [], "", [], "the record is not a JSON object"
    columns = dataset.columns
    videos = record.get(columns.get("videos", ""), []) if dataset.has_videos else []
    videos = videos if isinstance(videos, list) else [videos]
    system = str(record.get(columns["system"], "") or "") if columns.get("system") else ""
    if dataset.formatting == "sharegpt":
        return _sharegpt_turns(record, dataset, system, videos)
    prompt = str(record.get(columns.get("prompt", ""), "") or "")
    query = str(record.get(columns.get("query", ""), "") or "")
    response = record.get(columns.get("response", ""))
    content = f"{prompt}\n{query}" if query else prompt
    if not isinstance(response, str):
        return [], system, videos, "no response text"
    return [("user", content), ("assistant", response)], system, videos, ""


def media_counts(record: Any, dataset: Dataset, videos: list) -> dict[str, int]:
    """How many images, videos and audios LLaMA-Factory's converter gives the sample: a declared
    column's list, one for a single value (`DatasetConverter._find_medias`), none for a column
    the dataset does not declare (`"_images": ... if self.dataset_attr.images else None`)."""
    counts = {"videos": len(videos)}
    for column in ("images", "audios"):
        name = dataset.columns.get(column)
        value = record.get(name) if name and isinstance(record, dict) else None
        counts[column] = len(value) if isinstance(value, list) else int(bool(value))
    return counts


def _sharegpt_turns(
    record: dict, dataset: Dataset, system: str, videos: list
) -> tuple[list[tuple[str, str]], str, list, str]:
    tags, messages = dataset.tags, record.get(dataset.columns["messages"])
    if not isinstance(messages, list) or not messages:
        return [], system, videos, f"no {dataset.columns['messages']!r} list"
    role, content = tags["role_tag"], tags["content_tag"]
    if isinstance(messages[0], dict) and messages[0].get(role) == tags["system_tag"]:
        system, messages = str(messages[0].get(content, "")), messages[1:]
    odd = (tags["user_tag"], tags["observation_tag"])
    even = (tags["assistant_tag"], tags["function_tag"])
    turns = []
    for position, message in enumerate(messages):
        allowed = even if position % 2 else odd
        if not isinstance(message, dict) or message.get(role) not in allowed:
            return [], system, videos, f"message {position} is not a {'/'.join(allowed)} turn"
        turns.append(("user" if position % 2 == 0 else "assistant", str(message.get(content))))
    if len(turns) % 2:
        return [], system, videos, "the conversation does not end with an assistant turn"
    return turns, system, videos, ""


# ---- videos ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """A stream header as PyAV gives it (`info`), or why it could not be read (`error`): the
    result of the header-reading stage, whose work unit is the path itself."""

    path: str
    info: StreamInfo | None = None
    error: str = ""

    @property
    def item(self) -> str:
        return self.path


def read_header(path: str) -> Header:
    """Worker: the stream header of `path` (a video, or a frame image: PyAV opens both); never
    raises."""
    import av  # on first use: a run that needs no video never loads PyAV

    try:
        return Header(path, read_stream(path))
    except (OSError, ValueError, av.FFmpegError) as exc:
        return Header(path, error=getattr(exc, "strerror", None) or str(exc))


def read_headers(paths: list[str], jobs: int) -> dict[str, Header]:
    """Stream headers of distinct paths. Opening a container waits on the file system more than
    on the CPU and PyAV lets go of the GIL meanwhile, so threads, four per job, beat processes
    (measured: 8 threads on 2 cores read 4,000 headers 2.6x faster than one; loky was slower than
    one thread, paying its start-up). An unreadable header is a problem of the samples that use
    it, reported with them, so the stage keeps no failure list of its own."""
    distinct = list(dict.fromkeys(paths))
    threads = min(32, 4 * jobs) if len(distinct) >= 64 else 1
    results = run_stage("read headers", read_header, distinct, ParallelOptions(threads))
    return {header.path: header for header in results}


@dataclass
class VideoCost:
    frames: int = 0
    tokens: int = 0  # `<|video_pad|>` tokens; `Replay.price` adds Qwen3-VL's per-patch text
    size: tuple[int, int] | None = None
    problems: list[str] = field(default_factory=list)
    timestamps: list[str] = field(default_factory=list)  # Qwen3-VL: one per temporal patch


def video_cost(written: str, header: Header, budget: Budget, vision: VisionConfig) -> VideoCost:
    """Frames and tokens LLaMA-Factory makes of one opened video, and what goes wrong."""
    if header.info is None:
        reason = header.error
        return VideoCost(problems=[f"{UNREADABLE}: {written}: PyAV cannot open it ({reason})"])
    info = header.info
    reason = misread_reason(info)
    if not reason:
        indices = sample_indices(info.frames, info.duration, budget.video_fps, budget.video_maxlen)
        return _costed(indices, info, budget, vision, [])
    if info.hidden and info.duration is not None and info.average_fps:
        return _edit_list_cost(written, info, reason, budget, vision)
    if not info.average_fps or info.frames > 0:
        return VideoCost(
            problems=[
                f"{MISREAD}: {written}: PyAV reports {reason}; LLaMA-Factory stops with an "
                "error on it (remux it into MP4: make activitynet_qa does)"
            ]
        )
    # No frame count: the "infinite video" branch, first VIDEO_MAXLEN decoded frames.
    indices = sample_indices(0, info.duration, budget.video_fps, budget.video_maxlen)
    seconds = info.container_seconds or 0.0
    decodable = round(seconds * info.average_fps) if seconds else len(indices)
    fed = frames_fed(indices, decodable)
    taken = (
        f"its first {fed} frames ({fed / info.average_fps:.1f} s of {seconds:.1f} s)"
        if decodable > len(indices)
        else f"every one of its about {decodable} frames instead of {budget.video_fps:g} per s"
    )
    problem = (
        f"{MISREAD}: {written}: PyAV reports {reason}; LLaMA-Factory takes it as an infinite "
        f"video and trains on {taken}, timed as {fed / budget.video_fps:g} s; remux it into "
        "MP4 (make activitynet_qa does)"
    )
    if info.duration is None:
        return _costed(indices[:fed], info, budget, vision, [problem])
    # With a stream duration the token metadata path counts all VIDEO_MAXLEN indices.
    return _decoded(written, _costed(indices, info, budget, vision, [problem]), fed)


def _edit_list_cost(
    written: str, info: StreamInfo, reason: str, budget: Budget, vision: VisionConfig
) -> VideoCost:
    """A stream whose frame count includes frames an edit list hides: `_get_video_sample_indices`
    spreads its picks over `stream.frames`, the decode loop numbers only the frames shown, so
    the picks past the last of those vanish and the rest crowd the video's start, while the
    token metadata path (`_get_qwen_video_stream_metadata`) counts every pick."""
    indices = sample_indices(info.frames, info.duration, budget.video_fps, budget.video_maxlen)
    fed = frames_fed(indices, info.decodable)
    lost = sum(1 for index in indices if index >= info.decodable)
    if not lost:  # a single pick, frame 0: what the whole video gives too
        return _costed(indices, info, budget, vision, [])
    problem = (
        f"{MISREAD}: {written}: PyAV reports {reason}; LLaMA-Factory spreads its "
        f"{len(indices)} picks over {info.frames} frames, decodes {info.decodable}, and so "
        f"loses {plural(lost, 'pick')} and crowds the rest into the start; remux it into MP4 "
        "(make activitynet_qa does)"
    )
    return _decoded(written, _costed(indices, info, budget, vision, [problem]), fed)


def _decoded(written: str, counted: VideoCost, fed: int) -> VideoCost:
    """`counted`, the tokens the metadata path counts, with the frames decoding feeds (`fed`),
    and the mismatch the model then stops on when they are fewer than it counted for."""
    if fed < counted.frames:
        counted.problems.append(
            f"{MISREAD}: {written}: {counted.tokens} video tokens are counted for "
            f"{counted.frames} frames but {fed} are decoded: video features and video tokens "
            "will not match"
        )
    counted.frames = fed
    return counted


def frame_list_cost(
    written: str, frames: int, first: Header, budget: Budget, vision: VisionConfig
) -> VideoCost:
    """A video given as a list of frame images (`_check_video_is_nested_images`): the trainer
    takes every frame as it is (no sampling, no VIDEO_MAXLEN cap), repeats the last when the
    count is odd, and resizes each as an image (`_preprocess_image`), so the tokens follow from
    the count and the first frame's size."""
    if first.info is None:
        reason = first.error
        return VideoCost(problems=[f"{UNREADABLE}: {written}: not an image PyAV reads ({reason})"])
    # `frames_indices = list(range(len(frames)))` at `fps_per_video = video_fps`: the list is
    # timed as sampled VIDEO_FPS apart from its start.
    return _costed(list(range(frames)), first.info, budget, vision, [], budget.video_fps)


def _costed(
    indices: list[int],
    info: StreamInfo,
    budget: Budget,
    vision: VisionConfig,
    problems: list[str],
    rate: float | None = None,
) -> VideoCost:
    """The cost of the sampled `indices` (frame numbers at `rate` frames per second: the
    stream's average rate unless given). Qwen3-VL's timestamps follow
    `_get_qwen_video_grid_metadata`'s `frames_indices` (`idx / average_fps * video_fps`) through
    the processor's `_calculate_timestamps` at `video_fps`."""
    frames = len(indices)
    grid = video_grid(frames, info.width, info.height, budget, vision)
    size = (grid[2] * vision.patch_size, grid[1] * vision.patch_size)
    cost = VideoCost(frames + frames % 2, video_tokens(grid, vision), size, problems)
    rate = rate or info.average_fps
    if vision.plugin == QWEN3_VL and indices and rate:
        scaled = [index / rate * budget.video_fps for index in indices]
        cost.timestamps = qwen3_timestamps(scaled, budget.video_fps)
    return cost


# ---- samples --------------------------------------------------------------------------------


@dataclass
class Replay:
    budget: Budget
    vision: VisionConfig
    template: Template
    media_dir: Path
    count_tokens: Callable[[list[str]], list[int]] | None = None  # None: the estimate
    jobs: int = 1
    _stamp_tokens: dict[str, int] = field(default_factory=dict, repr=False)

    def price(self, video: Located, header: Header, budget: Budget) -> VideoCost:
        """What one located video costs under `budget`: the same arithmetic for the verdict
        and for every setting the fit tries. Qwen3VLPlugin.process_messages writes each
        temporal patch as `<{t:.1f} seconds><|vision_start|>` + pads + `<|vision_end|>`, so its
        timestamp text and two markers per patch count with the video."""
        try:
            if video.frames is None:
                cost = video_cost(video.written, header, budget, self.vision)
            else:
                cost = frame_list_cost(video.written, video.frames, header, budget, self.vision)
        except ValueError as exc:  # the processor's resize refuses the regularized size
            return VideoCost(
                problems=[
                    f"{UNREADABLE}: {video.written}: the {MODELS[self.vision.plugin]} "
                    f"processor's smart_resize raises on it ({exc}); LLaMA-Factory stops there"
                ]
            )
        if cost.timestamps:
            cost.tokens += self.stamp_tokens(cost.timestamps) + 2 * len(cost.timestamps)
        return cost

    def stamp_tokens(self, timestamps: list[str]) -> int:
        """Tokens of the `<t seconds>` texts, each counted once (exact with TOKENIZER=)."""
        texts = [f"<{t} seconds>" for t in timestamps]
        new = [t for t in dict.fromkeys(texts) if t not in self._stamp_tokens]
        if new:
            counts = self.count_tokens(new) if self.count_tokens else map(stamp_estimate, new)
            self._stamp_tokens.update(zip(new, counts, strict=True))
        return sum(self._stamp_tokens[t] for t in texts)


def stamp_estimate(text: str) -> int:
    """`<12.5 seconds>` as Qwen's pre-tokenizer splits it: one token per digit (`\\p{N}`), and
    `<`, `.`, ` seconds`, `>`."""
    return sum(c.isdigit() for c in text) + 4


@dataclass(frozen=True)
class Located:
    """One entry of a record's `videos` as `DatasetConverter._find_medias` resolves it: a video
    file, or a list of frame images (each frame resolved the same way)."""

    written: str  # how problems name it: the path as written (a list: its first frame)
    path: str | None  # where LLaMA-Factory finds it (a list: its first frame), None if nowhere
    portable: bool  # found under media_dir, not only through the working directory
    frames: int | None = None  # a frame list's length; None for a video file
    missing: tuple[str, ...] = ()  # frames of a list found nowhere
    cwd_only: tuple[str, ...] = ()  # frames of a list found only through the working directory


def locate(video: str | list[str], media_dir: Path) -> Located:
    if isinstance(video, str):
        return Located(video, *resolve_media(video, media_dir))
    found = [resolve_media(frame, media_dir) for frame in video]
    missing = tuple(frame for frame, (path, _) in zip(video, found, strict=True) if path is None)
    cwd_only = tuple(
        frame for frame, (path, portable) in zip(video, found, strict=True) if path and not portable
    )
    first, portable = found[0]
    written = f"{video[0]} (first of {len(video)} frames)"
    return Located(written, first, portable, len(video), missing, cwd_only)


def _media_key(video: object) -> str | tuple[str, ...] | None:
    """A `videos` entry LLaMA-Factory reads: a path, or a non-empty list of frame paths."""
    if isinstance(video, str):
        return video
    if isinstance(video, list) and video and all(isinstance(frame, str) for frame in video):
        return tuple(video)
    return None


@dataclass(frozen=True)
class Priced:
    """What a sample's token count is made of, for pricing it under other settings (the fit):
    its text tokens and its videos as located and opened."""

    dataset: str
    index: int
    text_tokens: int
    videos: tuple[tuple[Located, Header], ...]


def replay_dataset(
    dataset: Dataset, replay: Replay, priced: list[Priced] | None = None
) -> list[dict[str, Any]]:
    """One result per record of `dataset`, in file order. With `priced`, appends there each
    sample whose only problem, if any, is its length (the samples other settings can fix)."""
    records = read_records(dataset.path)
    parsed = [conversation(record, dataset) for record in records]
    where: dict[str | tuple[str, ...], Located] = {}
    for _turns, _system, videos, _problem in parsed:
        for key in map(_media_key, videos):
            if key is not None and key not in where:
                where[key] = locate(key if isinstance(key, str) else list(key), replay.media_dir)
    resolved = [
        [where[key] for key in map(_media_key, videos) if key is not None]
        for _turns, _system, videos, _problem in parsed
    ]
    headers = read_headers(
        [os.path.abspath(v.path) for videos in resolved for v in videos if v.path], replay.jobs
    )
    costs: dict[str, VideoCost] = {}  # one per video: every sample of it costs the same
    texts = [replay.template.render(turns, system) for turns, system, _, _ in parsed]
    counts = replay.count_tokens(texts) if replay.count_tokens else map(estimate_tokens, texts)
    results = []
    for index, ((turns, _, videos, problem), found, text_tokens) in enumerate(
        zip(parsed, resolved, counts, strict=True)
    ):
        result = _sample(dataset, index, turns, videos, problem, found, headers, costs, replay)
        contents = [content for _, content in turns]
        mismatch = placeholder_mismatch(contents, media_counts(records[index], dataset, videos))
        if mismatch and not problem:  # a dropped record never reaches _validate_messages
            result["problems"].insert(0, f"{TOKEN_MISMATCH}: {mismatch}")
        result["text_tokens"] = text_tokens
        result["total_tokens"] = text_tokens + result["video_tokens"]
        if priced is not None and not result["problems"]:
            videos = tuple((v, headers[os.path.abspath(v.path)]) for v in found if v.path)
            priced.append(Priced(dataset.name, index, text_tokens, videos))
        if result["total_tokens"] > replay.budget.cutoff_len:
            result["problems"].append(
                f"{OVER_CUTOFF}: {result['total_tokens']} tokens > CUTOFF_LEN "
                f"{replay.budget.cutoff_len} (LLaMA-Factory truncates the sample; its video "
                "tokens then no longer match the video's features)"
            )
        results.append(result)
    return results


def _sample(
    dataset: Dataset,
    index: int,
    turns: list[tuple[str, str]],
    videos: list,
    problem: str,
    found: list[Located],
    headers: dict[str, Header],
    costs: dict[str, VideoCost],
    replay: Replay,
) -> dict[str, Any]:
    problems = [f"{INVALID}: LLaMA-Factory drops this record: {problem}"] if problem else []
    frames = tokens = 0
    size = None
    for video in found:
        problems += _where_problems(video, replay.media_dir)
        if video.path is None or video.missing:
            continue
        key = os.path.abspath(video.path)
        if key not in costs:
            costs[key] = replay.price(video, headers[key], replay.budget)
        cost = costs[key]
        frames, tokens = frames + cost.frames, tokens + cost.tokens
        size = size or cost.size
        problems += cost.problems
    return {
        "dataset": dataset.name,
        "index": index,
        "videos": [v for v in videos if _media_key(v) is not None],
        "video_frames": frames,
        "video_tokens": tokens,
        "frame_size": list(size) if size else None,
        "problems": problems,
    }


def _where_problems(video: Located, media_dir: Path) -> list[str]:
    if video.frames is not None:
        problems = []
        if video.missing:
            problems.append(
                f"{MISSING}: {video.missing[0]} ({len(video.missing)} of the {video.frames} "
                f"frames of this list are not under media_dir {media_dir})"
            )
        if video.cwd_only:
            problems.append(
                f"{CWD_ONLY}: {video.cwd_only[0]} ({len(video.cwd_only)} of the {video.frames} "
                f"frames of this list) is not under media_dir {media_dir}; LLaMA-Factory finds "
                "it only when started in this folder (set MEDIA_DIR= or rewrite the paths)"
            )
        return problems
    if video.path is None:
        return [f"{MISSING}: {video.written} (not under media_dir {media_dir})"]
    if not video.portable:
        return [
            f"{CWD_ONLY}: {video.written} is not under media_dir {media_dir}; LLaMA-Factory "
            "finds it only when started in this folder (set MEDIA_DIR= or rewrite the path)"
        ]
    return []
