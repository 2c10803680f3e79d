"""What every benchmark shares: the machine line and one table row format.

Benchmarks print Markdown rows `| benchmark | seconds | ratio |` so `make bench` output can be
pasted into the README's performance table as measured.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_OUT = REPO / "bench" / "out"


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


def header(title: str) -> None:
    print(f"\n## {title}\nmachine: {machine()}\n")
    print("| benchmark | seconds | ratio |\n|---|---|---|")


def row(name: str, seconds: float, ratio: float | None = None, against: str = "") -> None:
    ratio_text = f"{ratio:.2f}x {against}".strip() if ratio is not None else ""
    print(f"| {name} | {seconds:.2f} | {ratio_text} |", flush=True)
