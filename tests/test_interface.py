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
from tests.conftest import REPO


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", *args], capture_output=True, text=True, cwd=REPO, env=env
    )


def test_a_mistyped_variable_is_named_with_the_closest_known_one() -> None:
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "NUM_FRAME=8", "fps=1")
    assert result.returncode == 0
    assert "NUM_FRAME is not a vlprep variable; did you mean NUM_FRAMES?" in result.stderr
    assert "fps is not a vlprep variable; did you mean FPS?" in result.stderr
    assert "--num-frames" not in result.stdout  # the typo changed nothing, and said so


def test_strict_refuses_a_variable_no_target_reads() -> None:
    result = make("-n", "frames", "VIDEOS=v", "FRAMES=f", "NUM_FRAME=8", "STRICT=1")
    assert result.returncode == 2
    assert "NUM_FRAME is not a vlprep variable; did you mean NUM_FRAMES?" in result.stderr
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


def test_check_json_tells_incomplete_from_absent(tmp_path: Path) -> None:
    (tmp_path / "caltech-101").mkdir()
    (tmp_path / "caltech-101" / "split_zhou_Caltech101.json").write_text('{"train": [["a/x.jpg"]]}')
    result = make("-s", "check", f"DATA={tmp_path}", "JSON=1", "DATASETS=caltech101 flickr")
    assert result.returncode == 2  # make's own status for any failed recipe
    summary = json.loads(result.stdout)
    assert summary["incomplete"] == 1
    statuses = {row["dataset"]: row["status"] for row in summary["datasets"]}
    assert statuses == {"caltech101": "partial", "flickr": "missing"}
