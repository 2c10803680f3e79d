"""Closest known name to a mistyped one: "did you mean NUM_FRAMES?".

Standard library only, so the Makefile can ask it with the machine's python3 before any venv
exists:

    python3 -m pyutils.core.names NUM_FRAME -- FPS NUM_FRAMES SIZE    # prints NUM_FRAMES
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` most likely meant (case ignored, `fps` -> `FPS`), or None."""
    by_upper = {k.upper(): k for k in known}
    if name.upper() in by_upper:
        return by_upper[name.upper()]
    found = difflib.get_close_matches(name.upper(), list(by_upper), n=1, cutoff=0.6)
    return by_upper[found[0]] if found else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ "; did you mean X?" or nothing, to end a message about an unknown name."""
    match = closest(name, known)
    return f"; did you mean {match}?" if match else ""


def main(argv: list[str]) -> int:
    """`NAME... -- KNOWN...`: one line per unknown NAME, `NAME CLOSEST` (CLOSEST may be empty)."""
    split = argv.index("--")
    names, known = argv[:split], argv[split + 1 :]
    for name in names:
        print(name, closest(name, known) or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
