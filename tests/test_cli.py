"""The user-facing surface: `make help`, `make setup` idempotence, the demo end to end."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from pyutils.devtools.demo import STAGES
from pyutils.devtools.sample import DEMO_VIDEOS
from tests.conftest import REPO, run_make, run_module


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
    # The fit, at a CUTOFF_LEN its samples are over: the line to pass back to make preflight.
    assert re.search(r"preflight fit +│ CUTOFF_LEN=256 .*│ to fit: VIDEO_FPS=2 VIDEO_MAXLEN=128 "
                     r"VIDEO_MAX_PIXELS=\d+ ", result.stdout)  # fmt: skip
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


def test_an_empty_videos_folder_is_named_as_typed(tmp_path: Path) -> None:
    videos = tmp_path / "no videos 'here'"
    videos.mkdir()
    (videos / "notes.txt").write_text("not a video")
    frames = tmp_path / "frames"
    result = _make("frames", f"VIDEOS={videos}", f"FRAMES={frames}", "FPS=1")
    assert result.returncode == 2
    assert f"VIDEOS={videos}: no videos with extension mp4" in result.stderr
    assert not frames.exists()


FAKE_PYTHON3 = """#!/bin/sh
# A python3 whose `-m venv DIR` makes a venv of logging stand-ins (python, ruff, shellcheck).
test "$1 $2" = "-m venv" || exit 9
mkdir -p "$3/bin"
for tool in python ruff shellcheck; do
  printf '#!/bin/sh\\necho "%s $*" >> "%s/calls.log"\\n' "$tool" "$3" > "$3/bin/$tool"
  chmod +x "$3/bin/$tool"
done
"""


def fake_setup(tmp_path: Path) -> tuple[list[str], Path]:
    python3 = tmp_path / "python3"
    python3.write_text(FAKE_PYTHON3)
    python3.chmod(0o755)
    venv = tmp_path / "venv"
    return [f"VENV={venv}", f"PYTHON3={python3}"], venv


def test_runtime_targets_install_the_runtime_requirements_only_and_say_so(
    tmp_path: Path,
) -> None:
    variables, venv = fake_setup(tmp_path)
    result = run_make("demo", f"DEMO={tmp_path / 'demo'}", *variables)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"vlprep: setup: creating {venv} with {tmp_path / 'python3'}",
        f"vlprep: setup: installing the runtime requirements (requirements.txt) into {venv};"
        " a minute or two the first time",
        "vlprep: setup: the runtime requirements installed",
    ]
    calls = (venv / "calls.log").read_text().splitlines()
    assert calls == [
        "python -m pip install --quiet --disable-pip-version-check -r requirements.txt",
        f"python -m pyutils.devtools.demo --dir {tmp_path / 'demo'}",
    ]
    again = run_make("setup", *variables)
    assert again.returncode == 0 and again.stderr == ""


def test_lint_and_test_add_the_development_tools_with_pips_progress_on_a_terminal(
    tmp_path: Path,
) -> None:
    variables, venv = fake_setup(tmp_path)
    terminal, other_end = pty.openpty()
    try:
        result = subprocess.run(
            ["make", "--no-print-directory", "lint", *variables],
            stdout=other_end, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
    finally:
        os.close(other_end)
        os.close(terminal)
    assert result.returncode == 0, result.stderr
    assert "installing the development tools (requirements-dev.txt)" in result.stderr
    calls = (venv / "calls.log").read_text().splitlines()
    assert calls[:2] == [  # no --quiet: pip draws its own progress on a terminal
        "python -m pip install --disable-pip-version-check -r requirements.txt",
        "python -m pip install --disable-pip-version-check -r requirements-dev.txt",
    ]
    assert calls[2] == "ruff check ."
