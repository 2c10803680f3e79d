"""`python -m pyutils.adaclip.config`: only `frames_dir` changes, the file's format stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_module

# The shape of SamsungLabs/AdaCLIP configs/<dataset>.json: the keys its configs/config.py reads.
CONFIG = {
    "dataset": "didemo",
    "train_annot": "annots/didemo/train.json",
    "val_annot": "annots/didemo/val.json",
    "test_annot": "annots/didemo/test.json",
    "frames_dir": "/path/to/didemo/frames",
    "output_dir": "output/didemo",
    "clip_backbone": "ViT-B/32",
    "num_frm": 32,
    "img_tmpl": "image_{:05d}.jpg",
    "batch_size": 16,
    "betas": [0.9, 0.98],
    "learning_rate": 1e-4,
    "freeze_cnn": True,
    "word_agg": None,
    "notes": {"frames_dir": "nested keys of the same name are not the one AdaCLIP reads"},
    "comment": "frames_dir",
}

FORMATS = {
    "four spaces": lambda obj: json.dumps(obj, indent=4) + "\n",
    "two spaces": lambda obj: json.dumps(obj, indent=2),
    "tabs": lambda obj: json.dumps(obj, indent="\t") + "\n",
    "one line": lambda obj: json.dumps(obj),
    "spaced colons": lambda obj: json.dumps(obj, indent=4).replace('": ', '" :  '),
}


def _checkout(root: Path, text: str, dataset: str = "didemo") -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "msrvtt-jsfusion.json").write_text("{}")
    config = root / "configs" / f"{dataset}.json"
    config.write_text(text)
    return config


def _set(adaclip: Path, frames: Path, dataset: str = "didemo"):
    return run_module(
        "pyutils.adaclip.config",
        *("--adaclip", str(adaclip), "--dataset", dataset, "--frames", str(frames)),
    )


@pytest.mark.parametrize("style", sorted(FORMATS))
def test_only_frames_dir_changes(tmp_path: Path, style: str) -> None:
    before = FORMATS[style](CONFIG)
    config = _checkout(tmp_path / "AdaCLIP", before)
    frames = tmp_path / "didemo frames 'é'"
    frames.mkdir()
    result = _set(tmp_path / "AdaCLIP", frames)
    assert result.returncode == 0, result.stderr
    after = config.read_text()
    assert json.loads(after) == {**CONFIG, "frames_dir": str(frames)}
    assert list(json.loads(after)) == list(CONFIG)
    old_value = json.dumps(CONFIG["frames_dir"])
    new_value = json.dumps(str(frames), ensure_ascii=False)
    assert after == before.replace(f"{old_value},", f"{new_value},", 1)  # nothing else moved

    again = _set(tmp_path / "AdaCLIP", frames)
    assert again.returncode == 0 and "already" in again.stderr
    assert config.read_text() == after


def test_missing_config_lists_the_known_ones(tmp_path: Path) -> None:
    _checkout(tmp_path, json.dumps(CONFIG))
    result = _set(tmp_path, tmp_path, dataset="msrvtt")
    assert result.returncode == 2
    assert "no such config; DATASET= is one of: didemo, msrvtt-jsfusion" in result.stderr
    not_a_checkout = _set(tmp_path / "nowhere", tmp_path)
    assert not_a_checkout.returncode == 2 and "set ADACLIP=" in not_a_checkout.stderr


def test_missing_key_duplicate_key_and_malformed_json(tmp_path: Path) -> None:
    config = _checkout(tmp_path, json.dumps({k: v for k, v in CONFIG.items() if k != "frames_dir"}))
    result = _set(tmp_path, tmp_path)
    assert result.returncode == 2 and 'no top-level "frames_dir" key' in result.stderr

    config.write_text('{"frames_dir": "a",\n "frames_dir": "b"}')
    result = _set(tmp_path, tmp_path)
    assert result.returncode == 2 and '"frames_dir" occurs 2 times' in result.stderr

    broken = '{\n    "dataset": "didemo",\n    "frames_dir": "x"\n    "num_frm": 32\n}'
    config.write_text(broken)
    result = _set(tmp_path, tmp_path)
    assert result.returncode == 2 and "didemo.json:4:" in result.stderr
    assert config.read_text() == broken
    assert "Traceback" not in result.stderr


def test_missing_frame_folder_is_an_error(tmp_path: Path) -> None:
    config = _checkout(tmp_path, json.dumps(CONFIG))
    result = _set(tmp_path, tmp_path / "no-frames")
    assert result.returncode == 2 and "frame folder not found" in result.stderr
    assert json.loads(config.read_text()) == CONFIG
