"""The ledger (`make ledger`, $(OUT)/samples.parquet) and the report page (`make report`), the page
checked in a real browser (headless Chromium) where one is installed."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy
import pyarrow.parquet as pq
import pytest

from pyutils.catalog import ledger, report_page
from pyutils.core.media import probe
from pyutils.devtools.sample import make_image, make_video
from pyutils.llamafactory.dataset_info import sharegpt_video_entry
from pyutils.video.thumbnail import video_thumbnails
from tests.conftest import REPO, run_module


def record(*videos: object) -> dict:
    return {
        "messages": [
            {"content": "<video>what happens?", "role": "user"},
            {"content": "a test card", "role": "assistant"},
        ],
        "videos": list(videos),
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OUT with a LLaMA-Factory dataset (a video, a frame list, a broken and a missing video),
    an AdaCLIP split (one video with frames, one without), a CLIP set; `make preflight` run."""
    root = tmp_path_factory.mktemp("prepared")
    out = root / "out dir"
    make_video(out / "videos" / "clip 'a' $(touch pwned).mp4", 3.0, width=320, height=240, fps=25)
    (out / "videos" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    listed = [make_image(out / "frames" / "v1" / f"{i}.jpg", 96, 72, seed=i) for i in range(4)]
    frame_list = [str(p.relative_to(out)) for p in listed]
    records = [
        record("videos/clip 'a' $(touch pwned).mp4"),
        record(frame_list),
        record("videos/broken.mp4"),
        record("videos/gone.mp4"),
    ]
    (out / "qa.json").write_text(json.dumps(records))
    (out / "dataset_info.json").write_text(json.dumps({"qa": sharegpt_video_entry("qa.json")}))
    split = root / "annots" / "msrvtt-jsfusion" / "val.json"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps({v: {"sentences": ["x"]} for v in ("ok", "absent")}))
    for i in range(1, 17):
        make_image(root / "frames" / "ok" / f"image_{i:05d}.jpg", 64, 48, seed=i)
    images = root / "DATA" / "caltech-101" / "101_ObjectCategories" / "face"
    make_image(images / "image_0001.jpg")
    (images.parent.parent / "split_zhou_Caltech101.json").write_text(
        json.dumps({"train": [["face/image_0001.jpg", 0, "face"]]})
    )
    preflight = make(root, "preflight")
    assert preflight.returncode == 2 and "preflight] Error 1" in preflight.stderr
    return root


@pytest.fixture(autouse=True, scope="module")
def _nothing_was_run(prepared: Path) -> Iterator[None]:
    """A name with quotes and $(...) is text all the way to the page."""
    yield
    assert not list(prepared.rglob("pwned")) and not (REPO / "pwned").exists()


def make(root: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    variables = [
        f"OUT={root / 'out dir'}", f"DATA={root / 'DATA'}", f"ANNOTS={root / 'annots'}",
        f"FRAMES={root / 'frames'}", "DATASET=msrvtt", *extra,
    ]  # fmt: skip
    command = ["make", "--no-print-directory", target, *variables]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO)


def results(root: Path) -> list[dict]:
    text = (root / "out dir" / "preflight.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def rows(root: Path) -> list[dict]:
    return pq.read_table(root / "out dir" / ledger.LEDGER_NAME).to_pylist()


def test_ledger_rows_are_preflights_samples(prepared: Path) -> None:
    table = pq.read_table(prepared / "out dir" / ledger.LEDGER_NAME)
    assert table.schema.remove_metadata() == ledger.SCHEMA
    samples = [r for r in results(prepared) if r["index"] is not None]
    found = table.to_pylist()
    assert len(found) == len(samples) == 7
    for row, sample in zip(found, samples, strict=True):
        assert (row["index"], row["problems"]) == (sample["index"], sample["problems"])
        for key in ("video_tokens", "text_tokens", "total_tokens"):
            assert row[key] == sample.get(key)
    out = prepared / "out dir"
    video, frames, broken, gone, ok, absent, image = found
    assert video["dataset"] == "qa" and video["trainer"] == "llamafactory"
    assert (
        video["media"] == str(out / "videos" / "clip 'a' $(touch pwned).mp4")
        and video["status"] == "fine"
    )
    assert video["frames_sampled"] == results(prepared)[0]["video_frames"] == 6
    info = probe(video["media"])
    assert (video["duration"], video["width"], video["height"]) == (3.0, 320, 240)
    assert (video["fps"], video["frame_count"], video["codec"]) == (25.0, 75, "h264")
    assert info.container in video["container"] and "mp4" in video["container"]
    assert video["size_bytes"] == os.path.getsize(video["media"])
    assert frames["media_kind"] == "frame_list" and frames["frame_count"] == 4
    assert frames["frames_dir"] == str(out / "frames" / "v1")
    assert gone["found"] is False and gone["status"] == "missing" and gone["duration"] is None
    assert (ok["dataset"], ok["split"], ok["frame_count"]) == ("msrvtt-jsfusion", "val", 16)
    assert ok["media"] == ok["frames_dir"] == str(prepared / "frames" / "ok")
    assert ok["frames_sampled"] == 16 and absent["status"] == "missing"
    assert image["trainer"] == "clip" and image["media"] == str(
        prepared / "DATA" / "caltech-101" / "101_ObjectCategories" / "face" / "image_0001.jpg"
    )
    settings = ledger.read_metadata(out / ledger.LEDGER_NAME)["settings"]
    assert settings["CUTOFF_LEN"] == "2048" and settings["FRAMES"] == str(prepared / "frames")


def test_a_failed_video_shows_with_its_reason(prepared: Path) -> None:
    broken = rows(prepared)[2]
    assert broken["status"] == "unreadable" and broken["found"] is True
    assert broken["problems"][0].startswith("unreadable: videos/broken.mp4: PyAV cannot open it")
    assert broken["duration"] is None and broken["size_bytes"] == 600
    assert make(prepared, "report").returncode == 0
    page = (prepared / "out dir" / report_page.REPORT_NAME).read_text()
    assert "videos/broken.mp4: PyAV cannot open it" in page
    assert "missing: videos/gone.mp4" in page


def test_a_rerun_with_nothing_changed_rewrites_nothing(prepared: Path) -> None:
    assert make(prepared, "report").returncode == 0
    written = [prepared / "out dir" / n for n in (ledger.LEDGER_NAME, report_page.REPORT_NAME)]
    before = [p.stat().st_mtime_ns for p in written]
    again = make(prepared, "report")
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in written] == before
    # The good video comes from the probe cache; only the broken one (never cached) is retried.
    assert "probing videos: 1 in the probe cache, 1 to probe" in again.stderr
    assert "unchanged" in again.stderr
    other = prepared / "elsewhere" / "page.html"
    assert make(prepared, "report", f"REPORT={other}").returncode == 0 and other.is_file()
    unwritable = make(prepared, "report", "REPORT=/proc/vlprep-report.html")
    assert unwritable.returncode == 2 and not Path("/proc/vlprep-report.html").exists()
    assert "vlprep: error: REPORT: cannot write /proc/vlprep-report.html" in unwritable.stderr


def test_settings_other_than_preflights_are_refused(prepared: Path) -> None:
    """The token figures are preflight's: a report under another CUTOFF_LEN would mislabel them."""
    result = make(prepared, "ledger", "CUTOFF_LEN=4096")
    assert result.returncode == 2
    assert "CUTOFF_LEN=4096: preflight ran with CUTOFF_LEN=2048" in result.stderr


def test_the_page_stays_small_for_10000_samples(prepared: Path, tmp_path: Path) -> None:
    frames = [str(p) for p in sorted((prepared / "out dir" / "frames" / "v1").glob("*.jpg"))]
    lines = []
    for index in range(10_000):
        problems = [f"over_cutoff: {3000 + index} tokens > CUTOFF_LEN 2048"] if index % 3 else []
        sample = {"dataset": "big", "index": index, "videos": [frames], "video_frames": 4}
        sample.update(video_tokens=2000 + index % 2000, text_tokens=30, problems=problems)
        sample.update(total_tokens=2030 + index % 2000, frame_size=[96, 72])
        lines.append(json.dumps(sample))
    (tmp_path / "preflight.jsonl").write_text("\n".join(lines) + "\n")
    args = ["--out", str(tmp_path), "--data", str(tmp_path / "none"), "--annots", str(tmp_path)]
    assert report_page.main([*args, "--probe-cache", ""]) == 0
    assert len(rows_of(tmp_path)) == 10_000
    page = (tmp_path / report_page.REPORT_NAME).read_text()
    assert len(page) < 1_000_000 and page.count("<img ") == 4 * 4
    assert "... and 6,641 more" in page  # 6,666 with problems, 25 listed


def rows_of(out: Path) -> list[dict]:
    return pq.read_table(out / ledger.LEDGER_NAME).to_pylist()


def test_malformed_results_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "preflight.jsonl").write_text(
        '{"dataset": "qa", "index": 0, "problems": []}\n{oops\n'
    )
    result = run_module("pyutils.catalog.ledger", "--out", str(tmp_path))
    assert result.returncode == 2 and not (tmp_path / ledger.LEDGER_NAME).exists()
    assert result.stderr.strip().splitlines() == [
        f"vlprep: error: {tmp_path / 'preflight.jsonl'}:2:2: malformed JSON line"
    ]


def test_video_thumbnails_are_the_frames_at_the_sampled_indices(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", 1.0, width=160, height=120, fps=10)
    thumbs = video_thumbnails(video, [0, 4, 9], 32)
    assert len(thumbs) == 3 and all(t.startswith(b"\xff\xd8\xff") for t in thumbs)
    with av.open(str(video)) as container:
        frames = [
            f.reformat(width=42, height=32).to_ndarray(format="gray").astype(int)
            for f in container.decode(video=0)
        ]
    for thumb, index in zip(thumbs, [0, 4, 9], strict=True):
        with av.open(io.BytesIO(thumb)) as image:
            small = next(image.decode(video=0)).to_ndarray(format="gray").astype(int)
        assert small.shape == (32, 42)
        # The frame it was scaled from is the one at its index, not a neighbour.
        distance = [abs(f - small).mean() for f in frames]
        assert min(range(len(frames)), key=distance.__getitem__) == index
    assert len(video_thumbnails(video, [5, 40], 32)) == 1  # the video ends first


# ---- in a real browser ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium (Debian's package: apt-get install chromium; .ci/run does)",
)


def render(page: Path, tmp_path: Path) -> tuple[str, numpy.ndarray, set[str]]:
    """The DOM Chromium builds of `page`, its screenshot's pixels, and every URL the page itself
    asked for (Chromium's own update and account pings are not the page's)."""
    shot, net = tmp_path / "shot.png", tmp_path / "net.json"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
        f"--log-net-log={net}", f"--screenshot={shot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with av.open(str(shot)) as image:
        pixels = next(image.decode(video=0)).to_ndarray(format="rgb24")
    log = json.loads(net.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = {
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and str(event["params"].get("network_isolation_key", "")).startswith("file://")
    }
    return done.stdout, pixels, requested


@needs_chromium
def test_the_network_check_sees_a_page_that_loads_something(tmp_path: Path) -> None:
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://vlprep.invalid/x.png">x</body></html>')
    _, _, requested = render(page, tmp_path)
    assert requested == {"http://vlprep.invalid/x.png"}


@needs_chromium
def test_the_report_renders_in_chromium(prepared: Path, tmp_path: Path) -> None:
    assert make(prepared, "report").returncode == 0
    dom, pixels, requested = render(prepared / "out dir" / report_page.REPORT_NAME, tmp_path)
    assert requested == set()
    assert pixels.std() > 20 and len(numpy.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert "<td>qa</td>" in dom and "<td>msrvtt-jsfusion</td>" in dom and "caltech101" in dom
    assert re.search(r'<td>qa</td><td>llamafactory</td><td class="n">4</td>', dom)  # samples
    assert dom.count("<svg") >= 2 and "CUTOFF_LEN 2,048" in dom
    assert dom.count('src="data:image/jpeg;base64,') >= 8
