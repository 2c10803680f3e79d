"""Telling a downloaded file from the error page a server sent in its place.

A login, quota or error page comes back with status 200 as often as not, so both download paths
look at what arrived: `download.py` at each registry file once it is complete, `fetch_list.py` at
the first kilobyte of each URL as it arrives (and at its Content-Type). Either way such a page is
a failure with the page's own title or message, never a video or an archive.
"""

from __future__ import annotations

import codecs
import re

# Enough for a page's preamble (byte-order mark, comments, doctype) and its <title>.
SNIFF_BYTES = 1024
HTML_SUFFIXES = (".html", ".htm")
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HTML_TAGS = (b"<!doctype html", b"<html", b"<head", b"<body")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_JSON_ERROR = re.compile(rb'"errors?"\s*:')
_JSON_MESSAGE = re.compile(rb'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')


def error_page(head: bytes, name: str, content_type: str | None = None) -> str | None:
    """Why the download that starts with `head` (its first SNIFF_BYTES) is an error page and not
    the file `name`, or None. An HTML page: labelled text/html, or markup (after any byte-order
    mark, whitespace and comments) with an HTML tag; a JSON error body such as
    `{"error": {"code": 403, ...}}`. Neither counts where `name` itself is HTML or JSON."""
    wanted = name.lower()
    text = _as_utf8(head[:SNIFF_BYTES])
    start = text.lstrip().lower()
    if not wanted.endswith(HTML_SUFFIXES):
        if content_type == "text/html":
            return "the server sent an HTML page (Content-Type text/html), not the file"
        if start.startswith(b"<") and any(tag in start for tag in _HTML_TAGS):
            title = _TITLE.search(text)
            what = f" ({_decode(title.group(1)).strip()!r})" if title else ""
            return (
                f"the server sent an HTML page{what}, not the file (a quota, login or error page)"
            )
    if not wanted.endswith(".json") and start.startswith(b"{") and _JSON_ERROR.search(start):
        message = _JSON_MESSAGE.search(text)
        what = _decode(message.group(1)) if message else _decode(text.strip()[:200])
        return f"the server sent a JSON error, not the file: {what}"
    return None


def _as_utf8(head: bytes) -> bytes:
    for mark, encoding in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return head[len(mark) :].decode(encoding, "replace").encode("utf-8")
    return head


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")
