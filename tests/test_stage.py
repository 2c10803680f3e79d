"""The loop and the options every batch stage shares (`pyutils.core.stage`), and the typed work
units and results that go through it."""

from __future__ import annotations

import argparse
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from pyutils.core.jsonio import write_jsonl
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog
from pyutils.core.stage import add_parallel_options, parallel_options, run_stage
from pyutils.fetch.fetch_list import FetchResult, FetchTask
from pyutils.video.frame_extract import FrameResult
from pyutils.video.frame_plan import FrameOptions, FrameTask
from pyutils.video.probe_cache import Probe
from pyutils.video.transcode import TranscodeResult, TranscodeTask


@dataclass(frozen=True)
class Square:
    n: int


@dataclass(frozen=True)
class Squared:
    n: int
    value: int | None = None
    error: str = ""

    @property
    def item(self) -> str:
        return f"number {self.n}"


def square(unit: Square) -> Squared:
    if unit.n % 3 == 2:
        return Squared(unit.n, error=f"{unit.n} is unlucky")
    return Squared(unit.n, unit.n * unit.n)


@pytest.mark.parametrize("parallel", [ParallelOptions(1), ParallelOptions(3, "threading")])
def test_run_stage_yields_every_result_and_records_failures(
    parallel: ParallelOptions, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    failures = FailureLog("squares", tmp_path)
    units = [Square(n) for n in range(7)]
    results = sorted(run_stage("squares", square, units, parallel, failures), key=lambda r: r.n)
    assert [r.value for r in results] == [0, 1, None, 9, 16, None, 36]
    assert failures.finish() == 1
    lines = (tmp_path / "squares_failures.jsonl").read_bytes().splitlines()
    recorded = sorted(map(orjson.loads, lines), key=lambda f: f["item"])
    assert recorded == [
        {"item": "number 2", "error": "2 is unlucky"},
        {"item": "number 5", "error": "5 is unlucky"},
    ]
    assert "squares: 5 ok, 2 failed" in capsys.readouterr().out


def test_closing_run_stage_early_leaves_the_rest_undone() -> None:
    done: list[int] = []

    def recording(unit: Square) -> Squared:
        done.append(unit.n)
        return square(unit)

    results = run_stage("squares", recording, [Square(n) for n in range(5)], ParallelOptions(1))
    assert next(results).n == 0
    results.close()
    assert done == [0]


def test_work_units_and_results_survive_pickling() -> None:
    """What loky and Dask do to every unit and result."""
    options = FrameOptions("1/2", 224, None, 2, "image_%05d.jpg")
    values = [
        FrameTask("a", "/v/a.mp4", "/f/a", options, None, method="seek_inputs"),
        FrameResult("a", "/v/a.mp4", "ok", 8, 1.5, "seek_bsf"),
        TranscodeTask("/o/x.", "/v/x..mp4", 2, 20, "veryfast"),
        TranscodeResult("/o/x.", "ffmpeg said no"),
        FetchTask("http://h/x", "/d/x", 3, 60.0, 1.0),
        FetchResult("http://h/x", "x", "downloaded", 1, 10),
        Probe("/v/a.mp4", error="not a video"),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value


def test_outcomes_name_their_items() -> None:
    assert FrameResult("a", "/v/a.mp4", "failed", error="x").item == "/v/a.mp4"
    assert TranscodeResult("/o/x.", "x").item == "x."
    assert FetchResult("http://h/x", "x", "failed", 1, error="404").item == "x (http://h/x)"
    assert FetchResult("http://h/x", "x", "failed", 2, error="404").record() == {
        "url": "http://h/x",
        "name": "x",
        "status": "failed",
        "error": "404",
        "attempts": 2,
    }


def _parser(backend: str, jobs: int | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage")
    add_parallel_options(parser, backend, "items", jobs=jobs)
    return parser


def test_parallel_options_defaults_and_values() -> None:
    cpus = os.cpu_count() or 1
    assert parallel_options(_parser("threading").parse_args([])) == ParallelOptions(
        cpus, "threading", None
    )
    assert parallel_options(_parser("loky", jobs=8).parse_args([])) == ParallelOptions(8, "loky")
    given = _parser("loky").parse_args(["--jobs", "3", "--backend", "dask", "--scheduler", "t:1"])
    assert parallel_options(given) == ParallelOptions(3, "dask", "t:1")
    # make passes an empty SCHEDULER through
    assert parallel_options(_parser("loky").parse_args(["--scheduler", ""])).scheduler is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "expected a positive whole number, got '0'"),
        (["--jobs", "two"], "expected a positive whole number, got 'two'"),
        (["--backend", "spark"], "invalid choice: 'spark'"),
    ],
)
def test_parallel_options_are_validated_once(
    args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser("threading").parse_args(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_ffmpeg_threads_are_left_to_dask_workers() -> None:
    assert ParallelOptions(os.cpu_count() or 1).ffmpeg_threads() == 1
    assert ParallelOptions(1, "dask", "tcp://h:1").ffmpeg_threads() is None


def test_write_jsonl_keeps_order_one_object_per_line(tmp_path: Path) -> None:
    records = [{"b": 1, "a": "ü"}, {"item": "x", "error": ""}, {}]
    write_jsonl(tmp_path / "x.jsonl", records)
    data = (tmp_path / "x.jsonl").read_bytes()
    assert data == '{"b":1,"a":"ü"}\n{"item":"x","error":""}\n{}\n'.encode()
    write_jsonl(tmp_path / "empty.jsonl", [])
    assert (tmp_path / "empty.jsonl").read_bytes() == b""
