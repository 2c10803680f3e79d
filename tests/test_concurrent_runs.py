"""Runs sharing a folder: one run's clean-up leaves another live run's temporaries alone, and
concurrent dataset_info.json registrations lose no entry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyutils.core.atomic import is_temporary, remove_stale_temporaries
from tests.conftest import REPO

HOLD = """
import sys
from pathlib import Path
from pyutils.core.atomic import atomic_dir, atomic_file
kind, target = sys.argv[1], Path(sys.argv[2])
with (atomic_file if kind == "file" else atomic_dir)(target) as tmp:
    print(tmp, flush=True)
    sys.stdin.readline()  # keep the temporary until the test says
    (tmp / "frame.jpg" if kind == "folder" else tmp).write_text("done")
"""


def python(script: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, text=True, **popen)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_live_runs_temporary_survives_another_runs_clean_up(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out"
    writer = python(HOLD, kind, str(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert writer.stdout is not None and writer.stdin is not None
    temporary = Path(writer.stdout.readline().strip())
    assert is_temporary(temporary) and temporary.exists()
    assert remove_stale_temporaries(tmp_path) == []  # what a second run does first
    assert temporary.exists()
    writer.stdin.write("\n")
    writer.stdin.close()
    assert writer.wait() == 0
    assert (target / "frame.jpg" if kind == "folder" else target).read_text() == "done"


def test_a_killed_runs_temporary_is_removed(tmp_path: Path) -> None:
    writer = python(
        HOLD, "folder", str(tmp_path / "out"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    temporary = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert remove_stale_temporaries(tmp_path) == [temporary]
    assert list(tmp_path.iterdir()) == []


WRITE_AND_CLEAN = """
import sys
from pathlib import Path
from pyutils.core.atomic import atomic_dir, atomic_write_bytes, remove_stale_temporaries
folder, me = Path(sys.argv[1]), sys.argv[2]
for i in range(150):
    remove_stale_temporaries(folder)  # every stage starts so
    atomic_write_bytes(folder / f"{me}-{i}.json", b"{}" * 1000)
    with atomic_dir(folder / f"{me}-{i}") as tmp:
        (tmp / "frame.jpg").write_bytes(b"jpeg")
"""


def test_two_runs_writing_and_cleaning_one_folder_both_succeed(tmp_path: Path) -> None:
    runs = [python(WRITE_AND_CLEAN, str(tmp_path), me, stderr=subprocess.PIPE) for me in "ab"]
    errors = [run.communicate()[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert len(list(tmp_path.glob("*.json"))) == 300
    assert not [p for p in tmp_path.iterdir() if is_temporary(p)]


REGISTER = """
import sys
from pathlib import Path
from pyutils.llamafactory.dataset_info import merge_dataset_info
info, me = Path(sys.argv[1]), sys.argv[2]
for i in range(15):
    merge_dataset_info(info, {f"{me}-{i}": {"file_name": f"{me}-{i}.json"}})
"""


@pytest.mark.parametrize("trial", range(3))
def test_four_concurrent_registrations_keep_every_entry(tmp_path: Path, trial: int) -> None:
    info = tmp_path / "dataset_info.json"
    info.write_text('{\n  "theirs": {"file_name": "theirs.json"}\n}\n')
    writers = [python(REGISTER, str(info), f"w{n}", stderr=subprocess.PIPE) for n in range(4)]
    errors = [writer.communicate()[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 4, errors
    entries = json.loads(info.read_text())
    assert set(entries) == {"theirs"} | {f"w{n}-{i}" for n in range(4) for i in range(15)}
