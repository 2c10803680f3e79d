"""`make preflight`: LLaMA-Factory replay, AdaCLIP frame folders, CLIP image references."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyutils.devtools.sample import make_edit_list_video, make_image, make_video
from pyutils.llamafactory.dataset_info import sharegpt_video_entry
from tests.conftest import REPO, run_module

# 3 s at 25 fps, 320x240: 6 samples; 295x221 -> 224x308; 3 x 16 x 22 / 4 = 264 video tokens.
CLIP_TOKENS = 264


def record(question: str, *videos: str, answer: str = "yes", placeholders: int = 1) -> dict:
    return {
        "messages": [
            {"content": "<video>" * placeholders + question, "role": "user"},
            {"content": answer, "role": "assistant"},
        ],
        "videos": list(videos),
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_video(root / "clip.mp4", 3.0, width=320, height=240, fps=25)
    make_video(root / "clip.mkv", 3.0, width=320, height=240, fps=25)
    make_video(root / "blink.mp4", 0.3, width=320, height=240, fps=30)
    (root / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    return root


def lf_dataset(out: Path, records: list[dict], name: str = "qa") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(records, indent=2))
    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info[name] = sharegpt_video_entry(f"{name}.json")
    info["text_only"] = {"file_name": "absent.json"}  # no videos column: not replayed
    info_path.write_text(json.dumps(info, indent=2))
    return out


def run(out: Path, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_module(
        "pyutils.catalog.preflight",
        *("--out", str(out), "--data", str(out / "no-data"), "--annots", str(out / "no-annots")),
        *extra,
        cwd=cwd,
    )


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "preflight.jsonl").read_text().splitlines()]


def test_every_problem_is_found_and_written(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(media, out / "videos")
    lf_dataset(
        out,
        [
            record("what happens?", "videos/clip.mp4"),
            record("and here?", "videos/clip.mkv"),
            record("gone?", "videos/gone.mp4"),
            record("two?", "videos/clip.mp4", placeholders=2),
            record("broken?", "videos/broken.mp4"),
            record("blink?", "videos/blink.mp4"),
        ],
    )
    result = run(out)
    assert result.returncode == 1, result.stderr
    got = lines(out)
    assert [r["index"] for r in got] == [0, 1, 2, 3, 4, 5]
    assert all(r["dataset"] == "qa" for r in got)
    fine, mkv, gone, two, broken, blink = got
    assert fine["problems"] == []
    assert (fine["video_frames"], fine["video_tokens"]) == (6, CLIP_TOKENS)
    assert fine["frame_size"] == [308, 224]
    assert fine["total_tokens"] == CLIP_TOKENS + fine["text_tokens"] and fine["text_tokens"] > 20
    assert mkv["problems"][0].startswith("misread: videos/clip.mkv: PyAV reports no frame count")
    assert "infinite video" in mkv["problems"][0]
    assert mkv["video_frames"] >= 74  # every frame of 3 s at 25 fps, not 6
    assert gone["problems"] == [f"missing: videos/gone.mp4 (not under media_dir {out})"]
    assert two["problems"][0].startswith("token_mismatch: 2 <video> placeholder(s) but 1 videos")
    assert broken["problems"][0].startswith("unreadable: videos/broken.mp4: PyAV cannot open it")
    assert (blink["video_frames"], blink["video_tokens"], blink["problems"]) == (2, 88, [])
    assert "qa" in result.stdout and "misread" in result.stdout
    assert "text_only" not in result.stdout


def test_an_edit_list_is_replayed_as_llamafactory_decodes_it(tmp_path: Path) -> None:
    """`ffmpeg -ss 1.3 -c copy` of 4 s at 25 fps: PyAV counts 75 frames (the packets from the
    keyframe at 1 s), decoding yields the 67 the edit list shows (2.7 s). Worked by hand with
    LLaMA-Factory's rule: `_get_video_sample_indices` takes floor(2.7 x 2) = 5 picks of
    linspace(0, 74, 5) = [0, 18, 37, 55, 74]; the decode loop of `_regularize_videos` numbers
    frames 0-66, so pick 74 never comes: 4 frames fed. The token metadata path
    (`_get_qwen_video_stream_metadata`) counts 5 picks, 6 frames: 3 x 16 x 22 / 4 = 264 tokens
    (CLIP_TOKENS), where 4 frames' features are 176."""
    out = tmp_path / "data"
    make_edit_list_video(out / "cut.mp4", 4.0, 1.3, width=320, height=240, fps=25)
    lf_dataset(out, [record("cut?", "cut.mp4")])
    result = run(out)
    assert result.returncode == 1, result.stderr
    (sample,) = lines(out)
    assert (sample["video_frames"], sample["video_tokens"]) == (4, CLIP_TOKENS)
    edit_list, mismatch = sample["problems"]
    assert edit_list.startswith(
        "misread: cut.mp4: PyAV reports 8 of its 75 frames hidden by an edit list; LLaMA-Factory "
        "spreads its 5 picks over 75 frames, decodes 67, and so loses 1 pick and crowds the rest "
        "into the start"
    )
    assert mismatch == (
        f"misread: cut.mp4: {CLIP_TOKENS} video tokens are counted for 6 frames but 4 are "
        "decoded: video features and video tokens will not match"
    )
    one_pick = run(out, "--video-fps", "0.3")  # floor(2.7 x 0.3) = 0: frame 0 alone, decoded
    assert one_pick.returncode == 0, one_pick.stdout
    assert lines(out)[0]["problems"] == [] and lines(out)[0]["video_frames"] == 2


@pytest.mark.parametrize(
    ("question", "answer", "placeholder", "column"),
    [
        ("what?", "an <image> of it", "<image>", "images"),
        ("<audio>heard?", "no", "<audio>", "audios"),
    ],
)
def test_every_placeholder_llamafactory_counts_is_a_problem(
    media: Path, tmp_path: Path, question: str, answer: str, placeholder: str, column: str
) -> None:
    out = lf_dataset(tmp_path, [record(question, str(media / "clip.mp4"), answer=answer)])
    result = run(out)
    assert result.returncode == 1, result.stderr
    (sample,) = lines(out)
    assert sample["problems"] == [
        f"token_mismatch: 1 {placeholder} placeholder(s) but 0 {column}: LLaMA-Factory's "
        "_validate_messages raises"
    ]


def test_cutoff_len_and_histogram(media: Path, tmp_path: Path) -> None:
    out = lf_dataset(tmp_path, [record("q?", str(media / "clip.mp4"))])
    ok = run(out, "--cutoff-len", "2048")
    assert ok.returncode == 0, ok.stderr
    (sample,) = lines(out)
    total = sample["total_tokens"]
    assert f"{total}/{total}/{total}/{total}" in ok.stdout
    assert "0-511" in ok.stdout and "| #" in ok.stdout
    over = run(out, "--cutoff-len", str(total - 1))
    assert over.returncode == 1
    (sample,) = lines(out)
    assert sample["problems"] == [
        f"over_cutoff: {total} tokens > CUTOFF_LEN {total - 1} (LLaMA-Factory truncates the "
        "sample; its video tokens then no longer match the video's features)"
    ]
    fewer = run(out, "--cutoff-len", str(total - 1), "--video-fps", "1")
    assert fewer.returncode == 0  # 3 frames -> 4 -> 2 temporal patches: 176 video tokens
    assert lines(out)[0]["video_tokens"] == 176


def test_paths_resolve_from_media_dir_not_the_working_directory(
    media: Path, tmp_path: Path
) -> None:
    out = lf_dataset(tmp_path / "data", [record("q?", "clip.mp4")])
    here = run(out, cwd=media)  # found only relative to the current folder
    assert here.returncode == 1
    assert lines(out)[0]["problems"][0].startswith("cwd_only: clip.mp4 is not under media_dir")
    elsewhere = run(out, "--media-dir", str(media), cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stdout
    assert lines(out)[0]["problems"] == []


def test_drop_writes_and_registers_the_fitting_subset(media: Path, tmp_path: Path) -> None:
    records = [
        record(f"q{i}?", str(media / name))
        for i, name in enumerate(["clip.mp4", "clip.mkv", "blink.mp4"])
    ]
    out = lf_dataset(tmp_path, records)
    original = (out / "qa.json").read_bytes()
    info_before = json.loads((out / "dataset_info.json").read_text())
    result = run(out, "--drop")
    assert result.returncode == 1  # the original still has a misread sample
    fitting = json.loads((out / "qa_fitting.json").read_text())
    assert fitting == [records[0], records[2]]  # paths unchanged
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["qa"] == info_before["qa"]
    assert info["qa_fitting"] == {**info_before["qa"], "file_name": "qa_fitting.json"}
    assert (out / "qa.json").read_bytes() == original
    assert "2 of 3 samples fit" in result.stderr
    again = run(out, "--lf-datasets", "qa_fitting")
    assert again.returncode == 0 and len(lines(out)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--video-fps", "fast"), "VIDEO_FPS=fast (--video-fps): expected a positive number"),
        (("--video-maxlen", "0"), "VIDEO_MAXLEN=0 (--video-maxlen): expected a whole number"),
        (("--video-max-pixels", "100"), "VIDEO_MAX_PIXELS=100 is below VIDEO_MIN_PIXELS=256"),
        (
            ("--template", "llava"),
            "TEMPLATE=llava (--template): not supported; supported: qwen2_vl",
        ),
        (("--lf-datasets", "nope"), "LF_DATASETS (--lf-datasets): 'nope' is not in"),
        (("--tokenizer", "/nowhere"), "TOKENIZER=/nowhere (--tokenizer): not a folder"),
    ],
)
def test_input_errors_are_one_line_and_exit_2(
    media: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = lf_dataset(tmp_path, [record("q?", str(media / "clip.mp4"))])
    result = run(out, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"vlprep: error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_nothing_to_check_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 2
    assert "nothing to check" in result.stderr and "OUT=" in result.stderr


# ---- AdaCLIP ----------------------------------------------------------------------------------


def frames(folder: Path, count: int, skip: int | None = None) -> None:
    folder.mkdir(parents=True)
    seed = make_image(folder.parent / ".seed.jpg", 16, 16)
    for i in range(1, count + 1):
        if i != skip:
            shutil.copyfile(seed, folder / f"image_{i:05d}.jpg")


def test_adaclip_frame_folders(tmp_path: Path) -> None:
    split = tmp_path / "annots" / "msrvtt-jsfusion" / "val.json"
    split.parent.mkdir(parents=True)
    ids = ["ok", "short", "absent", "gap", "fake"]
    split.write_text(json.dumps({i: {"extension": "mp4", "sentences": ["x"]} for i in ids}))
    root = tmp_path / "frames"
    frames(root / "ok", 16)
    frames(root / "short", 10)
    frames(root / "gap", 17, skip=3)  # 16 files, but AdaCLIP opens image_00003.jpg
    (root / "fake").mkdir()
    for i in range(1, 17):
        (root / "fake" / f"image_{i:05d}.jpg").write_bytes(b"GIF89a not a jpeg")
    args = ("--annots", str(tmp_path / "annots"), "--frames", str(root), "--sections", "adaclip")
    result = run_module("pyutils.catalog.preflight", "--out", str(tmp_path), *args)
    assert result.returncode == 1, result.stderr
    by_video = {r["video"]: r for r in lines(tmp_path)}
    assert by_video["ok"]["problems"] == [] and by_video["ok"]["video_frames"] == 16
    assert by_video["short"]["problems"][0].startswith(
        "too_few_frames: short: 10 frames < NUM_FRM 16"
    )
    assert by_video["absent"]["problems"][0].startswith(
        f"missing: no frame folder {root / 'absent'}"
    )
    assert by_video["gap"]["problems"][0].startswith(
        "bad_names: gap: 1 of image_00001.jpg..image_00016.jpg absent (first: image_00003.jpg)"
    )
    assert by_video["fake"]["problems"][0].endswith("no JPEG signature")
    assert "msrvtt-jsfusion/val" in result.stdout
    fewer = run_module("pyutils.catalog.preflight", "--out", str(tmp_path), *args, "--num-frm", "8")
    short = {r["video"]: r for r in lines(tmp_path)}["short"]
    assert short["problems"] == [] and fewer.returncode == 1


# ---- CLIP images -------------------------------------------------------------------------------


def test_clip_images_referenced_by_the_split(tmp_path: Path) -> None:
    root = tmp_path / "DATA" / "caltech-101"
    images = root / "101_ObjectCategories"
    make_image(images / "face" / "image_0001.jpg")
    (images / "face" / "image_0002.jpg").write_bytes(b"<html>quota exceeded</html>")
    truncated = images / "face" / "image_0003.jpg"
    truncated.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # a JPEG signature, no image
    split = {"train": [[f"face/image_000{i}.jpg", 0, "face"] for i in (1, 2, 3, 4)]}
    (root / "split_zhou_Caltech101.json").write_text(json.dumps(split))
    args = ("--out", str(tmp_path), "--data", str(tmp_path / "DATA"), "--sections", "clip")
    shallow = run_module("pyutils.catalog.preflight", *args)
    assert shallow.returncode == 1
    problems = [r["problems"] for r in lines(tmp_path)]
    assert problems[0] == [] and problems[2] == []
    assert problems[1][0].endswith("no JPEG, PNG, GIF, BMP or WebP signature")
    assert problems[3][0] == f"missing: face/image_0004.jpg (xtune opens it under {images})"
    deep = run_module("pyutils.catalog.preflight", *args, "--deep")
    assert deep.returncode == 1
    problems = [r["problems"] for r in lines(tmp_path)]
    assert problems[0] == [] and problems[2][0].startswith(
        f"not_image: {truncated}: does not decode"
    )


# ---- make preflight ---------------------------------------------------------------------------


def test_make_preflight_passes_the_variables(media: Path, tmp_path: Path) -> None:
    out = lf_dataset(tmp_path / "out dir", [record("q?", "clip.mp4")])
    make = [
        "make", "--no-print-directory", "preflight", f"OUT={out}", f"MEDIA_DIR={media}",
        f"DATA={tmp_path / 'no-data'}", f"ANNOTS={tmp_path / 'no-annots'}",
        "VIDEO_FPS=1", "CUTOFF_LEN=150",
    ]  # fmt: skip
    result = subprocess.run(make, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "preflight] Error 1" in result.stderr, result.stderr
    (sample,) = lines(out)
    assert sample["video_tokens"] == 176 and sample["problems"][0].startswith("over_cutoff")
    bad = subprocess.run([*make, "VIDEO_FPS=x"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "vlprep: error: VIDEO_FPS=x (--video-fps)" in bad.stderr
    assert os.path.isfile(out / "preflight.jsonl")


def test_model_folder_gives_the_processor_pixel_bounds(tmp_path: Path) -> None:
    from pyutils.llamafactory.qwen_video import VisionConfig
    from pyutils.llamafactory.replay import vision_config_from

    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14})
    )
    (tmp_path / "video_preprocessor_config.json").write_text(
        json.dumps({"size": {"shortest_edge": 100352, "longest_edge": 602112}})
    )
    vision = vision_config_from(tmp_path, VisionConfig())
    assert (vision.min_pixels, vision.max_pixels, vision.patch_size) == (100352, 602112, 14)


def test_tokenizer_folder_without_the_package_is_an_input_error(
    media: Path, tmp_path: Path
) -> None:
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tokenizers is installed: exact counts are checked by the manual comparison")
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer.json").write_text("{}")
    out = lf_dataset(tmp_path / "data", [record("q?", str(media / "clip.mp4"))])
    result = run(out, "--tokenizer", str(model))
    assert result.returncode == 2
    assert "TOKENIZER= needs the `tokenizers` package" in result.stderr


def test_a_video_given_as_frames_costs_its_frame_count_and_first_frame_size(
    tmp_path: Path,
) -> None:
    """The trainer takes a frame list as it is (no sampling, no VIDEO_MAXLEN), pads an odd count
    and resizes each frame as an image: 7 frames of 320x240 cost what 8 sampled frames of a
    320x240 video do (295x221 -> 224x308: 4 x 16 x 22 / 4 = 352 tokens)."""
    out = tmp_path / "data"
    seed = make_image(out / "frames" / "image_00001.jpg", 320, 240)
    for n in range(2, 8):
        shutil.copyfile(seed, out / "frames" / f"image_{n:05d}.jpg")
    listed = [f"frames/image_{n:05d}.jpg" for n in range(1, 8)]
    lf_dataset(
        out,
        [
            record("all there?", listed),
            record("one gone?", [*listed[:3], "frames/gone.jpg", *listed[3:]]),
        ],
    )
    result = run(out)
    assert result.returncode == 1, result.stderr
    whole, gone = lines(out)
    assert (whole["video_frames"], whole["video_tokens"]) == (8, 352)
    assert whole["frame_size"] == [308, 224] and whole["problems"] == []
    assert gone["problems"] == [
        f"missing: frames/gone.jpg (1 of the 8 frames of this list are not under media_dir {out})"
    ]
