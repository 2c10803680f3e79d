"""`make didemo-videos`: download every URL of a list file into one folder, in parallel.

The list has one URL per line, optionally followed by a tab and the file name to save it as
(else the URL's last path segment); blank lines and `#` comments are skipped. Each file is
downloaded under a temporary name beside its final one and renamed when complete; an interrupted
download resumes from where it stopped (HTTP Range), transient errors are retried with backoff,
and a dead link is recorded and skipped, never the end of the run. An HTML page served where a file
was expected (a login, quota or error page) is a failure, not a download. Every URL's outcome is
written as one JSON line; a rerun requests only the files that are not there yet.
"""

from __future__ import annotations

import argparse
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import orjson

from pyutils.core.atomic import TEMP_MARK, atomic_write_bytes
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import read_text
from pyutils.core.parallel import run_parallel
from pyutils.core.report import FailureLog, log, track

# Statuses worth asking again for: the server may answer differently in a moment.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    url: str
    name: str
    line: int


def read_list(path: Path) -> list[Entry]:
    """Parse the list file; a bad line is a usage error naming the file and line."""
    text = read_text(path, "URL list", "set URLS= to a file of URLs")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        url, _, name = (part.strip() for part in line.partition("\t"))
        where = f"{path}:{number}"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"{where}: not an http(s) URL: {url!r}")
        name = name or unquote(parts.path.rpartition("/")[2])
        if not name or name.startswith(".") or "/" in name or "\0" in name:
            raise UserError(f"{where}: no usable file name for {url!r}; add a tab and a name")
        if name in seen:
            raise UserError(f"{where}: {name!r} is also the file name on line {seen[name]}")
        seen[name] = number
        entries.append(Entry(url, name, number))
    return entries


class _Retry(Exception):
    """A failure that may go away: a cut connection, a timeout, a 5xx."""


class _GiveUp(Exception):
    """A failure that will not: a 404, an HTML page instead of the file."""


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def _content_range_total(header: str | None) -> int | None:
    total = (header or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _download(url: str, partial: Path, timeout: float, html_ok: bool) -> None:
    """Fetch `url` into `partial`, continuing from its current size; raise _Retry or _GiveUp."""
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "vlprep-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            if _content_range_total(exc.headers.get("Content-Range")) == offset:
                return  # the partial file already holds every byte
            partial.unlink()
            raise _Retry(f"HTTP 416 for bytes {offset}- (the file changed?); restarting") from None
        message = f"HTTP {exc.code} {exc.reason}"
        raise (_Retry if exc.code in RETRY_STATUSES else _GiveUp)(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Retry(str(getattr(exc, "reason", exc))) from None
    with response:
        resumed = response.status == 206
        if resumed and not (response.headers.get("Content-Range") or "").startswith(
            f"bytes {offset}-"
        ):
            partial.unlink()
            raise _Retry(
                f"server resumed at the wrong offset ({response.headers['Content-Range']})"
            )
        start = offset if resumed else 0
        if not html_ok and response.headers.get_content_type() == "text/html":
            raise _GiveUp("the server sent an HTML page (Content-Type text/html), not the file")
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length and length.isdigit() else None
        try:
            with partial.open("ab" if resumed else "wb") as out:
                # read1: what has arrived so far, so a killed run keeps what it received
                while chunk := response.read1(CHUNK):
                    if not html_ok and out.tell() == 0 and _looks_like_html(chunk):
                        raise _GiveUp("the server sent an HTML page, not the file")
                    out.write(chunk)
        except (http.client.HTTPException, OSError) as exc:
            raise _Retry(f"transfer broken: {exc!r}") from None
    size = partial.stat().st_size
    if expected is not None and size != expected:
        raise _Retry(f"connection closed after {size} of {expected} bytes")


def fetch_one(task: dict) -> dict:
    """Worker: download one URL with retries; never raises, returns its status record."""
    url, target = task["url"], Path(task["target"])
    record = {"url": url, "name": target.name}
    if target.exists():
        return {**record, "status": "present", "bytes": target.stat().st_size, "attempts": 0}
    # A fixed partial name (no pid), so that the next run resumes it.
    partial = target.with_name(f".{target.name}{TEMP_MARK}-partial")
    html_ok = target.suffix.lower() in (".html", ".htm")
    error = ""
    for attempt in range(1, task["retries"] + 2):
        try:
            _download(url, partial, task["timeout"], html_ok)
            os.replace(partial, target)
            size = target.stat().st_size
            return {**record, "status": "downloaded", "bytes": size, "attempts": attempt}
        except _GiveUp as exc:
            partial.unlink(missing_ok=True)
            return {**record, "status": "failed", "error": str(exc), "attempts": attempt}
        except (_Retry, OSError) as exc:
            error = str(exc)
            if attempt <= task["retries"]:
                time.sleep(task["backoff"] * 2 ** (attempt - 1))
    return {**record, "status": "failed", "error": error, "attempts": task["retries"] + 1}


def fetch_all(
    entries: list[Entry],
    dest: Path,
    jobs: int,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    report: Path | None = None,
) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    report = report or dest / "fetch_status.jsonl"
    tasks = [
        {
            "url": entry.url,
            "target": str(dest / entry.name),
            "retries": retries,
            "timeout": timeout,
            "backoff": backoff,
        }
        for entry in entries
    ]
    present = sum((dest / entry.name).exists() for entry in entries)
    log(f"fetch: {len(entries)} URLs, {present} already in {dest}")
    summary = FailureLog("fetch")
    by_name = {}
    results = run_parallel(fetch_one, tasks, jobs, backend="threading")
    for record in track(results, len(tasks), "fetch"):
        by_name[record["name"]] = record
        if record["status"] == "failed":
            summary.fail(f"{record['name']} ({record['url']})", record["error"])
        else:
            summary.ok()
    lines = (by_name[entry.name] for entry in entries)  # list order: same file whatever JOBS
    atomic_write_bytes(
        report, b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in lines)
    )
    status = summary.finish()
    log(f"  status of every URL: {report}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyutils.fetch.fetch_list", description=__doc__)
    parser.add_argument("list", type=Path, help="file of URLs: `URL` or `URL<TAB>file name`")
    parser.add_argument("dest", type=Path, help="folder to download into")
    parser.add_argument("--jobs", type=int, default=8, help="parallel downloads (default 8)")
    parser.add_argument("--retries", type=int, default=3, help="retries per URL (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay, doubling")
    parser.add_argument("--report", type=Path, help="JSON lines (default DEST/fetch_status.jsonl)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.retries < 0 or args.timeout <= 0 or args.backoff < 0:
        raise UserError("--jobs must be >= 1, --retries and --backoff >= 0, --timeout > 0")
    entries = read_list(args.list)
    return fetch_all(
        entries, args.dest, args.jobs, args.retries, args.timeout, args.backoff, args.report
    )


if __name__ == "__main__":
    run_cli(main)
