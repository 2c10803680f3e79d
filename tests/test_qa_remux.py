"""ActivityNet-QA output that LLaMA-Factory reads as intended: media_dir-relative paths, and
Matroska/WebM remuxed into MP4 (issue 14, item 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import pytest

from pyutils.devtools.sample import make_edit_list_video, make_video
from pyutils.llamafactory import activitynet_qa, remux
from pyutils.llamafactory.presample import plan
from pyutils.llamafactory.qwen_video import (
    VIDEO_FPS,
    VIDEO_MAXLEN,
    Budget,
    frames_fed,
    misread_reason,
    read_stream,
    sample_indices,
)
from pyutils.llamafactory.remux import MANIFEST
from tests.conftest import run_module

# 60 videos, 20 per container, 6 questions each: 360 entries, all longer than SECONDS.
SEEDS = ("mp4", "mkv", "webm")  # h264, h264 (copied), VP8 (which MP4 cannot hold: transcoded)
PER_KIND, QUESTIONS = 20, 6


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    seeds = {
        ext: make_video(root / f"seed.{ext}", 2.5, width=64, height=48, fps=10) for ext in SEEDS
    }
    (root / "videos").mkdir()
    questions, answers = [], []
    for n in range(PER_KIND * len(SEEDS)):
        ext = SEEDS[n % len(SEEDS)]
        os.link(seeds[ext], root / "videos" / f"v_{n:03d}.{ext}")
        for k in range(QUESTIONS):
            qid = f"v_{n:03d}_{k}"
            questions.append(
                {"video_name": f"{n:03d}", "question": f"what {k}", "question_id": qid}
            )
            answers.append({"answer": f"a{k}", "type": 0, "question_id": qid})
    (root / "qa").mkdir()
    (root / "qa" / "val_q.json").write_text(json.dumps(questions))
    (root / "qa" / "val_a.json").write_text(json.dumps(answers))
    return root


def convert(root: Path, out: Path, *extra: str) -> tuple[int, list[dict], str]:
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *("-name", "val_q", "-type", "val", "-n", "1000", "-seconds", "2", "--jobs", "2"),
        *("--qa-dir", str(root / "qa"), "--videos", str(root / "videos"), "--out", str(out)),
        *("--probe-cache", "", "--register", *extra),
        cwd=root,
    )
    output = out / "activitynet_qa_val_1000_limit_2s.json"
    return result.returncode, json.loads(output.read_bytes()), result.stderr


def test_mixed_corpus_keeps_its_360_entries_and_every_video_reads(
    mixed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    status, records, stderr = convert(mixed, out)
    assert status == 0, stderr
    _, as_found, _ = convert(mixed, tmp_path / "plain", "--no-remux")
    assert len(records) == len(as_found) == 360
    assert [r["messages"] for r in records] == [r["messages"] for r in as_found]
    assert "remux: 20 copied and 20 transcoded into MP4" in stderr  # h264 mkv copied, VP8 webm not
    assert "MB written in" in stderr and "0 reused, 0 failed" in stderr
    for record, original in zip(records, as_found, strict=True):
        video = record["videos"][0]
        assert not os.path.isabs(video)
        resolved = os.path.join(out, video)  # as LLaMA-Factory's _find_medias joins media_dir
        assert os.path.isfile(resolved)
        assert misread_reason(read_stream(resolved)) == ""
        stem = Path(os.path.normpath(os.path.join(tmp_path / "plain", original["videos"][0]))).stem
        assert Path(video).stem == stem  # the same video, as MP4 where it was not
        if not original["videos"][0].endswith(".mp4"):
            assert video.startswith("videos-mp4/")
    assert read_stream(out / "videos-mp4" / "v_001.mp4").frames == 25  # the mkv's 25 frames
    manifest = json.loads((out / "videos-mp4" / MANIFEST).read_bytes())
    assert {e["method"] for e in manifest.values()} == {"copy", "transcode"}


def test_rerun_reuses_the_remuxed_videos(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    convert(mixed, out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "videos-mp4").iterdir()}
    (out / "videos-mp4" / ".v_003.mp4.vlprep-tmp-1-x").write_bytes(b"half")  # a killed run
    status, _, stderr = convert(mixed, out)
    assert status == 0
    assert "0 copied and 0 transcoded" in stderr and "40 reused" in stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "videos-mp4").iterdir()}
    assert after == mtimes  # nothing rewritten, the temporary removed


def test_json_loads_from_any_working_directory(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    convert(mixed, out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_module(
        "pyutils.catalog.preflight",
        *("--out", str(out), "--sections", "llamafactory"),
        cwd=elsewhere,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (out / "preflight.jsonl").read_text().splitlines()
    assert len(lines) == 360 and all('"problems":[]' in line for line in lines)


def test_media_dir_is_what_paths_are_relative_to(mixed: Path, tmp_path: Path) -> None:
    status, records, _ = convert(mixed, tmp_path / "data", "--media-dir", str(mixed))
    assert status == 0
    assert records[0]["videos"] == ["videos/v_000.mp4"]
    assert records[6]["videos"][0].endswith("data/videos-mp4/v_001.mp4")
    assert os.path.isfile(os.path.join(mixed, records[6]["videos"][0]))


def test_failed_remux_keeps_the_selection_and_fails(
    mixed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ffmpeg can neither copy nor transcode a video, its entry stays (pointing at the
    original), the failure is listed with ffmpeg's text, and the exit status is 1."""
    monkeypatch.setattr(remux, "_run", lambda args: "Invalid data found when processing input")
    out = tmp_path / "data"
    status = activitynet_qa.main(
        [*("-name", "val_q", "-type", "val", "-n", "12", "-seconds", "2", "--jobs", "1")]
        + [*("--qa-dir", str(mixed / "qa"), "--videos", str(mixed / "videos"))]
        + ["--out", str(out), "--probe-cache", ""]
    )
    assert status == 1
    written = json.loads((out / "activitynet_qa_val_12_limit_2s.json").read_bytes())
    assert len(written) == 12
    assert written[6]["videos"] == [os.path.relpath(mixed / "videos" / "v_001.mkv", out)]
    assert not (out / "videos-mp4" / "v_001.mp4").exists()


def test_an_edit_list_mp4_is_transcoded_and_read_whole(tmp_path: Path) -> None:
    """`ffmpeg -ss 1.3 -c copy` of 4 s at 25 fps: PyAV counts 75 frames, decoding yields 67,
    so LLaMA-Factory would lose its picks past frame 66. The MP4 written instead holds exactly
    the 67 frames shown: every index the trainer plans decodes, and the pre-sampled frames are
    the ones it samples of that MP4."""
    videos = tmp_path / "videos"
    cut = make_edit_list_video(videos / "v_cut.mp4", 4.0, 1.3, width=64, height=48, fps=25)
    make_video(videos / "v_plain.mp4", 3.0, width=64, height=48, fps=25)
    qa = tmp_path / "qa"
    qa.mkdir()
    ids = ["v_cut_0", "v_plain_0"]
    (qa / "val_q.json").write_text(
        json.dumps([{"question_id": i, "question": "what"} for i in ids])
    )
    (qa / "val_a.json").write_text(json.dumps([{"question_id": i, "answer": "a"} for i in ids]))
    assert (read_stream(cut).frames, decoded(cut)) == (75, 67)
    out = tmp_path / "data"
    status, records, stderr = convert(tmp_path, out, "--presample")
    assert status == 0, stderr
    assert [r["videos"] for r in records] == [["videos-mp4/v_cut.mp4"], ["../videos/v_plain.mp4"]]
    assert "remux: 0 copied and 1 transcoded into MP4" in stderr
    remuxed = out / "videos-mp4" / "v_cut.mp4"
    info = read_stream(remuxed)
    assert (info.frames, info.hidden, decoded(remuxed), misread_reason(info)) == (67, 0, 67, "")
    planned = sample_indices(info.frames, info.duration, VIDEO_FPS, VIDEO_MAXLEN)
    assert planned[-1] < 67 and frames_fed(planned, 67) == len(planned) + len(planned) % 2
    presampled = json.loads((out / "activitynet_qa_val_1000_limit_2s_presampled.json").read_bytes())
    assert len(presampled[0]["videos"][0]) == len(planned)
    assert plan(str(cut), Budget()).indices == plan(str(remuxed), Budget()).indices
    result = run_module(
        "pyutils.catalog.preflight", *("--out", str(out)), "--sections", "llamafactory"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(
        '"problems":[]' in line for line in (out / "preflight.jsonl").read_text().splitlines()
    )


def decoded(path: Path) -> int:
    """Frames PyAV's decoder yields: what LLaMA-Factory's decode loop enumerates."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
