"""Answers in the terms people typed: mistyped Make variables, output in pipes, exit statuses
that scripts can tell apart."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from pyutils.catalog.check import check, table
from pyutils.core.names import closest
from tests.conftest import REPO, run_make, run_module

make = run_make


def test_a_near_miss_variable_stops_before_any_work_naming_the_one_meant(tmp_path: Path) -> None:
    # Not -n: the stop comes before any recipe runs, so nothing is written.
    frames = tmp_path / "frames"
    result = make("frames", f"VIDEOS={tmp_path}", f"FRAMES={frames}", "NUM_FRAME=8")
    assert result.returncode == 2
    assert "NUM_FRAME is not a vlprep variable; did you mean NUM_FRAMES?" in result.stderr
    assert "STRICT=0 runs without it" in result.stderr
    assert result.stdout == "" and not frames.exists()
    assert make("-n", "check", "fps=1").returncode == 2  # a case slip is a near miss too


def test_strict_0_makes_a_near_miss_a_warning() -> None:
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "NUM_FRAME=8", "fps=1", "STRICT=0")
    assert result.returncode == 0
    assert "warning: NUM_FRAME is not a vlprep variable; did you mean NUM_FRAMES?" in result.stderr
    assert "warning: fps is not a vlprep variable; did you mean FPS?" in result.stderr
    assert "--num-frames" not in result.stdout  # the typo changed nothing, and said so


def test_a_name_like_no_known_one_warns_and_strict_1_stops_on_it() -> None:
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "XYZZY=8")
    assert result.returncode == 0
    assert "warning: XYZZY is not a vlprep variable (ignored" in result.stderr
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "XYZZY=8", "STRICT=1")
    assert result.returncode == 2
    assert "XYZZY is not a vlprep variable (nothing done" in result.stderr
    assert result.stdout == ""


def test_known_variables_and_download_overrides_pass_silently() -> None:
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "NUM_FRAMES=8", "CALTECH101_URL=x")
    assert result.returncode == 0 and result.stderr == ""
    assert "--num-frames '8'" in result.stdout


def test_closest_name() -> None:
    known = ["FPS", "NUM_FRAMES", "SIZE", "FRAMES"]
    assert closest("NUM_FRAME", known) == "NUM_FRAMES"
    assert closest("fps", known) == "FPS"
    assert closest("Frame", known) == "FRAMES"
    assert closest("xyzzy", known) is None


def test_check_in_a_pipe_prints_what_a_wide_terminal_shows(tmp_path: Path) -> None:
    piped = subprocess.run(
        [sys.executable, "-m", "pyutils.catalog.check", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert piped.returncode == 0, piped.stderr
    screen = io.StringIO()
    terminal = Console(file=screen, width=300, force_terminal=True, color_system=None)
    terminal.print(table(check([], tmp_path), tmp_path))
    assert piped.stdout == screen.getvalue()
    assert "make activitynet-ready DATA=" in piped.stdout  # never cut mid-word
    assert max(map(len, piped.stdout.splitlines())) > 80


def test_check_json_counts_missing_as_incomplete(tmp_path: Path) -> None:
    (tmp_path / "caltech-101").mkdir()
    (tmp_path / "caltech-101" / "split_zhou_Caltech101.json").write_text('{"train": [["a/x.jpg"]]}')
    result = make("-s", "check", f"DATA={tmp_path}", "JSON=1", "DATASETS=caltech101 flickr")
    assert result.returncode == 2  # make's own status for any failed recipe
    summary = json.loads(result.stdout)
    assert summary["incomplete"] == 2
    statuses = {row["dataset"]: row["status"] for row in summary["datasets"]}
    assert statuses == {"caltech101": "partial", "flickr": "missing"}


def test_check_on_an_empty_data_folder(tmp_path: Path) -> None:
    """Bare, a report: exit 0, saying so, every dataset counted as not complete; a dataset named
    in DATASETS= that is missing fails (the module's status 1, make's 2)."""
    bare = make("-s", "check", f"DATA={tmp_path}", "JSON=1")
    assert bare.returncode == 0, bare.stderr
    assert json.loads(bare.stdout)["incomplete"] == 9
    assert "check: 9 of 9 datasets not complete; a report, exit status 0" in bare.stderr
    assert make("-s", "check", f"DATA={tmp_path}", "DATASETS=msrvtt").returncode == 2
    named = run_module("pyutils.catalog.check", "--data", str(tmp_path), "msrvtt")
    assert named.returncode == 1 and "missing" in named.stdout


def test_a_mistyped_target_is_answered_with_the_one_meant() -> None:
    result = make("frmaes")
    assert result.returncode == 2
    assert "no target 'frmaes'; did you mean frames? (make help lists them all)" in result.stderr
    assert "No rule to make target" not in result.stderr
    assert make("-n", "xyzzy").returncode == 2  # even as a dry run


def test_a_failed_line_names_the_path_once(tmp_path: Path) -> None:
    bad = tmp_path / "videos" / "bad.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"not a video" * 100)
    result = make("frames", f"VIDEOS={bad.parent}", f"FRAMES={tmp_path / 'frames'}")
    assert result.returncode == 2  # make's status for the stage's 1
    (failed,) = [line for line in result.stdout.splitlines() if "FAILED" in line]
    assert failed.count(str(bad)) == 1 and "not a readable video" in failed
