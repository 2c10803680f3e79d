from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyutils.core.atomic import (
    atomic_dir,
    atomic_write_bytes,
    is_temporary,
    remove_stale_temporaries,
)
from tests.conftest import REPO

CRASH_WRITING_FILE = """
import os, signal, sys
from pyutils.core import atomic
real_fsync = os.fsync
def die(fd):
    os.kill(os.getpid(), signal.SIGKILL)
os.fsync = die
atomic.atomic_write_bytes(sys.argv[1], b"x" * 1_000_000)
"""

CRASH_FILLING_FOLDER = """
import os, signal, sys
from pathlib import Path
from pyutils.core.atomic import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    for i in range(5):
        (Path(tmp) / f"image_{i:05d}.jpg").write_bytes(b"frame")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_until_killed(script: str, target: Path) -> None:
    result = subprocess.run([sys.executable, "-c", script, str(target)], cwd=REPO)
    assert result.returncode == -signal.SIGKILL


def test_killed_file_write_leaves_no_final_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    _run_until_killed(CRASH_WRITING_FILE, target)
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert leftovers and all(is_temporary(p) for p in leftovers)
    assert remove_stale_temporaries(tmp_path) == leftovers
    assert list(tmp_path.iterdir()) == []


def test_killed_folder_write_leaves_no_final_folder(tmp_path: Path) -> None:
    target = tmp_path / "video1"
    _run_until_killed(CRASH_FILLING_FOLDER, target)
    assert not target.exists()
    remove_stale_temporaries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_killed_rewrite_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    _run_until_killed(CRASH_WRITING_FILE, target)
    assert target.read_bytes() == b"old"


def test_exception_inside_atomic_dir_removes_the_temporary(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "frames") as tmp:
        (tmp / "a.jpg").write_bytes(b"a")
        raise RuntimeError("ffmpeg failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replace_swaps_complete_folders(tmp_path: Path) -> None:
    final = tmp_path / "frames"
    final.mkdir()
    (final / "old.jpg").write_bytes(b"old")
    with atomic_dir(final, replace=True) as tmp:
        (tmp / "new.jpg").write_bytes(b"new")
    assert sorted(p.name for p in final.iterdir()) == ["new.jpg"]
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_atomic_write_creates_parents_and_content(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write_bytes(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert os.listdir(target.parent) == ["c.txt"]


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "f.json", b"{}")
    with atomic_dir(tmp_path / "d"):
        pass
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask
