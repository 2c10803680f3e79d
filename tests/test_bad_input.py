"""Misshapen or unlucky input gives one line, never a traceback or silently dropped data: null or
numeric fields in annotations, byte order marks, latin-1 JSON, a full disk, a malformed probe
cache."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import orjson
import pytest

from pyutils.adaclip import splits
from pyutils.catalog.datasets import DATASETS
from pyutils.catalog.layout import CORRUPT, Where
from pyutils.core.errors import run_cli
from pyutils.video.probe_cache import CACHE_VERSION, ProbeCache
from tests.test_adaclip_splits import _error_of, touch, write_msrvtt


def test_didemo_null_description_is_one_line(tmp_path: Path) -> None:
    annot = tmp_path / "annot"
    annot.mkdir()
    records = [{"video": "a.mp4", "description": "x"}, {"video": "a.mp4", "description": None}]
    (annot / "test_data.json").write_text(json.dumps(records))
    (annot / "test_list.txt").write_text("a.mp4\n")
    touch(tmp_path / "v", "a.mp4.mp4")
    error = _error_of("didemo", tmp_path, annot)
    assert error.endswith("test_data.json: [1]: 'description': expected a string, found null")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda data: data.update(videos=5),
            "MSRVTT_data.json: 'videos': expected a list, found a number (5)",
        ),
        (
            lambda data: data["videos"][1].update(video_id=1),
            "MSRVTT_data.json: videos[1]: 'video_id': expected a string, found a number (1)",
        ),
        (
            lambda data: data["sentences"][0].update(video_id=0),
            "MSRVTT_data.json: sentences[0]: 'video_id': expected a string, found a number (0)",
        ),
    ],
    ids=["videos-5", "integer-video-id", "integer-sentence-id"],
)
def test_misshapen_msrvtt_is_one_line_never_a_silent_drop(tmp_path: Path, change, message) -> None:
    annot = tmp_path / "annot"
    ids = [("video0", 0, 1), ("video1", 0, 1)]
    write_msrvtt(annot, ids, [("video0", "c")], ["video0", "video1"], [("video1", "s")])
    data = json.loads((annot / "MSRVTT_data.json").read_text())
    change(data)
    (annot / "MSRVTT_data.json").write_text(json.dumps(data))
    touch(tmp_path / "v", "video0.mp4", "video1.mp4")
    assert _error_of("msrvtt", tmp_path, annot).endswith(message)
    # make check reads the same file: the dataset is corrupt, with the same words.
    folder = tmp_path / "data" / "msrvtt"
    (folder / "msrvtt_data").mkdir(parents=True)
    for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"):
        (folder / "msrvtt_data" / name).write_bytes((annot / name).read_bytes())
    inspection = DATASETS["msrvtt"].layout.inspect(folder, Where(videos=tmp_path / "v"))
    if "sentences" not in message:  # check reads only the videos' ids
        assert inspection.status == CORRUPT
        assert inspection.problems[0].endswith(message)


def test_byte_order_marks_are_accepted(tmp_path: Path) -> None:
    annot = tmp_path / "annot"
    write_msrvtt(annot, [("video0", 0, 1)], [("video0", "c")], ["video0"], [("video0", "s")])
    for name in ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"):
        path = annot / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    touch(tmp_path / "v", "video0.mp4")
    written = splits.generate("msrvtt", annot, tmp_path / "v", tmp_path / "out")
    assert [list(split.entries) for split in written] == [["video0"], []]


def test_latin1_json_says_not_utf8_and_where(tmp_path: Path) -> None:
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "val_1.json").write_bytes('{"v_é": {}}'.encode("latin-1"))
    error = _error_of("activitynet", tmp_path, annot)
    assert error.endswith(
        "val_1.json: not UTF-8 text (invalid continuation byte at byte 4); save it as UTF-8"
    )


def test_disk_full_while_writing_splits_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "val_1.json").write_text(
        json.dumps({"v_a": {"duration": 1, "timestamps": [], "sentences": []}})
    )
    touch(tmp_path / "v", "v_a.mp4")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    args = ["--video_dir", str(tmp_path / "v"), "--annot_dir", str(annot)]
    with pytest.raises(SystemExit) as exited:
        run_cli(splits.cli("activitynet"), [*args, "--output_folder", str(tmp_path / "out")])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        f"vlprep: error: {tmp_path / 'out' / 'val.json'}: disk full (No space left on device); "
        "free some space and rerun"
    )
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "info", [None, "x", {"duration": 2.0}], ids=["number-entry", "string-info", "missing-fields"]
)
def test_a_probe_cache_of_the_right_version_but_wrong_shape_costs_a_re_probe(
    tmp_path: Path, info: object
) -> None:
    video = tmp_path / "a.mp4"
    video.write_bytes(b"not probed here")
    status = video.stat()
    # The entry matches the file on disk, so only its shape can tell it is unusable.
    entry = 5 if info is None else {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
    if info is not None:
        entry["info"] = info
    cache_file = tmp_path / "cache.json"
    cache_file.write_bytes(orjson.dumps({"version": CACHE_VERSION, "entries": {str(video): entry}}))
    assert ProbeCache(cache_file).get(str(video)) is None
