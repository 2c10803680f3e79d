"""`make adaclip-config`: point `frames_dir` of an AdaCLIP config at a frame folder.

AdaCLIP reads `configs/<dataset>.json` (msrvtt-jsfusion, didemo, activitynet). Only the value of
the top-level `frames_dir` key is replaced, in place in the text, so every other key, the key order,
the indentation and the rest of the formatting stay byte for byte as they were (a diff shows one
line). The result is parsed again and compared with the original before it is written, atomically
(through a symlinked config, to the file it points at). DATASET is a config's name, never a path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pyutils.core.atomic import atomic_write_text
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import read_json
from pyutils.core.report import log

KEY = "frames_dir"
CONFIG_NAME = re.compile(r"\w[\w.-]*")  # no "/": DATASET=../../x must not leave configs/
# A JSON string, or one bracket: enough to track nesting depth while skipping string contents.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_COLON = re.compile(r"\s*:\s*")


def value_span(text: str, key: str) -> tuple[int, int] | None:
    """Where the value of top-level `key` lies in the JSON `text`; None if the key is absent."""
    spans = []
    depth = 0
    for token in _TOKEN.finditer(text):
        mark = token.group()
        if mark in "{[":
            depth += 1
        elif mark in "}]":
            depth -= 1
        elif depth == 1 and json.loads(mark) == key:
            colon = _COLON.match(text, token.end())
            if colon:  # a key, not a string value that happens to read "frames_dir"
                _, end = json.JSONDecoder().raw_decode(text, colon.end())
                spans.append((colon.end(), end))
    if len(spans) > 1:
        raise UserError(f'"{key}" occurs {len(spans)} times at the top level; keep one')
    return spans[0] if spans else None


def set_frames_dir(config: Path, frames: str) -> bool:
    """Set `frames_dir` in `config`; return False when it already had that value."""
    original = read_json(config)  # malformed JSON: a UserError with file:line:column
    if not isinstance(original, dict) or KEY not in original:
        raise UserError(f'{config}: no top-level "{KEY}" key; is this an AdaCLIP config?')
    if original[KEY] == frames:
        return False
    text = config.read_text(encoding="utf-8")
    span = value_span(text, KEY)
    if span is None:  # read_json found the key, so this scanner missed it: never guess
        raise UserError(f'{config}: could not locate the "{KEY}" value in the text')
    start, end = span
    edited = text[:start] + json.dumps(frames, ensure_ascii=False) + text[end:]
    reparsed = json.loads(edited)
    if reparsed != {**original, KEY: frames} or list(reparsed) != list(original):
        raise UserError(f"{config}: the edit would change more than {KEY}; file left as it was")
    atomic_write_text(config, edited)
    return True


def config_path(adaclip: Path, dataset: str) -> Path:
    configs = adaclip / "configs"
    if not configs.is_dir():
        raise UserError(f"{configs}: not found; set ADACLIP= to an AdaCLIP checkout")
    known = ", ".join(sorted(p.stem for p in configs.glob("*.json"))) or "none"
    if not CONFIG_NAME.fullmatch(dataset):
        raise UserError(f"DATASET={dataset!r} is not a config name; DATASET= is one of: {known}")
    config = configs / f"{dataset}.json"
    if not config.is_file():
        raise UserError(f"{config}: no such config; DATASET= is one of: {known}")
    return config


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pyutils.adaclip.config", description=__doc__, same_names=True)
    parser.add_argument("--adaclip", type=Path, required=True, help="AdaCLIP checkout")
    parser.add_argument("--dataset", required=True, help="config name, e.g. didemo")
    parser.add_argument("--frames", type=Path, required=True, help="frame folder to point at")
    args = parser.parse_args(argv)
    if not args.dataset:
        raise UserError("set DATASET= to an AdaCLIP config name (msrvtt-jsfusion, didemo, ...)")
    config = config_path(args.adaclip, args.dataset)
    if not args.frames.is_dir():
        raise UserError(f"{args.frames}: frame folder not found; extract frames first (FRAMES=)")
    # Absolute, because AdaCLIP runs from its own checkout, not from here.
    frames = str(args.frames.resolve())
    changed = set_frames_dir(config, frames)
    log(f"{config}: {KEY} {'set to' if changed else 'already'} {frames}")
    return 0


if __name__ == "__main__":
    run_cli(main)
