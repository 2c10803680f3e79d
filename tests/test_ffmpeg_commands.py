"""The ffmpeg command lines vlprep compiles with ffmpeg-python, pinned one per method: a change in
how filter arguments are escaped (by ffmpeg-python or by us) shows here before it shows as
different frames. The frames tests check that these commands give the bytes they must."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import ffmpeg

from pyutils.core.media import ffmpeg_command, find_ffmpeg
from pyutils.llamafactory.remux import copy_command
from pyutils.video.contact_sheet import sheet_command
from pyutils.video.frame_commands import (
    PLANNING,
    PlanningTurn,
    frames_command,
    run_ffmpeg,
    selection,
)
from pyutils.video.frame_plan import ExactFrames, FrameOptions, FrameTask
from pyutils.video.transcode import TranscodeTask, transcode_command

# Never up: a shorter side of 224 or less keeps the native size (issue 22 item 9).
SCALE_224 = (
    r"scale=if(lte(min(iw\,ih)\,224)\,iw\,if(lt(iw\,ih)\,224\,-2))"
    r":if(lte(min(iw\,ih)\,224)\,ih\,if(lt(iw\,ih)\,-2\,224))"
)
QUIET = ["-nostdin", "-v", "error"]
ONE_FILTER_THREAD = ["-filter_threads", "1", "-filter_complex_threads", "1"]
JPEG = ["-fps_mode", "passthrough"]
TASK = FrameTask(
    "a b", "/v/a b.mp4", "/f/a b", FrameOptions(None, 224, None, 2, "image_%05d.jpg"), 2
)


def compiled(command: list[str]) -> list[str]:
    assert command[0] == find_ffmpeg()
    return command[1:]


def test_native_frames_command() -> None:
    assert compiled(frames_command(TASK)) == [
        *("-threads", "2", "-i", "file:/v/a b.mp4"),
        *("-filter_complex", f"[0:v:0]{SCALE_224}[s0]", "-map", "[s0]"),
        *("-f", "image2", *JPEG, "-huffman", "default", "-q:v", "2", "-threads", "1"),
        "image_%05d.jpg",
        *QUIET,
        *ONE_FILTER_THREAD,
    ]


def test_native_size_maps_the_first_video_stream() -> None:
    options = FrameOptions(None, None, None, 5, "img_%d.jpg")
    task = FrameTask("a", "/v/a.mp4", "/f/a", options, 1)
    assert compiled(frames_command(task)) == [
        *("-threads", "1", "-i", "file:/v/a.mp4", "-map", "0:v:0"),
        *("-f", "image2", *JPEG, "-huffman", "default", "-q:v", "5", "-threads", "1"),
        "img_%d.jpg",
        *QUIET,
        *ONE_FILTER_THREAD,
    ]


def test_fps_frames_command() -> None:
    command = frames_command(TASK, ("fps", "30000/1001"))
    assert compiled(command)[4:8] == [
        "-filter_complex",
        f"[0:v:0]fps=30000/1001[s0];[s0]{SCALE_224}[s1]",
        "-map",
        "[s1]",
    ]


def test_one_pass_select_command() -> None:
    command = frames_command(TASK, ("select", selection([0, 5, 9])), picks=3)
    assert compiled(command) == [
        *("-threads", "2", "-i", "file:/v/a b.mp4"),
        "-filter_complex",
        rf"[0:v:0]select=eq(n\,0)+eq(n\,5)+eq(n\,9)[s0];[s0]{SCALE_224}[s1]",
        *("-map", "[s1]", "-f", "image2", *JPEG, "-frames:v", "3"),
        *("-huffman", "default", "-q:v", "2", "-threads", "1"),
        ".pick_%05d.jpg",
        *QUIET,
        *ONE_FILTER_THREAD,
    ]


def test_seeking_command_drops_packets_before_the_decoder() -> None:
    select = ("select", selection([0, 400, 800], "pts"))
    command = frames_command(TASK, select, picks=3, keep=[(0, 0), (10, 20)], copyts=True)
    assert compiled(command) == [
        *("-bsf:v", "noise=drop='not(if(lt(n,0),0,if(lt(n,10),lte(n,0),lte(n,20))))'"),
        *("-threads", "2", "-i", "file:/v/a b.mp4"),
        "-filter_complex",
        rf"[0:v:0]select=eq(pts\,0)+eq(pts\,400)+eq(pts\,800)[s0];[s0]{SCALE_224}[s1]",
        *("-map", "[s1]", "-f", "image2", *JPEG, "-frames:v", "3"),
        *("-huffman", "default", "-q:v", "2", "-threads", "1"),
        ".pick_%05d.jpg",
        *QUIET,
        *ONE_FILTER_THREAD,
        "-copyts",
    ]


def test_transcode_command() -> None:
    task = TranscodeTask("/o/x.", "/v/x..mp4", 2, 20, "veryfast")
    assert compiled(transcode_command(task, "/v/.x..mp4.tmp")) == [
        *("-threads", "2", "-i", "/o/x."),
        "-filter_complex",
        "[0:v:0]scale=trunc(iw/2)*2:trunc(ih/2)*2[s0];[s0]format=yuv420p[s1]",
        *("-map", "[s1]", "-f", "mp4", "-c:v", "libx264", "-crf", "20"),
        *("-movflags", "+faststart", "-preset", "veryfast", "-x264-params", "threads=1"),
        "/v/.x..mp4.tmp",
        *QUIET,
        *("-filter_complex_threads", "2", "-y"),
    ]


def test_contact_sheet_command_splits_a_repeated_frame() -> None:
    frame = Path("/f/100% a/image_00001.jpg")
    cell = "scale=160:120:force_original_aspect_ratio=decrease[s0];[s0]pad=160:120:(ow-iw)/2:"
    cell += "(oh-ih)/2:color=black[s1];[s1]setsar=1[s2];[s2]format=rgb24[s3]"
    assert compiled(sheet_command([[frame, frame]], 160, 120)) == [
        *("-f", "image2", "-pattern_type", "none", "-i", str(frame)),
        "-filter_complex",
        f"[0]{cell};[s3]split=2[s4][s5];[s4][s5]concat=a=0:n=2:v=1[s6];"
        "[s6]tile=2x1:color=white:margin=4:padding=4[s7]",
        *("-map", "[s7]", "-f", "image2pipe", "-frames:v", "1", "-vcodec", "png", "-"),
        *QUIET,
    ]


def test_exact_frames_command_resizes_as_pyav_and_pil_and_keeps_full_chroma() -> None:
    exact = FrameTask("a", "/v/a.mp4", "/f/a", TASK.options, 1, exact=ExactFrames((0, 9), 341, 192))
    command = compiled(frames_command(exact, ("select", selection([0, 9])), 2))
    assert command[:5] == ["-noautorotate", "-threads", "1", "-i", "file:/v/a.mp4"]
    graph = command[command.index("-filter_complex") + 1]
    assert graph == (
        r"[0:v:0]select=eq(n\,0)+eq(n\,9)[s0];[s0]scale=flags=bilinear[s1];"
        r"[s1]format=rgb24[s2];[s2]scale=341:192:flags=bicubic:param0=0:param1=0.5[s3];"
        "[s3]format=yuvj444p[s4]"
    )  # PyAV's to_image, then PIL's default resize: not the short-side scale of the options


def test_a_selection_of_hundreds_of_frames_parses(tmp_path: Path) -> None:
    """ffmpeg's expression parser refuses a flat sum of more than 100 terms; LLaMA-Factory
    samples up to VIDEO_MAXLEN (128 by default) frames."""
    picks = list(range(0, 600, 2))
    assert selection(picks[:64]) == "+".join(f"eq(n,{p})" for p in picks[:64])
    source = ffmpeg.input("testsrc2=size=32x32:rate=25:duration=24", f="lavfi")
    output = source.filter("select", selection(picks)).output("-", f="null")
    done = subprocess.run(ffmpeg_command(output), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_remux_copy_command_takes_the_first_video_stream_as_it_is() -> None:
    assert compiled(copy_command("/v/a:b.mkv", "/o/.a.mp4.tmp")) == [
        *("-i", "file:/v/a:b.mkv", "-map", "0:v:0"),
        *("-f", "mp4", "-c:v", "copy", "-movflags", "+faststart", "/o/.a.mp4.tmp"),
        *QUIET,
        "-y",
    ]


def test_tasks_plan_one_at_a_time_until_their_ffmpeg_starts() -> None:
    turn, order = PlanningTurn(), []
    first_planning = threading.Event()

    def first() -> None:
        with turn.taken():
            order.append("first plans")
            first_planning.set()
            time.sleep(0.2)  # the second waits, however long this takes
            order.append("first runs ffmpeg")
            turn.end()
            time.sleep(0.2)  # decoding: the second plans meanwhile
            order.append("first done")

    def second() -> None:
        first_planning.wait()
        with turn.taken():
            order.append("second plans")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert order == ["first plans", "first runs ffmpeg", "second plans", "first done"]


def test_run_ffmpeg_ends_the_planning_turn(tmp_path: Path) -> None:
    """Once this thread's ffmpeg has run, another thread takes the turn while it still holds
    its `taken()`."""
    taken_elsewhere = threading.Event()

    def take() -> None:
        with PLANNING.taken():
            taken_elsewhere.set()

    with PLANNING.taken():
        run_ffmpeg(tmp_path, [find_ffmpeg(), "-hide_banner", "-version"])
        other = threading.Thread(target=take)
        other.start()
        other.join(timeout=5)
        assert taken_elsewhere.is_set()
