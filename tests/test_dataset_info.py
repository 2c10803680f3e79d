"""Merging into LLaMA-Factory's dataset_info.json, and validating what gets registered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from pyutils.core.errors import UserError
from pyutils.llamafactory.dataset_info import SHAREGPT_VIDEO, main, merge_dataset_info
from tests.conftest import REPO, run_module

QA_NAME = "activitynet_qa_val_2_limit_20s"


def write_qa_file(folder: Path, name: str = QA_NAME, videos: int = 2, tokens: int = 1) -> Path:
    records = []
    for index in range(videos):
        video = folder / "videos" / f"v_{index}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"video")  # validation checks existence, not content
        records.append(
            {
                "messages": [
                    {"content": "<video>" * tokens + "what happens?", "role": "user"},
                    {"content": "ü", "role": "assistant"},
                ],
                "videos": [f"videos/v_{index}.mp4"],
            }
        )
    path = folder / f"{name}.json"
    path.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))
    return path


@pytest.fixture
def real_info(real_fixtures: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(real_fixtures / "llamafactory" / "dataset_info.json", folder)
    return folder / "dataset_info.json"


def test_real_file_keeps_every_entry_in_order(real_info: Path) -> None:
    original_bytes = real_info.read_bytes()
    original = json.loads(original_bytes)
    assert len(original) == 104
    qa = write_qa_file(real_info.parent)
    assert main(["--dir", str(real_info.parent), "--seed-entries", str(qa)]) == 0
    merged = json.loads(real_info.read_bytes())
    assert list(merged.items())[:104] == list(original.items())
    assert list(merged)[104:] == ["caltech101", "ActivityNet", QA_NAME]
    assert merged[QA_NAME] == {"file_name": f"{QA_NAME}.json", **SHAREGPT_VIDEO}
    assert merged["caltech101"] == {"file_name": "caltech101.json"}
    assert json.loads((real_info.parent / "ActivityNet.json").read_bytes()) == []
    # Same formatting as before: the original text is a prefix of the new one, up to its end.
    assert real_info.read_bytes().startswith(original_bytes.removesuffix(b"\n}\n"))
    written = real_info.read_bytes()
    stat = real_info.stat()
    assert main(["--dir", str(real_info.parent), "--seed-entries", str(qa)]) == 0
    assert real_info.read_bytes() == written
    assert real_info.stat().st_mtime_ns == stat.st_mtime_ns  # not even rewritten


def test_existing_entry_is_updated_in_place(tmp_path: Path) -> None:
    info = tmp_path / "dataset_info.json"
    info.write_text(
        json.dumps({"a": {"file_name": "a.json"}, QA_NAME: {"file_name": "old"}, "b": {}}, indent=4)
    )
    qa = write_qa_file(tmp_path)
    assert main(["--dir", str(tmp_path), str(qa)]) == 0
    merged = json.loads(info.read_bytes())
    assert list(merged) == ["a", QA_NAME, "b"]
    assert merged[QA_NAME]["file_name"] == f"{QA_NAME}.json"
    assert info.read_text() == json.dumps(merged, indent=4, ensure_ascii=False)  # indent 4 kept


def test_unrecognised_formatting_falls_back_to_two_spaces(tmp_path: Path) -> None:
    info = tmp_path / "dataset_info.json"
    info.write_text('{"a":   {"file_name": "a.json"}}\n')
    assert merge_dataset_info(info, {"b": {"file_name": "b.json"}})
    assert (
        info.read_bytes()
        == orjson.dumps(
            {"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}, option=orjson.OPT_INDENT_2
        )
        + b"\n"
    )


def test_new_file_and_seed_files_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "caltech101.json").write_text('[{"kept": true}]')
    assert main(["--dir", str(tmp_path), "--seed-entries"]) == 0
    assert json.loads((tmp_path / "caltech101.json").read_text()) == [{"kept": True}]
    assert json.loads((tmp_path / "dataset_info.json").read_text()) == {
        "caltech101": {"file_name": "caltech101.json"},
        "ActivityNet": {"file_name": "ActivityNet.json"},
    }


def test_video_tokens_must_match_videos(tmp_path: Path) -> None:
    qa = write_qa_file(tmp_path, tokens=2)
    with pytest.raises(UserError, match=r"record 0: 2 <video> placeholder\(s\) but 1 videos"):
        main(["--dir", str(tmp_path), str(qa)])
    assert not (tmp_path / "dataset_info.json").exists()


@pytest.mark.parametrize("placeholder", ["<image>", "<audio>"])
def test_every_placeholder_llamafactory_counts_must_match(tmp_path: Path, placeholder: str) -> None:
    """LLaMA-Factory's `_validate_messages` counts `<image>` and `<audio>` as it counts
    `<video>`: in an answer of a sample that has neither, it raises."""
    qa = write_qa_file(tmp_path)
    records = json.loads(qa.read_text())
    records[1]["messages"][1]["content"] = f"the {placeholder} tag"
    qa.write_text(json.dumps(records))
    expected = rf"record 1: 1 {placeholder} placeholder\(s\) but 0 (images|audios)"
    with pytest.raises(UserError, match=expected):
        main(["--dir", str(tmp_path), str(qa)])
    assert not (tmp_path / "dataset_info.json").exists()


def test_every_video_must_exist(tmp_path: Path) -> None:
    qa = write_qa_file(tmp_path)
    (tmp_path / "videos" / "v_1.mp4").unlink()
    result = run_module("pyutils.llamafactory.dataset_info", "--dir", str(tmp_path), str(qa))
    assert result.returncode == 2
    assert "record 1: video not found: videos/v_1.mp4" in result.stderr
    assert "Traceback" not in result.stderr


def test_media_dir_resolves_relative_videos(tmp_path: Path) -> None:
    qa = write_qa_file(tmp_path / "media")
    shutil.move(qa, tmp_path / qa.name)
    with pytest.raises(UserError, match="video not found"):
        main(["--dir", str(tmp_path), str(tmp_path / qa.name)])
    assert (
        main(
            [
                "--dir",
                str(tmp_path),
                "--media-dir",
                str(tmp_path / "media"),
                str(tmp_path / qa.name),
            ]
        )
        == 0
    )


def test_malformed_dataset_info_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "dataset_info.json").write_text('{\n  "a": {"file_name": "a.json"},\n}\n')
    result = run_module(
        "pyutils.llamafactory.dataset_info", "--dir", str(tmp_path), "--seed-entries"
    )
    assert result.returncode == 2
    assert "dataset_info.json:2:31: malformed JSON (trailing comma" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_awkward_names_and_stale_temporaries(tmp_path: Path) -> None:
    name = "qa 'odd' $(touch pwned) ü"
    qa = write_qa_file(tmp_path, name=name)
    stale = tmp_path / ".dataset_info.json.vlprep-tmp-1-x"
    stale.write_text("{")  # what a killed run leaves
    result = run_module(
        "pyutils.llamafactory.dataset_info", "--dir", str(tmp_path), str(qa), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "dataset_info.json").read_bytes())
    assert info[name]["file_name"] == f"{name}.json"
    assert not stale.exists()
    assert not (tmp_path / "pwned").exists() and not (REPO / "pwned").exists()


def test_nothing_to_register_is_a_usage_error(tmp_path: Path) -> None:
    result = run_module("pyutils.llamafactory.dataset_info", "--dir", str(tmp_path))
    assert result.returncode == 2 and "nothing to register" in result.stderr


def test_video_found_only_from_the_current_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLaMA-Factory falls back to its working directory for a path not under media_dir: that
    works only when training starts in the folder where the JSON was made."""
    qa = write_qa_file(tmp_path / "elsewhere")
    shutil.move(qa, tmp_path / qa.name)
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(UserError, match=r"video videos/v_0.mp4 is not under media_dir .* only"):
        main(["--dir", str(tmp_path), str(tmp_path / qa.name)])


def test_frame_lists_are_validated_frame_by_frame(tmp_path: Path) -> None:
    """A video given as its frames (make activitynet_qa PRESAMPLE=1): every frame must be found
    under media_dir, as LLaMA-Factory's converter joins each one."""
    frames = [f"frames/v_0/image_{n:05d}.jpg" for n in range(1, 4)]
    for frame in frames:
        (tmp_path / frame).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / frame).write_bytes(b"jpeg")
    record = {
        "messages": [
            {"content": "<video>what?", "role": "user"},
            {"content": "a", "role": "assistant"},
        ],
        "videos": [frames],
    }
    qa = tmp_path / "qa_presampled.json"
    qa.write_text(json.dumps([record]))
    assert main(["--dir", str(tmp_path), str(qa)]) == 0
    (tmp_path / frames[1]).unlink()
    with pytest.raises(UserError, match=r"record 0: frame not found: frames/v_0/image_00002.jpg"):
        main(["--dir", str(tmp_path), str(qa)])
    qa.write_text(json.dumps([{**record, "videos": [[]]}]))
    with pytest.raises(UserError, match="record 0: an empty list of frames"):
        main(["--dir", str(tmp_path), str(qa)])
