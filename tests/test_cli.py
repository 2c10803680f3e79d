"""The user-facing surface: `make help`, `make setup` idempotence, the demo end to end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pyutils.devtools.demo import STAGES
from pyutils.devtools.sample import DEMO_VIDEOS
from tests.conftest import REPO, run_module


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args], capture_output=True, text=True, cwd=REPO
    )


def test_help_lists_every_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    phony = set()
    for line in re.findall(r"^\.PHONY:(.*)$", makefile, flags=re.M):
        phony.update(line.split())
    result = _make("help")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert phony and phony <= listed


def test_second_setup_does_nothing() -> None:
    assert _make("setup").returncode == 0
    again = _make("setup")
    assert again.returncode == 0
    assert "Nothing to be done for 'setup'" in again.stdout


def test_demo_probes_every_sample_video(tmp_path: Path) -> None:
    result = run_module("pyutils.devtools.demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name, seconds in DEMO_VIDEOS:
        match = re.search(rf"{re.escape(name[:12])}.*?│ ([\d.]+) s \(generated", result.stdout)
        assert match, f"{name} missing from the demo output"
        assert abs(float(match.group(1)) - seconds) < 0.1
    assert not (tmp_path / "pwned").exists()
    # Quiet: one line per stage and the table; no tool logs (wget's retry chatter, progress)
    # and no failure lists when nothing failed.
    assert result.stdout.count("\nok  ") == len(STAGES) == 10
    page = tmp_path / "demo" / "data" / "report.html"
    assert result.stdout.rstrip().endswith(f"report: {page}") and page.is_file()
    rate = "fps_parts" if (os.cpu_count() or 1) > 1 else "fps"
    assert f"60 frames ({rate}), the bytes of one pass" in result.stdout
    assert "Retrying" not in result.stdout + result.stderr
    assert result.stderr == ""
    assert not list((tmp_path / "demo").rglob("*failures.jsonl"))
    readme = (tmp_path / "demo" / "README.md").read_text()
    assert "`datasets/`: a `DATA` root" in readme and "`data/`: an `OUT` folder" in readme


def test_make_passes_paths_with_quotes_and_spaces(tmp_path: Path) -> None:
    from pyutils.devtools.sample import make_video

    videos = tmp_path / "it's a folder"
    make_video(videos / "v 1.mp4", 1.0, width=64, height=48)
    frames = tmp_path / "frames 'out'"
    result = _make("frames", f"VIDEOS={videos}", f"FRAMES={frames}", "NUM_FRAMES=4")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (frames / "v 1").iterdir()) == [
        f"image_{i:05d}.jpg" for i in range(1, 5)
    ]
