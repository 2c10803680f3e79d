"""Generated media and annotations: the demo's sample, the tests' inputs, the benchmarks' corpora.

Everything is made locally with ffmpeg's lavfi sources, so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import ffmpeg

from pyutils.core.atomic import atomic_write_text
from pyutils.core.jsonio import write_json
from pyutils.core.media import ffmpeg_command

_H264 = {"c:v": "libx264", "preset": "ultrafast", "pix_fmt": "yuv420p"}
# Container -> (ffmpeg muxer, video encoder options). Fast settings: samples, not quality.
_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    "mp4": ("mp4", _H264),
    "m4v": ("mp4", _H264),
    "mov": ("mov", _H264),
    "mkv": ("matroska", _H264),
    "3gp": ("3gp", _H264),
    "webm": ("webm", {"c:v": "libvpx", "deadline": "realtime", "cpu-used": "8", "b:v": "300k"}),
    "avi": ("avi", {"c:v": "mpeg4", "q:v": "5"}),
    "mpg": ("mpeg", {"c:v": "mpeg1video", "q:v": "5"}),
    "wmv": ("asf", {"c:v": "wmv2", "q:v": "5"}),
}


def make_video(
    path: str | os.PathLike[str],
    seconds: float,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    container: str | None = None,
    gop: int | None = None,
    bitrate: str | None = None,
) -> Path:
    """Write a test-pattern video; the container comes from the extension unless given."""
    target = Path(path)
    kind = container or target.suffix.lstrip(".").lower()
    if kind not in _FORMATS:
        raise ValueError(f"no sample format for {kind!r}; known: {', '.join(_FORMATS)}")
    muxer, codec = _FORMATS[kind]
    options = {**codec, **({"g": gop, "keyint_min": gop} if gop else {})}
    if bitrate:
        options["b:v"] = bitrate
    target.parent.mkdir(parents=True, exist_ok=True)
    pattern = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"
    source = ffmpeg.input(pattern, f="lavfi")
    output = source.output(str(target), f=muxer, **options)
    subprocess.run(ffmpeg_command(output, overwrite=True), check=True)
    return target


def make_edit_list_video(
    path: str | os.PathLike[str], seconds: float, start: float, **video: Any
) -> Path:
    """Write an MP4 with an edit list, as `ffmpeg -ss START -i in.mp4 -c copy out.mp4` (and
    yt-dlp's --download-sections, and phone editors) write one: an H.264 video of `seconds` with
    a keyframe every second, cut at `start` without re-encoding, so the packets from the keyframe
    before the cut stay (the decoder needs them) and the edit list shows the video from the cut
    on. `video` are `make_video`'s options."""
    target = Path(path)
    whole = target.with_name(f".{target.stem}.whole.mp4")
    fps = video.pop("fps", 25)
    make_video(whole, seconds, fps=fps, gop=fps, **video)
    cut = ffmpeg.input(f"file:{whole}", ss=start).output(str(target), f="mp4", c="copy")
    subprocess.run(ffmpeg_command(cut, overwrite=True), check=True)
    whole.unlink()
    return target


def make_image(
    path: str | os.PathLike[str], width: int = 64, height: int = 48, seed: int = 0
) -> Path:
    """Write a small JPEG whose content depends on `seed`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = ffmpeg.input(f"testsrc2=size={width}x{height}:rate=1", f="lavfi")
    image = source.filter("hue", h=seed * 37 % 360)
    output = image.output(str(target), update=1, **{"frames:v": 1})
    subprocess.run(ffmpeg_command(output, overwrite=True), check=True)
    return target


# The demo's videos: (file name, seconds). Names follow the datasets' own conventions, and one
# carries the characters that break shell-string scripts.
DEMO_VIDEOS = [
    ("v_demoA.mp4", 3.0),
    ("v_demoB.mkv", 4.5),
    ("v_demoC.webm", 2.0),
    ("video 'odd' $(touch pwned).mp4", 1.5),
]
DEMO_CLASSES = {"airplane": 3, "face": 2}
# DiDeMo names videos by their Flickr file name, so the file on disk is `<name>.<ext>`; these live
# in their own folder so that the other stages' demo videos stay as they are.
DIDEMO_DEMO_VIDEOS = [("1234@N00_1_a.m4v.mp4", 1.0), ("5678@N01_2_b.mov.mkv", 1.0)]


def build_demo_sample(root: str | os.PathLike[str]) -> Path:
    """Create the demo sample under `root` (idempotent: existing files are kept)."""
    base = Path(root)
    videos = base / "videos"
    for name, seconds in DEMO_VIDEOS:
        if not (videos / name).exists():
            make_video(videos / name, seconds)
    images = base / "images"
    for label, count in DEMO_CLASSES.items():
        for index in range(count):
            image = images / label / f"image_{index + 1:04d}.jpg"
            if not image.exists():
                make_image(image, seed=index + len(label))
    for name, seconds in DIDEMO_DEMO_VIDEOS:
        if not (base / "didemo" / "videos" / name).exists():
            make_video(base / "didemo" / "videos" / name, seconds, width=160, height=120)
    _write_demo_annotations(base / "annotations")
    _write_adaclip_annotations(base / "annotations")
    return base


def _write_demo_annotations(folder: Path) -> None:
    """Small annotation files in the exact formats the real datasets publish."""
    questions = [
        {"video_name": "demoA", "question": "is there a clock", "question_id": "v_demoA_0"},
        {"video_name": "demoB", "question": "what color is the ball", "question_id": "v_demoB_0"},
        {"video_name": "demoC", "question": "is it indoors", "question_id": "v_demoC_0"},
    ]
    answers = [
        {"answer": "yes", "type": 3, "question_id": "v_demoA_0"},
        {"answer": "red", "type": 5, "question_id": "v_demoB_0"},
        {"answer": "no", "type": 3, "question_id": "v_demoC_0"},
    ]
    write_json(folder / "activitynet-qa" / "val_q.json", questions, indent=False)
    write_json(folder / "activitynet-qa" / "val_a.json", answers, indent=False)
    captions = {
        "v_demoA": {
            "duration": 3.0,
            "timestamps": [[0.0, 1.5], [1.5, 3.0]],
            "sentences": ["A clock ticks.", " A ball rolls by."],
        },
        "v_demoB": {"duration": 4.5, "timestamps": [[0.0, 4.5]], "sentences": ["Colors move."]},
    }
    write_json(folder / "activitynet" / "val_1.json", captions, indent=False)
    split = {
        "train": [["airplane/image_0001.jpg", 0, "airplane"], ["face/image_0001.jpg", 1, "face"]],
        "val": [["airplane/image_0002.jpg", 0, "airplane"]],
        "test": [["airplane/image_0003.jpg", 0, "airplane"], ["face/image_0002.jpg", 1, "face"]],
    }
    write_json(folder / "caltech101" / "split_zhou_Caltech101.json", split, indent=False)


def _write_adaclip_annotations(folder: Path) -> None:
    """Tiny MSRVTT, DiDeMo and ActivityNet Captions sets naming the demo videos, and one absent."""
    odd = Path(DEMO_VIDEOS[3][0]).stem
    msrvtt = {
        "videos": [
            {"video_id": v, "start time": start, "end time": end, "split": "train"}
            for v, start, end in [("v_demoA", 0.0, 3.0), (odd, 0.0, 1.5), ("v_demoB", 0.5, 4.5)]
            + [("v_demoC", 0.0, 2.0), ("video_absent", 0.0, 9.0)]
        ],
        "sentences": [
            {"caption": caption, "video_id": video, "sen_id": index}
            for index, (video, caption) in enumerate(
                [("v_demoA", "a clock ticks"), ("v_demoB", "colors move"), (odd, "an odd name")]
                + [("v_demoA", "a test pattern"), ("video_absent", "never downloaded")]
            )
        ],
    }
    write_json(folder / "msrvtt" / "MSRVTT_data.json", msrvtt, indent=False)
    train_list = "video_id\nv_demoA\nv_demoB\nvideo_absent\n"
    atomic_write_text(folder / "msrvtt" / "MSRVTT_train.9k.csv", train_list)
    jsfusion = f"key,vid_key,video_id,sentence\nret0,msr0,{odd},a name that breaks shells\n"
    jsfusion += "ret1,msr1,v_demoC,a short clip\n"
    atomic_write_text(folder / "msrvtt" / "MSRVTT_JSFUSION_test.csv", jsfusion)
    (first, _), (second, _) = ((Path(n).stem, s) for n, s in DIDEMO_DEMO_VIDEOS)
    didemo = {
        "train": [
            (first, "a pattern appears"),
            (first, "it keeps moving."),
            ("9@N02_3_c.m4v", "x"),
        ],
        "val": [(second, "colors shift")],
        "test": [(second, "the pattern ends"), (first, "numbers count up")],
    }
    for split, records in didemo.items():
        annotations = [{"video": v, "description": d, "times": [[0, 0]]} for v, d in records]
        write_json(folder / "didemo" / f"{split}_data.json", annotations, indent=False)
        listed = dict.fromkeys(v for v, _ in records)
        atomic_write_text(
            folder / "didemo" / f"{split}_list.txt", "".join(f"{v}\n" for v in listed)
        )
    captions = {
        "v_demoC": {"duration": 2.0, "timestamps": [[0.0, 2.0]], "sentences": ["A pattern."]},
        "v_absent": {"duration": 5.0, "timestamps": [[0.0, 5.0]], "sentences": [" Not here."]},
    }
    write_json(folder / "activitynet" / "train.json", captions, indent=False)


def build_caltech_archive(images: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """A Caltech101-shaped `101_ObjectCategories.tar.gz` from `images/<class>/*.jpg`, byte for byte
    the same on every run (sorted members, fixed times and owners)."""
    source, target = Path(images), Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        for path in sorted(source.rglob("*")):
            info = archive.gettarinfo(path, f"101_ObjectCategories/{path.relative_to(source)}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isfile():
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return target


def build_msrvtt_archives(folder: str | os.PathLike[str], seconds: float = 0.6) -> dict[str, bytes]:
    """Small stand-ins of Frozen-in-Time's MSRVTT.zip (videos nested in MSRVTT/videos/all/, an
    annotation folder beside) and CLIP4Clip's msrvtt_data.zip (msrvtt_data/ with the three files
    AdaCLIP reads, of the real shapes): video0 and video1 are train, video2 and video3 JSFUSION."""
    work = Path(folder)
    ids = [f"video{n}" for n in range(4)]
    archives = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as videos_zip:
        videos_zip.writestr("MSRVTT/annotation/MSR_VTT.json", '{"annotations": []}')
        for video_id in ids:
            clip = make_video(work / f"{video_id}.mp4", seconds, width=64, height=48, fps=10)
            videos_zip.write(clip, f"MSRVTT/videos/all/{video_id}.mp4")
    archives["MSRVTT.zip"] = buffer.getvalue()
    data = {
        "info": {"year": 2016},
        "videos": [
            {
                "category": 9,
                "url": "https://www.youtube.com/watch?v=x",
                "video_id": video_id,
                "start time": 1.5 * n,
                "end time": 1.5 * n + 10,
                "split": "train",
                "id": n,
            }
            for n, video_id in enumerate(ids)
        ],
        "sentences": [
            {"caption": f"caption {k} of {video_id}", "video_id": video_id, "sen_id": 2 * n + k}
            for n, video_id in enumerate(ids)
            for k in range(2)
        ],
    }
    jsfusion = "key,vid_key,video_id,sentence\n" + "".join(
        f"ret{n},msr{n},{video_id},a test sentence about {video_id}\n"
        for n, video_id in enumerate(ids[2:])
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as data_zip:
        data_zip.writestr("msrvtt_data/MSRVTT_data.json", json.dumps(data))
        data_zip.writestr("msrvtt_data/MSRVTT_train.9k.csv", "video_id\nvideo0\nvideo1\n")
        data_zip.writestr("msrvtt_data/MSRVTT_JSFUSION_test.csv", jsfusion)
    archives["msrvtt_data.zip"] = buffer.getvalue()
    return archives
