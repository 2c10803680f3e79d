"""`make check` / `python -m pyutils.catalog.check`: statuses, missing counts, exit codes; the
caption datasets prepared end to end from a local server (their Kaggle sources overridden)."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import orjson
import pytest

from pyutils.catalog.datasets import DATASETS
from pyutils.catalog.layout import CORRUPT, PARTIAL, ClassFolders
from pyutils.catalog.prepare import prepare
from pyutils.devtools.local_server import LocalServer
from tests.conftest import run_module

SPLIT = "split_zhou_Caltech101.json"


@pytest.fixture
def caltech_layout(tmp_path: Path, real_fixtures: Path) -> Path:
    """$DATA/caltech-101 with an empty jpg for every image the real CoOp split references."""
    root = tmp_path / "data" / "caltech-101"
    root.mkdir(parents=True)
    shutil.copyfile(real_fixtures / "caltech101" / SPLIT, root / SPLIT)
    split = orjson.loads((root / SPLIT).read_bytes())
    for rows in split.values():
        for relpath, _, _ in rows:
            image = root / "101_ObjectCategories" / relpath
            image.parent.mkdir(parents=True, exist_ok=True)
            image.touch()
    return tmp_path / "data"


def check(data: Path, *names: str):
    return run_module("pyutils.catalog.check", "--data", str(data), *names)


def test_real_split_complete_then_one_image_missing(caltech_layout: Path) -> None:
    result = check(caltech_layout, "caltech101")
    assert result.returncode == 0, result.stdout
    assert "complete" in result.stdout and "8,243" in result.stdout  # 8,242 images + the split
    (caltech_layout / "caltech-101" / "101_ObjectCategories" / "Faces" / "image_0274.jpg").unlink()
    result = check(caltech_layout, "caltech101")
    assert result.returncode == 1
    assert "partial" in result.stdout
    assert (
        "1 of 8242 images of the CoOp split missing (first: Faces/image_0274.jpg)" in result.stdout
    )
    assert "make caltech101" in result.stdout


def test_absent_datasets_are_reported_not_failed(caltech_layout: Path) -> None:
    result = check(caltech_layout)
    assert result.returncode == 0
    for name in DATASETS:
        assert name in result.stdout
    assert result.stdout.count("missing") >= len(DATASETS) - 1


def test_malformed_split_is_corrupt_with_line_and_column(caltech_layout: Path) -> None:
    (caltech_layout / "caltech-101" / SPLIT).write_text('{"train": [\n  ["a.jpg", 0, "a"],,\n')
    result = check(caltech_layout, "caltech101")
    assert result.returncode == 1
    assert CORRUPT in result.stdout and f"{SPLIT}:2:" in result.stdout.replace("\n", "")


def test_unknown_dataset_is_a_usage_error(tmp_path: Path) -> None:
    result = check(tmp_path, "cifar")
    assert result.returncode == 2 and "unknown dataset 'cifar'" in result.stderr


def test_class_folders_count_classes_and_images(tmp_path: Path) -> None:
    layout = ClassFolders(("train", "val"), 2, "classnames.txt", 3)
    (tmp_path / "classnames.txt").write_text("n01 tench\nn02 goldfish\n")
    for split, wnid, index in (
        *(("train", w, i) for w in ("n01", "n02") for i in (0, 1)),
        ("val", "n01", 2),
        ("val", "n02", 2),
    ):
        (tmp_path / split / wnid).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / wnid / f"{wnid}_{index}.jpg").touch()
    assert layout.inspect(tmp_path).status == "complete"
    (tmp_path / "val" / "n02" / "n02_2.jpg").unlink()
    found = layout.inspect(tmp_path)
    assert found.status == PARTIAL
    assert found.problems == ["1 classes with fewer than 3 images (first: n02)"]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_flickr_prepared_from_local_archives_with_seed_json_names(tmp_path: Path) -> None:
    # The Kaggle archives' shapes: images in a nested folder, JSONs named `.json.json`.
    images = {f"flickr30k_images/flickr30k_images/{n}.jpg": b"jpg" for n in (1, 2, 3)}
    # BLIP's forms: train records with an image_id and one caption, val/test with a list.
    train = [
        {"image": f"flickr30k-images/{n}.jpg", "caption": "a dog", "image_id": n} for n in (1, 2, 3)
    ]
    valtest = [{"image": f"flickr30k-images/{n}.jpg", "caption": ["a dog"]} for n in (1, 2, 3)]
    captions = {
        f"data/flickr/flickr30k_{split}.json.json": orjson.dumps(
            valtest if split != "train" else train
        )
        for split in ("train", "val", "test")
    }
    files = {"images.zip": zip_bytes(images), "json.zip": zip_bytes(captions)}
    data = tmp_path / "data"
    with LocalServer(files) as server:
        overrides = {
            "FLICKR30K_URL": server.url("images.zip"),
            "FLICKR30K_SHA256": "none",
            "DATASET_JSON_URL": server.url("json.zip"),
            "DATASET_JSON_SHA256": "none",
        }
        assert prepare(DATASETS["flickr"], data, overrides) == 0
        assert prepare(DATASETS["flickr"], data, overrides) == 0  # placed parts are skipped
        assert len(server.requests) == 2
    root = data / "flickr"
    assert sorted(p.name for p in (root / "flickr30k-images").iterdir()) == [
        "1.jpg",
        "2.jpg",
        "3.jpg",
    ]
    assert (root / "flickr30k_test.json").exists() and (root / ".vlprep-complete").exists()
    assert check(data, "flickr").returncode == 0
    (root / "flickr30k-images" / "2.jpg").unlink()
    result = check(data, "flickr")
    assert result.returncode == 1 and "3 of 9 images the caption JSONs reference" in result.stdout


def test_archive_without_the_expected_folder_is_an_error(tmp_path: Path) -> None:
    files = {"wrong.zip": zip_bytes({"something/else.jpg": b"x"})}
    with LocalServer(files) as server:
        overrides = {"FLICKR30K_URL": server.url("wrong.zip"), "FLICKR30K_SHA256": "none"}
        status = prepare(
            DATASETS["flickr"], tmp_path, overrides | {"DATASET_JSON_URL": server.url("none")}
        )
    assert status == 1
    log = (tmp_path / "downloads" / "flickr_failures.jsonl").read_text()
    assert "none of flickr30k-images" in log
    assert not [p for p in (tmp_path / "flickr").iterdir() if "vlprep-tmp" in p.name]
