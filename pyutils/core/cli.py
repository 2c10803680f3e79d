"""Command-line parsing whose errors speak in the terms the user typed.

Run by hand, a vlprep command is a Python command and its errors name its flags (`--num-frames`),
as argparse does. Run from make, the user typed Make variables (`NUM_FRAMES=8`), so the same error
names them instead, in one line and without a usage text full of flags they never saw. The
Makefile's recipes say they are from make with VLPREP_FROM_MAKE=1 in the environment.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import NoReturn

FROM_MAKE = "VLPREP_FROM_MAKE"

# What the batch stages' shared options are called in the Makefile (core.stage).
PARALLEL_NAMES = {"jobs": "JOBS", "backend": "BACKEND", "scheduler": "SCHEDULER"}


class Parser(argparse.ArgumentParser):
    """argparse.ArgumentParser that knows the Make variable behind each argument: `make_names`
    maps an argument's dest (`num_frames`) to its variable (`NUM_FRAMES`); `same_names` says
    every other argument's variable is its dest in capitals (`video_fps` -> `VIDEO_FPS`)."""

    def __init__(
        self,
        *args: object,
        make_names: dict[str, str] | None = None,
        same_names: bool = False,
        **kwargs: object,
    ):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.make_names = {**PARALLEL_NAMES, **(make_names or {})}
        self.same_names = same_names

    def error(self, message: str) -> NoReturn:
        if not os.environ.get(FROM_MAKE):
            super().error(message)
        self.exit(2, f"vlprep: error: {self.in_make_terms(message)}\n")

    def in_make_terms(self, message: str) -> str:
        for action in self._actions:
            default = action.dest.upper() if self.same_names else None
            variable = self.make_names.get(action.dest, default)
            if variable is None or action.dest == "help":
                continue
            # argparse names an option by its flags joined with "/", a positional by its metavar.
            label = "/".join(action.option_strings) or str(action.metavar or action.dest)
            message = message.replace(f"argument {label}", variable)
            message = re.sub(rf"(?<![\w-]){re.escape(label)}(?![\w-])", variable, message)
        together = re.fullmatch(r"(\w+): not allowed with (\w+)", message)
        if together:
            return f"{together[1]} and {together[2]} cannot be set together; set one of them"
        return message
