"""Registry downloads: the files datasets are made from, each known by name, size and checksum.

Use this path for any file a dataset needs that has a fixed identity (archives, annotation and
split files), so that it is verified before use; `make <dataset>` fetches through it. For a long
list of URLs with no checksums known ahead (DiDeMo's Flickr originals, user lists), use
`pyutils.fetch.fetch_list` instead.

Every file comes from the registry `scripts/downloads.tsv` (name, size, checksum, sources, note).
`scripts/fetch.sh` (wget -c, gdown, kaggle) writes it to `$(DATA)/downloads/<name>.part`, which a
killed run resumes; the result is checked (not an HTML page or a JSON error, see
`pyutils.fetch.sniff`; the expected size and checksum) and only then renamed to `<name>`. A file
that fails a check is kept aside as `<name>.rejected` and the next source is tried. A file already
placed in the downloads folder is used as is once it verifies (offline machines, mirrors).

Which checksum applies: `<VAR>_SHA256` when given (`none` skips verification, with a warning),
else the registry's, else the one recorded in `checksums.lock.tsv` for the first download that
proved itself: the step that uses a file calls `record_proven` once its contents were extracted
or read and placed, so a damaged first download is never locked in as the truth.

A transfer cut short is resumed only into the same file: the first answer's ETag, Last-Modified
and length are kept beside the `.part` (`<name>.part.validators`), and a resumed answer that is not
a 206 for that same entity (the file changed on the server, or the server ignores Range and sends
it whole) makes the transfer start again from zero instead of splicing two files.
`<VAR>_URL` (space-separated, tried in order) replaces the registry's sources; a mirror serves the
same bytes, so the registry checksum still applies to it.

    python -m pyutils.fetch.download fetch NAME --data DATA [--var CALTECH101]
    python -m pyutils.fetch.download verify --data DATA      # re-hash what is there (make verify)
    python -m pyutils.fetch.download register --data DATA    # copy locked checksums to the registry
"""

from __future__ import annotations

import collections
import functools
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from pyutils import REPOSITORY
from pyutils.core.atomic import atomic_write_text, exclusive_lock, remove_stale_temporaries
from pyutils.core.cli import Parser
from pyutils.core.errors import EXIT_ITEM_FAILURES, UserError, error_line, run_cli
from pyutils.core.jsonio import parse_json
from pyutils.core.report import log, stderr_is_terminal, track
from pyutils.fetch.extract import archive_kind, copy_member
from pyutils.fetch.sniff import SNIFF_BYTES, error_page

REPO = REPOSITORY
REGISTRY = REPO / "scripts" / "downloads.tsv"
FETCH_SCRIPT = REPO / "scripts" / "fetch.sh"
LOCK_NAME = "checksums.lock.tsv"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
CHUNK = 8 << 20


class DownloadError(Exception):
    """No source gave a verified file: the dataset that needs it fails (exit 1)."""


class SourceFailed(Exception):
    """One source did not give a verified file; `usage` when the user must act (no credentials)."""

    def __init__(self, reason: str, usage: bool = False) -> None:
        super().__init__(reason)
        self.usage = usage


@dataclass(frozen=True)
class Entry:
    """One registry line: a file, what it must be, and where it can come from."""

    name: str
    size: int | None
    checksum: str | None  # "md5:<hex>" or "sha256:<hex>", as the source publishes it
    sources: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Expected:
    checksum: str | None
    size: int | None
    record: bool  # no checksum known: record this one once it has proved itself
    origin: str = ""  # where the expectation comes from, when a mismatch must say it (the lock)


# Downloads accepted with no checksum known, not yet proved by their use: path -> (size, sha256).
# Kept in memory, so only the run that checked a file locks it, once the file has been used.
_UNPROVEN: dict[Path, tuple[int, str]] = {}


# ---- registry and lock -----------------------------------------------------------------------


def read_registry(path: Path = REGISTRY) -> dict[str, Entry]:
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise UserError(
                f"{path}:{number}: expected 5 tab-separated fields, found {len(fields)}"
            )
        name, size, checksum, sources, note = fields
        entries[name] = Entry(
            name=name,
            size=None if size == "-" else int(size),
            checksum=None if checksum == "-" else _checksum(checksum, f"{path}:{number}"),
            sources=() if sources == "-" else tuple(sources.split()),
            note=note,
        )
    return entries


def write_registry(entries: dict[str, Entry], path: Path = REGISTRY) -> None:
    """Rewrite the registry's lines, keeping its header comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    rows = [
        "\t".join(
            (
                e.name,
                "-" if e.size is None else str(e.size),
                e.checksum or "-",
                " ".join(e.sources) or "-",
                e.note,
            )
        )
        for e in entries.values()
    ]
    atomic_write_text(path, "\n".join(header + rows) + "\n")


def read_lock(downloads: Path) -> dict[str, tuple[int, str]]:
    """name -> (size, sha256) of the first proven download of each file with no known checksum."""
    lock = downloads / LOCK_NAME
    seen: dict[str, tuple[int, str]] = {}
    if lock.exists():
        for line in lock.read_text(encoding="utf-8").splitlines():
            name, size, sha256 = line.split("\t")
            seen.setdefault(name, (int(size), sha256))  # the first line for a name wins
    return seen


def _record_lock(downloads: Path, name: str, size: int, sha256: str) -> None:
    # One short append: atomic with O_APPEND, so concurrent runs cannot interleave a line.
    with open(downloads / LOCK_NAME, "a", encoding="utf-8") as handle:
        handle.write(f"{name}\t{size}\t{sha256}\n")


def _checksum(text: str, where: str) -> str:
    """Normalise a checksum to `algo:hex`; a bare 64-digit hex is a sha256."""
    value = text.strip().lower()
    if re.fullmatch(r"[0-9a-f]{64}", value):
        value = f"sha256:{value}"
    if not re.fullmatch(r"md5:[0-9a-f]{32}|sha256:[0-9a-f]{64}", value):
        raise UserError(
            f"{where}: {text!r} is not a checksum (expected sha256:<64 hex>, md5:<32 hex>)"
        )
    return value


# ---- checks on a downloaded file -------------------------------------------------------------


def content_problem(path: Path, name: str) -> str | None:
    """Why `path` is not what `name` promises (empty, an error page, not an archive), or None."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        return "the server sent an empty file"
    problem = error_page(head, name)
    if problem is not None:
        return problem
    if name.endswith(ARCHIVE_SUFFIXES) and archive_kind(path) is None:
        if head.lstrip().startswith((b"{", b"[")):
            return f"the server sent JSON, not an archive: {head[:200].decode('utf-8', 'replace')}"
        return f"not an archive (starts with {head[:16]!r})"
    if name.endswith(".json"):
        try:
            data = parse_json(path.read_bytes(), path)
        except UserError as exc:
            return f"not the JSON file ({exc})"
        if _is_error_object(data):
            return f"the server sent a JSON error, not the file: {orjson.dumps(data)[:200]!r}"
    return None


# An API's error answer: {"error": {"code": 403, ...}}, or GitHub's {"message": ..., ...}. No
# registry JSON file is an object with an "error" key or with only these keys.
ERROR_KEYS = frozenset({"error", "errors"})
ERROR_ONLY_KEYS = frozenset({"message", "documentation_url", "status", "code"})


def _is_error_object(data: object) -> bool:
    if not isinstance(data, dict) or not data:
        return False
    return bool(data.keys() & ERROR_KEYS) or data.keys() <= ERROR_ONLY_KEYS


def digests(path: Path, label: str) -> tuple[str, str]:
    """(md5, sha256) of a file in one read, with progress for big files."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    chunks = -(-path.stat().st_size // CHUNK)
    with open(path, "rb") as handle:
        for chunk in track(iter(lambda: handle.read(CHUNK), b""), chunks, f"verify {label}"):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def mismatch(path: Path, label: str, expected: Expected) -> tuple[str | None, str]:
    """(what differs or None, sha256 of the file)."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        return f"size {size} bytes, expected {expected.size}{expected.origin}", ""
    md5, sha256 = digests(path, label)
    if expected.checksum:
        algo, want = expected.checksum.split(":")
        got = md5 if algo == "md5" else sha256
        if got != want:
            return f"{algo} {got}, expected {want}{expected.origin}", sha256
    return None, sha256


# ---- fetching --------------------------------------------------------------------------------


def fetch(
    name: str,
    downloads: Path,
    var: str | None = None,
    overrides: Mapping[str, str] | None = None,
    registry: dict[str, Entry] | None = None,
) -> Path:
    """Return `downloads/name`, verified, fetching it from the first source that works."""
    registry = read_registry() if registry is None else registry
    overrides = os.environ if overrides is None else overrides
    if name not in registry:
        raise UserError(f"{name}: not in the registry {REGISTRY}; add a line for it")
    entry = registry[name]
    url = (overrides.get(f"{var}_URL") or "").strip() if var else ""
    sha = (overrides.get(f"{var}_SHA256") or "").strip() if var else ""
    sources = tuple(url.split()) if url else entry.sources
    downloads.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(downloads)
    expected = _expected(entry, downloads, sha, f"{var}_SHA256")
    final = downloads / name
    with exclusive_lock(downloads / f".{name}.lock"):
        if final.exists():
            try:
                return _accept(final, final, expected, downloads)
            except SourceFailed as exc:
                log(f"{final}: {exc}; fetching it again")
        failures = []
        part = downloads / f"{name}.part"
        for source in sources:
            try:
                container = _transfer(source, part, downloads, overrides, registry)
                accepted = _accept(part, final, expected, downloads)
            except SourceFailed as exc:
                failures.append((source, exc))
                continue
            if container is not None:
                record_proven(container)  # it gave a file that passed its own checks
            return accepted
    by_hand = f"put the file there yourself: {final} ({entry.note}), then rerun"
    if not sources:
        hint = f" (or set {var}_URL)" if var else ""
        raise UserError(f"{name}: no download source;\n{by_hand}{hint}")
    # One short line per source, and what to do last, on its own line.
    reasons = "".join(f"\n  {source}: {' '.join(str(exc).split())}" for source, exc in failures)
    message = f"{name}: no source worked:{reasons}\n{by_hand}"
    if all(exc.usage for _, exc in failures):
        raise UserError(message)
    raise DownloadError(message)


# gdown retries a failed name resolution FETCH_TRIES times with a pause between (about half a
# minute per Drive source offline); wget and kaggle give up on it at once by themselves.
DRIVE_HOST = "drive.google.com"


def _reachable(source: str) -> None:
    """Fail a Drive source at once when its host name does not resolve (no network, no DNS)."""
    if not source.startswith("gdrive:"):
        return
    host = DRIVE_HOST
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        raise SourceFailed(f"cannot resolve {host} (no network, or no DNS?)") from None


def _expected(entry: Entry, downloads: Path, override: str, variable: str) -> Expected:
    if override.lower() == "none":
        log(f"warning: {entry.name}: not verified ({variable}=none)")
        return Expected(None, None, record=False)
    if override:
        return Expected(_checksum(override, variable), None, record=False)
    if entry.checksum:
        return Expected(entry.checksum, entry.size, record=False)
    locked = read_lock(downloads).get(entry.name)
    if locked:
        origin = f" (recorded in {downloads / LOCK_NAME}; if that is wrong, delete its line)"
        return Expected(f"sha256:{locked[1]}", locked[0], record=False, origin=origin)
    return Expected(None, entry.size, record=True)


def _accept(candidate: Path, final: Path, expected: Expected, downloads: Path) -> Path:
    """Check `candidate` and rename it to `final`; a bad file is kept aside, never used."""
    problem = content_problem(candidate, final.name)
    sha256 = ""
    if problem is None:
        problem, sha256 = mismatch(candidate, final.name, expected)
    _validators_of(candidate).unlink(missing_ok=True)  # the transfer is over either way
    if problem:
        aside = downloads / f"{final.name}.rejected"
        os.replace(candidate, aside)
        raise SourceFailed(f"{problem}; kept as {aside}")
    os.replace(candidate, final)
    if expected.record:
        _UNPROVEN[final] = (final.stat().st_size, sha256)
    return final


def record_proven(path: Path) -> None:
    """Lock the checksum of `path`, a download with no published checksum, now that it has proved
    itself (extracted, or read, and placed). Nothing to do for files with a known checksum."""
    pending = _UNPROVEN.pop(path, None)
    if pending is None:
        return
    downloads = path.parent
    with exclusive_lock(downloads / f".{path.name}.lock"):
        if path.name not in read_lock(downloads):
            _record_lock(downloads, path.name, *pending)
            log(f"{path.name}: no published checksum; recorded sha256 {pending[1]} in {LOCK_NAME}")


def _transfer(
    source: str,
    part: Path,
    downloads: Path,
    overrides: Mapping[str, str],
    registry: dict[str, Entry],
) -> Path | None:
    """Fetch `source` into `part`; return the registry archive it came out of, if any."""
    if source.startswith("member:"):
        container, _, member = source.removeprefix("member:").partition(":")
        try:
            archive = fetch(container, downloads, overrides=overrides, registry=registry)
            copy_member(archive, member, part)
        except (UserError, DownloadError) as exc:
            # Its reasons, without its own "put the file there" line: that is said once, last.
            reason = " ".join(line.strip() for line in str(exc).splitlines()[:-1]) or str(exc)
            raise SourceFailed(reason, usage=isinstance(exc, UserError)) from None
        return archive
    _reachable(source)
    # gdown and kaggle come with the venv, which need not be on PATH (make runs .venv/bin/python).
    env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:{Path(sys.executable).parent}"}
    if stderr_is_terminal():
        env.setdefault("FETCH_PROGRESS", "bar:force:noscroll")
    # gdown and kaggle keep their own state; HTTP answers are what wget reports.
    web = source.startswith(("http://", "https://"))
    for attempt in range(2):
        same = _SameEntity(part, resuming=web and part.exists() and part.stat().st_size > 0)
        if same.complete():
            return None  # a killed run had it all: verification judges it
        encoded: list[str] = []
        watch = functools.partial(_identity_only, encoded, same.check)
        status, tail = _run_streaming([str(FETCH_SCRIPT), source, str(part)], env, watch)
        if encoded:
            part.unlink(missing_ok=True)
            _validators_of(part).unlink(missing_ok=True)
            raise SourceFailed(
                f"the server sent it {encoded[0]}-encoded (Content-Encoding: {encoded[0]}) "
                "although wget asks for the file as it is; that would not be the file"
            )
        if part.exists() and part.stat().st_size == 0:
            part.unlink()  # wget creates its output before it knows the request failed
        if same.changed is None:
            break
        part.unlink(missing_ok=True)
        _validators_of(part).unlink(missing_ok=True)
        if attempt:
            raise SourceFailed(f"the file kept changing on the server ({same.changed})")
        log(f"{source}: {same.changed}; fetching it again from the start")
    if status != 0:
        if "redirections exceeded" in tail:
            tail = f"redirect loop ({tail})"
        raise SourceFailed(tail or f"fetch.sh exit status {status}", usage=status == 2)
    return None


def _identity_only(
    encoded: list[str],
    then: Callable[[int, dict[str, str]], bool],
    status: int,
    headers: dict[str, str],
) -> bool:
    """Stop wget at an answer whose body is encoded (wget asks `Accept-Encoding: identity` and
    saves what comes as it is): note the encoding in `encoded`; else ask `then`."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if status in (200, 206) and encoding not in ("", "identity"):
        encoded.append(encoding)
        return False
    return then(status, headers)


# ---- resuming into the same file only --------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """What identifies the file an HTTP server sent: its validators and its full length."""

    etag: str | None
    last_modified: str | None
    length: int | None

    @classmethod
    def of(cls, status: int, headers: dict[str, str]) -> Entity:
        total = headers.get("content-length") if status == 200 else None
        if status == 206:
            total = headers.get("content-range", "").rpartition("/")[2]
        return cls(
            headers.get("etag"),
            headers.get("last-modified"),
            int(total) if total and total.isdigit() else None,
        )

    def differs_from(self, first: Entity) -> str | None:
        for label, ours, theirs in zip(
            ("ETag", "Last-Modified", "length"),
            asdict(self).values(),
            asdict(first).values(),
            strict=True,
        ):
            if ours is not None and theirs is not None and ours != theirs:
                return f"{label} {ours}, was {theirs}"
        return None


def _validators_of(part: Path) -> Path:
    return part.with_name(part.name + ".validators")


class _SameEntity:
    """Watches the answers wget reports: the first full answer's entity is kept beside the
    `.part`; any later answer (a retry, a later run) must be a 206 for that same entity, or the
    transfer is stopped and `changed` says why."""

    def __init__(self, part: Path, resuming: bool) -> None:
        self.part = part
        self.changed: str | None = None
        self.first: Entity | None = None
        if resuming:
            try:
                self.first = Entity(**orjson.loads(_validators_of(part).read_bytes()))
            except (OSError, orjson.JSONDecodeError, TypeError):
                # A .part of unknown origin cannot be told to be the same file: start afresh.
                part.unlink()

    def complete(self) -> bool:
        return (
            self.first is not None
            and self.first.length is not None
            and self.part.stat().st_size == self.first.length
        )

    def check(self, status: int, headers: dict[str, str]) -> bool:
        """Whether wget may go on after this answer (redirects and errors are its own business)."""
        if status not in (200, 206):
            return True
        entity = Entity.of(status, headers)
        if self.first is None and status == 200:
            self.first = entity
            atomic_write_text(_validators_of(self.part), orjson.dumps(asdict(entity)).decode())
            return True
        if self.first is None or status != 206:
            self.changed = f"the server answered {status} to a resumed transfer"
        else:
            difference = entity.differs_from(self.first)
            if difference:
                self.changed = f"the file changed on the server ({difference})"
        return self.changed is None


_RESPONSE_LINE = re.compile(r"  (?:HTTP/[\d.]+ (\d{3})\b.*|([A-Za-z][\w-]*): (.*))")


PROGRESS_SECONDS = 10.0


def _run_streaming(
    args: list[str], env: dict[str, str], on_response: Callable[[int, dict[str, str]], bool]
) -> tuple[int, str]:
    """Run a tool, passing its output through to stderr; return (status, its last message line).

    The HTTP answers wget prints (--server-response: a status line and headers, indented by two
    spaces) are handed to `on_response`; when it returns False the tool is stopped."""
    tail: collections.deque[bytes] = collections.deque(maxlen=64)
    answer: list = []  # [status, headers] of the answer being read
    pending = b""

    def handle(line: str) -> bool:
        match = _RESPONSE_LINE.fullmatch(line)
        if match and match.group(2) and answer:
            answer[1][match.group(2).lower()] = match.group(3).strip()
            return True
        go_on = not answer or on_response(*answer)  # any other line ends the answer
        answer[:] = [int(match.group(1)), {}] if match and match.group(1) else []
        return go_on

    # The tools' own logs (wget's headers and dots) on a terminal or with V=1; elsewhere (logs,
    # CI, pipes) one line every PROGRESS_SECONDS saying how far the download has come.
    verbose = bool(env.get("V")) or stderr_is_terminal()
    target, last_said = Path(args[-1]), time.monotonic()
    with subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    ) as proc:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            if verbose:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()
            elif time.monotonic() - last_said >= PROGRESS_SECONDS:
                last_said = time.monotonic()
                size = target.stat().st_size if target.exists() else 0
                log(f"{target.name.removesuffix('.part')}: {size / 1e6:,.1f} MB so far")
            tail.append(chunk)
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            if not all(handle(line.decode("utf-8", "replace")) for line in lines):
                proc.terminate()
        handle("")
    lines = [s.strip() for s in re.split(r"[\r\n]", b"".join(tail).decode("utf-8", "replace"))]
    last = next((line for line in reversed(lines) if line), "")
    return proc.returncode, last


# ---- verify and register ---------------------------------------------------------------------


def verify(downloads: Path, registry: dict[str, Entry] | None = None) -> tuple[Table, int]:
    """Re-hash every registry file present in `downloads`; (table, number of mismatches)."""
    registry = read_registry() if registry is None else registry
    locked = read_lock(downloads)
    table = Table(title=f"downloads in {downloads}")
    for column in ("file", "bytes", "checked against", "result"):
        table.add_column(column)
    bad = 0
    for entry in registry.values():
        path = downloads / entry.name
        if (downloads / f"{entry.name}.part").exists() and not path.exists():
            table.add_row(entry.name, "-", "-", "partial download: the next make resumes it")
        if not path.exists():
            continue
        if entry.checksum:
            expected, against = Expected(entry.checksum, entry.size, False), "registry"
        elif entry.name in locked:
            size, sha256 = locked[entry.name]
            expected, against = Expected(f"sha256:{sha256}", size, False), LOCK_NAME
        else:
            expected, against = Expected(None, None, False), "nothing (no checksum known)"
        problem, _ = mismatch(path, entry.name, expected)
        bad += problem is not None
        result = f"MISMATCH: {problem}" if problem else "ok" if expected.checksum else "unverified"
        table.add_row(entry.name, f"{path.stat().st_size:,}", against, result)
    return table, bad


def register(downloads: Path, path: Path = REGISTRY) -> list[str]:
    """Copy the lock file's checksums into the registry for files that have none; return names."""
    entries = read_registry(path)
    locked = read_lock(downloads)
    filled = [name for name, e in entries.items() if e.checksum is None and name in locked]
    for name in filled:
        size, sha256 = locked[name]
        entries[name] = replace(entries[name], size=size, checksum=f"sha256:{sha256}")
    if filled:
        write_registry(entries, path)
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m pyutils.fetch.download", description=__doc__, make_names={"data": "DATA"}
    )
    parser.add_argument("command", choices=("fetch", "verify", "register"))
    parser.add_argument("name", nargs="?", help="registry file name (fetch)")
    parser.add_argument("--data", default="datasets", help="dataset root ($(DATA))")
    parser.add_argument("--var", help="override prefix: <VAR>_URL, <VAR>_SHA256 (fetch)")
    args = parser.parse_args(argv)
    downloads = Path(args.data) / "downloads"
    if args.command == "fetch":
        if not args.name:
            parser.error("fetch needs a registry file name")
        try:
            print(fetch(args.name, downloads, var=args.var))
        except DownloadError as exc:
            log(error_line(exc))
            return EXIT_ITEM_FAILURES
        return 0
    if args.command == "verify":
        table, bad = verify(downloads)
        Console().print(table)
        return EXIT_ITEM_FAILURES if bad else 0
    filled = register(downloads)
    log(f"{REGISTRY}: recorded checksums for {', '.join(filled) if filled else 'nothing new'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
