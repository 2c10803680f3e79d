"""Reading input files (JSON through orjson, text) and writing JSON, with errors that name the
file, and line and column for JSON."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from pyutils.core.atomic import atomic_write_bytes
from pyutils.core.errors import UserError


def read_text(path: str | os.PathLike[str], what: str = "file", hint: str = "") -> str:
    """A UTF-8 input file's text; a missing, unreadable or undecodable file is a UserError that
    names it (`what`) and says what to do (`hint`)."""
    source = Path(path)
    try:
        return source.read_text(encoding="utf-8-sig")  # a byte order mark is not text
    except FileNotFoundError:
        raise UserError(f"{source}: {what} not found" + (f"; {hint}" if hint else "")) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{source}: cannot read the {what} ({exc.strerror})") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a missing or malformed file is a UserError naming where it broke."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{source}: is a folder, expected a JSON file") from None
    return parse_json(data, source)


def parse_json(data: bytes, source: str | os.PathLike[str]) -> Any:
    """Parse JSON bytes read from `source`; a UTF-8 byte order mark is skipped (editors on Windows
    write one), text that is not UTF-8 or not JSON is a UserError saying where."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:  # orjson would only say "surrogates not allowed"
            where = f"{bad.reason} at byte {bad.start}"
            raise UserError(f"{source}: not UTF-8 text ({where}); save it as UTF-8") from None
        raise UserError(
            f"{source}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); fix or re-download it"
        ) from None


def write_json(path: str | os.PathLike[str], obj: Any, indent: bool = True) -> None:
    """Write `obj` atomically as UTF-8 JSON (2-space indent by default), ending in a newline."""
    option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0)
    atomic_write_bytes(path, orjson.dumps(obj, option=option))


def json_line(obj: Any) -> bytes:
    """One compact JSON line, the unit of every JSON-lines file (also for appending one record)."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> None:
    """Write `records` atomically as JSON lines, in the given order."""
    atomic_write_bytes(path, b"".join(map(json_line, records)))


JSON_TYPES = {str: "a string", list: "a list", dict: "an object"}


def json_type(value: Any) -> str:
    """How JSON itself names the type of `value`, for messages about misshapen input."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return JSON_TYPES.get(type(value), type(value).__name__)


def expect_type(value: Any, kind: type, where: str) -> Any:
    """`value` if it is a `kind` (str, list, dict), else a UserError naming `where` and types."""
    if not isinstance(value, kind):
        raise UserError(f"{where}: expected {JSON_TYPES[kind]}, found {json_type(value)}")
    return value


def expect_keys(record: Any, keys: tuple[str, ...], where: str) -> None:
    """Raise a UserError naming `where` and the first key missing from a JSON object."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, found {type(record).__name__}")
    for key in keys:
        if key not in record:
            raise UserError(f"{where}: missing key {key!r}")
