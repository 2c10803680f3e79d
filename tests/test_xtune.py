"""The CLIP image sets as OPEA xtune's dataset classes read them (pyutils.catalog.xtune): each rule
worked by hand, then `make <dataset>` from archives shaped like the real ones on a local server,
replaying xtune's path and label rules on the result, and `make check` on each."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
from pathlib import Path

import orjson
import pytest

from pyutils.catalog import xtune
from pyutils.catalog.datasets import DATASETS, SPLITS
from pyutils.catalog.layout import ClassFolders
from pyutils.catalog.prepare import prepare
from pyutils.core.errors import UserError
from pyutils.devtools.local_server import LocalServer
from tests.conftest import run_module
from tests.test_check import zip_bytes

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def check(data: Path, *names: str):
    return run_module("pyutils.catalog.check", "--data", str(data), *names)


def no_checksums(server: LocalServer, dataset: str, names: dict[str, str]) -> dict[str, str]:
    """`<VAR>_URL` overrides serving `names[part file]` for every part of `dataset`."""
    overrides = {}
    for part in DATASETS[dataset].parts:
        overrides[f"{part.var}_URL"] = server.url(names[part.file])
        overrides[f"{part.var}_SHA256"] = "none"
    return overrides


# ---- mini-ImageNet --------------------------------------------------------------------------


def mini_tar(classes: dict[str, list[str]], per_class: int) -> bytes:
    """The MTL page's archive shape: mini-imagenet/{train,val,test}/<wnid>/<wnid><8 digits>.jpg."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for split, wnids in classes.items():
            for wnid in wnids:
                for index in range(per_class):
                    info = tarfile.TarInfo(f"mini-imagenet/{split}/{wnid}/{wnid}{index:08d}.jpg")
                    info.size = len(JPEG)
                    archive.addfile(info, io.BytesIO(JPEG))
    return buffer.getvalue()


def xtune_labels(root: Path, split: str) -> dict[str, tuple[int, str]]:
    """MiniImageNet.read_data replayed: image name -> (label, class name)."""
    names = xtune.read_classnames((root / "classnames.txt").read_text())
    out = {}
    for label, folder in enumerate(sorted(p.name for p in (root / split).iterdir() if p.is_dir())):
        for image in os.listdir(root / split / folder):
            out[image] = (label, names[folder])
    return out


DISJOINT = {"train": ["n02", "n01"], "val": ["n03"], "test": ["n04"]}  # like 64/16/20
CLASSNAMES = b"n01 house finch\nn02 robin\nn03 nematode\nn04 red king crab\n"


def prepare_mini(tmp_path: Path, tar: bytes, layout: ClassFolders) -> tuple[int, Path]:
    dataset = dataclasses.replace(DATASETS["mini-imagenet"], layout=layout)
    data = tmp_path / "data"
    with LocalServer({"mini.tar": tar, "classnames.txt": CLASSNAMES}) as server:
        names = {"mini-imagenet.tar": "mini.tar", "classnames.txt": "classnames.txt"}
        status = prepare(dataset, data, no_checksums(server, "mini-imagenet", names))
    return status, data / "mini-imagenet"


def test_disjoint_mini_imagenet_is_resplit_into_the_same_classes(tmp_path: Path) -> None:
    layout = ClassFolders(SPLITS, 4, "classnames.txt", 20)
    status, root = prepare_mini(tmp_path, mini_tar(DISJOINT, 20), layout)
    assert status == 0
    for split in SPLITS:
        assert sorted(p.name for p in (root / split).iterdir()) == ["n01", "n02", "n03", "n04"]
    # By hand: 20 images per class, sorted by the SHA-256 of their names; 2 val, 2 test, 16 train.
    names = [f"n03{i:08d}.jpg" for i in range(20)]
    ordered = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    assert sorted(os.listdir(root / "val" / "n03")) == sorted(ordered[:2])
    assert sorted(os.listdir(root / "test" / "n03")) == sorted(ordered[2:4])
    assert sorted(os.listdir(root / "train" / "n03")) == sorted(ordered[4:])
    # xtune's labels: the same class has the same label and name in every split.
    labels = [xtune_labels(root, split) for split in SPLITS]
    assert {labels[1][n] for n in ordered[:2]} == {(2, "nematode")}
    assert {labels[0][n] for n in ordered[4:]} == {(2, "nematode")}
    assert sum(map(len, labels)) == 80 and len(set().union(*labels)) == 80  # each image once
    assert layout.inspect(root).status == "complete"


def test_resplit_is_the_same_whatever_the_archive_order(tmp_path: Path) -> None:
    layout = ClassFolders(SPLITS, 4, "classnames.txt", 20)
    _, first = prepare_mini(tmp_path / "a", mini_tar(DISJOINT, 20), layout)
    reordered = {"train": ["n04"], "val": ["n01", "n02"], "test": ["n03"]}
    _, second = prepare_mini(tmp_path / "b", mini_tar(reordered, 20), layout)
    for split in SPLITS:
        for wnid in ("n01", "n04"):
            assert sorted(os.listdir(first / split / wnid)) == sorted(
                os.listdir(second / split / wnid)
            )


def test_an_archive_with_the_same_classes_in_every_split_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = {split: ["n01", "n02"] for split in SPLITS}
    tar = mini_tar(same, 3)
    layout = ClassFolders(SPLITS, 2, "classnames.txt", 3)
    status, root = prepare_mini(tmp_path, tar, layout)
    # Kept as it is: the same file names are then in all three splits, which check names.
    assert sorted(os.listdir(root / "val" / "n01")) == [f"n01{i:08d}.jpg" for i in range(3)]
    assert status == 1
    assert "6 images in more than one split (first: n01/n0100000000.jpg)" in capsys.readouterr().err


def test_a_killed_resplit_leaves_nothing_and_the_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = ClassFolders(SPLITS, 4, "classnames.txt", 20)
    moves = []
    real_replace = os.replace

    def killed(source, target):
        moves.append(source)
        if len(moves) == 30:
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(xtune.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_mini(tmp_path, mini_tar(DISJOINT, 20), layout)
    root = tmp_path / "data" / "mini-imagenet"
    assert (
        not (root / "train").exists() and not (root / ".vlprep-placed-mini-imagenet.tar").exists()
    )
    monkeypatch.setattr(xtune.os, "replace", real_replace)
    status, root = prepare_mini(tmp_path, mini_tar(DISJOINT, 20), layout)
    assert status == 0
    assert sum(len(os.listdir(root / s / w)) for s in SPLITS for w in os.listdir(root / s)) == 80


def test_class_folder_rules_by_hand(tmp_path: Path) -> None:
    for split, wnid in (("train", "n01"), ("train", "n02"), ("val", "n01"), ("val", "n03")):
        (tmp_path / split / wnid).mkdir(parents=True)
        (tmp_path / split / wnid / f"{wnid}-{split}.jpg").touch()
    (tmp_path / "val" / "n01" / "n01-train.jpg").touch()  # also in train/
    (tmp_path / "classnames.txt").write_text("n01 house finch\nn02 robin\n")
    problems = xtune.class_folder_problems(tmp_path, ("train", "val"), 2, "classnames.txt", 1)
    assert problems == [
        "val/ and train/ hold different class folders (first: n02): xtune numbers each split's "
        "folders separately, so labels would disagree",
        "1 class folders not in classnames.txt (first: n03)",
        "1 images in more than one split (first: n01/n01-train.jpg)",
    ]


def test_classnames_read_as_xtune_reads_them() -> None:
    text = "n01532829 house finch\nn01558993 American robin \n"
    assert xtune.read_classnames(text) == {
        "n01532829": "house finch",
        "n01558993": "American robin",
    }


# ---- MSCOCO -----------------------------------------------------------------------------------

TRAIN_FILES = ("COCO_train2014_000000000009.jpg", "COCO_train2014_000000581921.jpg")
CAPTIONS = {
    # exactly the fields xtune reads, ids as numbers (9 has one digit)
    "fields": [{"image_id": 9, "caption": "A plate."}, {"image_id": 581921, "caption": "A cat."}],
    # COCO's own captions_train2014.json
    "coco": {
        "images": [
            {"id": 9, "file_name": TRAIN_FILES[0]},
            {"id": 581921, "file_name": TRAIN_FILES[1]},
        ],
        "annotations": [
            {"id": 1, "image_id": 9, "caption": "A plate."},
            {"id": 2, "image_id": 581921, "caption": "A cat."},
        ],
    },
    # BLIP's coco_karpathy_train.json: "coco_N" ids that are not COCO's; restval from val2014
    "blip": [
        {"image": f"train2014/{TRAIN_FILES[0]}", "caption": "A plate.", "image_id": "coco_0"},
        {"image": f"train2014/{TRAIN_FILES[1]}", "caption": "A cat.", "image_id": "coco_1"},
        {"image": "val2014/COCO_val2014_000000000042.jpg", "caption": "A dog.", "image_id": "c"},
    ],
}
XTUNE_FORM = [
    {"image_id": "000009", "caption": "A plate."},
    {"image_id": "581921", "caption": "A cat."},
]


@pytest.mark.parametrize("shape", CAPTIONS)
def test_captions_train_in_every_shape_becomes_xtunes_form(shape: str) -> None:
    records, changes = xtune.coco_train_records(CAPTIONS[shape])
    assert records == XTUNE_FORM
    assert changes
    assert [xtune.coco_train_path(r["image_id"]) for r in records] == [
        f"train2014/{name}" for name in TRAIN_FILES
    ]


def test_captions_train_rewrite_by_hand() -> None:
    assert xtune.coco_train_path(9) == "train2014/COCO_train2014_0000009.jpg"  # xtune, unpadded
    records, changes = xtune.coco_train_records(
        [{"image_id": "000123", "caption": ["one", "two"]}, {"image_id": "581921", "caption": "x"}]
    )
    assert records == [
        {"image_id": "000123", "caption": "one"},
        {"image_id": "000123", "caption": "two"},
        {"image_id": "581921", "caption": "x"},
    ]
    assert changes == {"caption lists split into one record per caption": 1}
    assert xtune.coco_train_records(XTUNE_FORM) == (XTUNE_FORM, {})
    with pytest.raises(UserError, match=r"\[0\]: no COCO image id \(image_id 'coco_3'"):
        xtune.coco_train_records([{"image_id": "coco_3", "caption": "x"}])
    with pytest.raises(UserError, match="COCO id 1234567 has over 6 digits"):
        xtune.coco_train_records([{"image_id": 1234567, "caption": "x"}])


def karpathy(split_images: list[str]) -> list[dict]:
    return [
        {"image": image, "caption": ["a", "b"], "image_id": i}
        for i, image in enumerate(split_images)
    ]


@pytest.mark.parametrize("shape", ["fields", "coco"])
def test_mscoco_prepared_as_xtune_opens_it(tmp_path: Path, shape: str) -> None:
    val_name = "COCO_val2014_000000391895.jpg"
    member = orjson.dumps(CAPTIONS[shape])
    jsons = {
        "data/mscoco2014/captions_train.json": member,
        "data/mscoco2014/coco_karpathy_val.json": orjson.dumps(karpathy([f"val2014/{val_name}"])),
        "data/mscoco2014/coco_karpathy_test.json": orjson.dumps(karpathy([val_name])),  # bare
    }
    files = {
        "train.zip": zip_bytes({f"train2014/{n}": JPEG for n in TRAIN_FILES}),
        "val.zip": zip_bytes({f"val2014/{val_name}": JPEG}),
        "json.zip": zip_bytes(jsons),
    }
    data = tmp_path / "data"
    names = {"train2014.zip": "train.zip", "val2014.zip": "val.zip", "dataset-json.zip": "json.zip"}
    with LocalServer(files) as server:
        assert prepare(DATASETS["mscoco2014"], data, no_checksums(server, "mscoco2014", names)) == 0
    root = data / "mscoco2014"
    train = orjson.loads((root / "captions_train.json").read_bytes())
    assert train == XTUNE_FORM
    for ann in train:  # ITC_Mscoco.read_train_data's path, replayed
        assert (root / f"train2014/COCO_train2014_000000{ann['image_id']}.jpg").is_file()
    test = orjson.loads((root / "coco_karpathy_test.json").read_bytes())
    assert [ann["image"] for ann in test] == [f"val2014/{val_name}"]
    original = data / "downloads" / "original" / "mscoco2014" / "captions_train.json"
    assert original.read_bytes() == member  # the download's own file, untouched
    assert (data / "downloads" / "dataset-json.zip").read_bytes() == files["json.zip"]
    assert check(data, "mscoco2014").returncode == 0


def test_check_counts_what_xtune_cannot_open(tmp_path: Path) -> None:
    root = tmp_path / "mscoco2014"
    (root / "train2014").mkdir(parents=True)
    (root / "val2014").mkdir()
    for name in TRAIN_FILES:
        (root / "train2014" / name).write_bytes(JPEG)
    (root / "captions_train.json").write_bytes(orjson.dumps(CAPTIONS["fields"]))  # unpadded
    (root / "val2014" / "COCO_val2014_000000000001.jpg").write_bytes(JPEG)
    for split in ("val", "test"):
        # a bare name: found by name elsewhere, never opened by xtune
        (root / f"coco_karpathy_{split}.json").write_bytes(
            orjson.dumps(karpathy(["COCO_val2014_000000000001.jpg"]))
        )
    result = check(tmp_path, "mscoco2014")
    assert result.returncode == 1
    text = result.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    assert "3of4imagesxtuneopensforthecaptionJSONsmissing" in text
    assert "(first:train2014/COCO_train2014_0000009.jpg)" in text


def test_captions_xtune_would_misread_are_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "mscoco2014"
    root.mkdir()
    (root / "captions_train.json").write_bytes(orjson.dumps([{"image_id": 9, "caption": ["a"]}]))
    (root / "coco_karpathy_val.json").write_bytes(
        orjson.dumps([{"image": "x.jpg", "caption": "a"}])
    )
    result = check(tmp_path, "mscoco2014")
    text = result.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    assert result.returncode == 1 and "corrupt" in text
    assert "captions_train.json:[0]:'caption':expectedastring" in text
    assert "coco_karpathy_val.json:[0]:'caption':expectedalist" in text


# ---- Flickr5k ---------------------------------------------------------------------------------


def test_flickr5k_bare_names_are_written_as_xtune_opens_them(tmp_path: Path) -> None:
    images = {f"flickr5k_images/{n}.jpg": JPEG for n in (1, 2)}
    train = [{"image": f"{n}.jpg", "caption": "a dog", "image_id": n} for n in (1, 2)]
    valtest = [{"image": "C:\\flickr\\1.jpg", "caption": ["a dog", "a cat"]}]
    jsons = {
        f"data/flickr5k/flickr5k_{s}.json": orjson.dumps(train if s == "train" else valtest)
        for s in SPLITS
    }
    files = {"images.zip": zip_bytes(images), "json.zip": zip_bytes(jsons)}
    data = tmp_path / "data"
    names = {"self-data.zip": "images.zip", "dataset-json.zip": "json.zip"}
    with LocalServer(files) as server:
        assert prepare(DATASETS["flickr5k"], data, no_checksums(server, "flickr5k", names)) == 0
    root = data / "flickr5k"
    for split in SPLITS:
        for ann in orjson.loads((root / f"flickr5k_{split}.json").read_bytes()):
            assert os.path.isfile(os.path.join(root, ann["image"]))  # ITC_Flickr5k's join
    assert orjson.loads((root / "flickr5k_train.json").read_bytes())[0] == {
        "image": "flickr5k-images/1.jpg",
        "caption": "a dog",
        "image_id": 1,
    }
    assert (data / "downloads" / "original" / "flickr5k" / "flickr5k_val.json").exists()
    assert check(data, "flickr5k").returncode == 0
    # A JSON naming a bare file placed by hand: found by name in flickr5k-images/, not by xtune.
    (root / "flickr5k_train.json").write_bytes(orjson.dumps(train))
    result = check(data, "flickr5k")
    assert result.returncode == 1
    assert "2 of 4 images the caption JSONs reference missing (first: 1.jpg)" in result.stdout


# ---- caches -----------------------------------------------------------------------------------


def test_caches_removed_when_redone_and_flagged_when_stale(tmp_path: Path) -> None:
    root = tmp_path / "data" / "flickr5k"
    images = {f"flickr5k-images/{n}.jpg": JPEG for n in (1, 2)}
    train = [{"image": f"flickr5k-images/{n}.jpg", "caption": "a", "image_id": n} for n in (1, 2)]
    valtest = [{"image": "flickr5k-images/1.jpg", "caption": ["a"]}]
    jsons = {
        f"data/flickr5k/flickr5k_{s}.json": orjson.dumps(train if s == "train" else valtest)
        for s in SPLITS
    }
    files = {"images.zip": zip_bytes(images), "json.zip": zip_bytes(jsons)}
    names = {"self-data.zip": "images.zip", "dataset-json.zip": "json.zip"}
    with LocalServer(files) as server:
        overrides = no_checksums(server, "flickr5k", names)
        assert prepare(DATASETS["flickr5k"], tmp_path / "data", overrides) == 0
        (root / "preprocessed.pkl").write_bytes(b"old")
        (root / "split_fewshot").mkdir()
        (root / "split_fewshot" / "shot_16-seed_1.pkl").write_bytes(b"old")
        assert check(tmp_path / "data", "flickr5k").returncode == 0  # made after the data
        old = (root / "flickr5k_train.json").stat().st_mtime - 60
        for cache in (root / "preprocessed.pkl", root / "split_fewshot" / "shot_16-seed_1.pkl"):
            os.utime(cache, (old, old))
        result = check(tmp_path / "data", "flickr5k")
        assert result.returncode == 1
        text = result.stdout.replace("\n", "").replace("│", "").replace(" ", "")
        assert "2xtunecachefilesolderthanthedata(first:preprocessed.pkl)" in text
        (root / ".vlprep-placed-dataset-json.zip").unlink()  # the JSONs are redone
        assert prepare(DATASETS["flickr5k"], tmp_path / "data", overrides) == 0
    assert not (root / "preprocessed.pkl").exists() and not (root / "split_fewshot").exists()
    assert check(tmp_path / "data", "flickr5k").returncode == 0


# ---- make preflight ---------------------------------------------------------------------------


def test_preflight_replays_xtunes_readers(tmp_path: Path) -> None:
    data = tmp_path / "DATA"
    coco = data / "mscoco2014"
    (coco / "train2014").mkdir(parents=True)
    (coco / "train2014" / TRAIN_FILES[1]).write_bytes(JPEG)
    (coco / "train2014" / TRAIN_FILES[0]).write_bytes(JPEG)
    (coco / "captions_train.json").write_bytes(orjson.dumps(CAPTIONS["fields"]))
    mini = data / "mini-imagenet"
    for split, wnid in (("train", "n01"), ("val", "n02"), ("test", "n02")):
        (mini / split / wnid).mkdir(parents=True)
        (mini / split / wnid / f"{split}.jpg").write_bytes(JPEG)
    (mini / "classnames.txt").write_text("n01 house finch\n")
    args = ("--out", str(tmp_path), "--data", str(data), "--sections", "clip")
    assert run_module("pyutils.catalog.preflight", *args).returncode == 1
    rows = [orjson.loads(line) for line in (tmp_path / "preflight.jsonl").read_bytes().splitlines()]
    problems = {(r["dataset"], r["image"]): r["problems"] for r in rows}
    assert problems[("mscoco2014", "train2014/COCO_train2014_0000009.jpg")] == [
        f"missing: train2014/COCO_train2014_0000009.jpg (xtune opens it under {coco})"
    ]
    assert problems[("mscoco2014", "train2014/COCO_train2014_000000581921.jpg")] == []
    assert [r["problems"] for r in rows if r["image"] == "mscoco2014"] == [
        [f"missing: {coco / 'coco_karpathy_val.json'}"],
        [f"missing: {coco / 'coco_karpathy_test.json'}"],
    ]
    mini_problems = [p for r in rows if r["dataset"] == "mini-imagenet" for p in r["problems"]]
    assert (
        f"invalid: {mini}: val/ and train/ hold different class folders (first: n01): xtune "
        "numbers each split's folders separately, so labels would disagree"
    ) in mini_problems
    assert f"invalid: {mini}: 1 class folders not in classnames.txt (first: n02)" in mini_problems
