"""URL-list downloads: every URL of a list file into one folder, in parallel (`make didemo-videos`).

Use this path for many files that have no registry entry and no checksum known ahead, such as
DiDeMo's Flickr originals or a user's own list; a dataset's fixed files (archives, annotations)
go through `pyutils.fetch.download`, which verifies them against the registry.

The list has one URL per line, optionally followed by a tab and the file name to save it as
(else the URL's last path segment); blank lines and `#` comments are skipped. Each file is
downloaded under a temporary name beside its final one and renamed when complete; an interrupted
download resumes from where it stopped (HTTP Range), transient errors are retried with backoff,
and a dead link is recorded and skipped, never the end of the run. An HTML page or a JSON error
served where a file was expected (a login, quota or error page, see `pyutils.fetch.sniff`) is a
failure, not a download. Every URL's outcome is written as one JSON line to
`DEST/fetch_status.jsonl`, the failures to `DEST/fetch_failures.jsonl`; a rerun requests only the
files that are not there yet.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pyutils.core.atomic import check_writable_folder, temporary_name
from pyutils.core.cli import Parser
from pyutils.core.errors import UserError, run_cli
from pyutils.core.jsonio import read_text, write_jsonl
from pyutils.core.parallel import ParallelOptions
from pyutils.core.report import FailureLog, failure_list, log, plural, say
from pyutils.core.stage import add_parallel_options, parallel_options, run_stage
from pyutils.fetch.sniff import SNIFF_BYTES, error_page

# Statuses worth asking again for: the server may answer differently in a moment.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
STATUS_REPORT = "fetch_status.jsonl"
# The stage's own files in DEST: a list entry of that name would overwrite them.
RESERVED_NAMES = frozenset({STATUS_REPORT, failure_list("fetch", "").name})


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
        if name in RESERVED_NAMES:
            raise UserError(f"{where}: {name!r} is the name of fetch's own report; rename it")
        seen[name] = number
        entries.append(Entry(url, name, number))
    return entries


class _Retry(Exception):
    """A failure that may go away: a cut connection, a timeout, a 5xx."""


class _GiveUp(Exception):
    """A failure that will not: a 404, an HTML page instead of the file."""


def _content_range_total(header: str | None) -> int | None:
    total = (header or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed to http(s) only: a list of video URLs has no business on ftp://,
    file:// or anything else urllib would otherwise open."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        scheme = urlsplit(newurl).scheme
        if scheme not in ("http", "https"):
            raise _GiveUp(f"HTTP {code} redirect to {newurl!r}: only http(s) is followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _download(url: str, partial: Path, name: str, timeout: float) -> bool:
    """Fetch `url` into `partial` (for the file `name`), continuing from its current size; raise
    _Retry or _GiveUp. True when the size was verified against the server's Content-Length."""
    offset = partial.stat().st_size if partial.exists() else 0
    # identity: the bytes of the file itself, which is what is saved, resumed and measured.
    headers = {"User-Agent": "vlprep-fetch", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # urllib gave up following: a loop, or too many hops
            raise _GiveUp(
                f"redirect loop (HTTP {exc.code} {exc.reason}, again and again)"
            ) from None
        if exc.code == 416 and offset:
            if _content_range_total(exc.headers.get("Content-Range")) == offset:
                return True  # the partial file already holds every byte
            partial.unlink()
            raise _Retry(f"HTTP 416 for bytes {offset}- (the file changed?); restarting") from None
        message = f"HTTP {exc.code} {exc.reason}"
        raise (_Retry if exc.code in RETRY_STATUSES else _GiveUp)(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retry(
            _stalled(timeout) if isinstance(reason, TimeoutError) else str(reason)
        ) from None
    with response:
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise _GiveUp(
                f"the server sent it {encoding}-encoded (Content-Encoding: {encoding}) although "
                "asked for the file as it is; saving that would not be the file: download it "
                f"with a client that decodes it (curl --compressed -o {name!r} URL) into the folder"
            )
        resumed = response.status == 206
        if resumed and not (response.headers.get("Content-Range") or "").startswith(
            f"bytes {offset}-"
        ):
            partial.unlink()
            raise _Retry(
                f"server resumed at the wrong offset ({response.headers['Content-Range']})"
            )
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length and length.isdigit() else None
        try:
            # The start of the file (already checked when resuming): the file or an error page?
            head = b"" if resumed else response.read(SNIFF_BYTES)
            problem = error_page(head, name, response.headers.get_content_type())
            if problem is not None:
                raise _GiveUp(problem)
            with partial.open("ab" if resumed else "wb") as out:
                out.write(head)
                # read1: what has arrived so far, so a killed run keeps what it received
                while chunk := response.read1(CHUNK):
                    out.write(chunk)
        except TimeoutError:
            raise _Retry(_stalled(timeout)) from None
        except (http.client.HTTPException, OSError) as exc:
            raise _Retry(f"transfer broken: {exc!r}") from None
    size = partial.stat().st_size
    if expected is not None and size != expected:
        raise _Retry(f"connection closed after {size} of {expected} bytes")
    return expected is not None


def _stalled(timeout: float) -> str:
    return f"stalled: no byte for {timeout:g} s (the stall limit, FETCH_TIMEOUT=)"


@dataclass(frozen=True)
class FetchTask:
    """One URL to download into `target`: the work unit."""

    url: str
    target: str
    retries: int
    timeout: float
    backoff: float


@dataclass(frozen=True)
class FetchResult:
    """One URL's outcome: present (there before), downloaded, or failed with its error."""

    url: str
    name: str
    status: str
    attempts: int
    bytes: int | None = None
    error: str = ""
    # False: the server announced no length, so a transfer cut short cannot be told from a
    # whole one; the stages that read the file (transcode, frames) check what it holds.
    verified: bool = True

    @property
    def item(self) -> str:
        return f"{self.name} ({self.url})"

    def record(self) -> dict[str, Any]:
        """Its line in fetch_status.jsonl."""
        detail = {"error": self.error} if self.status == "failed" else {"bytes": self.bytes}
        fields = {"url": self.url, "name": self.name, "status": self.status}
        unverified = {} if self.verified else {"verified": False}
        return {**fields, **detail, **unverified, "attempts": self.attempts}


def fetch_one(task: FetchTask) -> FetchResult:
    """Worker: download one URL with retries; never raises, returns its outcome."""
    target = Path(task.target)
    if target.exists():
        return FetchResult(task.url, target.name, "present", 0, target.stat().st_size)
    # A fixed partial name (no pid), so that the next run resumes it.
    partial = target.with_name(temporary_name(target.name, "-partial"))
    error = ""
    for attempt in range(1, task.retries + 2):
        try:
            verified = _download(task.url, partial, target.name, task.timeout)
            os.replace(partial, target)
            size = target.stat().st_size
            return FetchResult(task.url, target.name, "downloaded", attempt, size, "", verified)
        except _GiveUp as exc:
            partial.unlink(missing_ok=True)
            return FetchResult(task.url, target.name, "failed", attempt, error=str(exc))
        except (_Retry, OSError) as exc:
            error = str(exc) or type(exc).__name__
            if attempt <= task.retries:
                time.sleep(task.backoff * 2 ** (attempt - 1))
    return FetchResult(task.url, target.name, "failed", task.retries + 1, error=error)


def fetch_all(
    entries: list[Entry],
    dest: Path,
    parallel: ParallelOptions,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    report: Path | None = None,
) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    report = report or dest / STATUS_REPORT
    tasks = [
        FetchTask(entry.url, str(dest / entry.name), retries, timeout, backoff) for entry in entries
    ]
    present = sum((dest / entry.name).exists() for entry in entries)
    log(
        f"fetch: {plural(len(entries), 'URL')}, {present} already in {dest}; "
        f"{plural(parallel.jobs, 'download')} at once, {plural(retries, 'retry', 'retries')} "
        f"per URL, given up after {timeout:g} s without a byte (FETCH_TIMEOUT)"
    )
    failures = FailureLog("fetch", dest)
    by_name = {
        result.name: result
        for result in run_stage("fetch", fetch_one, tasks, parallel, failures, [str(dest)])
    }
    # In list order: the same file whatever JOBS is.
    write_jsonl(report, (by_name[entry.name].record() for entry in entries))
    status = failures.finish()
    unverified = [r.name for r in by_name.values() if not r.verified]
    if unverified:
        say(
            f"  {plural(len(unverified), 'file')} came without a length from the server, so a "
            f"cut transfer cannot be told from a whole one (first: {unverified[0]}); transcode "
            "and frames check what they hold"
        )
    say(f"  status of every URL: {report}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.fetch.fetch_list",
        description=__doc__,
        make_names={
            "list": "URLS",
            "dest": "DIDEMO_SRC",
            "jobs": "FETCH_JOBS",
            "retries": "RETRIES",
            "timeout": "FETCH_TIMEOUT",
        },
    )
    parser.add_argument("list", type=Path, help="file of URLs: `URL` or `URL<TAB>file name`")
    parser.add_argument("dest", type=Path, help="folder to download into")
    add_parallel_options(parser, "threading", "downloads", jobs=8)
    parser.add_argument("--retries", type=int, default=3, help="retries per URL (default 3)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="stall limit: seconds without a byte before a transfer is retried (default 60)",
    )
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay, doubling")
    parser.add_argument("--report", type=Path, help="JSON lines (default DEST/fetch_status.jsonl)")
    args = parser.parse_args(argv)
    if args.retries < 0 or args.timeout <= 0 or args.backoff < 0:
        raise UserError("--retries and --backoff must be >= 0, --timeout > 0")
    entries = read_list(args.list)
    check_writable_folder(args.dest, "DIDEMO_SRC")
    parallel = parallel_options(args)
    return fetch_all(
        entries, args.dest, parallel, args.retries, args.timeout, args.backoff, args.report
    )


if __name__ == "__main__":
    run_cli(main)
