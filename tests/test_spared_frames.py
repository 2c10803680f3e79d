"""Disposable frames (H.264 nal_ref_idc 0, HEVC sub-layer non-reference pictures, AV1 frames that
refresh no reference slot) that nothing keeps never reach the decoder, nor at --fps the packets
between the last frame kept and the next fresh keyframe (H.264 and HEVC IDR pictures, VP9 and
AV1 key frames), and the frames written are byte for byte the one pass's: for each codec real
downloads hold, at --fps (one ffmpeg, and parts side by side) and --num-frames."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pyutils.core.media import find_ffmpeg
from pyutils.video.frame_commands import frames_command, packet_filter, selection
from pyutils.video.frame_extract import extract_video
from pyutils.video.frame_plan import (
    ExactFrames,
    FrameOptions,
    FrameTask,
    FrameTimes,
    decoded_for,
    fps_kept,
    frame_times,
    uniform_indices,
    without,
)

# codec -> (file name, encoder options): 12 s at 25 fps, a keyframe every 2 s, 96x64.
CODECS = {
    "h264": ("h264.mp4", ["-c:v", "libx264", "-preset", "medium", "-bf", "3"]),
    "hevc": ("hevc.mp4", ["-c:v", "libx265", "-x265-params", "log-level=error:open-gop=0"]),
    "vp9": ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8"]),
    "av1": ("av1.mp4", ["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"]),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("codecs")
    made = {}
    for codec, (name, encoder) in CODECS.items():
        source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=12"]
        gop = ["-g", "50", "-keyint_min", "50"]
        command = [find_ffmpeg(), "-v", "error", *source, *encoder, *gop, str(folder / name)]
        subprocess.run(command, check=True, capture_output=True)
        made[codec] = folder / name
    return made


def md5_list(folder: Path) -> list[str]:
    return [hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())]


def one_pass(task: FrameTask, sample: tuple[str, str], picks: int | None = None) -> list[str]:
    """What the one pass, dropping nothing, writes."""
    Path(task.dest).mkdir(parents=True)
    subprocess.run(frames_command(task, sample, picks), cwd=task.dest, check=True)
    return md5_list(Path(task.dest))


def decoded(video: Path, skip: set[int] = frozenset()) -> dict[int, str]:
    """pts -> md5 of the decoded picture, decoding every packet but those numbered in `skip`."""
    pictures = {}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for number, packet in enumerate(container.demux(stream)):
            if number in skip:
                continue
            for frame in packet.decode():
                picture = frame.to_ndarray(format="yuv420p").tobytes()  # no line padding
                pictures[frame.pts] = hashlib.md5(picture).hexdigest()
    return pictures


# codec -> the share of its frames that are disposable: x264 medium (B-pyramid) and x265 leave
# about half of them unreferenced; SVT-AV1's top temporal layer is a quarter of its temporal units
# (the others hold a frame it refers to, or show one decoded before).
DISPOSABLE_SHARE = {"h264": (0.3, 0.7), "hevc": (0.3, 0.7), "av1": (0.2, 0.5)}


@pytest.mark.parametrize("codec", list(DISPOSABLE_SHARE))
def test_disposable_frames_are_found_and_no_other_frame_needs_them(
    videos: dict[str, Path], codec: str
) -> None:
    frames = frame_times(str(videos[codec]))
    low, high = DISPOSABLE_SHARE[codec]
    assert low < len(frames.disposable) / len(frames.times) < high
    assert not frames.disposable & set(frames.keyframes)
    skipped = {frames.packets[i] for i in frames.disposable}
    whole, without_them = decoded(videos[codec]), decoded(videos[codec], skipped)
    kept = {frames.times[i] for i in range(len(frames.times))} - {
        frames.times[i] for i in frames.disposable
    }
    assert {pts: whole[pts] for pts in kept} == without_them


def test_vp9_spares_nothing(videos: dict[str, Path]) -> None:
    assert frame_times(str(videos["vp9"])).disposable == frozenset()


@pytest.mark.parametrize("codec", list(CODECS))
def test_fresh_keyframes_are_found_and_nothing_after_them_needs_what_came_before(
    videos: dict[str, Path], codec: str
) -> None:
    """Every keyframe of these closed-GOP encodes starts afresh; dropping the packets just
    before each one (the last 5 of each 2 s) leaves every frame from it on as decoded."""
    frames = frame_times(str(videos[codec]))
    assert frames.fresh == frozenset(frames.keyframes) == frozenset(range(0, 300, 50))
    fresh_packets = sorted(frames.packets[i] for i in frames.fresh)
    before = {packet - back for packet in fresh_packets[1:] for back in range(1, 6)}
    whole, without_them = decoded(videos[codec]), decoded(videos[codec], before)
    left = {frames.times[i] for i in range(len(frames.times)) if frames.packets[i] not in before}
    assert {pts: whole[pts] for pts in left} == without_them


def test_an_open_gop_keyframe_is_not_fresh(tmp_path: Path) -> None:
    """x264 --open-gop: keyframes after the first are I pictures whose leading B-frames refer
    to the GOP before; only the first, an IDR picture, starts afresh."""
    video = tmp_path / "open.mp4"
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=6"]
    encoder = ["-c:v", "libx264", "-bf", "3", "-g", "50", "-x264-params", "open-gop=1"]
    subprocess.run([find_ffmpeg(), "-v", "error", *source, *encoder, str(video)], check=True)
    frames = frame_times(str(video))
    assert len(frames.keyframes) > 1
    assert frames.fresh == {0}


def test_fresh_keyframes_are_read_from_an_mp4_index(tmp_path: Path) -> None:
    """MP4s whose frames are not reordered are listed from their index; their keyframes' packets
    are read where the index says: VP9 in MP4, and H.264 without B-frames."""
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=4", "-g", "25"]
    for name, encoder in (
        ("vp9.mp4", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]),
        ("h264.mp4", ["-c:v", "libx264", "-bf", "0"]),
    ):
        video = tmp_path / name
        subprocess.run([find_ffmpeg(), "-v", "error", *source, *encoder, str(video)], check=True)
        assert frame_times(str(video)).fresh == {0, 25, 50, 75}, name


def timeline(packets: list[int], fresh: set[int]) -> FrameTimes:
    """Frames 0.. in presentation order with these packet numbers, all keyframes fresh."""
    times = list(range(len(packets)))
    return FrameTimes(times, packets, sorted(fresh), True, fresh=frozenset(fresh))


def test_decoded_for_worked_by_hand() -> None:
    # 12 frames in presentation order; B-frames make frame 2 packet 3, frame 3 packet 2, ...
    frames = timeline([0, 1, 3, 2, 4, 5, 6, 8, 7, 9, 10, 11], fresh={0, 6, 10})
    # frame 3 (packet 2) needs 0-2; frame 2 is packet 3: 0-3 in all
    assert decoded_for(frames, {2, 3}) == [(0, 3)]
    # a gap: frame 4 ends the first stretch; frame 7 (packet 8) starts at fresh frame 6
    assert decoded_for(frames, {0, 4, 7}) == [(0, 4), (6, 8)]
    # stretches that meet are joined: frame 5 (packet 5) ends where frame 6's begins
    assert decoded_for(frames, {5, 6}) == [(0, 6)]
    # no fresh keyframe before: from the first packet
    assert decoded_for(timeline([0, 1, 2], fresh=set()), {1}) == [(0, 1)]


# 1 fps on every codec; 5 fps (a slot every 5 frames, some of them disposable) on H.264.
@pytest.mark.parametrize(("codec", "fps"), [*((codec, "1") for codec in CODECS), ("h264", "5")])
def test_fps_frames_are_the_one_pass_bytes(
    videos: dict[str, Path], codec: str, fps: str, tmp_path: Path
) -> None:
    options = FrameOptions(fps, None, None, 2, "image_%05d.jpg")
    reference = one_pass(
        FrameTask("v", str(videos[codec]), str(tmp_path / "one"), options, 1), ("fps", fps)
    )
    assert len(reference) == 12 * int(fps)
    for threads, method in ((1, "fps"), (2, "fps_parts")):
        task = FrameTask("v", str(videos[codec]), str(tmp_path / f"t{threads}"), options, threads)
        result = extract_video(task)
        assert (result.status, result.method, result.error) == ("ok", method, "")
        assert md5_list(Path(task.dest)) == reference, (codec, threads)


@pytest.mark.parametrize("codec", list(CODECS))
def test_num_frames_are_the_one_pass_bytes(
    videos: dict[str, Path], codec: str, tmp_path: Path
) -> None:
    options = FrameOptions(None, None, 8, 2, "image_%05d.jpg")
    picks = uniform_indices(300, 8)
    task = FrameTask("v", str(videos[codec]), str(tmp_path / "one"), options, 1)
    reference = one_pass(task, ("select", selection(picks)), len(picks))
    for threads, method in ((1, None), (2, None), (1, "sequential")):
        dest = tmp_path / f"{threads}{method}"
        task = FrameTask("v", str(videos[codec]), str(dest), options, threads, method)
        result = extract_video(task)
        assert (result.status, result.frames, result.error) == ("ok", 8, "")
        assert md5_list(dest) == reference, (codec, threads, method)


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_presampled_frames_are_the_one_pass_bytes(
    videos: dict[str, Path], codec: str, tmp_path: Path
) -> None:
    """PRESAMPLE=1's exact picks, dense enough for the one pass, which spares the rest too."""
    options = FrameOptions(None, None, None, 2, "image_%05d.jpg")
    picks = tuple(range(0, 300, 6))
    exact = ExactFrames(picks, 64, 48)
    task = FrameTask("v", str(videos[codec]), str(tmp_path / "one"), options, 1, exact=exact)
    reference = one_pass(task, ("select", selection(list(picks))), len(picks))
    result = extract_video(replace(task, dest=str(tmp_path / "spared")))
    assert (result.status, result.method, result.frames) == ("ok", "sequential", len(picks))
    assert md5_list(tmp_path / "spared") == reference


def test_fps_kept_is_every_frame_the_fps_filter_writes(videos: dict[str, Path]) -> None:
    """Worked by hand: 25 fps from 0 s, 1 fps with round=near: slot n takes the last frame
    before n + 0.5 s, frame 25n + 12; the first frame, whose slot is where the slots begin; and
    the last, whose end is where they end."""
    frames = frame_times(str(videos["h264"]))
    assert fps_kept(frames, Fraction(1), [0]) == {25 * n + 12 for n in range(12)} | {0, 299}
    # a part starting at frame 100 keeps frame 99, where the part before it ends
    assert 99 in fps_kept(frames, Fraction(1), [0, 100])


def test_without_cuts_packets_out_of_stretches() -> None:
    assert without([(0, 10)], [0, 3, 4, 10]) == [(1, 2), (5, 9)]
    assert without([(0, 2), (5, 9)], [1, 5, 12]) == [(0, 0), (2, 2), (6, 9)]
    assert without([(3, 3)], [3]) == []


def test_packet_filter_keeps_exactly_its_stretches(tmp_path: Path) -> None:
    """The binary search of if()s, run by ffmpeg's noise filter on 40 generated packets."""
    keep = [(2, 4), (7, 7), (9, 15), (20, 21), (30, 39)]
    command = [find_ffmpeg(), "-v", "error", "-bsf:v", packet_filter(keep)]
    command += ["-f", "lavfi", "-i", "testsrc2=size=16x16:rate=25:d=1.6", "-c:v", "rawvideo"]
    out = subprocess.run([*command, "-f", "framemd5", "-"], capture_output=True, text=True)
    shown = [int(line.split(",")[2]) for line in out.stdout.splitlines() if line[:1].isdigit()]
    assert shown == [n for first, last in keep for n in range(first, last + 1)]
