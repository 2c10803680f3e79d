"""Choosing ffmpeg on purpose, compiling ffmpeg commands, and probing videos, on machines with or
without a system ffmpeg.

ffmpeg is `$FFMPEG` when set (the user's word is final), else the one on PATH if it can do
everything vlprep asks of ffmpeg, else the static binary that the imageio-ffmpeg wheel ships
(Debian 12's 5.1 and Ubuntu 22.04's 4.4 cannot apply a bitstream filter to an input, which
seeking by dropped packets needs). What each
candidate can do is found out once per machine, by running it, and remembered by (path, size,
mtime) in the user's cache folder; `describe_ffmpeg` says in one line which ffmpeg a run uses and
why. Command lines are built with ffmpeg-python and compiled here to an argument list for that
ffmpeg. Probing is done in-process with PyAV (imported on first use: a run whose probes are all
cached never loads it), so it needs no ffprobe and costs no process start per video.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.errors import MediaError, UserError

if TYPE_CHECKING:
    import av

# What vlprep asks of ffmpeg, by use: encoders and filters by their ffmpeg names. A use whose
# needs the chosen ffmpeg lacks is refused before anything runs (`require`).
NEEDS: dict[str, tuple[str, ...]] = {
    "frames": ("mjpeg", "select", "scale", "fps"),
    "transcode": ("libx264", "scale", "format"),
    "contact sheet": ("png", "scale", "pad", "setsar", "format", "split", "concat", "tile"),
}
WANTED = tuple(sorted({name for needs in NEEDS.values() for name in needs}))
# The input bitstream filter that seeking uses (`-bsf:v noise=drop=...` before `-i`), tried on a
# generated input: three frames in, the first one out.
INPUT_BSF_TRIAL = "noise=drop='not(between(n,0,0))'"
CAPABILITIES_VERSION = 1  # bump when what is recorded about an ffmpeg changes
TRIAL_TIMEOUT = 60  # seconds; an ffmpeg that does not answer a trial in this time cannot do it


@dataclass(frozen=True)
class Ffmpeg:
    """One ffmpeg binary and what vlprep found it can do."""

    path: str
    version: str  # "5.1.9", "9.0.2", a git build's "N-113000-g...", or "" if it never said
    input_bsf: bool  # takes -bsf:v before -i (9.0 does; Debian 12's 5.1 refuses it)
    missing: tuple[str, ...] = ()  # encoders and filters of WANTED that it lacks

    @property
    def capable(self) -> bool:
        """Can do everything vlprep asks of ffmpeg, in the fastest way."""
        return self.input_bsf and not self.missing

    def shortcomings(self) -> str:
        """What it cannot do, as a clause: "cannot seek by input bitstream filter"."""
        parts = [] if self.input_bsf else ["cannot seek by input bitstream filter"]
        if self.missing:
            parts.append(f"lacks {', '.join(self.missing)}")
        return " and ".join(parts)

    def named(self) -> str:
        return f"ffmpeg {self.version or '(version unknown)'}"


@dataclass(frozen=True)
class FfmpegChoice:
    tool: Ffmpeg
    why: str  # "set by FFMPEG", "on PATH", "bundled: PATH's 5.1.9 cannot seek by ..."

    def describe(self) -> str:
        return f"{self.tool.named()} at {self.tool.path} ({self.why})"


@functools.cache
def choose_ffmpeg() -> FfmpegChoice:
    """The ffmpeg this run uses: $FFMPEG, else PATH's if capable, else the bundled one if
    capable, else whichever exists (PATH's first). Decided once per run."""
    configured = os.environ.get("FFMPEG")
    if configured:
        resolved = shutil.which(configured)
        if resolved is None:
            raise UserError(f"$FFMPEG={configured} is not an executable file")
        tool = inspect_ffmpeg(resolved)
        if not tool.version:
            raise UserError(f"$FFMPEG={configured} does not answer `-version` as ffmpeg does")
        return FfmpegChoice(tool, "set by FFMPEG")
    on_path = shutil.which("ffmpeg")
    path_tool = inspect_ffmpeg(on_path) if on_path else None
    if path_tool and path_tool.capable:
        return FfmpegChoice(path_tool, "on PATH")
    bundled = bundled_ffmpeg()
    bundled_tool = inspect_ffmpeg(bundled) if bundled else None
    if path_tool is None and bundled_tool is None:
        raise UserError(
            "ffmpeg not found: set FFMPEG=/path/to/ffmpeg, install it, or run `make setup`"
        )
    if bundled_tool and (bundled_tool.capable or path_tool is None):
        if path_tool is None:
            return FfmpegChoice(bundled_tool, "bundled: no ffmpeg on PATH")
        why = f"PATH's {path_tool.version or path_tool.path} {path_tool.shortcomings()}"
        return FfmpegChoice(bundled_tool, f"bundled: {why}")
    assert path_tool is not None
    return FfmpegChoice(
        path_tool, f"on PATH, which {path_tool.shortcomings()}; no better one found"
    )


def find_ffmpeg() -> str:
    """Path of the ffmpeg to run (`choose_ffmpeg`)."""
    return choose_ffmpeg().tool.path


def describe_ffmpeg() -> str:
    """One line for a run's first line: which ffmpeg, its version, where, and why."""
    return choose_ffmpeg().describe()


def require(use: str) -> Ffmpeg:
    """The chosen ffmpeg, if it has what `use` (a key of NEEDS) needs; else a UserError that
    says what is missing and what to do, so that a command known to fail is never run."""
    choice = choose_ffmpeg()
    lacking = [name for name in NEEDS[use] if name in choice.tool.missing]
    if lacking:
        raise UserError(
            f"{choice.describe()} has no {', '.join(lacking)}, which {use} needs: set FFMPEG= "
            "to an ffmpeg that has, or unset it to use the bundled one (`make setup`)"
        )
    return choice.tool


def bundled_ffmpeg() -> str | None:
    """The static ffmpeg that the imageio-ffmpeg wheel ships, if installed. Found by name, not
    by `imageio_ffmpeg.get_ffmpeg_exe()`, which runs it on every call (15 ms of every command's
    start-up) and falls back to conda's or PATH's ffmpeg, which are not the bundled one."""
    try:
        import imageio_ffmpeg.binaries
        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform
    except ImportError:
        return None
    name = FNAME_PER_PLATFORM.get(get_platform())
    if not name:
        return None
    path = os.path.join(os.path.dirname(imageio_ffmpeg.binaries.__file__), name)
    return path if os.access(path, os.X_OK) else None


def tools_cache_path() -> Path:
    """Where what each ffmpeg can do is remembered, beside the probe cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vlprep" / "ffmpeg-tools.json"


@functools.cache
def inspect_ffmpeg(path: str) -> Ffmpeg:
    """What the ffmpeg at `path` can do: from the cache while the binary's size and mtime are
    unchanged, else by running it (about 0.1 s, once per machine and binary)."""
    real = os.path.realpath(path)
    try:
        status = os.stat(real)
    except OSError as exc:
        raise UserError(f"{path}: cannot run ffmpeg ({exc.strerror})") from None
    stamp = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
    cache = tools_cache_path()
    entries = _read_tools_cache(cache)
    entry = entries.get(real)
    if isinstance(entry, dict) and {k: entry.get(k) for k in stamp} == stamp:
        try:
            return Ffmpeg(path, entry["version"], entry["input_bsf"], tuple(entry["missing"]))
        except (KeyError, TypeError):
            pass  # an entry of another shape: find out again
    tool = _try_ffmpeg(path)
    if tool.version:  # something that never answered as ffmpeg is not worth remembering
        entries[real] = {**stamp, **asdict(tool), "path": real}
        payload = {"version": CAPABILITIES_VERSION, "tools": entries}
        with contextlib.suppress(OSError):  # a read-only home: found out again next run
            atomic_write_bytes(cache, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    return tool


def _read_tools_cache(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CAPABILITIES_VERSION:
        return {}
    tools = data.get("tools")
    return tools if isinstance(tools, dict) else {}


def _try_ffmpeg(path: str) -> Ffmpeg:
    """Run the ffmpeg at `path` four times at once: its version, its encoders and filters, and a
    real input bitstream filter on a generated input."""
    quiet = [path, "-hide_banner", "-nostdin"]
    trial = ["-v", "error", "-bsf:v", INPUT_BSF_TRIAL, "-f", "lavfi"]
    trial += ["-i", "nullsrc=s=16x16:r=25:d=0.12", "-f", "framemd5", "-"]
    commands = {
        "version": [*quiet, "-version"],
        "encoders": [*quiet, "-encoders"],
        "filters": [*quiet, "-filters"],
        "input_bsf": [*quiet, *trial],
    }
    answers = {}
    running = {}
    try:
        for name, command in commands.items():
            running[name] = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        for name, process in running.items():
            try:
                out, _ = process.communicate(timeout=TRIAL_TIMEOUT)
                answers[name] = out if process.returncode == 0 else ""
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                answers[name] = ""
    except OSError as exc:
        for process in running.values():
            process.kill()
            process.communicate()
        raise UserError(f"{path}: cannot run ffmpeg ({exc.strerror})") from None
    names = _listed(answers["encoders"]) | _listed(answers["filters"])
    frames = [line for line in answers["input_bsf"].splitlines() if line[:1].isdigit()]
    return Ffmpeg(
        path,
        parse_version(answers["version"]),
        input_bsf=len(frames) == 1,
        missing=tuple(name for name in WANTED if name not in names),
    )


def parse_version(text: str) -> str:
    """ "ffmpeg version 5.1.9-0+deb12u1 ..." -> "5.1.9"; "n9.0.2-17-g2a5..." -> "9.0.2"; a git
    build's "N-113000-gabc" as it is; "" when `text` is not ffmpeg's -version."""
    match = re.match(r"ffmpeg version (\S+)", text)
    if not match:
        return ""
    number = re.match(r"n?(\d+(?:\.\d+)+)", match.group(1))
    return number.group(1) if number else match.group(1)


def _listed(text: str) -> set[str]:
    """The names in `ffmpeg -encoders` or `-filters` output: the word after the flags column."""
    names = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("="):
            names.add(fields[1])
    return names


def ffmpeg_command(output: Any, *global_args: str, overwrite: bool = False) -> list[str]:
    """The argument list (never a shell string) that runs an ffmpeg-python output with the ffmpeg
    `choose_ffmpeg` chose: reading nothing from stdin, printing only errors, with `global_args`
    (which ffmpeg-python puts after the outputs; ffmpeg reads global options anywhere)."""
    command = output.global_args("-nostdin", "-v", "error", *global_args)
    return command.compile(cmd=find_ffmpeg(), overwrite_output=overwrite)


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of vlprep needs to know about a video before touching its frames."""

    duration: float  # seconds; the video stream's, else the container's
    width: int
    height: int
    fps: float  # average frame rate
    frame_count: int  # frames decoding yields: from the header (less those an edit list hides),
    # else counted packets, else duration x fps
    frame_count_exact: bool  # False when it is only the duration x fps estimate
    header_gaps: str = ""  # what the stream's own header leaves out (`header_gaps`)
    codec: str = ""  # the video stream's decoder name (h264, vp9, ...), for the ledger
    container: str = ""  # the demuxer's names (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`)

    def as_dict(self) -> dict[str, float | int | bool | str]:
        return asdict(self)


def header_gaps(frames: int, duration: float | None, average_rate: object, hidden: int = 0) -> str:
    """Where a video stream's header misleads a reader that trusts only the header ("" when
    nowhere): no frame count, no duration of its own, no average frame rate (Matroska, WebM and
    fragmented MP4 declare neither count nor duration), or a frame count that includes `hidden`
    frames an edit list never shows (`hidden_frames`). LLaMA-Factory's video reader misreads
    such files (`pyutils.llamafactory.qwen_video.misread_reason`)."""
    missing = [
        text
        for text, absent in (
            ("no frame count", frames <= 0),
            ("no stream duration", duration is None),
            ("no average frame rate", not average_rate),
            (f"{hidden} of its {frames} frames hidden by an edit list", hidden > 0),
        )
        if absent
    ]
    return " and ".join(missing)


def hidden_frames(format_name: str, stream: av.video.stream.VideoStream) -> int:
    """Frames of an MP4/MOV stream's count (`stream.frames`) that decoding never yields: samples
    outside its edit list. `ffmpeg -ss ... -c copy`, yt-dlp's --download-sections and phone
    editors keep the packets from the keyframe before the cut, which the decoder needs, and an
    edit list that shows the video from the cut on; libavformat's mov demuxer flags those
    samples as discarded in its index, and ffmpeg's and PyAV's decoders drop their frames.

    Reading the whole index doubles a probe's time (3-6 ms for 5,400 samples), so it is read
    only when the header hints at hidden samples: its average rate counts every sample over
    their total duration (libavformat's `duration_for_fps`) while its duration is the edit
    list's, so frames / rate exceeds the duration by the hidden ones' length; or the first or
    last sample, where a cut's hidden ones lie, is discarded."""
    if not format_name.startswith("mov") or stream.frames <= 0:
        return 0
    entries = stream.index_entries
    if not len(entries):
        return 0
    rate, duration, time_base = stream.average_rate, stream.duration, stream.time_base
    ends_shown = not (entries[0].is_discard or entries[-1].is_discard)
    if ends_shown and rate and duration and time_base:
        counted = float(duration * time_base * rate)  # frames the duration holds at that rate
        if abs(stream.frames - counted) < 0.5:
            return 0
    return sum(1 for entry in entries if entry.is_discard)


def probe(path: str | os.PathLike[str], count_frames: bool = False) -> VideoInfo:
    """Read a video's duration, size, frame rate and frame count.

    WebM and Matroska carry no per-stream duration or frame count: the container's duration is
    used, and with `count_frames` the video packets are counted (demuxing only, no decoding).
    Raises MediaError with the demuxer's reason for anything that is not a readable video.
    """
    import av  # here, not at the top: 0.06 s that a run with every probe cached never pays

    source = Path(path)
    if not source.is_file():
        raise MediaError(f"{source}: no such file")
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise MediaError(f"{source}: not a video (no video stream)")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            hidden = hidden_frames(container.format.name, stream)
            gaps = header_gaps(stream.frames, stream.duration, stream.average_rate, hidden)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            frames = stream.frames - hidden  # what decoding yields
            exact = frames > 0
            if not exact and count_frames:
                shown = (p for p in container.demux(stream) if p.size and not p.is_discard)
                frames = sum(1 for _ in shown)
                exact = True
            if not exact:
                frames = round(duration * fps)
            width, height = stream.codec_context.width, stream.codec_context.height
            codec, demuxer = stream.codec_context.name, container.format.name
    except av.FFmpegError as exc:
        raise MediaError(f"{source}: not a readable video ({_reason(exc)})") from None
    if duration <= 0 or width <= 0 or height <= 0:
        raise MediaError(f"{source}: not a readable video (no duration or frame size)")
    return VideoInfo(duration, width, height, fps, frames, exact, gaps, codec, demuxer)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration:
        import av

        return container.duration / av.time_base
    return 0.0


def _reason(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
