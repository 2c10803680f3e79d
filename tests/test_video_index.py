from __future__ import annotations

from pathlib import Path

import pytest

from pyutils.core.errors import UserError
from pyutils.core.video_index import find_videos, index_by_stem


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_finds_videos_recursively_and_skips_others(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "a.mp4",
        "sub/b.MKV",
        "sub/deeper/c d.webm",
        "notes.txt",
        ".hidden.mp4",
        ".e.mp4.vlprep-tmp-1-x",
        "x@N00_1_ab.m4v.mp4",
    )
    found = [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path)]
    assert found == ["a.mp4", "sub/b.MKV", "sub/deeper/c d.webm", "x@N00_1_ab.m4v.mp4"]
    assert [p.name for p in find_videos(tmp_path, ["webm"])] == ["c d.webm"]


def test_stem_index_keeps_inner_dots(tmp_path: Path) -> None:
    _touch(tmp_path, "x@N00_1_ab.m4v.mp4", "y@N00_2_cd..mp4")
    index = index_by_stem(find_videos(tmp_path))
    assert set(index) == {"x@N00_1_ab.m4v", "y@N00_2_cd."}


def test_duplicate_stems_are_an_input_error(tmp_path: Path) -> None:
    _touch(tmp_path, "a/v1.mp4", "b/v1.mkv", "v2.mp4")
    with pytest.raises(UserError, match=r"1 video name\(s\) occur more than once \(e\.g\. 'v1'"):
        index_by_stem(find_videos(tmp_path))


def test_missing_folder_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="set VIDEOS="):
        find_videos(tmp_path / "absent")
