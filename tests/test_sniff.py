"""The one check both download paths use: is what arrived the file, or an error page?"""

from __future__ import annotations

import codecs

import pytest

from pyutils.fetch.sniff import SNIFF_BYTES, error_page

GOOGLE_403 = (
    b'{\n  "error": {\n    "code": 403,\n    "message": "The download quota for this file has been '
    b'exceeded.",\n    "errors": [{"domain": "usageLimits", "reason": "downloadQuotaExceeded"}]\n'
    b"  }\n}\n"
)


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><title>Sign in</title></html>",
        b"\n\n   <html lang='en'><head><title>Sign in</title></head>",
        b"<!-- served by nginx -->\n<!doctype HTML>\n<title>Sign in</title>",
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN">'
        b"<html><title>Sign in</title>",
        codecs.BOM_UTF8 + b"<html><TITLE>Sign in</TITLE>",
        codecs.BOM_UTF16_LE + "<html><title>Sign in</title>".encode("utf-16-le"),
        b"<head><title>\n  Sign in \n</title></head><body>",
        b"<meta charset=utf-8>" + b" " * 900 + b"<html><title>Sign in</title>",
    ],
)
def test_html_pages_are_recognised_with_their_title(head: bytes) -> None:
    assert error_page(head, "video.mp4") == (
        "the server sent an HTML page ('Sign in'), not the file (a quota, login or error page)"
    )


def test_html_label_and_untitled_page() -> None:
    assert error_page(b"\x00\x00\x00\x18ftypmp42", "a.mp4", "text/html") == (
        "the server sent an HTML page (Content-Type text/html), not the file"
    )
    assert error_page(b"<html><body>404</body></html>", "a.zip") == (
        "the server sent an HTML page, not the file (a quota, login or error page)"
    )


def test_json_error_body_for_a_file_that_is_no_json() -> None:
    assert error_page(GOOGLE_403, "video.mp4") == (
        "the server sent a JSON error, not the file: "
        "The download quota for this file has been exceeded."
    )
    assert error_page(b'{"errors": ["no such object"]}', "x.tar.gz") == (
        'the server sent a JSON error, not the file: {"errors": ["no such object"]}'
    )


@pytest.mark.parametrize(
    ("head", "name", "content_type"),
    [
        (b"\x00\x00\x00\x18ftypmp42isom", "a.mp4", "video/mp4"),
        (b"PK\x03\x04\x14\x00\x00\x00", "a.zip", "application/zip"),
        (b"\x1a\x45\xdf\xa3<html>", "a.mkv", None),  # markup inside binary data
        (b"", "a.avi", "application/octet-stream"),  # a resumed transfer: no start to look at
        (b"<!DOCTYPE html><html><title>Hi</title>", "index.html", "text/html"),  # asked for
        (GOOGLE_403, "errors.json", "application/json"),  # JSON asked for: the checksum decides
        (b'{"videos": [], "sentences": []}', "MSRVTT_data", None),  # JSON data, no error
        (b"video_id\nvideo0\n", "MSRVTT_train.9k.csv", "text/csv"),
    ],
)
def test_files_are_not_error_pages(head: bytes, name: str, content_type: str | None) -> None:
    assert error_page(head, name, content_type) is None


def test_only_the_first_kilobyte_is_read() -> None:
    late = b" " * SNIFF_BYTES + b"<html><title>late</title>"
    assert error_page(late, "a.mp4") is None
