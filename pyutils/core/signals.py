"""Ctrl-C and SIGTERM stop a run at once, its child processes with it.

A stage's work happens in child processes (ffmpeg, wget, loky workers) and in threads blocked on
the network, and neither stops by itself: unwinding Python's stack would wait for every thread
still reading a slow transfer, and SIGTERM reaches only the process it was sent to, so the
ffmpegs of a terminated run would go on until their videos end. So the first signal ends the run
on the spot: every descendant process is killed, one line is said, and the process exits (130
for Ctrl-C, 143 for SIGTERM) without running another line of the stage, so nothing is renamed
into place after it. What is left is what a kill -9 leaves, which every stage is built to
resume: temporaries (removed by the next run), partial downloads (resumed), manifest lines of
the videos finished before the signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from pyutils.core.cli import FROM_MAKE

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Linux prctl(2): deliver a signal to this process when the process that started it dies. Run
# from make, that is make or its recipe shell, and a recipe shell that make kills (SIGTERM to
# make) dies without passing the signal on. Only from make: by hand, a run started with `nohup
# ... &` must outlive the shell that started it.
PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def stop_at_once_on_signals() -> Iterator[None]:
    """In the block, SIGINT and SIGTERM end this process and its descendants immediately (a
    signal the parent chose to ignore, as a shell does SIGINT for `cmd &`, stays ignored); the
    handlers before it are back after it (a test that runs a command in-process keeps its own).
    A command that must unwind on Ctrl-C (`make dask-local` stopping its cluster) sets its own
    handler inside the block."""
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum, handler in before.items():
        if handler != signal.SIG_IGN:
            signal.signal(signum, _stop_now)
    if sys.platform == "linux" and os.environ.get(FROM_MAKE):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def kill_descendants() -> None:
    """SIGKILL every process below this one; again until none is left (a thread may have
    started one while the others were killed). Nothing they write is final: see above."""
    import psutil  # on first use: only an interrupted run needs it

    for _ in range(5):
        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return
        if not children:
            return
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _stop_now(signum: int, frame: FrameType | None) -> None:
    for each in SIGNALS:  # a second Ctrl-C while stopping changes nothing: we are on our way out
        signal.signal(each, signal.SIG_IGN)
    kill_descendants()
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    # os.write, not print: the signal may have come in the middle of a print of the stage.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    message = f"vlprep: interrupted ({name}); finished items are kept, rerun to do the rest\n"
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(128 + signum)
