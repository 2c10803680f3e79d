"""What every benchmark shares: the machine line and one table row format.

Benchmarks print Markdown rows `| benchmark | seconds | ratio |` so `make bench` output can be
pasted into the README's performance table as measured.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_OUT = REPO / "bench" / "out"
# Each figure is the median of this many runs: the machine may be shared, and others' work adds
# 10-20% noise to any one run.
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
# Where the development machines keep Debian 12's ffmpeg 5.1, off PATH so that it changes no
# one's tests; on a user's machine the system ffmpeg is simply the one on PATH.
DEVELOPMENT_SYSTEM_FFMPEG = "/opt/debian-ffmpeg/bin/ffmpeg"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median_time(func: Callable[[], object], runs: int = RUNS) -> float:
    return statistics.median(timed(func) for _ in range(runs))


def paired(
    baseline: Callable[[], object], candidate: Callable[[], object], runs: int = RUNS
) -> tuple[float, float, float]:
    """`baseline` and `candidate` timed back to back, `runs` times: the median of each, and the
    median of their ratios (candidate / baseline), which a background load that comes and goes
    (others' tests on a shared machine) hits far less than a ratio of separate medians."""
    pairs = [(timed(baseline), timed(candidate)) for _ in range(runs)]
    medians = [statistics.median(times) for times in zip(*pairs, strict=True)]
    return medians[0], medians[1], statistics.median(c / b for b, c in pairs)


def bundled_ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def system_ffmpeg() -> str | None:
    """The machine's own ffmpeg, if it has one: $SYSTEM_FFMPEG, else PATH's, else Debian's
    where the development machines keep it."""
    for candidate in (os.environ.get("SYSTEM_FFMPEG"), shutil.which("ffmpeg")):
        if candidate:
            return candidate
    return DEVELOPMENT_SYSTEM_FFMPEG if os.access(DEVELOPMENT_SYSTEM_FFMPEG, os.X_OK) else None


def ffmpeg_version(path: str) -> str:
    from pyutils.core.media import inspect_ffmpeg

    return inspect_ffmpeg(path).version


def user_env(ffmpeg: str | None, **extra: str) -> dict[str, str]:
    """The environment of a user whose PATH has `ffmpeg`'s folder first, or (None) no ffmpeg at
    all, with no FFMPEG unless given in `extra`, and Python caching bytecode as it does by
    default (a development shell may say PYTHONDONTWRITEBYTECODE)."""
    folders = os.environ["PATH"].split(os.pathsep)
    path = [f for f in folders if f and not os.access(os.path.join(f, "ffmpeg"), os.X_OK)]
    if ffmpeg:
        path.insert(0, os.path.dirname(ffmpeg))
    env = {**os.environ, "PATH": os.pathsep.join(path), "PYTHONPATH": str(REPO), **extra}
    for variable in ("PYTHONDONTWRITEBYTECODE", *(() if "FFMPEG" in extra else ("FFMPEG",))):
        env.pop(variable, None)
    return env


def header(title: str, table: bool = True) -> None:
    """The section's title, the machine and how busy it was; then the table's head, unless the
    section has tables of its own (`table_head`)."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\n## {title}\nmachine: {machine()}; load average before: {load}")
    if table:
        table_head()


def table_head() -> None:
    print("\n| benchmark | seconds | ratio |\n|---|---|---|")


def row(name: str, seconds: float, ratio: float | None = None, against: str = "") -> None:
    ratio_text = f"{ratio:.2f}x {against}".strip() if ratio is not None else ""
    print(f"| {name} | {seconds:.2f} | {ratio_text} |", flush=True)
