"""Frame extraction, transcoding and ActivityNet-QA probing on a real dask.distributed cluster (a
scheduler and two worker processes on 127.0.0.1): the output must be byte-identical to a local run,
also when a worker is killed in the middle of the run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pyutils.core.atomic import is_temporary
from pyutils.devtools.dask_local import LocalCluster, local_cluster
from pyutils.devtools.sample import make_video
from tests.conftest import REPO, run_module
from tests.test_activitynet_qa import convert, corpus  # noqa: F401 - the QA corpus fixture

VIDEOS = {f"clip {i} '$(touch pwned)'.mp4": 1.0 + 0.5 * i for i in range(8)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("dask"), workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name, seconds in VIDEOS.items():
        make_video(folder / name, seconds, width=320, height=240, fps=25)
    return folder


def frame_tree(folder: Path) -> dict[str, str]:
    """md5 of every frame, by relative path; temporaries (a killed worker's) are not output."""
    return {
        str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.jpg"))
        if not any(is_temporary(part) for part in path.relative_to(folder).parts)
    }


def run_here_and_on_dask(
    module: str, source: Path, out: Path, cluster: LocalCluster, *extra: str
) -> None:
    """Run a stage into out/local (two jobs here) and into out/dask (on the cluster)."""
    on_dask = ("--backend", "dask", "--scheduler", cluster.address)
    for label, options in (("local", ("--jobs", "2")), ("dask", on_dask)):
        result = run_module(module, str(source), str(out / label), *options, *extra)
        assert result.returncode == 0, result.stderr


def test_frames_on_dask_equal_a_local_run(videos: Path, cluster: LocalCluster, tmp_path: Path):
    run_here_and_on_dask("pyutils.video.frames", videos, tmp_path, cluster)
    expected = frame_tree(tmp_path / "local")
    assert len({path.split("/")[0] for path in expected}) == len(VIDEOS)
    assert frame_tree(tmp_path / "dask") == expected
    assert not (tmp_path / "pwned").exists() and not (REPO / "pwned").exists()


def test_fps_frames_on_dask_equal_a_local_run(cluster: LocalCluster, tmp_path: Path) -> None:
    """--fps on the cluster's workers, which size a task's threads from their machine: a video
    given several is cut into parts (`fps_parts`); the frames are a local run's."""
    videos = tmp_path / "videos"
    for index in range(3):
        make_video(videos / f"long {index}.mp4", 8 + index, width=96, height=64, gop=50)
    run_here_and_on_dask("pyutils.video.frames", videos, tmp_path, cluster, "--fps", "5")
    expected = frame_tree(tmp_path / "local")
    assert len(expected) == 5 * (8 + 9 + 10)
    assert frame_tree(tmp_path / "dask") == expected
    manifest = (tmp_path / "dask" / "frames_manifest.jsonl").read_bytes().splitlines()
    methods = {orjson.loads(line)["method"] for line in manifest}
    assert methods == {"fps_parts" if (os.cpu_count() or 1) > 1 else "fps"}


def test_transcode_on_dask_equals_a_local_run(
    videos: Path, cluster: LocalCluster, tmp_path: Path
) -> None:
    source = tmp_path / "originals"
    source.mkdir()
    for name in list(VIDEOS)[:2]:
        os.link(videos / name, source / name.replace(".mp4", ".mov"))
    run_here_and_on_dask("pyutils.video.transcode", source, tmp_path, cluster)
    for original in source.iterdir():
        output = f"{original.name}.mp4"
        local = (tmp_path / "local" / output).read_bytes()
        assert (tmp_path / "dask" / output).read_bytes() == local


def test_a_killed_worker_does_not_change_the_output(videos: Path, tmp_path: Path) -> None:
    # A cluster of its own: this test kills one of its workers.
    with local_cluster(tmp_path / "cluster", workers=2) as doomed:
        out = tmp_path / "dask"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "pyutils.video.frames", str(videos), str(out)]
        run = subprocess.Popen(
            [*args, "--backend", "dask", "--scheduler", doomed.address],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not any(p.is_dir() and not is_temporary(p) for p in out.glob("*")):
            assert run.poll() is None and time.monotonic() < deadline, "no video finished"
            time.sleep(0.02)
        doomed.workers[0].kill()  # mid-run: other videos are in flight or still queued
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        assert doomed.workers[0].wait() != 0
    local = run_module("pyutils.video.frames", str(videos), str(tmp_path / "local"), "--jobs", "1")
    assert local.returncode == 0, local.stderr
    assert frame_tree(out) == frame_tree(tmp_path / "local")


def test_qa_probing_on_dask_equals_a_local_run(
    corpus: Path,  # noqa: F811 - pytest fixture imported from the QA tests
    cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    local_status, local_json = convert(corpus / "qa", corpus / "videos", tmp_path / "local", 8)
    dask_status, dask_json = convert(
        corpus / "qa", corpus / "videos", tmp_path / "dask", 8,
        "--backend", "dask", "--scheduler", cluster.address,
    )  # fmt: skip
    assert dask_status == local_status
    assert dask_json.read_bytes() == local_json.read_bytes()
