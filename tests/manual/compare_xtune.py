"""Compare what `make <dataset>` leaves with what OPEA xtune's CLIP dataset classes read from it
(not in `make test`).

Needs a copy of xtune's dataset classes (GenAIComps, commit 77f48c49c,
comps/finetuning/src/integrations/xtune/clip_finetune/datasets/) and a checkout of Dassl.pytorch;
neither is committed here: this script copies xtune's files into its work folder at run time.

    XTUNE=comps/finetuning/src/integrations/xtune/clip_finetune/datasets
    git -C GenAIComps archive 77f48c49c "$XTUNE" | tar x
    .venv/bin/python tests/manual/compare_xtune.py \\
        --xtune "$XTUNE" --dassl Dassl.pytorch

1. Makes its own venv (--venv, default /tmp/vlprep-xtune-venv) with CPU torch (`pip install
   torch==2.13.0` takes the wheel on this machine's disk), pillow, numpy, yacs, gdown and tabulate.
   Dassl is imported from the checkout without `dassl.data.__init__`, whose DataManager needs
   torchvision (PyPI's does not load beside that torch): the dataset classes and Dassl's `Datum`
   and `DatasetBase` are where the paths, labels and class names are decided; DataManager only
   wraps them in transforms and loaders.
2. Serves archives shaped like the real ones from the project's local HTTP server and runs
   `make <dataset>` with `<NAME>_URL` overrides, then `make check`: mini-ImageNet as the MTL page
   publishes it (64/16/20 disjoint classes, 600 images each), MSCOCO with captions_train.json in
   three shapes (exactly xtune's fields with numeric ids below 100000; COCO's own {images,
   annotations}; BLIP's Karpathy list with "coco_N" ids and a val2014 image), Flickr30k (the Kaggle
   copy's nested folders, the seed's .json.json names), Flickr5k (bare image names), Caltech101.
3. In the venv, constructs MiniImageNet, ITC_Mscoco, ITC_Flickr, ITC_Flickr5k and Caltech101 on
   each folder (every Datum asserts its file exists) and compares the image paths, labels and
   class names with the truth the archives were made from; also runs MiniImageNet on the archive
   as published, to show the labels that the re-split repairs. Then checks that `make check` is
   still complete beside xtune's fresh caches, and that redoing a dataset removes them.
Prints one line per comparison; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
PACKAGES = ["torch==2.13.0", "pillow", "numpy", "pandas", "yacs", "gdown", "tabulate"]
COCO_TRAIN = {9: "A plate of food.", 25: "A giraffe.", 30: "Two vases.", 99999: "A bus."}
COCO_TRAIN |= {100000: "A kite.", 581921: "A cat on a bed."}
COCO_VAL = (42, 391895)
FLICKR = ("1000092795", "10002456", "1001465944")
CALTECH = {"Faces": "face", "airplanes": "airplane", "accordion": "accordion"}


# ---- the archives, shaped like the real ones --------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    from tests.test_check import zip_bytes  # the project's venv: this runs outside xtune's

    return zip_bytes(members)


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def mini_imagenet() -> tuple[dict[str, bytes], dict]:
    """mini-imagenet/{train,val,test}/<wnid>/<wnid><8 digits>.jpg: 64, 16, 20 classes x 600."""
    wnids = [f"n{index:08d}" for index in range(100)]
    names = {wnid: f"class {index} name" for index, wnid in enumerate(wnids)}
    names[wnids[0]] = "house finch"
    splits = {"train": wnids[:64], "val": wnids[64:80], "test": wnids[80:]}
    members = {
        f"mini-imagenet/{split}/{wnid}/{wnid}{i:08d}.jpg": JPEG
        for split, found in splits.items()
        for wnid in found
        for i in range(600)
    }
    classnames = "".join(f"{wnid} {name}\n" for wnid, name in names.items()).encode()
    files = {"mini-imagenet.tar": tar_bytes(members), "classnames.txt": classnames}
    truth = {"classname": {f"{w}{i:08d}.jpg": names[w] for w in wnids for i in range(600)}}
    return files, truth | {"published": splits}


def coco_train_file(coco_id: int) -> str:
    return f"train2014/COCO_train2014_{coco_id:012d}.jpg"


def coco_val_file(coco_id: int) -> str:
    return f"val2014/COCO_val2014_{coco_id:012d}.jpg"


def mscoco(shape: str) -> tuple[dict[str, bytes], dict]:
    if shape == "fields":  # exactly what read_train_data reads, ids as numbers
        train = [{"image_id": i, "caption": c} for i, c in COCO_TRAIN.items()]
    elif shape == "coco":  # COCO's own captions_train2014.json
        train = {
            "images": [{"id": i, "file_name": coco_train_file(i)[10:]} for i in COCO_TRAIN],
            "annotations": [
                {"id": n, "image_id": i, "caption": c}
                for n, (i, c) in enumerate(COCO_TRAIN.items())
            ],
        }
    else:  # BLIP's coco_karpathy_train.json: "coco_N" ids, and restval images from val2014
        train = [
            {"image": coco_train_file(i), "caption": c, "image_id": f"coco_{n}"}
            for n, (i, c) in enumerate(COCO_TRAIN.items())
        ]
        train.append({"image": coco_val_file(42), "caption": "A dog.", "image_id": "coco_99"})
    karpathy = [{"image": coco_val_file(i), "caption": ["a", "b"]} for i in COCO_VAL]
    jsons = {
        "data/mscoco2014/captions_train.json": json.dumps(train).encode(),
        "data/mscoco2014/coco_karpathy_val.json": json.dumps(karpathy).encode(),
        "data/mscoco2014/coco_karpathy_test.json": json.dumps(karpathy[::-1]).encode(),
    }
    files = {
        "train2014.zip": zip_bytes({coco_train_file(i): JPEG for i in COCO_TRAIN}),
        "val2014.zip": zip_bytes({coco_val_file(i): JPEG for i in COCO_VAL}),
        "dataset-json.zip": zip_bytes(jsons),
    }
    truth = {
        "train": [[coco_train_file(i), c] for i, c in COCO_TRAIN.items()],
        "val": [coco_val_file(i) for i in COCO_VAL],
        "test": [coco_val_file(i) for i in COCO_VAL[::-1]],
    }
    return files, truth


def flickr(name: str) -> tuple[dict[str, bytes], dict]:
    """Flickr30k: the Kaggle copy's nested folders, BLIP's paths, the seed's .json.json names;
    Flickr5k: flat images and bare names in the JSONs."""
    if name == "flickr":
        images, folder, prefix, suffix = (
            "flickr30k_images/flickr30k_images",
            "flickr30k-images",
            "flickr30k",
            ".json.json",
        )
        archive = "flickr30k.zip"
    else:
        images, folder, prefix, suffix = "flickr5k_images", "flickr5k-images", "flickr5k", ".json"
        archive = "self-data.zip"
    written = f"{folder}/" if name == "flickr" else ""
    train = [{"image": f"{written}{n}.jpg", "caption": "A dog.", "image_id": n} for n in FLICKR]
    valtest = [{"image": f"{written}{n}.jpg", "caption": ["A dog.", "A cat."]} for n in FLICKR]
    jsons = {
        f"data/{name}/{prefix}_{split}{suffix}": json.dumps(
            train if split == "train" else valtest
        ).encode()
        for split in ("train", "val", "test")
    }
    files = {
        archive: zip_bytes({f"{images}/{n}.jpg": JPEG for n in FLICKR}),
        "dataset-json.zip": zip_bytes(jsons),
    }
    expected = [f"{folder}/{n}.jpg" for n in FLICKR]
    return files, {"train": expected, "val": expected, "test": expected}


def caltech() -> tuple[dict[str, bytes], dict]:
    rows = [
        [f"{folder}/image_{i:04d}.jpg", label, name]
        for label, (folder, name) in enumerate(CALTECH.items())
        for i in (1, 2, 3)
    ]
    split = {"train": rows[::3], "val": rows[1::3], "test": rows[2::3]}
    members = {f"101_ObjectCategories/{row[0]}": JPEG for row in rows}
    files = {
        "101_ObjectCategories.tar.gz": tar_bytes(members, "w:gz"),
        "split_zhou_Caltech101.json": json.dumps(split).encode(),
    }
    return files, split


# ---- building them with make ------------------------------------------------------------------


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True
    )


def build(name: str, data: Path, files: dict[str, bytes], server) -> tuple[list[str], list[str]]:
    """`make <name>` with every part served by `server`; the problems found, the overrides."""
    from pyutils.catalog.datasets import DATASETS

    prefix = f"{name}-{data.name}"
    overrides = []
    for part in DATASETS[name].parts:
        server.files[f"{prefix}/{part.file}"] = files[part.file]
        overrides += [
            f"{part.var}_URL={server.url(f'{prefix}/{part.file}')}",
            f"{part.var}_SHA256=none",
        ]
    made = make(name, f"DATA={data}", *overrides)
    problems = (
        []
        if made.returncode == 0
        else [f"make {name}: exit {made.returncode}: {made.stderr[-800:]}"]
    )
    checked = make("check", f"DATA={data}", f"DATASETS={name}")
    if checked.returncode != 0:
        problems.append(f"make check {name}: exit {checked.returncode}: {checked.stdout[-800:]}")
    notes = [line for line in made.stderr.splitlines() if "rewritten" in line or "re-split" in line]
    for note in notes:
        print(f"  vlprep: {note[:300]}")
    return problems, overrides


def outside(args: argparse.Namespace) -> int:
    from pyutils.devtools.local_server import LocalServer

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "xtune_datasets").mkdir(parents=True)
    for source in args.xtune.glob("*.py"):  # copied at run time, never committed
        shutil.copyfile(source, work / "xtune_datasets" / source.name)
    python = venv(args.venv)
    cases, problems = [], []
    mini_files, mini_truth = mini_imagenet()
    overrides: list[str] = []
    with LocalServer({}) as server:
        plan = [
            ("mini-imagenet", "mini", mini_files, mini_truth),
            ("caltech101", "caltech", *caltech()),
        ]
        plan += [
            ("mscoco2014", f"coco-{shape}", *mscoco(shape)) for shape in ("fields", "coco", "blip")
        ]
        plan += [(name, name, *flickr(name)) for name in ("flickr", "flickr5k")]
        for name, folder, files, truth in plan:
            data = work / folder
            print(f"make {name} DATA={data}")
            found, overrides = build(name, data, files, server)
            problems += found
            cases.append({"dataset": name, "root": str(data), "truth": truth})
        published = work / "published" / "mini-imagenet"
        with tarfile.open(fileobj=io.BytesIO(mini_files["mini-imagenet.tar"])) as archive:
            archive.extractall(work / "published", filter="data")
        (published / "classnames.txt").write_bytes(mini_files["classnames.txt"])
        cases.append(
            {
                "dataset": "mini-imagenet (as published)",
                "root": str(published.parent),
                "truth": mini_truth,
            }
        )
        # A control: the download's own captions_train.json (ids as numbers), which xtune must
        # fail on, or this comparison could not tell a rewrite from none.
        control = work / "control" / "mscoco2014"
        control.mkdir(parents=True)
        built = work / "coco-fields" / "mscoco2014"
        for name in ("train2014", "val2014", "coco_karpathy_val.json", "coco_karpathy_test.json"):
            (control / name).symlink_to(built / name)
        original = work / "coco-fields" / "downloads" / "original" / "mscoco2014"
        shutil.copyfile(original / "captions_train.json", control / "captions_train.json")
        control_case = {"dataset": "mscoco2014 (the download, not rewritten)"}
        cases.append(control_case | {"root": str(control.parent)})
        (work / "cases.json").write_text(json.dumps(cases))
        inside = subprocess.run(
            [python, __file__, "--inside", str(work), "--dassl", str(args.dassl.resolve())]
        )
        problems += [] if inside.returncode == 0 else [f"xtune's classes: exit {inside.returncode}"]
        # xtune has written its caches: complete beside them, and removed when vlprep redoes one.
        for name, folder, *_ in plan:
            checked = make("check", f"DATA={work / folder}", f"DATASETS={name}")
            if checked.returncode != 0:
                problems.append(f"make check {name} beside xtune's caches: {checked.stdout[-500:]}")
        coco = work / "flickr5k" / "flickr5k"  # the last built: `overrides` are its own
        for stamp in (".vlprep-placed-dataset-json.zip", ".vlprep-complete"):  # check's fix
            (coco / stamp).unlink()
        redo = make("flickr5k", f"DATA={coco.parent}", *overrides)
        removed = (
            not (coco / "preprocessed.pkl").exists() and "removed xtune's caches" in redo.stderr
        )
        print(
            f"{'ok' if removed else 'DIFFERENT'}: redoing flickr5k's JSONs removes xtune's caches"
        )
        problems += [] if removed else [f"caches not removed: {redo.stderr[-500:]}"]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


def venv(folder: Path) -> str:
    python = folder / "bin" / "python"
    stamp = folder / ".vlprep-compare-xtune"
    wanted = " ".join(PACKAGES) + "\n"
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
        stamp.write_text(wanted)
    return str(python)


# ---- inside the venv: xtune's own classes -----------------------------------------------------


def import_xtune(work: Path, dassl: Path):
    """xtune's dataset package, on Dassl without dassl.data.__init__ (DataManager: torchvision)
    and with a stand-in for the `wilds` package (its WILDS datasets need torchvision too), which
    Dassl's dataset registry imports and none of xtune's CLIP classes use."""
    import importlib
    import types

    sys.path[:0] = [str(dassl), str(work)]
    package = types.ModuleType("dassl.data")
    package.__path__ = [str(dassl / "dassl" / "data")]
    sys.modules["dassl.data"] = package
    sys.modules.setdefault("wilds", types.ModuleType("wilds")).get_dataset = None
    importlib.import_module("dassl")
    return {
        name: importlib.import_module(f"xtune_datasets.{module}")
        for name, module in (
            ("mini-imagenet", "mini_imagenet"),
            ("mscoco2014", "mscoco"),
            ("flickr", "flickr"),
            ("flickr5k", "flickr5k"),
            ("caltech101", "caltech101"),
        )
    }


def config(root: str):
    from yacs.config import CfgNode

    cfg = CfgNode()
    cfg.DATASET = CfgNode({"ROOT": root, "NUM_SHOTS": 0, "SUBSAMPLE_CLASSES": "all"})
    cfg.SEED = 1
    return cfg


def compare(what: str, got, expected) -> bool:
    same = got == expected
    print(
        f"{'ok' if same else 'DIFFERENT'}: {what}"
        + ("" if same else f": {str(got)[:300]} != {str(expected)[:300]}")
    )
    return same


def run_mini(module, case) -> bool:
    dataset = module.MiniImageNet(config(case["root"]))
    splits = {"train": dataset.train_x, "val": dataset.val, "test": dataset.test}
    ok = True
    truth = case["truth"]["classname"]
    label_names: dict[int, set[str]] = {}
    for split, items in splits.items():
        for item in items:
            label_names.setdefault(item.label, set()).add(truth[os.path.basename(item.impath)])
        wrong = sum(item.classname != truth[os.path.basename(item.impath)] for item in items)
        ok &= compare(f"{case['dataset']} {split}: class names of {len(items)} images", wrong, 0)
    mixed = sorted(label for label, names in label_names.items() if len(names) > 1)
    if "published" in case["dataset"]:
        # The disjoint splits as published: a label names another class in each split.
        print(
            f"ok (the misread expected): {case['dataset']}: {len(mixed)} of "
            f"{len(label_names)} labels name a different class in each split"
        )
        return bool(mixed)
    ok &= compare(f"{case['dataset']}: labels naming one class in every split", mixed, [])
    ok &= compare(f"{case['dataset']}: classes", dataset.num_classes, 100)
    paths = [item.impath for items in splits.values() for item in items]
    ok &= compare(
        f"{case['dataset']}: images, each in one split",
        (len(paths), len(set(paths))),
        (60000, 60000),
    )
    return ok


def run_captions(module, case) -> bool:
    name = case["dataset"].split(" ")[0]
    classes = {"mscoco2014": "ITC_Mscoco", "flickr": "ITC_Flickr", "flickr5k": "ITC_Flickr5k"}
    cls = classes[name]
    dataset = getattr(module, cls)(config(case["root"]))
    root = Path(case["root"]) / name  # each one's folder is its make target
    truth = case["truth"]
    rel = lambda item: os.path.relpath(item.impath, root)  # noqa: E731
    ok = True
    if case["dataset"] == "mscoco2014":
        got = [[rel(item), item.classname] for item in dataset.train_x]
        expected = [[path, module.pre_caption(caption, 50)] for path, caption in truth["train"]]
        ok &= compare(
            f"mscoco2014 ({Path(case['root']).name}) train: paths and captions", got, expected
        )
    else:
        ok &= compare(
            f"{case['dataset']} train: paths", [rel(i) for i in dataset.train_x], truth["train"]
        )
    for split, items in (("val", dataset.val), ("test", dataset.test)):
        ok &= compare(
            f"{case['dataset']} ({Path(case['root']).name}) {split}: paths",
            [rel(i) for i in items],
            truth[split],
        )
    return ok


def run_caltech(module, case) -> bool:
    dataset = module.Caltech101(config(case["root"]))
    ok = True
    for split, items in (("train", dataset.train_x), ("val", dataset.val), ("test", dataset.test)):
        got = [
            [
                os.path.relpath(
                    i.impath, Path(case["root"]) / "caltech-101" / "101_ObjectCategories"
                ),
                i.label,
                i.classname,
            ]
            for i in items
        ]
        ok &= compare(f"caltech101 {split}: paths, labels, class names", got, case["truth"][split])
    return ok


def inside(work: Path, dassl: Path) -> int:
    modules = import_xtune(work, dassl)
    ok = True
    for case in json.loads((work / "cases.json").read_text()):
        name = case["dataset"].split(" ")[0]
        run = {"mini-imagenet": run_mini, "caltech101": run_caltech}.get(name, run_captions)
        control = "truth" not in case
        try:
            ok &= run(modules[name], case) and not control
        except Exception as exc:  # xtune crashed: the point of the comparison
            # The control must stop where vlprep's check says: Dassl's Datum, on a missing file.
            expected = control and isinstance(exc, AssertionError)
            ok &= expected
            verdict = "ok (the crash expected)" if expected else "DIFFERENT"
            print(f"{verdict}: {case['dataset']} in {case['root']}: xtune raised {exc!r}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--xtune", type=Path, help="xtune's clip_finetune/datasets folder (77f48c49c)"
    )
    parser.add_argument("--dassl", type=Path, required=True, help="a Dassl.pytorch checkout")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/vlprep-xtune-venv"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/vlprep-compare-xtune"))
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args.inside, args.dassl)
    if args.xtune is None or not (args.xtune / "mini_imagenet.py").is_file():
        parser.error(
            "--xtune: the folder holding xtune's mini_imagenet.py, mscoco.py, flickr.py ..."
        )
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
