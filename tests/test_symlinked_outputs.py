"""Outputs that are symlinks (LLaMA-Factory's own data/dataset_info.json linked into OUT, an AdaCLIP
config linked from elsewhere) are updated through the link, which stays a link; DATASET= is a
config name, never a path."""

from __future__ import annotations

import json
from pathlib import Path

from pyutils.core.atomic import atomic_write_text, is_temporary
from tests.conftest import run_module
from tests.test_adaclip_config import CONFIG, _checkout, _set


def test_atomic_write_goes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "file.json"
    target.write_text("old")
    link = tmp_path / "out" / "file.json"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "real" / "file.json")
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["file.json"]  # no temporary
    assert [p.name for p in link.parent.iterdir()] == ["file.json"]


def test_dataset_info_linked_into_out_stays_a_link(tmp_path: Path) -> None:
    llama_factory = tmp_path / "LLaMA-Factory" / "data"
    llama_factory.mkdir(parents=True)
    theirs = llama_factory / "dataset_info.json"
    theirs.write_text('{\n  "alpaca_en_demo": {\n    "file_name": "alpaca_en_demo.json"\n  }\n}\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").symlink_to(theirs)
    result = run_module("pyutils.llamafactory.dataset_info", "--dir", str(out), "--seed-entries")
    assert result.returncode == 0, result.stderr
    assert (out / "dataset_info.json").is_symlink()
    assert list(json.loads(theirs.read_text())) == ["alpaca_en_demo", "caltech101", "ActivityNet"]
    assert not [p for p in llama_factory.iterdir() if is_temporary(p)]


def test_a_linked_adaclip_config_stays_a_link(tmp_path: Path) -> None:
    kept = tmp_path / "my-configs" / "didemo.json"
    kept.parent.mkdir()
    kept.write_text(json.dumps(CONFIG, indent=4))
    config = _checkout(tmp_path / "AdaCLIP", "{}")
    config.unlink()
    config.symlink_to(kept)
    frames = tmp_path / "frames"
    frames.mkdir()
    result = _set(tmp_path / "AdaCLIP", frames)
    assert result.returncode == 0, result.stderr
    assert config.is_symlink()
    assert json.loads(kept.read_text())["frames_dir"] == str(frames)


def test_a_dataset_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "x.json"
    outside.write_text(json.dumps(CONFIG))
    _checkout(tmp_path / "a" / "b" / "AdaCLIP", json.dumps(CONFIG))
    frames = tmp_path / "frames"
    frames.mkdir()
    result = _set(tmp_path / "a" / "b" / "AdaCLIP", frames, dataset="../../../../x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert (
        "DATASET='../../../../x' is not a config name; DATASET= is one of: didemo" in result.stderr
    )
    assert json.loads(outside.read_text()) == CONFIG
