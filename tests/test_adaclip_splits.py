"""AdaCLIP split generation: byte identity with the paper's files, each rule, bad input, kills."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.table import Table

from pyutils.adaclip.splits import VideoFolder, generate, read_csv_columns
from pyutils.adaclip.verify import PAPER_CHECKSUMS, paper_checksums, verify
from pyutils.core.errors import UserError
from pyutils.devtools.demo import adaclip_splits
from pyutils.devtools.sample import build_demo_sample
from tests.conftest import REPO


def run_script(dataset: str, videos: Path, annots: Path, out: Path, cwd: Path):
    """Run `python annot_preprocess/<dataset>_preprocess.py` as a user would (no PYTHONPATH)."""
    script = REPO / "annot_preprocess" / f"{dataset}_preprocess.py"
    args = ["--video_dir", str(videos), "--annot_dir", str(annots), "--output_folder", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_msrvtt(folder: Path, videos: list[tuple[str, float, float]], captions, train, val):
    """MSRVTT_data.json and the two CSVs in CLIP4Clip's shape."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "info": {"year": 2016},
        "videos": [
            {"category": 9, "video_id": v, "start time": s, "end time": e, "split": "train"}
            for v, s, e in videos
        ],
        "sentences": [
            {"caption": c, "video_id": v, "sen_id": i} for i, (v, c) in enumerate(captions)
        ],
    }
    (folder / "MSRVTT_data.json").write_text(json.dumps(data))
    write_csv(folder / "MSRVTT_train.9k.csv", ["video_id"], [[v] for v in train])
    rows = [[f"ret{i}", f"msr{i}", v, s] for i, (v, s) in enumerate(val)]
    write_csv(folder / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"], rows)


# ---- golden: the paper's own files ------------------------------------------------------------


def test_didemo_test_split_is_the_papers_byte_for_byte(real_fixtures: Path, tmp_path: Path):
    annotations = json.loads((real_fixtures / "didemo" / "test_data.json").read_text())
    touch(tmp_path / "videos", *{f"{a['video']}.mp4" for a in annotations})
    result = run_script(
        "didemo", tmp_path / "videos", real_fixtures / "didemo", tmp_path / "out", tmp_path
    )
    assert result.returncode == 0, result.stderr
    golden = real_fixtures / "adaclip-paper" / "didemo_test.json"
    assert (tmp_path / "out" / "test.json").read_bytes() == golden.read_bytes()
    assert "skipping split 'train': train_data.json, train_list.txt" in result.stderr
    assert not (tmp_path / "out" / "missing_test.txt").exists()


def test_activitynet_val_is_the_papers_byte_for_byte(real_fixtures: Path, tmp_path: Path):
    golden = real_fixtures / "adaclip-paper" / "activitynet_val.head300.json"
    expected = json.loads(golden.read_text())
    assert {e["extension"] for e in expected.values()} == {"mp4", "mkv"}
    touch(tmp_path / "videos", *(f"{v}.{e['extension']}" for v, e in expected.items()))
    captions = tmp_path / "captions"
    captions.mkdir()
    shutil.copy(
        real_fixtures / "activitynet-captions" / "val_1.head300.json", captions / "val_1.json"
    )
    result = run_script("activitynet", tmp_path / "videos", captions, tmp_path / "out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "val.json").read_bytes() == golden.read_bytes()
    assert not (tmp_path / "out" / "val_1.json").exists()


def test_real_msrvtt_csvs_parse(real_fixtures: Path):
    test = read_csv_columns(
        real_fixtures / "msrvtt" / "MSRVTT_JSFUSION_test.csv", "video_id", "sentence"
    )
    train = read_csv_columns(real_fixtures / "msrvtt" / "MSRVTT_train.9k.csv", "video_id")
    assert len(test) == 1000 and len(train) == 9000
    assert test[0] == ("video9770", "a person is connecting something to system")


# ---- the rules, on small hand-written inputs --------------------------------------------------


def test_msrvtt_train_and_val(tmp_path: Path):
    videos = [("video0", 1.5, 10.0), ("video1", 0, 12), ("video2", 3.25, 9.0), ("video3", 0, 5)]
    videos += [("video4", 2, 4), ("video5", 0, 1)]
    captions = [("video2", "c2a"), ("video0", "c0a"), ("video1", "not for val"), ("video0", "c0b")]
    captions += [("video3", "c3a"), ("video2", "c2b")]
    train = ["video2", "video0", "video3", "video9"]  # video3 has no file, video9 no record
    val = [("video4", "a dog runs"), ("video1", "a man sings"), ("video4", "second row")]
    write_msrvtt(tmp_path / "annot", videos, captions, train, val)
    touch(tmp_path / "v", "video0.mp4", "video1.webm", "video2.mkv", "video4.avi", "video5.mp4")
    generate("msrvtt", tmp_path / "annot", tmp_path / "v", tmp_path / "out")
    expected_train = {
        "video0": {"extension": "mp4", "timestamps": [[1.5, 10.0]], "sentences": ["c0a", "c0b"]},
        "video2": {"extension": "mkv", "timestamps": [[3.25, 9.0]], "sentences": ["c2a", "c2b"]},
    }
    # Val: order of videos[], the first JSFUSION sentence once per CSV row (the reference's rule).
    expected_val = {
        "video1": {"extension": "webm", "timestamps": [[0, 12]], "sentences": ["a man sings"]},
        "video4": {
            "extension": "avi",
            "timestamps": [[2, 4]],
            "sentences": ["a dog runs", "a dog runs"],
        },
    }
    assert (tmp_path / "out" / "train.json").read_text() == json.dumps(expected_train)
    assert (tmp_path / "out" / "val.json").read_text() == json.dumps(expected_val)
    assert (tmp_path / "out" / "missing_train.txt").read_text() == "video3\n"
    assert not (tmp_path / "out" / "missing_val.txt").exists()


def test_didemo_rules(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    records = [
        {"video": "a@N00_1_x.m4v", "description": "a man walks"},
        {"video": "b@N00_2_y.", "description": "ends in a dot."},
        {"video": "unlisted.mov", "description": "not in the CE list"},
        {"video": "a@N00_1_x.m4v", "description": "  keeps its spaces  "},
        {"video": "gone.mp4", "description": "no file"},
        {"video": "gone.mp4", "description": "still no file"},
    ]
    (annot / "val_data.json").write_text(json.dumps(records))
    (annot / "val_list.txt").write_text("b@N00_2_y.\na@N00_1_x.m4v\ngone.mp4\n")
    touch(tmp_path / "v", "a@N00_1_x.m4v.mp4", "b@N00_2_y..webm", "unlisted.mov.mp4")
    generate("didemo", annot, tmp_path / "v", tmp_path / "out")
    expected = {
        "a@N00_1_x.m4v": {
            "extension": "mp4",
            "sentences": ["a man walks.", "  keeps its spaces  ."],
        },
        "b@N00_2_y.": {"extension": "webm", "sentences": ["ends in a dot."]},
    }
    assert (tmp_path / "out" / "val.json").read_text() == json.dumps(expected)
    assert (tmp_path / "out" / "missing_val.txt").read_text() == "gone.mp4\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["missing_val.txt", "val.json"]


def test_activitynet_rules(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    train = {
        "v_b": {"duration": 10, "timestamps": [[0, 5.5]], "sentences": [" Leading space kept"]},
        "v_a": {"sentences": ["x"], "timestamps": [[1, 2]], "duration": 2.5, "extra": 1},
        "v_gone": {"duration": 1, "timestamps": [[0, 1]], "sentences": ["y"]},
    }
    (annot / "train.json").write_text(json.dumps(train))
    (annot / "val_1.json").write_text(json.dumps({"v_a": train["v_a"]}))
    (annot / "val_2.json").write_text("not read")
    touch(tmp_path / "v", "v_a.webm", "v_b.mp4")
    generate("activitynet", annot, tmp_path / "v", tmp_path / "out")
    out = tmp_path / "out"
    expected_a = {"extension": "webm", "sentences": ["x"], "timestamps": [[1, 2]], "duration": 2.5}
    expected_b = {
        "extension": "mp4",
        "sentences": [" Leading space kept"],
        "timestamps": [[0, 5.5]],
        "duration": 10,
    }
    assert (out / "train.json").read_text() == json.dumps({"v_b": expected_b, "v_a": expected_a})
    assert (out / "val.json").read_text() == json.dumps({"v_a": expected_a})
    assert (out / "missing_train.txt").read_text() == "v_gone\n"


def test_extension_precedence_and_what_counts_as_present(tmp_path: Path):
    folder = tmp_path / "v"
    touch(folder, "both.mkv", "both.mp4", "late.avi", "late.webm", "mov.mov", "upper.MP4")
    (folder / "dir.mp4").mkdir()
    (folder / "linked.mkv").symlink_to(folder / "both.mkv")
    (folder / "broken.mp4").symlink_to(folder / "nothing")
    (folder / "sub").mkdir()
    touch(folder / "sub", "nested.mp4")
    videos = VideoFolder(folder)
    found = {v: videos.extension(v) for v in ("both", "late", "mov", "upper", "dir", "linked")}
    found |= {v: videos.extension(v) for v in ("broken", "nested", "sub/nested")}
    assert found == {
        "both": "mp4",
        "late": "webm",
        "mov": "",
        "upper": "",
        "dir": "",
        "linked": "mkv",
        "broken": "",
        "nested": "",
        "sub/nested": "mp4",
    }


def test_awkward_names_and_unicode_are_just_names(tmp_path: Path):
    names = ["video 'odd' $(touch pwned)", 'quote"d', "caf\u00e9 \u65e5\u672c", "semi;colon"]
    annot = tmp_path / "annot"
    annot.mkdir()
    captions = {
        n: {"duration": 1, "timestamps": [[0, 1]], "sentences": [f"\u00e9 {n}"]} for n in names
    }
    (annot / "val_1.json").write_text(json.dumps(captions, ensure_ascii=False), encoding="utf-8")
    touch(tmp_path / "v", *(f"{n}.mp4" for n in names))
    result = run_script("activitynet", tmp_path / "v", annot, tmp_path / "out $(x)", tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out $(x)" / "val.json").read_text(encoding="ascii")
    assert list(json.loads(text)) == names
    assert "\\u00e9" in text
    assert not (tmp_path / "pwned").exists()


def test_stale_missing_list_removed_once_videos_arrive(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "val_1.json").write_text(
        json.dumps({"v_a": {"duration": 1, "timestamps": [], "sentences": []}})
    )
    (tmp_path / "v").mkdir()
    generate("activitynet", annot, tmp_path / "v", tmp_path / "out")
    assert (tmp_path / "out" / "val.json").read_text() == "{}"
    assert (tmp_path / "out" / "missing_val.txt").read_text() == "v_a\n"
    touch(tmp_path / "v", "v_a.mkv")
    generate("activitynet", annot, tmp_path / "v", tmp_path / "out")
    assert json.loads((tmp_path / "out" / "val.json").read_text())["v_a"]["extension"] == "mkv"
    assert not (tmp_path / "out" / "missing_val.txt").exists()


# ---- the reference's semantics, as an oracle on random inputs ---------------------------------


def reference_msrvtt(data, train_ids, val_rows, extension_of):
    """The reference's loops, kept as plain as it wrote them (lists, first-match look-ups)."""
    train_vids, val_vids = list(train_ids), [v for v, _ in val_rows]
    train, val = {}, {}
    for record in data["videos"]:
        vid = record["video_id"]
        entry = {
            "extension": extension_of(vid),
            "timestamps": [[record["start time"], record["end time"]]],
            "sentences": [],
        }
        if vid in train_vids:
            train[vid] = entry
        elif vid in val_vids:
            val[vid] = entry
    for record in data["sentences"]:
        if record["video_id"] in train_vids:
            train[record["video_id"]]["sentences"].append(record["caption"])
    for vid in val_vids:
        val[vid]["sentences"].append(next(s for v, s in val_rows if v == vid))
    return train, val


ids = st.sampled_from([f"video{i}" for i in range(8)])


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations([f"video{i}" for i in range(8)]),
    captions=st.lists(st.tuples(ids, st.text(max_size=6)), max_size=20),
    train=st.sets(ids),
    val=st.lists(st.tuples(ids, st.text(max_size=6)), max_size=6),
    extensions=st.lists(st.sampled_from(["mp4", "mkv", "webm", "avi"]), min_size=8, max_size=8),
)
def test_msrvtt_matches_the_reference_semantics(
    tmp_path_factory, order, captions, train, val, extensions
):
    val = [
        (v, s) for v, s in val if v not in train
    ]  # the lists are disjoint (the reference crashes)
    tmp = tmp_path_factory.mktemp("msrvtt")
    videos = [(v, i * 0.5, i + 10.25) for i, v in enumerate(order)]
    write_msrvtt(tmp / "annot", videos, captions, sorted(train), val)
    extension_of = dict(zip(order, extensions, strict=True))
    touch(tmp / "v", *(f"{v}.{e}" for v, e in extension_of.items()))
    generate("msrvtt", tmp / "annot", tmp / "v", tmp / "out")
    data = json.loads((tmp / "annot" / "MSRVTT_data.json").read_text())
    expected_train, expected_val = reference_msrvtt(data, train, val, extension_of.get)
    assert (tmp / "out" / "train.json").read_text() == json.dumps(expected_train)
    assert (tmp / "out" / "val.json").read_text() == json.dumps(expected_val)


# ---- bad input: one line, exit 2, where it broke -----------------------------------------------


def _error_of(dataset: str, tmp_path: Path, annot: Path) -> str:
    (tmp_path / "v").mkdir(exist_ok=True)
    result = run_script(dataset, tmp_path / "v", annot, tmp_path / "out", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vlprep: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_malformed_json_names_file_line_and_column(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "train.json").write_text('{"v_a": {"duration": 1,\n  "sentences": [}}')
    error = _error_of("activitynet", tmp_path, annot)
    assert f"{annot / 'train.json'}:2:" in error and "malformed JSON" in error


def test_missing_key_names_the_record(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "test_data.json").write_text(
        json.dumps([{"video": "a", "description": "x"}, {"video": "b"}])
    )
    (annot / "test_list.txt").write_text("a\nb\n")
    error = _error_of("didemo", tmp_path, annot)
    assert "test_data.json: [1]: missing key 'description'" in error


def test_wrong_top_level_type(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "val_1.json").write_text("[1, 2]")
    assert "val_1.json: expected a JSON dict, found list" in _error_of(
        "activitynet", tmp_path, annot
    )


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        (
            "key,vid_key,video_id,sentence\nret0,msr0,video0,a,b\n",
            "MSRVTT_JSFUSION_test.csv:2: expected 4 fields",
        ),
        ("key,vid_key,video,sentence\n", "MSRVTT_JSFUSION_test.csv:1: missing column 'video_id'"),
        ('key,vid_key,video_id,sentence\nret0,msr0,video0,"a\n', "malformed CSV"),
        ("", "MSRVTT_JSFUSION_test.csv: empty file"),
    ],
)
def test_malformed_csv(tmp_path: Path, csv_text: str, message: str):
    write_msrvtt(tmp_path / "annot", [("video0", 0, 1)], [], ["video0"], [])
    (tmp_path / "annot" / "MSRVTT_JSFUSION_test.csv").write_text(csv_text)
    assert message in _error_of("msrvtt", tmp_path, tmp_path / "annot")


def test_no_split_present_is_an_error_and_absent_ones_are_named(tmp_path: Path):
    (tmp_path / "annot").mkdir()
    error = _error_of("didemo", tmp_path, tmp_path / "annot")
    assert "no didemo annotation files found" in error and "test_list.txt" in error
    write_msrvtt(tmp_path / "annot", [("video0", 0, 1)], [("video0", "c")], ["video0"], [])
    (tmp_path / "annot" / "MSRVTT_JSFUSION_test.csv").unlink()
    touch(tmp_path / "v", "video0.mp4")
    result = run_script("msrvtt", tmp_path / "v", tmp_path / "annot", tmp_path / "out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipping split 'val': MSRVTT_JSFUSION_test.csv not in" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["train.json"]


def test_missing_folders_are_one_line_errors(tmp_path: Path):
    assert "annotation folder not found" in _error_of("activitynet", tmp_path, tmp_path / "nope")
    annot = tmp_path / "annot"
    annot.mkdir()
    (annot / "val_1.json").write_text("{}")
    result = run_script("activitynet", tmp_path / "novideos", annot, tmp_path / "out", tmp_path)
    assert result.returncode == 2 and "video folder not found" in result.stderr


# ---- atomic writes: a kill at the worst moment, then a rerun -----------------------------------

KILL_BEFORE_RENAME = """
import os, runpy, signal, sys
real_replace = os.replace
def replace_then_die(src, dst, *args, **kwargs):
    if str(dst).endswith("val.json"):
        os.kill(os.getpid(), signal.SIGKILL)  # the temporary is complete, the rename never happens
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_kill_mid_run_leaves_only_temporaries_and_a_rerun_completes(tmp_path: Path):
    annot = tmp_path / "annot"
    annot.mkdir()
    record = {"duration": 1, "timestamps": [[0, 1]], "sentences": ["s"]}
    (annot / "train.json").write_text(json.dumps({"v_a": record}))
    (annot / "val_1.json").write_text(json.dumps({"v_a": record}))
    touch(tmp_path / "v", "v_a.mp4")
    out = tmp_path / "out"
    script = REPO / "annot_preprocess" / "activitynet_preprocess.py"
    args = [
        "--video_dir",
        str(tmp_path / "v"),
        "--annot_dir",
        str(annot),
        "--output_folder",
        str(out),
    ]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_RENAME, str(script), *args], capture_output=True
    )
    assert killed.returncode == -9
    assert (out / "train.json").is_file() and not (out / "val.json").exists()
    assert any(".vlprep-tmp" in p.name for p in out.iterdir())
    train_mtime = (out / "train.json").stat().st_mtime_ns
    rerun = run_script("activitynet", tmp_path / "v", annot, out, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["train.json", "val.json"]
    assert json.loads((out / "val.json").read_text()) == {"v_a": {"extension": "mp4", **record}}
    assert (out / "train.json").stat().st_mtime_ns == train_mtime  # identical bytes: not rewritten


# ---- verify --------------------------------------------------------------------------------------


def test_repository_checksum_table_parses():
    rows = {row.path: row for row in paper_checksums(PAPER_CHECKSUMS)}
    assert len(rows) == 5
    test = rows["didemo/test.json"]
    assert test.size == 246267
    assert test.sha256 == "2738bc2535a978a0cce2a16d9bf0c3754dfaf986506005e30ef0f2a10c51367d"


def test_verify_identical_and_differing(real_fixtures: Path, tmp_path: Path):
    golden = real_fixtures / "adaclip-paper" / "didemo_test.json"
    annots = tmp_path / "annots"
    (annots / "didemo").mkdir(parents=True)
    shutil.copy(golden, annots / "didemo" / "test.json")
    lines, status = verify(annots, None)
    assert status == 0
    assert "didemo/test.json: identical to the paper's split" in lines
    assert "didemo/train.json: not generated" in lines

    ours = json.loads(golden.read_text())
    first, second, third = list(ours)[:3]
    del ours[first]
    ours[second]["sentences"].append("new.")
    ours["added_video.mp4"] = {"extension": "mp4", "sentences": ["x."]}
    (annots / "didemo" / "test.json").write_text(json.dumps(ours))
    reference = tmp_path / "reference"
    (reference / "didemo").mkdir(parents=True)
    shutil.copy(golden, reference / "didemo" / "test.json")
    lines, status = verify(annots, reference)
    assert status == 1
    (line,) = [line for line in lines if line.startswith("didemo/test.json")]
    assert "DIFFERS" in line and "paper 246,267" in line
    expected = f"videos 1 added (added_video.mp4), 1 missing ({first}), 1 changed ({second})"
    assert expected in line
    lines, _ = verify(annots, None)
    assert any("DIFFERS" in line and "bytes, paper 246,267" in line for line in lines)


def test_verify_with_nothing_generated_is_an_error(tmp_path: Path):
    with pytest.raises(UserError, match="no generated split to verify"):
        verify(tmp_path, None)


def test_demo_stage_writes_every_split(tmp_path: Path):
    root = build_demo_sample(tmp_path / "demo")
    table = Table()
    for column in ("stage", "item", "result"):
        table.add_column(column)
    adaclip_splits(root, table)
    assert table.row_count == 7
    annots = root / "annots"
    val = json.loads((annots / "msrvtt-jsfusion" / "val.json").read_text())
    assert val["video 'odd' $(touch pwned)"]["extension"] == "mp4"
    assert val["v_demoC"]["extension"] == "webm"
    assert list(json.loads((annots / "didemo" / "test.json").read_text())) == [
        "5678@N01_2_b.mov",
        "1234@N00_1_a.m4v",
    ]
    assert (annots / "activitynet" / "missing_train.txt").read_text() == "v_absent\n"
    assert not (tmp_path / "pwned").exists()
