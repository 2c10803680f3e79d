"""Error types and the one-line error handling every command-line entry point shares.

A user error (bad input file, missing tool, malformed JSON) is one line on stderr and exit 2;
item failures inside a batch are reported by `pyutils.core.report` and give exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pyutils.core.signals import stop_at_once_on_signals

EXIT_ITEM_FAILURES = 1
EXIT_USAGE = 2


class UserError(Exception):
    """Something the user can fix: a missing file, tool or credential, or malformed input."""


class MediaError(UserError):
    """A file that cannot be read as a video, with the decoder's own reason."""


def error_line(message: object) -> str:
    """How every vlprep error reads, from a command or from a stage that goes on after it."""
    return f"vlprep: error: {message}"


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run `main` and turn user errors into one line and exit status 2, without a traceback;
    Ctrl-C and SIGTERM stop it at once (`pyutils.core.signals`)."""
    try:
        with stop_at_once_on_signals():
            status = main(argv)
    except UserError as exc:
        print(error_line(exc), file=sys.stderr)
        status = EXIT_USAGE
    except KeyboardInterrupt:  # a command that unwinds on Ctrl-C itself (see signals)
        print("vlprep: interrupted", file=sys.stderr)
        status = 130
    sys.exit(status or 0)
