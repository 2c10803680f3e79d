"""Frame extraction: counts, sampling, scaling, atomicity under kill -9, failures, awkward names."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from pyutils.core.media import describe_ffmpeg, find_ffmpeg, inspect_ffmpeg, probe
from pyutils.devtools.sample import make_edit_list_video, make_video
from pyutils.video import frame_extract, frame_plan
from pyutils.video.frame_commands import seek_commands
from pyutils.video.frame_extract import extract_video
from pyutils.video.frame_plan import (
    FrameOptions,
    FrameTask,
    choose_method,
    clean_keyframes,
    even_shares,
    frame_times,
    part_starts,
    seek_groups,
    stretches,
    uniform_indices,
)
from tests.conftest import (
    SAMPLE_VIDEOS,
    bundled_ffmpeg,
    calls,
    decoded_frame_count,
    kill_once_one_is_done,
    old_ffmpeg_script,
    run_make,
    run_module,
)


def frames_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_module("pyutils.video.frames", *args, cwd=cwd, env=env)


def md5s(folder: Path) -> dict[str, str]:
    """File name -> md5 of every file in one folder."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def tree_md5s(frames: Path) -> dict[str, dict[str, str]]:
    """Every frame folder (the manifest and logs aside) -> its files' md5s."""
    return {p.name: md5s(p) for p in frames.iterdir() if p.is_dir()}


def manifest(frames: Path) -> dict[str, dict]:
    lines = (frames / "frames_manifest.jsonl").read_bytes().splitlines()
    return {record["stem"]: record for record in map(orjson.loads, lines)}


def task(source: Path, dest: Path, num_frames: int | None = None, method: Any = None) -> FrameTask:
    options = FrameOptions(None, None, num_frames, 2, "image_%05d.jpg")
    return FrameTask(source.stem, str(source), str(dest), options, threads=1, method=method)


@pytest.fixture(scope="module")
def clips(
    sample_videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The sample videos under distinct stems (clip_mp4.mp4, ...): stem -> path."""
    folder = tmp_path_factory.mktemp("clips")
    copies = {}
    for path in sample_videos.values():
        stem = f"clip_{path.suffix[1:]}"
        copies[stem] = Path(shutil.copy(path, folder / f"{stem}{path.suffix}"))
    return copies


@pytest.fixture(scope="module")
def native(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos extracted at native rate and size (shared by several tests)."""
    frames = tmp_path_factory.mktemp("native")
    videos = next(iter(clips.values())).parent
    result = frames_cli(str(videos), str(frames), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    return frames


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough, with sparse keyframes, that seeking beats one pass for a few frames."""
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", 12, 96, 64, 25, gop=50)


def test_uniform_indices_are_adaclips() -> None:
    assert uniform_indices(10, 4) == [0, 2, 5, 7]
    assert uniform_indices(5, 8) == [0, 0, 1, 1, 2, 3, 3, 4]  # fewer frames than asked: repeats
    numpy = pytest.importorskip("numpy")
    for total in range(1, 400, 7):
        for count in (1, 2, 3, 8, 12, 32, 64):
            expected = numpy.linspace(0, total, num=count, endpoint=False, dtype=int).tolist()
            assert uniform_indices(total, count) == expected


def test_native_counts_equal_decoded_frames(clips: dict[str, Path], native: Path) -> None:
    records = manifest(native)
    for stem, path in clips.items():
        frames = sorted(os.listdir(native / stem))
        assert (
            len(frames) == decoded_frame_count(path) == probe(path, count_frames=True).frame_count
        )
        assert frames[0] == "image_00001.jpg" and frames[-1] == f"image_{len(frames):05d}.jpg"
        assert records[stem]["status"] == "ok" and records[stem]["frames"] == len(frames)
    assert not (native / "frames_failures.jsonl").exists()  # written only when something failed


def test_fps_count_within_one_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    videos = next(iter(clips.values())).parent
    result = frames_cli(str(videos), str(tmp_path), "--fps", "3", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    for name, (seconds, _fps) in SAMPLE_VIDEOS.items():
        stem = "clip_" + name.rpartition(".")[2]
        assert abs(len(os.listdir(tmp_path / stem)) - seconds * 3) <= 1


def test_num_frames_are_the_native_frames_adaclip_picks(
    clips: dict[str, Path], native: Path, tmp_path: Path
) -> None:
    videos = next(iter(clips.values())).parent
    for count in (8, 100):  # 100 > every clip's frame count: AdaCLIP's repeats, K files still
        out = tmp_path / str(count)
        result = frames_cli(str(videos), str(out), "--num-frames", str(count), "--jobs", "2")
        assert result.returncode == 0, result.stderr
        for stem in clips:
            picked = sorted(os.listdir(out / stem))
            assert len(picked) == count
            all_frames = sorted(os.listdir(native / stem))
            for number, index in enumerate(uniform_indices(len(all_frames), count), start=1):
                got = (out / stem / f"image_{number:05d}.jpg").read_bytes()
                assert got == (native / stem / all_frames[index]).read_bytes()


@pytest.fixture(scope="module")
def bframes_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Closed GOPs with B-frames: packets in another order than frames, pts != dts."""
    video = tmp_path_factory.mktemp("bframes") / "bframes.mp4"
    x264 = ["-c:v", "libx264", "-bf", "3", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=12"]
    subprocess.run([find_ffmpeg(), "-v", "error", *source, *x264, str(video)], check=True)
    return video


@pytest.fixture(scope="module")
def long_webm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VP8 in WebM, Matroska's cues for an index."""
    return make_video(tmp_path_factory.mktemp("webm") / "long_webm.webm", 12, 96, 64, 25, gop=50)


@pytest.mark.parametrize("name", ["long_video", "bframes_video", "long_webm"])
def test_seeking_and_one_pass_give_the_same_bytes(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    video = request.getfixturevalue(name)
    frames = frame_times(str(video))
    total = len(frames.times)
    for seek in ("seek_bsf", "seek_inputs"):
        assert choose_method(frames, uniform_indices(total, 4), seek) == seek
        assert choose_method(frames, uniform_indices(total, 60), seek) == "sequential"
    every = extract_video(task(video, tmp_path / "all"))
    assert every.status == "ok" and every.frames == total == 300
    outputs = {}
    for method in ("seek_bsf", "seek_inputs", "sequential"):
        result = extract_video(task(video, tmp_path / method, num_frames=7, method=method))
        assert (result.status, result.method) == ("ok", method), result.error
        outputs[method] = md5s(tmp_path / method)
    assert outputs["seek_bsf"] == outputs["seek_inputs"] == outputs["sequential"]
    # ...and they are the frames a native extraction has at AdaCLIP's indices (not keyframes).
    native_md5 = md5s(tmp_path / "all")
    for number, index in enumerate(uniform_indices(total, 7), start=1):
        assert (
            outputs["seek_bsf"][f"image_{number:05d}.jpg"]
            == native_md5[f"image_{index + 1:05d}.jpg"]
        )


def _x264_video(path: Path, *options: str) -> Path:
    """10 s at 30 fps, a keyframe every 2 s, with the given x264 and muxer options."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [find_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi"]
    args += ["-i", "testsrc2=size=96x64:rate=30:duration=10", "-c:v", "libx264", "-g", "60"]
    subprocess.run([*args, *options, "-y", str(path)], check=True)
    return path


def test_frame_times_from_the_mp4_index_equal_a_demux(
    long_video: Path, bframes_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No B-frames in MP4/MOV: the frame list comes from the sample index (7 ms for 5,400 samples
    against 46 ms of demuxing), exactly as a demux gives it, timestamps kept late included.
    Reordered frames, and a fragmented MP4 whose index is built as it is read, are demuxed."""
    indexed = [
        long_video,
        _x264_video(tmp_path / "offset.mp4", "-bf", "0", "-output_ts_offset", "1.37"),
        _x264_video(tmp_path / "vfr.mp4", "-bf", "0", "-vf", "select='not(between(n,100,160))'"),
        _x264_video(tmp_path / "plain.mov", "-bf", "0"),
    ]
    demuxed = [
        bframes_video,
        _x264_video(tmp_path / "frag.mp4", "-bf", "0", "-movflags", "frag_keyframe+empty_moov"),
    ]
    from_index = {str(video): frame_times(str(video)) for video in [*indexed, *demuxed]}
    used: list[str] = []
    original = frame_plan._from_index

    def recording(format_name: str, stream: Any, head: list[Any]) -> Any:
        found = original(format_name, stream, head)
        if found:
            used.append(stream.container.name)
        return found

    monkeypatch.setattr(frame_plan, "_from_index", recording)
    for video in [*indexed, *demuxed]:
        frame_times(str(video))
    assert sorted(used) == sorted(str(video) for video in indexed)
    monkeypatch.setattr(frame_plan, "_from_index", lambda format_name, stream, head: None)
    for video, listed in from_index.items():
        assert frame_times(video) == listed, video
    assert len(from_index[str(indexed[2])].times) == 300 - 61


def test_seek_groups_share_a_decode_when_the_gap_is_small(long_video: Path) -> None:
    frames = frame_times(str(long_video))  # keyframes every 50 frames
    assert frames.keyframes == list(range(0, 300, 50))
    picks = [10, 20, 60, 160, 290]
    assert seek_groups(frames, picks, gap=15) == [[10, 20], [60], [160], [290]]
    # keyframe 50 comes 30 frames after pick 20: within a gap of 40, decoding goes on
    assert seek_groups(frames, picks, gap=40) == [[10, 20, 60], [160], [290]]
    assert stretches(frames, [[10, 20, 60], [160]]) == [(0, 60), (150, 160)]


@pytest.mark.parametrize("seek", ["seek_bsf", "seek_inputs"])
def test_a_task_with_threads_seeks_in_as_many_processes(
    seek: Any, long_video: Path, tmp_path: Path
) -> None:
    """The last video of a draining batch, given 2 threads: its stretches are shared between two
    one-thread ffmpegs run side by side, and the frames are the one pass's."""
    frames = frame_times(str(long_video))  # keyframes every 50 frames
    picks = uniform_indices(len(frames.times), 4)  # 0, 75, 150, 225: 1, 26, 1, 26 frames to decode
    groups = [[pick] for pick in picks]
    assert even_shares(frames, groups, 2) == [[[0], [75]], [[150], [225]]]
    assert even_shares(frames, groups, 3) == [[[0], [75]], [[150], [225]]]  # a third: no faster
    assert even_shares(frames, groups, 1) == [groups]
    options = FrameOptions(None, None, 4, 2, "image_%05d.jpg")
    wide = FrameTask("l", str(long_video), str(tmp_path / "wide"), options, 2, seek)
    commands = seek_commands(wide, frames, picks, seek)
    assert len(commands) == 2
    for command, first in zip(commands, (None, "3"), strict=True):
        outputs = command.count(".pick_%05d.jpg")
        assert command.count("-threads") == command.count("-i") + outputs  # decoders, encoders
        assert {command[i + 1] for i, arg in enumerate(command) if arg == "-threads"} == {"1"}
        assert (command[command.index("-start_number") + 1] if first else None) == first
    assert extract_video(wide).method == seek
    one_pass = extract_video(task(long_video, tmp_path / "one", num_frames=4, method="sequential"))
    assert one_pass.status == "ok"
    assert md5s(tmp_path / "wide") == md5s(tmp_path / "one")


def test_fps_parts_are_cut_at_clean_keyframes(long_video: Path, open_gop_video: Path) -> None:
    frames = frame_times(str(long_video))  # 300 frames, keyframes every 50, no B-frames
    assert clean_keyframes(frames) == [50, 100, 150, 200, 250]
    assert part_starts(frames, 1) == [0]
    assert part_starts(frames, 2) == [0, 150]
    assert part_starts(frames, 3) == [0, 100, 200]
    assert part_starts(frames, 8) == [0, 100, 200]  # parts of at least PART_MIN_FRAMES (100)
    frames = frame_times(str(open_gop_video))
    assert frames.keyframes == [0, 50, 100, 150, 200, 250]
    # Keyframe 100 is packet 97; frames 98 and 99, shown before it, are packets 98 and 100.
    assert (frames.packets[100], frames.packets[98], frames.packets[99]) == (97, 98, 100)
    assert 100 not in clean_keyframes(frames)
    assert part_starts(frames, 2) == [0, 150]
    assert part_starts(frames, 3) == [0, 150]  # no clean cut at 100, and 200 leaves 50 before


@pytest.mark.parametrize(
    "name", ["long_video", "bframes_video", "long_webm", "open_gop_video", "vfr_long_video"]
)
def test_fps_parts_give_the_one_pass_bytes(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A --fps task given 2 or 3 threads (the last videos of a batch) splits its video among
    one-thread ffmpegs; at rates below, at and above the video's, the frames are the one
    pass's, byte for byte."""
    video = request.getfixturevalue(name)
    for fps in ("1", "7/3", "25", "60"):
        options = FrameOptions(fps, 48, None, 2, "image_%05d.jpg")
        outputs, methods = [], []
        for threads in (1, 2, 3):
            dest = tmp_path / f"{fps.replace('/', '_')}-{threads}"
            result = extract_video(FrameTask(name, str(video), str(dest), options, threads))
            assert result.status == "ok", result.error
            methods.append(result.method)
            outputs.append(md5s(dest))
        assert methods == ["fps", "fps_parts", "fps_parts"]
        assert outputs[0] == outputs[1] == outputs[2], fps
        assert len(outputs[0]) == round(float(Fraction(fps)) * 12)


def test_fps_parts_with_a_gap_give_way_to_the_one_pass(
    long_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part whose decoder starts past its keyframe (here: 20 packets dropped after it) loses
    its first frames: the slots between the parts leave a gap, and the one pass is done."""
    original = frame_extract.part_command

    def late_start(task: FrameTask, keep: tuple[int, int], folder: str) -> list[str]:
        return original(task, (keep[0] + 20, keep[1]) if keep[0] else keep, folder)

    monkeypatch.setattr(frame_extract, "part_command", late_start)
    options = FrameOptions("25", None, None, 2, "image_%05d.jpg")
    result = extract_video(FrameTask("l", str(long_video), str(tmp_path / "two"), options, 2))
    assert (result.status, result.method, result.frames) == ("ok", "fps", 300)
    assert not [name for name in os.listdir(tmp_path / "two") if name.startswith(".")]
    monkeypatch.undo()
    extract_video(FrameTask("l", str(long_video), str(tmp_path / "one"), options, 1))
    assert md5s(tmp_path / "two") == md5s(tmp_path / "one")


def test_fps_parts_slots_join_where_the_next_part_begins(tmp_path: Path) -> None:
    def part(name: str, slots: list[int]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for slot in slots:
            (folder / f"{slot}.jpg").touch()
        return folder

    # A part's end of stream repeats its last frame past the next part's first slot: dropped.
    joined = frame_extract._slots_in_order([part("a", [0, 1, 2, 3, 4]), part("b", [3, 4, 5])])
    assert [f"{p.parent.name}/{p.name}" for p in joined or []] == [
        "a/0.jpg", "a/1.jpg", "a/2.jpg", "b/3.jpg", "b/4.jpg", "b/5.jpg",
    ]  # fmt: skip
    assert frame_extract._slots_in_order([part("c", [0, 1]), part("d", [3, 4])]) is None  # gap
    assert frame_extract._slots_in_order([part("e", [5, 6]), part("f", [3, 4, 5])]) is None
    assert frame_extract._slots_in_order([part("g", [0, 1]), part("h", [])]) is None


def test_fps_parts_need_the_frame_times_else_the_one_pass(
    long_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video PyAV cannot demux but ffmpeg can read gets the one pass with several threads too:
    the outcome never depends on --jobs."""

    def unreadable(source: str) -> None:
        raise frame_plan.ExtractionError("cannot read the frame times: (a codec PyAV lacks)")

    monkeypatch.setattr(frame_extract, "frame_times", unreadable)
    options = FrameOptions("5", None, None, 2, "image_%05d.jpg")
    result = extract_video(FrameTask("l", str(long_video), str(tmp_path / "f"), options, 2))
    assert (result.status, result.method, result.frames) == ("ok", "fps", 60)


def test_old_ffmpeg_by_choice_seeks_with_one_input_per_stretch(
    old_ffmpeg: Path,
    long_video: Path,
    bframes_video: Path,
    long_webm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_choice: None,
) -> None:
    """FFMPEG= an ffmpeg that cannot seek by input bitstream filter: it is used, the picks are
    reached with one input per stretch, the bytes are its own one pass's, and the bitstream
    filter command it would refuse is never run."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for video in (long_video, bframes_video, long_webm):
        shutil.copy(video, videos / video.name)
    env = {**os.environ, "FFMPEG": str(old_ffmpeg)}
    args = [str(videos), str(tmp_path / "frames"), "--num-frames", "4", "--jobs", "2"]
    result = frames_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert f"at {old_ffmpeg} (set by FFMPEG), seeking with one input per stretch" in first
    assert {r["method"] for r in manifest(tmp_path / "frames").values()} == {"seek_inputs"}
    work = [line for line in calls(old_ffmpeg) if "-hide_banner" not in line]
    assert len(work) >= 3 and all("-ss " in line for line in work)  # the third may be split
    assert not any("-bsf" in line for line in work)
    monkeypatch.setenv("FFMPEG", str(old_ffmpeg))
    for video in (long_video, bframes_video, long_webm):
        out = tmp_path / f"one-pass-{video.stem}"
        assert extract_video(task(video, out, num_frames=4, method="sequential")).status == "ok"
        assert md5s(tmp_path / "frames" / video.stem) == md5s(out)


def test_old_ffmpeg_on_path_is_left_alone(
    old_ffmpeg: Path, long_video: Path, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(long_video, videos / "long.mp4")
    env = {**os.environ, "PATH": f"{old_ffmpeg.parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("FFMPEG", None)
    result = frames_cli(str(videos), str(tmp_path / "f"), "--num-frames", "4", env=env)
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    old = inspect_ffmpeg(str(old_ffmpeg))
    assert f"(bundled: PATH's {old.version} cannot seek by input bitstream filter" in first
    assert first.endswith(
        "seeking by input bitstream filter where it saves decoding, else one pass"
    )
    assert manifest(tmp_path / "f")["long"]["method"] == "seek_bsf"
    assert all("-hide_banner" in line for line in calls(old_ffmpeg))  # asked, never used


def test_a_forced_method_the_ffmpeg_cannot_do_is_refused_unrun(
    long_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    old = old_ffmpeg_script(tmp_path / "old", bundled_ffmpeg())
    monkeypatch.setenv("FFMPEG", str(old))
    result = extract_video(task(long_video, tmp_path / "x", num_frames=4, method="seek_bsf"))
    assert result.status == "failed" and not (tmp_path / "x").exists()
    assert result.error == f"ffmpeg 5.1.9 at {old} cannot seek by bitstream filter"
    assert all("-hide_banner" in line for line in calls(old))


def test_first_line_says_options_ffmpeg_and_method(clips: dict[str, Path], tmp_path: Path) -> None:
    videos = next(iter(clips.values())).parent
    picks = frames_cli(str(videos), str(tmp_path / "a"), "--num-frames", "4", "--short-side", "64")
    assert picks.stderr.splitlines()[0] == (
        f"frames: 4 uniformly spaced frames (AdaCLIP), shorter side 64, JPEG q2, "
        f"{os.cpu_count()} job{'s' if os.cpu_count() != 1 else ''}; {describe_ffmpeg()}, "
        "seeking by input bitstream filter where it saves decoding, else one pass"
    )
    options = ("--fps", "1", "--jobs", "1", "--quality", "5")
    rate = frames_cli(str(videos), str(tmp_path / "b"), *options)
    assert rate.stderr.splitlines()[0] == (
        f"frames: 1 frame per second, native size, JPEG q5, 1 job; {describe_ffmpeg()}, "
        "the fps filter in one pass, a video given several cores cut at keyframes among one-thread "
        "ffmpegs"
    )


@pytest.fixture(scope="module")
def open_gop_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Open GOPs: some keyframes have B-frames shown before them but decoded after them."""
    video = tmp_path_factory.mktemp("open_gop") / "open_gop.mp4"
    x264 = ["-c:v", "libx264", "-bf", "3", "-x264-params", "open-gop=1:keyint=50:min-keyint=50"]
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=12"]
    subprocess.run([find_ffmpeg(), "-v", "error", *source, *x264, str(video)], check=True)
    return video


@pytest.fixture(scope="module")
def vfr_long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s declared at 25 fps with 2.4 s of frames missing (timestamps kept): a pause."""
    video = tmp_path_factory.mktemp("vfr") / "vfr_long.mp4"
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=12"]
    drop = ["-vf", "select='not(between(n,120,179))'", "-fps_mode", "vfr", "-g", "50"]
    subprocess.run([find_ffmpeg(), "-v", "error", *source, *drop, str(video)], check=True)
    return video


@pytest.mark.parametrize(("seek", "used"), [("seek_bsf", "sequential"), ("seek_inputs", None)])
def test_open_gop_gives_the_native_frames(
    open_gop_video: Path, tmp_path: Path, seek: Any, used: str | None
) -> None:
    """After a jump over dropped packets to an open-GOP keyframe, H.264's decoder loses frames:
    the bitstream filter's run comes up short and the one pass is done instead. An input opened
    at that keyframe (-ss) starts a fresh decoder there, which decodes the frames shown from it
    on, so it keeps its method. Either way: the frames a native extraction has."""
    video = open_gop_video
    total = len(frame_times(str(video)).times)
    assert choose_method(frame_times(str(video)), uniform_indices(total, 4), seek) == seek
    result = extract_video(task(video, tmp_path / "picked", num_frames=4, method=seek))
    assert (result.status, result.method) == ("ok", used or seek), result.error
    assert extract_video(task(video, tmp_path / "all")).status == "ok"
    native_md5 = md5s(tmp_path / "all")
    picked_md5 = md5s(tmp_path / "picked")
    for number, index in enumerate(uniform_indices(total, 4), start=1):
        assert picked_md5[f"image_{number:05d}.jpg"] == native_md5[f"image_{index + 1:05d}.jpg"]


def test_short_side_landscape_and_portrait(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "wide.mp4", 0.4, 320, 240)
    make_video(videos / "tall.mp4", 0.4, 240, 320)
    make_video(videos / "tiny.mp4", 0.4, 160, 120)  # smaller than asked: never upscaled
    # A phone video: stored landscape, displayed portrait through a rotation flag.
    rotate = ["-v", "error", "-display_rotation", "90", "-i", str(videos / "wide.mp4")]
    subprocess.run([find_ffmpeg(), *rotate, "-c", "copy", str(videos / "phone.mp4")], check=True)
    result = frames_cli(str(videos), str(tmp_path / "f"), "--short-side", "224", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    sizes = {}
    for stem in ("wide", "tall", "tiny", "phone"):
        info = probe(tmp_path / "f" / stem / "image_00001.jpg")
        sizes[stem] = (info.width, info.height)
    expected = {"wide": (298, 224), "tall": (224, 298), "tiny": (160, 120), "phone": (224, 298)}
    assert sizes == expected


def test_same_bytes_for_any_jobs(clips: dict[str, Path], tmp_path: Path) -> None:
    """3 videos: with 2 or 4 jobs the last ones start with more decoder threads than the first
    (on 2 or more cores); the bytes are the same as one at a time."""
    videos = next(iter(clips.values())).parent
    runs = {"1": (), "2": (), "4": (), "loky": ("--backend", "loky")}  # processes: no draining
    for name, backend in runs.items():
        jobs = name if name.isdigit() else "2"
        options = ("--short-side", "64", "--jobs", jobs, *backend)
        result = frames_cli(str(videos), str(tmp_path / name), *options)
        assert result.returncode == 0, result.stderr
    assert tree_md5s(tmp_path / "1") == tree_md5s(tmp_path / "2") == tree_md5s(tmp_path / "4")
    assert tree_md5s(tmp_path / "loky") == tree_md5s(tmp_path / "1")
    assert sum(map(len, tree_md5s(tmp_path / "1").values())) > 100


@pytest.mark.parametrize(
    ("fps", "num_frames", "method"),
    [(None, None, None), ("3", None, None), (None, 7, "seek_bsf"), (None, 7, "seek_inputs")],
)
def test_decoder_threads_do_not_change_the_bytes(
    bframes_video: Path, tmp_path: Path, fps: str | None, num_frames: int | None, method: Any
) -> None:
    options = FrameOptions(fps, 48, num_frames, 2, "image_%05d.jpg")
    outputs = []
    for threads in (1, 3):
        dest = tmp_path / str(threads)
        unit = FrameTask("b", str(bframes_video), str(dest), options, threads, method)
        result = extract_video(unit)
        rate = "fps" if threads == 1 else "fps_parts"  # 300 frames: 3 parts of 100
        assert result.status == "ok" and result.method == (method or (rate if fps else "native"))
        outputs.append(md5s(dest))
    assert outputs[0] == outputs[1] and len(outputs[0]) >= 7


@pytest.mark.parametrize(("seconds", "options"), [(3, ()), (10, ("--fps", "25"))])
def test_kill_midway_then_rerun_equals_uninterrupted_run(
    tmp_path: Path, seconds: int, options: tuple[str, ...]
) -> None:
    """Every frame in one pass; and --fps with one job on this machine's cores (parts side by
    side on 2 or more: 250 frames a video)."""
    videos = tmp_path / "videos"
    for index in range(10):
        make_video(videos / f"v{index}.mp4", seconds, 160, 120, gop=50)
    reference = tmp_path / "reference"
    assert frames_cli(str(videos), str(reference), "--jobs", "2", *options).returncode == 0
    frames = tmp_path / "frames"
    args = ["pyutils.video.frames", str(videos), str(frames), "--jobs", "1", *options]
    done = kill_once_one_is_done(args, frames, "v")
    assert 1 <= len(done) < 10, "the kill came too late to interrupt anything"
    for folder in done:  # what carries a final name is complete
        assert len(os.listdir(folder)) == len(os.listdir(reference / folder.name))
    rerun = frames_cli(str(videos), str(frames), "--jobs", "2", *options)
    assert rerun.returncode == 0, rerun.stderr
    # A video renamed into place whose manifest line the kill cut off is simply done again.
    already = re.search(r"(\d+) already done", rerun.stderr)
    assert already and int(already[1]) <= len(done)
    assert tree_md5s(frames) == tree_md5s(reference)
    assert not [p for p in frames.rglob("*") if ".vlprep-tmp" in p.name]


def test_corrupt_and_truncated_among_good(clips: dict[str, Path], tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    shutil.copytree(next(iter(clips.values())).parent, videos)
    (videos / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    webm = clips["clip_webm"].read_bytes()
    (videos / "cut.webm").write_bytes(webm[: len(webm) // 3])
    result = frames_cli(str(videos), str(tmp_path / "f"), "--jobs", "2")
    assert result.returncode == 1
    assert "3 ok, 2 failed" in result.stdout
    failures = [orjson.loads(line) for line in (tmp_path / "f/frames_failures.jsonl").open("rb")]
    errors = {Path(f["item"]).name: f["error"] for f in failures}
    assert "Invalid data found when processing input" in errors["garbage.mp4"]
    assert "File ended prematurely" in errors["cut.webm"]
    for stem in clips:
        assert len(os.listdir(tmp_path / "f" / stem)) > 10
    assert not (tmp_path / "f" / "garbage").exists() and not (tmp_path / "f" / "cut").exists()
    assert manifest(tmp_path / "f")["cut"]["status"] == "failed"


def test_awkward_names(sample_videos: dict[str, Path], tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    names = [
        "with space.mp4",
        "quote'\"s.mp4",
        "ünïcödé 视频.mp4",
        "$(touch pwned).mp4",
        "100%d -x.mp4",
    ]
    for name in names:
        (videos / "sub dir").mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_videos["clip.mp4"], videos / "sub dir" / name)
    result = frames_cli(str(videos), "out", "--num-frames", "4", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in names:
        assert len(os.listdir(tmp_path / "out" / Path(name).stem)) == 4
    # --fps with one job: each video cut into parts run side by side on 2 or more cores
    long = make_video(tmp_path / "long.mp4", 10, 96, 64, gop=50)
    for name in names:
        shutil.copy(long, videos / "sub dir" / name)
    result = frames_cli(str(videos), "out %d", "--fps", "2", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in names:
        assert len(os.listdir(tmp_path / "out %d" / Path(name).stem)) == 20
    methods = {record["method"] for record in manifest(tmp_path / "out %d").values()}
    assert methods == {"fps_parts" if (os.cpu_count() or 1) > 1 else "fps"}
    assert not list(tmp_path.rglob("pwned"))


def test_rerun_skips_done_and_redoes_changed_options(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    videos = next(iter(clips.values())).parent
    frames = tmp_path / "f"
    assert frames_cli(str(videos), str(frames), "--num-frames", "4").returncode == 0
    again = frames_cli(str(videos), str(frames), "--num-frames", "4")
    assert "3 already done, 0 to do" in again.stderr
    (frames / "clip_mkv" / "image_00002.jpg").unlink()  # a damaged folder is not done
    lines = (frames / "frames_manifest.jsonl").read_bytes().splitlines()
    assert b'"clip_mp4"' in lines[1]  # sorted by stem; a torn line loses only its own video
    torn = [lines[0], b'{"stem": "clip_m', lines[2]]
    (frames / "frames_manifest.jsonl").write_bytes(b"\n".join(torn))
    repaired = frames_cli(str(videos), str(frames), "--num-frames", "4")
    assert repaired.returncode == 0 and "1 already done, 2 to do" in repaired.stderr
    assert "unreadable manifest line skipped" in repaired.stderr
    changed = frames_cli(str(videos), str(frames), "--num-frames", "6", "--replace")
    assert changed.returncode == 0 and "0 already done, 3 to do" in changed.stderr
    records = manifest(frames)
    assert {r["options"]["num_frames"] for r in records.values()} == {6}
    assert all(len(os.listdir(frames / stem)) == 6 for stem in records)


def test_input_errors_are_one_line_exit_2(sample_videos: dict[str, Path], tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "a").mkdir(parents=True)
    (videos / "b").mkdir()
    shutil.copy(sample_videos["clip.mp4"], videos / "a" / "same.mp4")
    shutil.copy(sample_videos["clip.mkv"], videos / "b" / "same.mkv")
    duplicate = frames_cli(str(videos), str(tmp_path / "f"))
    assert duplicate.returncode == 2 and "'same'" in duplicate.stderr
    assert len(duplicate.stderr.strip().splitlines()) == 1 and not (tmp_path / "f").exists()
    listing = tmp_path / "list.txt"
    listing.write_text("a/same.mp4\nmissing.mp4\n")
    missing = frames_cli(str(videos), str(tmp_path / "f"), "--file-list", str(listing))
    assert missing.returncode == 2 and f"{listing}:2:" in missing.stderr


@pytest.mark.parametrize("damage", ["emptied", "overwritten", "deleted", "stray file"])
def test_a_damaged_frame_folder_is_redone_not_counted(
    clips: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    videos = next(iter(clips.values())).parent
    frames = tmp_path / "f"
    assert frames_cli(str(videos), str(frames), "--num-frames", "4").returncode == 0
    folder = frames / "clip_mkv"
    good = {p.name: p.read_bytes() for p in folder.iterdir()}
    frame = folder / "image_00002.jpg"
    if damage == "emptied":
        frame.write_bytes(b"")
    elif damage == "overwritten":  # same size, other bytes: only the time tells
        time.sleep(0.01)
        frame.write_bytes(bytes(len(good[frame.name])))
    elif damage == "deleted":
        frame.unlink()
        (folder / "image_00009.jpg").write_bytes(good["image_00001.jpg"])  # count unchanged
    else:
        (folder / "notes.txt").write_text("stray")
    again = frames_cli(str(videos), str(frames), "--num-frames", "4")
    assert again.returncode == 0 and "2 already done, 1 to do" in again.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == good


def test_a_video_named_like_the_manifest_is_refused(tmp_path: Path) -> None:
    videos = tmp_path / "v"
    make_video(videos / "frames_manifest.jsonl.mp4", 1.0, width=64, height=48)
    result = frames_cli(str(videos), str(tmp_path / "f"))
    assert result.returncode == 2
    assert "its frames would go to FRAMES/frames_manifest.jsonl" in result.stderr
    again = frames_cli(str(videos), str(tmp_path / "f"))  # and nothing was left to break later
    assert again.returncode == 2 and "IsADirectoryError" not in again.stderr


def _variable_rate_video(path: Path) -> Path:
    """4 s at a declared 30 fps with 40 frames dropped in the middle (timestamps kept): 80
    frames, a gap of 1.33 s, the stream of a phone or screen recorder that pauses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [find_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi"]
    args += ["-i", "testsrc2=size=160x120:rate=30", "-t", "4"]
    args += ["-vf", "select='not(between(n,20,59))'", "-fps_mode", "vfr", "-y", str(path)]
    subprocess.run(args, check=True)
    return path


@pytest.mark.parametrize("container", ["mp4", "mkv", "webm"])
def test_variable_frame_rate_videos_are_whole_not_truncated(tmp_path: Path, container: str) -> None:
    video = _variable_rate_video(tmp_path / "v" / f"vfr.{container}")
    assert probe(video, count_frames=True).frame_count == 80  # < 4 s x 30 fps x 0.9
    for options in ([], ["--num-frames", "8"]):
        out = tmp_path / f"f{len(options)}"
        result = frames_cli(str(video.parent), str(out), *options)
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(os.listdir(out / "vfr")) == (8 if options else 80)


@pytest.mark.parametrize("options", [(), ("--fps", "25")])
def test_a_webm_cut_in_half_is_still_truncated(tmp_path: Path, options: tuple[str, ...]) -> None:
    whole = make_video(tmp_path / "whole.webm", 4.0, width=160, height=120)
    cut = tmp_path / "v" / "cut.webm"
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = frames_cli(str(cut.parent), str(tmp_path / "f"), *options)
    assert result.returncode == 1
    assert "truncated: its" in result.stdout and "of a declared 4 s" in result.stdout


def late_video(path: Path, *, after_audio: float = 0.0, offset: float = 0.0) -> Path:
    """4 s of audio and 25 fps video to the same end, the video starting `after_audio` seconds
    after the audio, all timestamps `offset` seconds late (as -output_ts_offset or -copyts
    leave them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [find_ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=4"]
    args += ["-itsoffset", str(after_audio), "-f", "lavfi"]
    args += ["-i", f"testsrc2=size=96x64:rate=25:duration={4 - after_audio}"]
    args += ["-map", "1:v", "-map", "0:a"]
    args += ["-c:v", "libvpx" if path.suffix == ".webm" else "libx264", "-c:a", "libvorbis"]
    subprocess.run([*args, "-output_ts_offset", str(offset), "-y", str(path)], check=True)
    return path


@pytest.mark.parametrize(
    ("name", "after_audio", "offset", "count"),
    [("late.mkv", 0.6, 0.0, 85), ("late.webm", 0.6, 0.0, 85), ("offset.mkv", 0.0, 1.37, 100)],
)
def test_a_matroska_video_that_starts_late_is_whole(
    tmp_path: Path, name: str, after_audio: float, offset: float, count: int
) -> None:
    """Matroska's duration counts from 0, the segment's start: a video 0.6 s after its audio, or
    with timestamps 1.37 s late, declares 0.6 or 1.37 s more than its frames last. Every method
    takes it as whole: not 'truncated', and --fps counts from the first frame."""
    video = late_video(tmp_path / "v" / name, after_audio=after_audio, offset=offset)
    frames = frame_times(str(video))
    assert len(frames.times) == count
    assert float(frames.lead) == pytest.approx(after_audio + offset, abs=0.002)
    for options, expected in (((), count), (("--fps", "25"), count), (("--fps", "5"), count / 5)):
        out = tmp_path / "-".join(options or ("native",))
        result = frames_cli(str(video.parent), str(out), *options)
        assert result.returncode == 0, result.stdout
        assert "frames: 1 video, 0 already done, 1 to do" in result.stderr
        assert len(os.listdir(out / video.stem)) == expected


@pytest.fixture(scope="module")
def edit_list_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ffmpeg -ss 5.3 -c copy` of 12 s at 25 fps with a keyframe a second: 175 packets from
    the keyframe at 5 s, 8 of them hidden by the edit list, 167 frames shown (6.7 s)."""
    folder = tmp_path_factory.mktemp("edit-list")
    return make_edit_list_video(folder / "cut.mp4", 12.0, 5.3, width=96, height=64, fps=25)


def test_an_edit_list_gives_the_frames_ffmpeg_decodes(
    edit_list_video: Path, tmp_path: Path
) -> None:
    """The frames decoding yields are the truth: every frame at the native rate equals the
    reference `ffmpeg -i v frames/%05d.jpg` (with vlprep's JPEG settings) byte for byte, and
    NUM_FRAMES=K writes exactly K of them, AdaCLIP's picks over the 167, by every method."""
    reference = tmp_path / "reference"
    reference.mkdir()
    jpeg = ["-q:v", "2", "-huffman", "default", "-threads", "1"]
    command = [find_ffmpeg(), "-nostdin", "-v", "error", "-i", str(edit_list_video), *jpeg]
    subprocess.run([*command, str(reference / "image_%05d.jpg")], check=True)
    shown = len(os.listdir(reference))
    assert (shown, decoded_frame_count(edit_list_video)) == (167, 167)
    assert len(frame_times(str(edit_list_video)).times) == probe(edit_list_video).frame_count == 167
    frames = tmp_path / "frames"
    result = frames_cli(str(edit_list_video.parent), str(frames), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert md5s(frames / "cut") == md5s(reference)
    every = md5s(reference)
    for method in ("seek_bsf", "seek_inputs", "sequential", None):
        out = tmp_path / str(method)
        picked = extract_video(task(edit_list_video, out, num_frames=8, method=method))
        assert (picked.status, picked.frames) == ("ok", 8), picked.error
        expected = [every[f"image_{i + 1:05d}.jpg"] for i in uniform_indices(shown, 8)]
        assert [md5s(out)[f"image_{n:05d}.jpg"] for n in range(1, 9)] == expected
    at_two = frames_cli(str(edit_list_video.parent), str(tmp_path / "fps"), "--fps", "2")
    assert at_two.returncode == 0, at_two.stderr
    assert abs(len(os.listdir(tmp_path / "fps" / "cut")) - 6.7 * 2) <= 1


def test_new_options_on_a_folder_of_other_frames_are_refused_unless_replace(
    tmp_path: Path,
) -> None:
    """A forgotten FPS= must not throw away a native extraction: refused before any work,
    naming the options held and asked; REPLACE=1 replaces them."""
    videos, frames = tmp_path / "videos", tmp_path / "frames"
    make_video(videos / "a.mp4", 1.0, width=64, height=48, fps=10)
    common = [f"VIDEOS={videos}", f"FRAMES={frames}"]
    assert run_make("frames", *common).returncode == 0
    native = sorted((frames / "a").iterdir())
    assert len(native) == 10
    refused = run_make("frames", *common, "FPS=2")
    assert refused.returncode == 2
    assert (
        f"vlprep: error: {frames} holds frames of 1 video made with FPS=; asked for FPS=2: "
        "set REPLACE=1 (--replace) to replace them, or FRAMES= to another folder"
    ) in refused.stderr
    assert sorted((frames / "a").iterdir()) == native
    replaced = run_make("frames", *common, "FPS=2", "REPLACE=1")
    assert replaced.returncode == 0, replaced.stderr
    assert len(list((frames / "a").iterdir())) == 2
    assert run_make("frames", *common, "FPS=2").returncode == 0  # the same options again
