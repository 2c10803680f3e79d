"""ActivityNet-QA converter: the reference script's selection, with its bugs fixed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import orjson
import pytest
from rich.table import Table

from pyutils.core.errors import MediaError, UserError
from pyutils.core.media import probe
from pyutils.devtools.demo import activitynet_qa_sample
from pyutils.devtools.sample import build_demo_sample, make_video
from pyutils.llamafactory import activitynet_qa
from pyutils.llamafactory.activitynet_qa import output_name, user_content
from pyutils.video import probe_cache
from tests.conftest import REPO, run_make, run_module

SECONDS = 2.0
AWKWARD = "v_it's $(touch pwned) ü"

# stem.ext -> seconds. Names share prefixes (v_a / v_ab, v_abc / v_abc_d) so that a prefix match
# would pick the wrong video; `e` is named without the `v_` prefix; v_g sits in a subfolder.
MP4_VIDEOS = {
    "v_a.mp4": 3.0,
    "v_ab.mp4": 1.0,
    "v_abc.mp4": 3.0,
    "v_abc_d.mp4": 1.0,
    "e.mp4": 3.0,
    "sub/v_g.mp4": 2.6,
    f"{AWKWARD}.mp4": 2.6,
}
OTHER_VIDEOS = {"v_m.mkv": 3.0, "v_n.mkv": 1.0, "v_w.webm": 3.0, "v_x.webm": 1.0}

# Questions per video stem (file order interleaves videos); v_gone has no video.
QUESTION_PLAN = [
    "v_ab", "v_a", "v_m", "v_gone", "v_abc_d", "v_abc", "v_a", "v_w", "v_e", "v_n", "v_g",
    "v_bad", "v_x", AWKWARD, "v_abc", "v_m", "v_g", "v_w", "v_e", "v_a",
]  # fmt: skip


def write_qa(folder: Path, plan: list[str], answered: set[str] | None = None) -> None:
    questions, answers = [], []
    for index, stem in enumerate(plan):
        question_id = f"{stem}_{index}"
        text = f"what happens in clip {index} of {stem.removeprefix('v_')}"
        questions.append({"video_name": stem[2:], "question": text, "question_id": question_id})
        if answered is None or question_id in answered:
            answers.append({"answer": f"answer {index}", "type": 0, "question_id": question_id})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "val_q.json").write_text(json.dumps(questions))
    (folder / "val_a.json").write_text(json.dumps(answers))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qa")
    for name, seconds in {**MP4_VIDEOS, **OTHER_VIDEOS}.items():
        make_video(root / "videos" / name, seconds, width=64, height=48, fps=10)
    (root / "videos" / "v_bad.mp4").write_bytes(b"not a video at all" * 100)
    write_qa(root / "qa", QUESTION_PLAN)
    return root


# ---- the reference semantics, written from the description --------------------------


def stream_duration(path: str) -> float:
    """What the reference's ffprobe call reads: the video stream's own duration, else 0."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return float(stream.duration * Fraction(stream.time_base)) if stream.duration else 0
    except Exception:
        return 0


def container_duration(path: str) -> float:
    try:
        return probe(path).duration
    except MediaError:
        return 0


def reference(qa: Path, videos: Path, n: int, seconds: float, duration=stream_duration) -> list:
    """Questions in order, answer by question_id, a walk per question, stop after n kept.

    Matching is by exact stem (the issue's fix of the reference's prefix match).
    """
    questions = json.loads((qa / "val_q.json").read_text())
    answers = {a["question_id"]: a for a in json.loads((qa / "val_a.json").read_text())}
    combined = []
    for question in questions:
        question_id = question["question_id"]
        if question_id not in answers:
            continue
        stem = "_".join(question_id.split("_")[:-1])
        video_path = None
        for root, _dirs, files in os.walk(videos):
            for file in files:
                base, ext = os.path.splitext(file)
                if base in (stem, stem.removeprefix("v_")) and ext in (".mp4", ".mkv", ".webm"):
                    video_path = os.path.join(root, file)
                    break
            if video_path:
                break
        if video_path and duration(video_path) > seconds:
            combined.append(
                {
                    "messages": [
                        {"content": f"<video>{question['question']}?", "role": "user"},
                        {"content": answers[question_id]["answer"], "role": "assistant"},
                    ],
                    "videos": [video_path],
                }
            )
            if len(combined) >= n:
                break
    return combined


# ---- helpers ---------------------------------------------------------------------------------


def convert(qa: Path, videos: Path, out: Path, n: int, *extra: str) -> tuple[int, Path]:
    args = ["-name", "val_q", "-type", "val", "-n", str(n), "-seconds", str(SECONDS)]
    args += ["--qa-dir", str(qa), "--videos", str(videos), "--out", str(out), "--jobs", "1"]
    if "--probe-cache" not in extra:
        args += ["--probe-cache", ""]
    status = activitynet_qa.main([*args, *extra])
    return status, out / output_name("val", n, SECONDS)


def as_found(output: Path, media_dir: Path | None = None) -> list[dict]:
    """The written records with each video path resolved against `media_dir` (default: the
    output's folder) as LLaMA-Factory resolves it, so they compare with the reference's."""
    records = json.loads(output.read_bytes())
    for record in records:
        for i, video in enumerate(record["videos"]):
            assert not os.path.isabs(video), video
            resolved = os.path.normpath(os.path.join(media_dir or output.parent, video))
            record["videos"][i] = resolved
    return records


def read_report(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def mp4_only(corpus: Path, tmp_path: Path) -> Path:
    videos = tmp_path / "videos"
    for name in [*MP4_VIDEOS, "v_bad.mp4"]:
        (videos / name).parent.mkdir(parents=True, exist_ok=True)
        os.link(corpus / "videos" / name, videos / name)
    return videos


# ---- selection -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 100])
def test_output_equals_reference_on_mp4_videos(corpus: Path, tmp_path: Path, n: int) -> None:
    videos = mp4_only(corpus, tmp_path)
    report = tmp_path / "report.jsonl"
    status, output = convert(corpus / "qa", videos, tmp_path / "out", n, "--report", str(report))
    assert as_found(output) == reference(corpus / "qa", videos, n, SECONDS)
    unreadable = any(r["status"] == "unreadable" for r in read_report(report))
    assert status == (1 if unreadable else 0)


def test_report_and_exit_status_follow_the_selection(corpus: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    status, output = convert(
        corpus / "qa", corpus / "videos", tmp_path, 100, "--report", str(report)
    )
    outcomes = {r["question_id"]: r for r in read_report(report)}
    assert [r["question_id"] for r in read_report(report)] == [
        f"{stem}_{i}" for i, stem in enumerate(QUESTION_PLAN)
    ]
    assert outcomes["v_gone_3"]["status"] == "missing_video"
    assert outcomes["v_ab_0"]["status"] == "too_short"  # not v_a's 3 s (prefix collision)
    assert outcomes["v_abc_d_4"]["status"] == "too_short"
    assert outcomes["v_abc_5"]["status"] == "kept"
    assert outcomes["v_e_8"]["video"] == str(corpus / "videos" / "e.mp4")
    assert outcomes["v_bad_11"]["status"] == "unreadable"
    assert "not a readable video" in outcomes["v_bad_11"]["error"]
    assert status == 1  # the unreadable video is a failure, the good pairs are still written
    kept = [r for r in read_report(report) if r["status"] == "kept"]
    assert len(json.loads(output.read_bytes())) == len(kept)


def test_mkv_and_webm_above_threshold_are_kept(corpus: Path, tmp_path: Path) -> None:
    _, output = convert(corpus / "qa", corpus / "videos", tmp_path, 100, "--no-remux")
    written = as_found(output)
    fixed = reference(corpus / "qa", corpus / "videos", 100, SECONDS, container_duration)
    literal = reference(corpus / "qa", corpus / "videos", 100, SECONDS)
    assert written == fixed
    videos = {Path(record["videos"][0]).name for record in written}
    assert {"v_m.mkv", "v_w.webm"} <= videos
    assert not {"v_n.mkv", "v_x.webm"} & videos  # 1 s: below the threshold
    literal_videos = {Path(record["videos"][0]).name for record in literal}
    assert not {"v_m.mkv", "v_w.webm"} & literal_videos  # the reference's bug: no stream duration
    assert [r for r in written if Path(r["videos"][0]).suffix == ".mp4"] == literal


def test_stops_probing_after_the_nth_pair(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []

    def recording_probe(path: str, count_frames: bool = False):  # noqa: ANN202
        probed.append(Path(path).name)
        return probe(path, count_frames)

    monkeypatch.setattr(probe_cache, "probe", recording_probe)
    _, output = convert(corpus / "qa", corpus / "videos", tmp_path, 2, "--no-remux")
    assert as_found(output) == reference(
        corpus / "qa", corpus / "videos", 2, SECONDS, container_duration
    )
    assert probed == ["v_ab.mp4", "v_a.mp4", "v_m.mkv"]  # v_m gives pair 2: none after


def test_jobs_and_warm_cache_give_identical_bytes(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache" / "probes.json"
    _, serial = convert(corpus / "qa", corpus / "videos", tmp_path / "serial", 100)
    args = ("--probe-cache", str(cache), "--jobs", "2")
    _, cold = convert(corpus / "qa", corpus / "videos", tmp_path / "cold", 100, *args)
    assert cache.is_file()

    def no_probe(path: str, count_frames: bool = False):  # noqa: ANN202
        if Path(path).name != "v_bad.mp4":  # failures are not cached: they are retried
            raise AssertionError(f"probed {path} although the cache holds it")
        return probe(path)

    opened: list[str] = []
    real_open = av.open

    def recording_open(path: Any, *rest: Any, **options: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *rest, **options)

    monkeypatch.setattr(probe_cache, "probe", no_probe)
    monkeypatch.setattr(av, "open", recording_open)
    _, warm = convert(corpus / "qa", corpus / "videos", tmp_path / "warm", 100, *args[:2])
    assert serial.read_bytes() == cold.read_bytes() == warm.read_bytes()
    # Which videos LLaMA-Factory would misread (the mkv, remuxed again into the new OUT) comes
    # from the cached probes too: no source video but the uncacheable bad one is opened.
    assert [Path(path).name for path in opened if str(corpus) in path] == ["v_bad.mp4"]
    assert (tmp_path / "warm" / "videos-mp4" / "v_m.mp4").is_file()


def test_cache_entry_is_ignored_when_the_video_changes(corpus: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "v_a.mp4", 1.0, width=64, height=48, fps=10)
    write_qa(tmp_path / "qa", ["v_a"])
    cache = ("--probe-cache", str(tmp_path / "cache.json"))
    with pytest.raises(UserError, match="no video lasts more than SECONDS=2 s"):
        convert(tmp_path / "qa", videos, tmp_path / "out", 5, *cache)  # 1 s: too short
    make_video(videos / "v_a.mp4", 3.0, width=64, height=48, fps=10)
    _, output = convert(tmp_path / "qa", videos, tmp_path / "out", 5, *cache)
    assert len(json.loads(output.read_bytes())) == 1


def test_malformed_cache_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text('{"version": 1, "entries": {')
    status, _ = convert(corpus / "qa", corpus / "videos", tmp_path, 1, "--probe-cache", str(cache))
    assert status == 0
    assert orjson.loads(cache.read_bytes())["version"] == probe_cache.CACHE_VERSION


def test_question_text_is_tidied_before_the_question_mark() -> None:
    assert user_content("is it raining") == "<video>is it raining?"
    assert user_content("is the man in black wearing a hat ") == (
        "<video>is the man in black wearing a hat?"
    )
    assert user_content("\nwhat are the benefits") == "<video>what are the benefits?"
    assert user_content("what is on the  right") == "<video>what is on the right?"
    assert user_content("why is this funny?") == "<video>why is this funny?"
    assert output_name("val", 500, 20.0) == "activitynet_qa_val_500_limit_20s.json"
    assert output_name("val", 5, 2.5) == "activitynet_qa_val_5_limit_2.5s.json"


def test_relative_paths_for_media_dir(corpus: Path, tmp_path: Path) -> None:
    args = ("--media-dir", str(corpus), "--remux-dir", str(corpus / "remuxed"))
    _, output = convert(corpus / "qa", corpus / "videos", tmp_path, 100, *args)
    videos = [record["videos"][0] for record in json.loads(output.read_bytes())]
    assert videos and all(v.startswith(("videos/", "remuxed/")) for v in videos)
    assert "videos/sub/v_g.mp4" in videos and "remuxed/v_m.mp4" in videos
    shutil.rmtree(corpus / "remuxed")  # the module's corpus stays as the other tests expect


# ---- errors, awkward names, interruption (as a user runs it) --------------------------------


def cli(corpus: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_module(
        "pyutils.llamafactory.activitynet_qa",
        *("-name", "val_q", "-type", "val", "-n", "100", "-seconds", "2", "-fps", "0.2"),
        *("--qa-dir", str(corpus / "qa"), "--videos", str(corpus / "videos")),
        *("--out", str(out), "--probe-cache", str(out / "cache.json"), *extra),
        cwd=out,
    )


def test_awkward_names_are_just_names(corpus: Path, tmp_path: Path) -> None:
    result = cli(corpus, tmp_path, "--register")
    assert result.returncode == 1, result.stderr  # v_bad.mp4 is unreadable
    output = tmp_path / "activitynet_qa_val_100_limit_2s.json"
    raw = output.read_bytes()
    assert f"{AWKWARD}.mp4".encode() in raw  # non-ASCII kept as UTF-8, not escaped
    assert not list(tmp_path.rglob("pwned")) and not (REPO / "pwned").exists()
    assert not list(corpus.rglob("pwned"))
    assert "-fps 0.2 is accepted" in result.stderr
    assert "FAILED" in result.stdout and "v_bad.mp4" in result.stdout
    info = json.loads((tmp_path / "dataset_info.json").read_bytes())
    assert info["activitynet_qa_val_100_limit_2s"]["columns"] == {
        "messages": "messages",
        "videos": "videos",
    }


def test_question_without_answer(corpus: Path, tmp_path: Path) -> None:
    answered = {f"{stem}_{i}" for i, stem in enumerate(QUESTION_PLAN) if i != 1}
    write_qa(tmp_path / "qa", QUESTION_PLAN, answered)
    report = tmp_path / "report.jsonl"
    args = ("--report", str(report))
    status, output = convert(tmp_path / "qa", corpus / "videos", tmp_path, 100, *args, "--no-remux")
    assert status == 1
    assert read_report(report)[1]["status"] == "no_answer"
    assert as_found(output) == reference(
        tmp_path / "qa", corpus / "videos", 100, SECONDS, container_duration
    )


def test_no_answer_at_all_is_a_usage_error(corpus: Path, tmp_path: Path) -> None:
    write_qa(tmp_path / "qa", QUESTION_PLAN, set())
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *("-name", "val_q", "-type", "val", "--qa-dir", str(tmp_path / "qa")),
        *("--videos", str(corpus / "videos"), "--out", str(tmp_path), "--probe-cache", ""),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("vlprep: error: no question of")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("val_q.json", "val_q.json:1:"),
        ("val_a.json", "val_a.json:1:"),
    ],
)
def test_malformed_json_names_file_line_and_column(
    corpus: Path, tmp_path: Path, broken: str, expected: str
) -> None:
    write_qa(tmp_path / "qa", QUESTION_PLAN)
    path = tmp_path / "qa" / broken
    path.write_text(path.read_text()[:-30])
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *("-name", "val_q", "-type", "val", "--qa-dir", str(tmp_path / "qa")),
        *("--videos", str(corpus / "videos"), "--out", str(tmp_path), "--probe-cache", ""),
    )
    assert result.returncode == 2
    assert expected in result.stderr and "malformed JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("missing", ["qa", "videos"])
def test_missing_folder_is_one_line(corpus: Path, tmp_path: Path, missing: str) -> None:
    folders = {"qa": corpus / "qa", "videos": corpus / "videos", missing: tmp_path / "nowhere"}
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *("--qa-dir", str(folders["qa"]), "--videos", str(folders["videos"])),
        *("-name", "val_q", "-type", "val", "--out", str(tmp_path), "--probe-cache", ""),
    )
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_kill_and_rerun(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    golden = json.loads(convert(corpus / "qa", corpus / "videos", out, 100)[1].read_bytes())
    shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["-name", "val_q", "-type", "val", "-n", "100", "-seconds", "2", "--jobs", "1"]
    args += ["--qa-dir", str(corpus / "qa"), "--videos", str(corpus / "videos")]
    args += ["--out", str(out), "--probe-cache", str(tmp_path / "cache.json")]
    process = subprocess.Popen(
        [sys.executable, "-m", "pyutils.llamafactory.activitynet_qa", *args],
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    process.stderr.readline()  # it has indexed the videos and started probing
    process.send_signal(signal.SIGKILL)
    process.wait()
    output = out / "activitynet_qa_val_100_limit_2s.json"
    if output.exists():  # a complete file or none, never a partial one
        assert json.loads(output.read_bytes()) == golden
    out.mkdir(exist_ok=True)
    (out / ".activitynet_qa_val_100_limit_2s.json.vlprep-tmp-1-x").write_text("[{")
    result = subprocess.run(
        [sys.executable, "-m", "pyutils.llamafactory.activitynet_qa", *args],
        capture_output=True,
        env=env,
    )
    assert result.returncode == 1  # v_bad.mp4
    assert json.loads(output.read_bytes()) == golden
    assert sorted(p.name for p in out.iterdir()) == [output.name, "videos-mp4"]


def test_real_questions_and_answers(real_fixtures: Path, tmp_path: Path) -> None:
    """The real test split: 8,000 questions, 800 videos; a few videos on disk, long and short."""
    questions = json.loads((real_fixtures / "activitynet-qa" / "test_q.json").read_bytes())
    names = list(dict.fromkeys(q["video_name"] for q in questions))[:4]
    videos = tmp_path / "videos"
    for index, name in enumerate(names):
        extension = ["mp4", "mkv", "webm", "mp4"][index]
        make_video(videos / f"v_{name}.{extension}", [1.0, 1.5, 3.0, 4.0][index], 64, 48, 10)
    report = tmp_path / "report.jsonl"
    args = ("-name", "test_q", "-type", "test", "--report", str(report))
    status, _ = convert(real_fixtures / "activitynet-qa", videos, tmp_path, 10**6, *args)
    output = tmp_path / output_name("test", 10**6, SECONDS)
    assert status == 0
    outcomes = read_report(report)
    assert len(outcomes) == len(questions) == 8000
    kept = [o for o in outcomes if o["status"] == "kept"]
    long_enough = {str(videos / f"v_{names[i]}.{ext}") for i, ext in ((2, "webm"), (3, "mp4"))}
    assert {o["video"] for o in kept} == long_enough
    written = json.loads(output.read_bytes())
    assert len(written) == len(kept)
    for record in written:
        assert record["messages"][0]["content"].startswith("<video>")
        assert record["messages"][0]["content"].endswith("?")
        assert not record["messages"][0]["content"].endswith(" ?")


def test_demo_stage(tmp_path: Path) -> None:
    root = build_demo_sample(tmp_path / "demo")
    table = Table()
    for _ in range(3):
        table.add_column()
    activitynet_qa_sample(root, table)
    written = json.loads((root / "data" / "activitynet_qa_val_10_limit_2.5s.json").read_bytes())
    assert [r["videos"][0] for r in written] == ["../videos/v_demoA.mp4", "videos-mp4/v_demoB.mp4"]
    info = json.loads((root / "data" / "dataset_info.json").read_bytes())
    plain = "activitynet_qa_val_10_limit_2.5s"
    assert list(info) == [plain, f"{plain}_presampled", "caltech101", "ActivityNet"]


def test_a_video_folder_that_matches_no_question_is_an_error_naming_videos(
    tmp_path: Path,
) -> None:
    """Zero entries is never a success: nothing is written or registered, and the message
    names VIDEOS and one path that was looked for (here the ids lack the files' v_ prefix)."""
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 3.0, width=64, height=48, fps=10)
    write_qa(tmp_path / "qa", ["v_zz"])
    out = tmp_path / "out"
    args = [*("-name", "val_q", "-type", "val", "-n", "5", "-seconds", "2")]
    args += [*("--qa-dir", str(tmp_path / "qa"), "--videos", str(videos), "--out", str(out))]
    result = run_module("pyutils.llamafactory.activitynet_qa", *args, "--register")
    assert result.returncode == 2
    assert f"has its video in VIDEOS={videos} (looked for e.g. {videos}/v_zz." in result.stderr
    assert not list(out.glob("*.json"))  # no empty JSON, no dataset_info.json


def test_a_name_that_is_not_there_says_to_set_name(tmp_path: Path) -> None:
    write_qa(tmp_path / "qa", ["v_a"])
    args = ["--qa-dir", str(tmp_path / "qa"), "--videos", str(tmp_path), "--out", str(tmp_path)]
    result = run_module("pyutils.llamafactory.activitynet_qa", *args)  # TYPE train: train_q
    assert result.returncode == 2
    assert "train_q.json: file not found; set NAME= to one of the files" in result.stderr
    assert "present: val_a, val_q" in result.stderr


def test_the_default_recipe_reads_the_published_files(corpus: Path, tmp_path: Path) -> None:
    """`make activitynet_qa` with no NAME reads what `make activitynet-qa-data` places: the
    published {TYPE}_q.json and {TYPE}_a.json, for TYPE=train (the default) and TYPE=val."""
    qa = tmp_path / "qa"
    qa.mkdir()
    for split in ("train", "val"):
        for kind in ("q", "a"):
            shutil.copyfile(corpus / "qa" / f"val_{kind}.json", qa / f"{split}_{kind}.json")
    out = tmp_path / "out"
    for split in ("", "TYPE=val"):
        extra = [split] if split else []
        result = run_make(
            "activitynet_qa", f"QA_DIR={qa}", f"VIDEOS={corpus / 'videos'}", f"OUT={out}",
            "N=2", "SECONDS=2", *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("activitynet_qa_*.json")) == [
        "activitynet_qa_train_2_limit_2s.json",
        "activitynet_qa_val_2_limit_2s.json",
    ]
    assert len(json.loads((out / "activitynet_qa_train_2_limit_2s.json").read_bytes())) == 2


def test_summary_counts_unanswered_questions_past_the_limit_and_says_1_question(
    corpus: Path, tmp_path: Path
) -> None:
    write_qa(tmp_path / "qa", ["v_a", "v_b"], answered={"v_a_0"})
    args = [*("-name", "val_q", "-type", "val", "-n", "1", "-seconds", "0.5")]
    args += ["--qa-dir", str(tmp_path / "qa"), "--videos", str(corpus / "videos")]
    result = run_module("pyutils.llamafactory.activitynet_qa", *args, "--out", str(tmp_path))
    assert "2 questions read, 1 answer joined (1 without answer)" in result.stdout
    assert "1 entry written to" in result.stdout


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        (None, "yes", "'question' must be a non-empty string, found None"),
        (["a"], "yes", "'question' must be a non-empty string, found ['a']"),
        ("what?", 7, "'answer' must be a non-empty string, found 7"),
        ("what?", {"a": 1}, "'answer' must be a non-empty string, found {'a': 1}"),
        ("  ", "yes", "'question' must be a non-empty string"),
    ],
)
def test_text_that_is_not_text_is_an_input_error_naming_file_and_entry(
    tmp_path: Path, question: object, answer: object, expected: str
) -> None:
    qa = tmp_path / "qa"
    qa.mkdir()
    (qa / "val_q.json").write_text(json.dumps([{"question_id": "v_a_0", "question": question}]))
    (qa / "val_a.json").write_text(json.dumps([{"question_id": "v_a_0", "answer": answer}]))
    result = convert_raw(qa, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr and ": entry 0:" in result.stderr
    assert not list((tmp_path / "out").glob("*.json"))


def test_duplicate_question_ids_and_nan_seconds_are_refused(tmp_path: Path) -> None:
    qa = tmp_path / "qa"
    qa.mkdir()
    twice = [{"question_id": "v_a_0", "question": "q?"}] * 2
    (qa / "val_q.json").write_text(json.dumps(twice))
    (qa / "val_a.json").write_text(json.dumps([{"question_id": "v_a_0", "answer": "yes"}]))
    result = convert_raw(qa, tmp_path)
    assert result.returncode == 2
    assert "val_q.json: entry 1: question_id 'v_a_0' repeats entry 0" in result.stderr
    nan = convert_raw(qa, tmp_path, "-seconds", "nan")
    assert nan.returncode == 2 and "expected a number of seconds >= 0, got 'nan'" in nan.stderr


def convert_raw(qa: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [*("-name", "val_q", "-type", "val", "--qa-dir", str(qa), "--videos", str(tmp_path))]
    args += ["--out", str(tmp_path / "out"), *extra]
    return run_module("pyutils.llamafactory.activitynet_qa", *args)


@pytest.mark.parametrize(
    ("field", "text", "placeholder"),
    [
        ("question", "what is in <video> here", "<video>"),
        ("answer", "an <image> of a dog", "<image>"),
        ("question", "is there <audio>", "<audio>"),
    ],
)
def test_a_placeholder_in_the_text_is_an_input_error_and_nothing_is_written(
    corpus: Path, tmp_path: Path, field: str, text: str, placeholder: str
) -> None:
    """LLaMA-Factory's `_validate_messages` counts `<image>`, `<video>` and `<audio>` in every
    message: one in a question or answer is a placeholder too many, and the trainer raises. It is
    refused before anything is probed or written: no JSON, no report, no dataset_info.json."""
    write_qa(tmp_path / "qa", QUESTION_PLAN)
    path = tmp_path / "qa" / f"val_{field[0]}.json"
    entries = json.loads(path.read_text())
    entries[5][field] = text
    path.write_text(json.dumps(entries))
    out = tmp_path / "out"
    report = out / "qa.report.jsonl"
    args = ("-name", "val_q", "-type", "val", "--qa-dir", str(tmp_path / "qa"), "--out", str(out))
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *args,
        *("--videos", str(corpus / "videos"), "--probe-cache", "", "--report", str(report)),
        "--register",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"vlprep: error: {path}: entry 5: {field!r} contains {placeholder}, a placeholder "
        "LLaMA-Factory counts as media (its _validate_messages would raise on the sample); edit "
        "it out of the text\n"
    )
    assert not out.exists()


def test_a_malformed_dataset_info_is_found_before_anything_is_written(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").write_text('{"mine": {"file_name": "mine.json"},')
    args = ("-name", "val_q", "-type", "val", "--qa-dir", str(corpus / "qa"), "--out", str(out))
    result = run_module(
        "pyutils.llamafactory.activitynet_qa",
        *args,
        *("--videos", str(corpus / "videos"), "--probe-cache", ""),
        *("--report", str(out / "qa.report.jsonl"), "--register"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"vlprep: error: {out / 'dataset_info.json'}:1:")
    assert "malformed JSON" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(out) == ["dataset_info.json"]  # no JSON, report or remuxed video
    assert (out / "dataset_info.json").read_text() == '{"mine": {"file_name": "mine.json"},'


def test_a_run_that_finds_few_of_the_videos_warns(corpus: Path, tmp_path: Path) -> None:
    write_qa(tmp_path / "qa", ["v_a", "v_gone1", "v_gone2", "v_gone3"])
    result = run_make(
        "activitynet_qa", f"QA_DIR={tmp_path / 'qa'}", f"VIDEOS={corpus / 'videos'}",
        f"OUT={tmp_path / 'out'}", "TYPE=val", "N=5", "SECONDS=2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warning = (
        f"warning: only 1 of the 4 videos the answered questions reference are in "
        f"VIDEOS={corpus / 'videos'} (3 missing, e.g. v_gone1); their questions are left out"
    )
    assert warning in result.stderr.splitlines()
