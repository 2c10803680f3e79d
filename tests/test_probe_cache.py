"""Probing many videos: threads in this process for a small batch, worker processes only once a
batch is big enough to pay for them, and no PyAV at all when every probe is cached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyutils.core.parallel import AUTO, ParallelOptions
from pyutils.devtools.sample import make_video
from pyutils.video import probe_cache
from pyutils.video.probe_cache import PROCESSES_FROM, ProbeCache, probe_videos, probing_batches
from tests.conftest import REPO, run_module


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("probe-videos")
    made = [make_video(folder / f"v_{n}.mp4", 1 + n / 2, 64, 48, 10) for n in range(5)]
    (folder / "v_bad.mp4").write_bytes(b"not a video" * 50)
    return [str(path) for path in made] + [str(folder / "v_bad.mp4")]


def test_auto_probes_small_batches_on_threads_and_big_ones_on_processes_too() -> None:
    names = [f"/v/{n}.mp4" for n in range(PROCESSES_FROM + 3)]
    few = probing_batches(ParallelOptions(2, AUTO), names[:5])
    assert few == [(names[:5], ParallelOptions(2, "threading"))]
    many = probing_batches(ParallelOptions(2, AUTO), names)
    assert many == [
        (names[:PROCESSES_FROM], ParallelOptions(2, "threading")),
        (names[PROCESSES_FROM:], ParallelOptions(2, "loky")),
    ]
    alone = probing_batches(ParallelOptions(1, AUTO), names)
    assert {options.backend for _, options in alone} == {"threading"}
    asked = ParallelOptions(2, "loky")  # BACKEND= given: as asked, whatever the size
    assert probing_batches(asked, names[:5]) == [(names[:5], asked)]


def test_a_big_batch_gives_the_same_probes_on_threads_then_processes(
    videos: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(probe_cache, "PROCESSES_FROM", 2)
    mixed = {p.path: p for p in probe_videos(videos, ProbeCache(None), ParallelOptions(2, AUTO))}
    lines = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith("probing videos: 2 to probe, ") and "2 threads" in line for line in lines
    )
    assert any(
        "probing videos: 4 to probe, " in line and "2 worker processes (loky)" in line
        for line in lines
    )
    serial = {p.path: p for p in probe_videos(videos, ProbeCache(None), ParallelOptions(1))}
    assert mixed == serial and len(serial) == 6
    assert "not a readable video" in serial[videos[-1]].error
    assert abs(serial[videos[4]].info.duration - 3.0) < 0.15


def test_cold_run_probes_on_threads_and_warm_run_never_loads_pyav(
    videos: list[str], tmp_path: Path
) -> None:
    qa = tmp_path / "qa"
    qa.mkdir()
    stems = [Path(path).stem for path in videos]
    questions = [{"question": "what", "question_id": f"{stem}_0"} for stem in stems]
    (qa / "val_q.json").write_text(json.dumps(questions))
    answers = [{"answer": "it", "question_id": q["question_id"]} for q in questions]
    (qa / "val_a.json").write_text(json.dumps(answers))
    args = ["-name", "val_q", "-type", "val", "-n", "100", "-seconds", "1.2", "--qa-dir", str(qa)]
    args += ["--videos", str(Path(videos[0]).parent), "--out", str(tmp_path / "out")]
    args += ["--probe-cache", str(tmp_path / "probes.json"), "--jobs", "2"]
    # Without the remux check, which opens each kept video's header to see whether LLaMA-Factory
    # would misread it (PyAV by design): what is measured here is probing alone.
    args += ["--no-remux"]
    cold = run_module("pyutils.llamafactory.activitynet_qa", *args)
    assert cold.returncode == 1, cold.stderr  # v_bad is unreadable
    assert "probing videos: 6 to probe, with PyAV " in cold.stderr
    assert "(no ffprobe, no process per video) on 2 threads of this process" in cold.stderr
    output = tmp_path / "out" / "activitynet_qa_val_100_limit_1.2s.json"
    first = output.read_bytes()
    assert len(json.loads(first)) == 4  # v_0 lasts 1 s: too short
    code = (
        "import sys; from pyutils.llamafactory import activitynet_qa; "
        "status = activitynet_qa.main(sys.argv[1:]); "
        "print('av' in sys.modules, status)"
    )
    warm = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO
    )
    # the unreadable video is not cached, so it is probed again: that one needs PyAV
    assert warm.stdout.split()[-2:] == ["True", "1"], warm.stderr  # after the summary lines
    assert "probing videos: 5 in the probe cache, 1 to probe" in warm.stderr
    Path(videos[-1]).rename(Path(videos[-1]).with_suffix(".gone"))
    try:
        clean = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO
        )
    finally:
        Path(videos[-1]).with_suffix(".gone").rename(videos[-1])
    assert clean.stdout.split()[-2:] == ["False", "0"], clean.stderr
    assert "probing videos: 5 in the probe cache, 0 to probe" in clean.stderr
    assert output.read_bytes() == first
