"""`make msrvtt-ready`, `make activitynet`, `make didemo` against a local HTTP server serving
small generated stand-ins of the real archives and annotation files."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import orjson
import pytest

from pyutils.catalog.didemo_urls import TEMPLATE, url_lines
from pyutils.devtools.local_server import LocalServer
from pyutils.devtools.sample import build_msrvtt_archives, make_video
from tests.conftest import REPO

MSRVTT_IDS = [f"video{n}" for n in range(4)]


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_WAITRETRY", "0")
    monkeypatch.setenv("FETCH_TRIES", "3")
    monkeypatch.setenv("FETCH_TIMEOUT", "10")


@pytest.fixture(scope="module")
def msrvtt_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return build_msrvtt_archives(tmp_path_factory.mktemp("msrvtt-src"))


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "1000"},
    )


def msrvtt_args(server: LocalServer, data: Path, annots: Path) -> list[str]:
    return [
        f"DATA={data}",
        f"ANNOTS={annots}",
        f"MSRVTT_URL={server.url('MSRVTT.zip')}",
        "MSRVTT_SHA256=none",
        f"MSRVTT_DATA_URL={server.url('msrvtt_data.zip')}",
        "MSRVTT_DATA_SHA256=none",
        "JOBS=2",
    ]


def check_row(data: Path, annots: Path, dataset: str) -> subprocess.CompletedProcess[str]:
    return make("check", f"DATA={data}", f"ANNOTS={annots}", f"DATASETS={dataset}")


def test_msrvtt_ready_end_to_end_then_nothing_then_check(
    tmp_path: Path, msrvtt_archives: dict[str, bytes]
) -> None:
    data, annots = tmp_path / "data", tmp_path / "annots"
    with LocalServer(dict(msrvtt_archives)) as server:
        args = msrvtt_args(server, data, annots)
        first = make("msrvtt-ready", *args)
        assert first.returncode == 0, first.stderr
        root = data / "msrvtt"
        assert sorted(p.name for p in (root / "videos").iterdir()) == [
            f"{v}.mp4" for v in MSRVTT_IDS
        ]
        with zipfile.ZipFile(io.BytesIO(msrvtt_archives["MSRVTT.zip"])) as original:
            nested = original.read("MSRVTT/videos/all/video2.mp4")
        assert (root / "videos" / "video2.mp4").read_bytes() == nested
        assert not (root / "MSRVTT").exists()
        assert {p.name for p in (root / "msrvtt_data").iterdir()} == {
            "MSRVTT_data.json",
            "MSRVTT_train.9k.csv",
            "MSRVTT_JSFUSION_test.csv",
        }
        manifest = [
            orjson.loads(line)
            for line in (root / "frames" / "frames_manifest.jsonl").read_bytes().splitlines()
        ]
        assert sorted(r["stem"] for r in manifest) == MSRVTT_IDS
        for record in manifest:
            assert record["status"] == "ok"
            frames = sorted((root / "frames" / record["stem"]).iterdir())
            assert len(frames) == record["frames"] > 0
        train = json.loads((annots / "msrvtt-jsfusion" / "train.json").read_text())
        val = json.loads((annots / "msrvtt-jsfusion" / "val.json").read_text())
        assert list(train) == ["video0", "video1"]
        assert train["video1"]["sentences"] == ["caption 0 of video1", "caption 1 of video1"]
        assert list(val) == ["video2", "video3"]
        assert val["video3"]["sentences"] == ["a test sentence about video3"]

        seen = len(server.requests)
        second = make("msrvtt-ready", *args)
        assert second.returncode == 0, second.stderr
        assert "Nothing to be done" in second.stdout
        assert len(server.requests) == seen

    checked = check_row(data, annots, "msrvtt")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "│ msrvtt " in checked.stdout and "complete" in checked.stdout

    shutil.rmtree(root / "frames" / "video1")
    partial = check_row(data, annots, "msrvtt")
    assert (
        partial.returncode != 0 and "check] Error 1" in partial.stderr
    )  # pyutils.catalog.check: 1
    assert "partial" in partial.stdout
    assert "1 of 4 videos have no frames in" in partial.stdout
    assert "make msrvtt-ready" in partial.stdout
    (annots / "msrvtt-jsfusion" / "val.json").unlink()
    assert "no AdaCLIP split" in check_row(data, annots, "msrvtt").stdout


def test_killed_msrvtt_chain_resumes_where_it_stopped(
    tmp_path: Path, msrvtt_archives: dict[str, bytes]
) -> None:
    data, annots = tmp_path / "data", tmp_path / "annots"
    part = data / "downloads" / "msrvtt_data.zip.part"
    stall = {"msrvtt_data.zip": len(msrvtt_archives["msrvtt_data.zip"]) // 3}
    with LocalServer(dict(msrvtt_archives), stall=stall) as server:
        args = msrvtt_args(server, data, annots)
        command = ["make", "--no-print-directory", "msrvtt-ready", *args]
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Killed once bytes and the server's validators are both on disk: a partial file
        # without its validators is (rightly) fetched again from the start, not resumed.
        validators = part.with_name(part.name + ".validators")
        while process.poll() is None and not (
            part.exists() and part.stat().st_size and validators.exists()
        ):
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)  # make and everything it started
        process.wait()
        assert (data / "msrvtt" / ".vlprep-placed-MSRVTT.zip").exists()
        assert not (data / "msrvtt" / ".vlprep-complete").exists()

        server.stall.clear()
        server.release()
        server.requests.clear()
        again = make("msrvtt-ready", *args)
        assert again.returncode == 0, again.stderr
        # The placed archive is not asked for again; the cut one resumes from what it had.
        assert [r.path for r in server.requests] == ["/msrvtt_data.zip"]
        assert server.requests[0].range and server.requests[0].range != "bytes=0-"
    assert json.loads((annots / "msrvtt-jsfusion" / "train.json").read_text())
    assert check_row(data, annots, "msrvtt").returncode == 0


def test_activitynet_lists_missing_videos_and_where_to_request_them(tmp_path: Path) -> None:
    captions = {
        "train.json": {"v_a": {"duration": 5.0, "timestamps": [[0, 1]], "sentences": [" x."]}},
        "val_1.json": {"v_b": {"duration": 3.0, "timestamps": [[0, 2]], "sentences": ["y."]}},
        "val_2.json": {"v_b": {"duration": 3.0, "timestamps": [[1, 2]], "sentences": ["z."]}},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the real one is flat, with readme.txt
        for name, content in captions.items():
            archive.writestr(name, json.dumps(content))
        archive.writestr("readme.txt", "ActivityNet Captions")
    data, videos = tmp_path / "data", tmp_path / "my videos"
    videos.mkdir()
    make_video(videos / "v_a.mkv", 0.5, width=64, height=48, fps=10)
    with LocalServer({"captions.zip": buffer.getvalue()}) as server:
        args = [f"DATA={data}", f"ACTIVITYNET_CAPTIONS_URL={server.url('captions.zip')}"]
        result = make("activitynet", *args, "ACTIVITYNET_CAPTIONS_SHA256=none", f"VIDEOS={videos}")
    assert result.returncode != 0
    assert "1 of 2 annotated videos missing from" in result.stderr
    assert "activity-net.org" in result.stderr
    root = data / "activitynet"
    assert (root / "missing.txt").read_text() == "v_b\n"
    assert json.loads((root / "captions" / "val_2.json").read_text()) == captions["val_2.json"]

    # The chain goes on with the videos present; the next run checks again.
    annots = tmp_path / "annots"
    ready = make("activitynet-ready", f"DATA={data}", f"VIDEOS={videos}", f"ANNOTS={annots}")
    assert ready.returncode == 0, ready.stderr
    assert "some items failed (listed above); going on" in ready.stderr
    assert list(json.loads((annots / "activitynet" / "train.json").read_text())) == ["v_a"]
    assert (annots / "activitynet" / "missing_val.txt").read_text() == "v_b\n"
    assert len(list((root / "frames" / "v_a").iterdir())) == 5
    (videos / "v_b.mp4").write_bytes(b"")
    done = make("activitynet", f"DATA={data}", f"VIDEOS={videos}")
    assert done.returncode == 0, done.stderr
    assert not (root / "missing.txt").exists()


def test_didemo_annotations_and_url_list(tmp_path: Path, real_fixtures: Path) -> None:
    test_data = (real_fixtures / "didemo" / "test_data.json").read_bytes()
    videos = list(dict.fromkeys(record["video"] for record in json.loads(test_data)))
    hashes = {v.split("_")[1]: f"{n:06d}abcdef{n}" for n, v in enumerate(videos[:-1])}
    files = {
        f"{s}_data.json": test_data if s == "test" else b"[]" for s in ("train", "val", "test")
    }
    files |= {f"{s}_list.txt": f"{videos[0]}\n".encode() for s in ("train", "val", "test")}
    files["yfcc100m_hash.txt"] = "".join(f"{k}\t{h}\n" for k, h in hashes.items()).encode()
    data = tmp_path / "data"
    with LocalServer(files) as server:
        args = [f"DATA={data}"]
        for name in files:
            var = "DIDEMO_" + name.rsplit(".", 1)[0].upper()
            args += [f"{var}_URL={server.url(name)}", f"{var}_SHA256=none"]
        result = make("didemo", *args)
    assert result.returncode == 0, result.stderr
    annotations = data / "didemo" / "annotations"
    for name, content in files.items():
        assert (annotations / name).read_bytes() == content
    lines = (data / "didemo" / "video_urls.txt").read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == len(videos)  # one has no hash
    first_hash = hashes[videos[0].split("_")[1]]
    expected = TEMPLATE.format(first_hash[:3], first_hash[3:6], first_hash)
    assert lines[1] == f"{expected}\t{videos[0]}"
    assert f"1 videos have no YFCC100M hash (first: {videos[-1]})" in result.stderr


def test_didemo_url_template_follows_localizing_moments() -> None:
    lines, unknown = url_lines(["1@N00_42_x.mov", "odd"], {"42": "abcdef0123"})
    url = "https://multimedia-commons.s3-us-west-2.amazonaws.com/data/videos/mp4/abc/def/abcdef0123.mp4"
    assert lines == [f"{url}\t1@N00_42_x.mov"]
    assert unknown == ["odd"]


def test_paths_with_spaces_are_refused_in_one_line(tmp_path: Path) -> None:
    result = make("-n", "msrvtt-ready", f"DATA={tmp_path}/my data")
    assert result.returncode == 2
    assert "DATA='" in result.stderr and "make targets cannot hold spaces" in result.stderr


def test_make_with_user_paths_says_nothing_about_overriding_recipes() -> None:
    result = make("help", "FRAMES=/x", "VIDEOS=/y", "ANNOTS=/z")
    assert result.returncode == 0 and result.stderr == ""
    assert "msrvtt-ready" in result.stdout and "didemo-ready" in result.stdout


def test_one_chain_plans_only_its_own_steps() -> None:
    plan = make("-n", "msrvtt-ready", "FRAMES=/x")
    assert plan.returncode == 0, plan.stderr
    assert plan.stderr == ""
    assert "pyutils.catalog.prepare 'msrvtt'" in plan.stdout
    assert "pyutils.video.frames 'datasets/msrvtt/videos' '/x'" in plan.stdout
    assert "touch '/x/.vlprep-msrvtt-frames'" in plan.stdout
    assert "msrvtt_preprocess.py" in plan.stdout
    for other in ("didemo", "activitynet", "transcode", "fetch_list"):
        assert other not in plan.stdout


def test_msrvtt_frames_go_to_a_frames_path_with_quote_and_backtick(
    tmp_path: Path, msrvtt_archives: dict[str, bytes]
) -> None:
    data, annots = tmp_path / "data", tmp_path / "annots"
    frames = tmp_path / "it's`>pwned`"  # run by a shell, the backticks would write pwned
    with LocalServer(dict(msrvtt_archives)) as server:
        result = make("msrvtt-ready", *msrvtt_args(server, data, annots), f"FRAMES={frames}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in frames.iterdir() if p.is_dir()) == MSRVTT_IDS
    assert (frames / ".vlprep-msrvtt-frames").exists()
    assert (annots / "msrvtt-jsfusion" / ".vlprep-msrvtt-splits").exists()
    assert not (REPO / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_a_dollar_in_a_path_is_refused_before_make_expands_it(tmp_path: Path) -> None:
    result = make("-n", "msrvtt-ready", f"FRAMES=$(shell touch {tmp_path}/pwned)")
    assert result.returncode == 2
    assert "FRAMES: a path with a $ in it cannot go through make" in result.stderr
    assert not (tmp_path / "pwned").exists()
    colon = make("-n", "didemo-ready", f"DIDEMO_SRC={tmp_path}/a:b")
    assert colon.returncode == 2 and "DIDEMO_SRC=" in colon.stderr and "':'" in colon.stderr
