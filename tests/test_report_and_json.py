from __future__ import annotations

import re
import time
from pathlib import Path

import orjson
import pytest

from pyutils.core.errors import UserError
from pyutils.core.jsonio import expect_keys, read_json, write_json
from pyutils.core.report import FailureLog, track
from pyutils.devtools.sample import make_video
from tests.conftest import run_make


def test_failure_log_summary_and_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = FailureLog("frames", tmp_path)
    log.ok()
    log.ok()
    log.fail("bad.mp4", "moov atom not found\nbad.mp4: Invalid data found when processing input")
    assert log.finish() == 1
    lines = (tmp_path / "frames_failures.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["item"] for line in lines] == ["bad.mp4"]
    out = capsys.readouterr().out  # results go to stdout: `make frames ... > log` keeps them
    assert "frames: 2 ok, 1 failed" in out
    assert "  FAILED bad.mp4: Invalid data found when processing input\n" in out  # path once


def test_failure_log_all_good_exits_zero_and_leaves_no_list(tmp_path: Path) -> None:
    stale = tmp_path / "frames_failures.jsonl"
    stale.write_text('{"item": "from an earlier run"}\n')
    log = FailureLog("frames", tmp_path)
    log.ok()
    assert log.finish() == 0
    assert not stale.exists()


def test_track_logs_plain_lines_off_terminal(capsys: pytest.CaptureFixture) -> None:
    assert list(track(range(3), total=3, description="probing", every_seconds=0)) == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("probing: 3/3 (")


class Counting:
    """A gauge that counts up each time it is read, as frames do while a video is extracted."""

    noun = "frames"

    def __init__(self) -> None:
        self.count = 0

    def read(self) -> int:
        self.count += 10
        return self.count


def test_track_with_a_gauge_moves_while_a_long_item_runs(capsys: pytest.CaptureFixture) -> None:
    def one_long_video():
        time.sleep(0.35)
        yield "a.mp4"

    items = track(one_long_video(), 1, "frames", every_seconds=0.1, gauge=Counting())
    assert list(items) == ["a.mp4"]
    lines = capsys.readouterr().err.splitlines()
    waiting = [line for line in lines if line.startswith("frames: 0/1 (")]
    assert len(waiting) >= 2, lines  # lines while the one item was still running...
    counts = [int(re.search(r", ([\d,]+) frames \(", line)[1]) for line in waiting]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # ...that count frames up
    assert lines[-1].startswith("frames: 1/1 (") and " frames (" in lines[-1]


def test_frames_progress_counts_the_frames_written(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 2.0, width=64, height=48, fps=10)
    result = run_make("frames", f"VIDEOS={videos}", f"FRAMES={tmp_path / 'frames'}")
    assert result.returncode == 0, result.stderr
    assert "frames: 1/1 (" in result.stderr and ", 20 frames (" in result.stderr


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "val_q.json"
    bad.write_text('[\n  {"question": "is it red",\n   "question_id": }\n]\n')
    with pytest.raises(UserError, match=r"val_q\.json:3:\d+: malformed JSON"):
        read_json(bad)


def test_missing_json_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        read_json(tmp_path / "nothing.json")


def test_json_round_trip_is_deterministic(tmp_path: Path) -> None:
    obj = {"b": [1, 2], "a": "ü"}
    write_json(tmp_path / "x.json", obj)
    first = (tmp_path / "x.json").read_bytes()
    write_json(tmp_path / "x.json", read_json(tmp_path / "x.json"))
    assert (tmp_path / "x.json").read_bytes() == first
    assert read_json(tmp_path / "x.json") == obj


def test_expect_keys_names_the_missing_key() -> None:
    with pytest.raises(UserError, match=r"val_a\.json item 3: missing key 'answer'"):
        expect_keys({"question_id": "v_x_0"}, ("question_id", "answer"), "val_a.json item 3")


def test_read_text_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    from pyutils.core.jsonio import read_text

    with pytest.raises(UserError, match=r"urls\.txt: URL list not found; set URLS="):
        read_text(tmp_path / "urls.txt", "URL list", "set URLS= to a file of URLs")
    latin = tmp_path / "list.txt"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(UserError, match=r"list\.txt: not UTF-8 text \(invalid .* at byte 3\)"):
        read_text(latin)
