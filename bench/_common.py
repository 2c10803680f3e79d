"""What every benchmark shares: the machine line and one table row format.

Benchmarks print Markdown rows `| benchmark | seconds | ratio |` so `make bench` output can be
pasted into the README's performance table as measured.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def child_cpu_seconds() -> float:
    """CPU time (user + system) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Paired:
    """A candidate timed back to back with its baseline, `runs` times."""

    baseline: float  # median wall seconds
    candidate: float
    ratio: float  # median of the runs' wall ratios, candidate / baseline
    cpu_ratio: float  # the same for the CPU time of their child processes

    def ratio_text(self, against: str) -> str:
        return f"{self.ratio:.2f}x {against} (CPU time {self.cpu_ratio:.2f}x)"


def paired(
    baseline: Callable[[], object], candidate: Callable[[], object], runs: int = RUNS
) -> Paired:
    """`baseline` and `candidate` (both running their work in child processes) timed back to
    back, `runs` times. The median of the runs' ratios is hit far less than a ratio of separate
    medians by a background load that comes and goes (others' tests on a shared machine); the
    CPU-time ratio hardly at all, and says what the wall ratio would be on a machine whose
    cores are all taken anyway."""
    runs_seen = []
    for _ in range(runs):
        times = []
        for func in (baseline, candidate):
            cpu = child_cpu_seconds()
            times.append((timed(func), child_cpu_seconds() - cpu))
        runs_seen.append(times)
    wall = [[run[i][0] for run in runs_seen] for i in (0, 1)]
    return Paired(
        statistics.median(wall[0]),
        statistics.median(wall[1]),
        statistics.median(c[0] / b[0] for b, c in runs_seen),
        statistics.median(c[1] / b[1] for b, c in runs_seen),
    )


def bundled_ffmpeg() -> str:
    from pyutils.core.media import bundled_ffmpeg

    path = bundled_ffmpeg()
    assert path, "the imageio-ffmpeg wheel's ffmpeg is missing: run `make setup`"
    return path


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


def run_quiet(args: list[str], env: dict[str, str]) -> None:
    """Run a vlprep command for its time alone: its report lines (stdout) and progress (stderr)
    would land in the middle of the table the bench prints."""
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    line(name, seconds, f"{ratio:.2f}x {against}".strip() if ratio is not None else "")


def line(name: str, seconds: float | None, ratio_text: str) -> None:
    shown = "" if seconds is None else f"{seconds:.2f}"
    print(f"| {name} | {shown} | {ratio_text} |", flush=True)
