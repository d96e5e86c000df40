"""Stream presigned files into a folder of any object store, with size checks, retries, re-presigning and a manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from fxiaoke_provider import __version__
from fxiaoke_provider.paths import check_path, short_repr

#: Bytes per read while streaming, which bounds the memory one download holds.
CHUNK_SIZE = 1024 * 1024
#: Connect and read timeouts in seconds of one download.
DOWNLOAD_TIMEOUT = (10.0, 300.0)
#: Tries of one download that fails with a transient error (connection, HTTP 5xx or 429, short body).
MAX_ATTEMPTS = 3
#: Maximum accepted ``max_attempts``. At this value the waits between tries add up to about 2.5 minutes.
MAX_ATTEMPTS_LIMIT = 10
#: A link that expires within this many seconds is presigned again before it is used.
EXPIRY_MARGIN_SECONDS = 60
#: Name of the JSON Lines manifest written beside the files.
MANIFEST_NAME = "manifest.jsonl"
#: A name that earlier releases wrote the new manifest under. It stays reserved, so that the file name
#: of a path spelling it stays the same across releases.
MANIFEST_TEMP_NAME = MANIFEST_NAME + ".partial"
#: Ending of the name a file is downloaded under, after a leading dot, its final name and the run's token.
PARTIAL_SUFFIX = ".part"
#: Ending of the name the new manifest is written under, after a leading dot, its name and the run's token.
MANIFEST_PARTIAL_SUFFIX = ".partial"
#: Maximum length of a written file name. Longer names are cut and given a hash suffix.
MAX_NAME_LENGTH = 200
#: Seconds between two progress lines while a long export goes on.
PROGRESS_INTERVAL_SECONDS = 30.0
#: Paths per call when links are presigned again, the size of one ``getPresignedUrl`` batch.
REPRESIGN_BATCH = 100

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: The end of a name that :func:`safe_file_name` gave a hash, in either case.
_HASH_SUFFIX = re.compile(r"-[0-9A-Fa-f]{16}$")
#: A URL of any scheme, up to the next white space, as it may appear in an exception's text.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


class _QueryRedactor(logging.Filter):
    """Cut the query string from URLs in the arguments of log records, where a presigned URL keeps its signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.partition("?")[0] if isinstance(arg, str) and "?" in arg else arg for arg in record.args
            )
        return True


_REDACTOR = _QueryRedactor()


def redact_http_debug_log() -> None:
    """
    Keep presigned URLs out of urllib3's debug log, which names every request's full URL.

    The filter is added once to urllib3's connection-pool logger and only shortens URL arguments.
    """
    logger = logging.getLogger("urllib3.connectionpool")
    if _REDACTOR not in logger.filters:
        logger.addFilter(_REDACTOR)


def _sleep(seconds: float) -> None:
    # Looked up at call time, so tests can patch ``time.sleep``.
    time.sleep(seconds)


class ExportLogger(Protocol):
    """The logger methods an export calls, which both a stdlib logger and Airflow's task logger provide."""

    def info(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


class TargetPath(Protocol):
    """The parts of ``ObjectStoragePath`` (or ``pathlib.Path``) that an export uses."""

    @property
    def name(self) -> str: ...
    def open(self, mode: str) -> Any: ...
    def exists(self) -> bool: ...
    def stat(self) -> Any: ...
    def unlink(self, missing_ok: bool = ...) -> None: ...
    def rename(self, target: Any) -> Any: ...
    def mkdir(self, mode: int = ..., parents: bool = ..., exist_ok: bool = ...) -> None: ...
    def __truediv__(self, name: str) -> Any: ...


def safe_file_name(path: str, reserved: Iterable[str] = (MANIFEST_NAME, MANIFEST_TEMP_NAME)) -> str:
    """
    Return a file name for a path that stays inside the export folder and never collides with another.

    Letters, digits, ``.``, ``_`` and ``-`` are kept and every other character becomes ``_``; leading
    dots are dropped, so no name starts with a dot. A path is used as it is when that changes nothing,
    it is at most ``MAX_NAME_LENGTH`` characters long, it is not a reserved name in any case, and it
    does not end in ``-`` and 16 hex digits. Any other path gets ``-`` and the first 16 hex digits of its
    SHA-256 appended. A name used as it is therefore never looks like a name with a hash, and two names
    with a hash differ whenever the paths' hashes do.

    :param path: the npath.
    :param reserved: names the export writes itself, such as the manifest; compared ignoring case.
    """
    name = _UNSAFE.sub("_", path).lstrip(".")
    is_reserved = name.casefold() in {entry.casefold() for entry in reserved}
    if (
        name
        and name == path
        and not is_reserved
        and len(name) <= MAX_NAME_LENGTH
        and not _HASH_SUFFIX.search(name)
    ):
        return name
    # A lone surrogate, which UTF-8 cannot encode, is hashed by its code point rather than raising.
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{name[: MAX_NAME_LENGTH - 17] or 'file'}-{digest}"


def run_token() -> str:
    """Return a random token that makes the temporary names of one export run differ from those of any other."""
    return secrets.token_hex(8)


def partial_file_name(name: str, token: str = "") -> str:
    """
    Return the name a file is downloaded under before it is renamed to ``name``.

    It starts with a dot, which no name from :func:`safe_file_name` does, so it never replaces an
    exported file or the manifest. The token of the export run makes it differ from the name that
    another export into the same folder downloads the same path under.

    :param name: the final name, as :func:`safe_file_name` returns it.
    :param token: the export run's token, from :func:`run_token`; without it the name is ``.<name>.part``.
    """
    return f".{name}.{token}{PARTIAL_SUFFIX}" if token else f".{name}{PARTIAL_SUFFIX}"


def manifest_partial_name(token: str) -> str:
    """
    Return the name one export run writes the new manifest under before it replaces the old one.

    It starts with a dot, so it is never the name of an exported file. It contains the run's token, so
    two exports into the same folder never write the same file.

    :param token: the export run's token, from :func:`run_token`.
    """
    return f".{MANIFEST_NAME}.{token}{MANIFEST_PARTIAL_SUFFIX}"


def without_query(url: str) -> str:
    """Return a URL without its query string and fragment, where a presigned URL keeps its signature."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def presign_failure_reason(err: BaseException) -> str:
    """
    Return the failure reason of a path whose link could not be presigned again.

    The reason gives the error's type and text with every URL in it replaced by ``<URL>``, so that no
    presigned URL reaches a log or an error message.

    :param err: what presigning again raised.
    """
    text = _URL.sub("<URL>", str(err)).strip()
    detail = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return f"presigning again failed ({detail})"


class ManifestError(OSError):
    """
    The manifest of an earlier export cannot be read or has damaged lines, so it is not replaced.

    :param message: what is wrong and how to recover.
    :param before_downloads: whether the export stopped before any download, so a retry of the same
        task cannot succeed until someone repairs or moves the manifest.
    """

    def __init__(self, message: str, *, before_downloads: bool) -> None:
        super().__init__(message)
        self.before_downloads = before_downloads


class DownloadError(Exception):
    """
    One download failed; the message names the path and the reason, never the URL.

    :param path: the npath.
    :param reason: what went wrong.
    :param retryable: whether the same link may work on another try.
    :param expired: whether the server rejected the link (HTTP 403), so a new link may work.
    """

    def __init__(self, path: str, reason: str, *, retryable: bool = False, expired: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.retryable = retryable
        self.expired = expired
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ExportItem:
    """One file to export; the URL is a bearer credential and stays out of the repr."""

    path: str
    url: str = field(repr=False)
    #: When the link expires, if known.
    expires_at: datetime | None = None
    #: The expected size in bytes, if known.
    size: int | None = None


def _parse_time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{where}.expires_at={value!r} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"{where}.expires_at={value!r} must be an ISO 8601 string")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def read_items(results: object) -> list[ExportItem]:
    """
    Check the results of ``PresignFilesOperator``, a list of ``{"path", "url", "expires_at"}`` dicts.

    Each path is stripped of surrounding white space and checked as ``PresignFilesOperator`` checks its
    paths, with :func:`fxiaoke_provider.paths.check_path`: at most ``MAX_PATH_LENGTH`` characters, and
    no control, format or separator character and no lone surrogate. A ``size`` key, when present, is
    the expected size. Repeated paths are exported once.

    :param results: the list.
    :raises ValueError: naming the first item that is not such a dict or whose path is refused; the
        message never shows a URL.
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Iterable):
        raise ValueError(
            f"results is {type(results).__name__}; expected the list that PresignFilesOperator returns"
        )
    items: dict[str, ExportItem] = {}
    for index, result in enumerate(results):
        where = f"results[{index}]"
        if not isinstance(result, Mapping):
            raise ValueError(f"{where} is {type(result).__name__}; expected a dict with path and url")
        path, url = result.get("path"), result.get("url")
        if not isinstance(path, str):
            raise ValueError(
                f"{where}.path is {type(path).__name__}; expected the file's path (npath) as a string"
            )
        if not path.strip():
            raise ValueError(
                f"{where}.path is {path!r}, which is blank; give the file's path (npath) or remove the item"
            )
        # The path check of PresignFilesOperator, so a path it rejects fails here before any work.
        path = check_path(path, f"{where}.path is {short_repr(path)} (str)")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError(f"{where}.url (path {path!r}) is not an http(s) URL")
        size = result.get("size")
        known = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        items.setdefault(path, ExportItem(path, url, _parse_time(result.get("expires_at"), where), known))
    return list(items.values())


def _remove_partial(target: TargetPath) -> None:
    # The error that made the download fail is raised afterwards, and a failed removal must not hide it.
    # A partial file left behind keeps its temporary name, with its run's token, which no export reads or
    # writes again.
    try:
        target.unlink(missing_ok=True)
    except OSError:
        pass


def download(
    session: requests.Session,
    path: str,
    url: str,
    target: TargetPath,
    *,
    chunk_size: int = CHUNK_SIZE,
    timeout: tuple[float, float] = DOWNLOAD_TIMEOUT,
) -> tuple[int, str]:
    """
    Stream one URL into a file, a chunk at a time, and check its size against ``Content-Length``.

    :param session: the HTTP session.
    :param path: the npath, for messages.
    :param url: the presigned URL.
    :param target: the file to write; it is removed again when the download fails after it was opened,
        whatever the error, such as a full disk. :class:`Exporter` passes a temporary name from
        :func:`partial_file_name` and renames the file once this returns, so that a failed download
        never replaces a good copy.
    :param chunk_size: bytes per read.
    :param timeout: connect and read timeouts in seconds.
    :return: the number of bytes written and their SHA-256.
    :raises DownloadError: naming the path and the reason.
    """
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except requests.RequestException as err:
        # The exception's text holds the URL, so only its type is reported.
        raise DownloadError(path, f"request failed ({type(err).__name__})", retryable=True) from None
    with response:
        status = response.status_code
        if status == 403:
            raise DownloadError(path, "HTTP status 403: the link expired or was rejected", expired=True)
        if status != 200:
            retryable = status >= 500 or status == 429
            raise DownloadError(path, f"HTTP status {status}", retryable=retryable)
        announced = response.headers.get("Content-Length")
        digest = hashlib.sha256()
        size = 0
        # An error while opening leaves nothing of this download behind, so only later errors remove the file.
        out = target.open("wb")
        try:
            with out:
                for chunk in response.iter_content(chunk_size):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
        except requests.RequestException as err:
            _remove_partial(target)
            raise DownloadError(path, f"body cut off ({type(err).__name__})", retryable=True) from None
        except BaseException:
            # Any other failure, such as a write error (a full disk, a lost mount) or a stopped task.
            _remove_partial(target)
            raise
    if announced is not None and announced.isdigit() and int(announced) != size:
        _remove_partial(target)
        raise DownloadError(path, f"received {size} bytes but Content-Length was {announced}", retryable=True)
    return size, digest.hexdigest()


@dataclass
class ExportReport:
    """What one export did."""

    #: Manifest entries of the files of this export, in input order: path, file, size, sha256, status.
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: Manifest entries of earlier exports for paths that this export did not handle, status ``kept``.
    kept: list[dict[str, Any]] = field(default_factory=list)
    #: Paths that failed for good, each with its reason, in input order.
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Links presigned again because they had expired or were about to.
    represigned: int = 0

    @property
    def downloaded(self) -> int:
        """Files downloaded by this export."""
        return sum(entry["status"] == "downloaded" for entry in self.entries)

    @property
    def skipped(self) -> int:
        """Files already present, with the expected size when one is known."""
        return sum(entry["status"] == "skipped" for entry in self.entries)

    @property
    def bytes_written(self) -> int:
        """Bytes downloaded by this export."""
        return sum(entry["size"] for entry in self.entries if entry["status"] == "downloaded")


class Exporter:
    """
    Export presigned files into one folder with a bounded number of parallel downloads.

    A file already in the folder is skipped, so a second run downloads nothing. When the previous
    manifest (or the item) gives a size, the file must have it. When neither does, any file at its final
    name counts, because downloads are written under a temporary name and renamed only once complete.
    Links that expire within a minute are presigned again in batches before use, and a batch that fails
    fails only its own files. A link the server rejects with HTTP 403 is presigned again once. A file
    that still fails is reported and the others are written.

    The manifest lists every file in the folder after the export: this export's files, and the entries
    of the previous manifest for paths this export did not handle, with status ``kept``. A path that
    this export handled but that failed has no entry of its own. The manifest is read again just before
    it is replaced, and when that copy records the path with a file of the recorded size in the folder
    (another export into the folder stored it meanwhile), that entry is kept. A previous manifest that
    exists but cannot be read, or has a damaged line, stops the export before any download with
    :class:`ManifestError`, because replacing it would drop the earlier entries.

    Temporary names hold a token drawn for each run, so two exports into one folder never write the same
    temporary file. A run whose process is killed may leave such dot-prefixed files behind. No export
    reads them, so they can be deleted while no export runs.

    :param folder: the destination folder.
    :param presign: returns a fresh URL by path for a list of paths; it is called from one thread at a time.
    :param max_workers: parallel downloads.
    :param chunk_size: bytes per read.
    :param timeout: connect and read timeouts of one download.
    :param max_attempts: tries of one download that fails with a transient error.
    :param logger: where progress and failures are logged; no URL is ever logged.
    :param sleep: waits between tries; tests pass a fake one.
    :param now: returns the current time, for the expiry check.
    """

    def __init__(
        self,
        folder: TargetPath,
        presign: Callable[[list[str]], Mapping[str, str]],
        *,
        max_workers: int = 4,
        chunk_size: int = CHUNK_SIZE,
        timeout: tuple[float, float] = DOWNLOAD_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        logger: ExportLogger | None = None,
        sleep: Callable[[float], None] = _sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        limits: tuple[tuple[str, object, int, int | None], ...] = (
            ("max_workers", max_workers, 1, None),
            ("chunk_size", chunk_size, 1024, None),
            ("max_attempts", max_attempts, 1, MAX_ATTEMPTS_LIMIT),
        )
        for name, value, low, high in limits:
            accepted = f"from {low} to {high}" if high is not None else f"of at least {low}"
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"{name}={value!r} is a {type(value).__name__}, not an int; give a whole number {accepted}"
                )
            if value < low or (high is not None and value > high):
                raise ValueError(f"{name}={value!r} is out of range; give a whole number {accepted}")
        self.folder = folder
        self.presign = presign
        self.max_workers = max_workers
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.log: ExportLogger = logger or logging.getLogger(__name__)
        self._sleep = sleep
        self._now = now
        self._presign_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._represigned = 0
        self._token = run_token()

    @property
    def manifest(self) -> TargetPath:
        """The manifest file in the folder."""
        return self.folder / MANIFEST_NAME

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"fxiaoke-airflow-provider/{__version__}"
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _previous_manifest(self, *, before_downloads: bool) -> dict[str, dict[str, Any]] | None:
        """
        Read the previous manifest's entries by path. Blank lines are skipped.

        :param before_downloads: whether no download has started yet, for the error's message.
        :return: the entries, or None when there is no manifest.
        :raises ManifestError: when the manifest exists but cannot be read, or has a line that is not
            UTF-8 text holding a JSON object with a ``path`` string.
        """
        stage = (
            "The export stopped before any download"
            if before_downloads
            else "The files of this export are in the folder, but the manifest was not replaced"
        )
        try:
            if not self.manifest.exists():
                return None
            with self.manifest.open("rb") as stream:
                data = stream.read()
        except OSError as err:
            raise ManifestError(
                f"Failed to read the manifest {self.manifest} of an earlier export "
                f"({type(err).__name__}: {err}). It lists the files of earlier runs, so it is not replaced. "
                f"{stage}. Make it readable, or move it away to start a new manifest",
                before_downloads=before_downloads,
            ) from err
        entries = {}
        damaged: list[tuple[int, str]] = []
        for number, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                damaged.append((number, "not UTF-8 text"))
                continue
            except (ValueError, RecursionError):
                damaged.append((number, "not JSON"))
                continue
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                entries[entry["path"]] = entry
            else:
                damaged.append((number, "not a JSON object with a path string"))
        if damaged:
            number, reason = damaged[0]
            raise ManifestError(
                f"The manifest {self.manifest} of an earlier export has {len(damaged)} damaged line(s), the "
                f"first is line {number} ({reason}). Replacing the manifest would drop the record of the "
                f"files those lines list, so it is not replaced. {stage}. Repair or delete those lines, or "
                "move the manifest away to start a new one; files already in the folder are then skipped "
                "without a download",
                before_downloads=before_downloads,
            )
        return entries

    def _present(self, item: ExportItem, previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """
        Return the manifest entry of a file already in the folder, else None.

        When an expected size is known, from the previous manifest or the item, the file must have it.
        When none is known, a file at its final name counts as present whatever its size: a download is
        renamed to that name only after its size check passed, so the file is complete. Its entry then
        takes the size from the storage and has no SHA-256, because reading the file back would cost as
        much as downloading it.
        """
        name = safe_file_name(item.path)
        # An entry made under another file name, as by a release that named files otherwise, is ignored.
        same_file = previous is not None and previous.get("file") == name
        expected = previous.get("size") if previous and same_file else item.size
        known = isinstance(expected, int) and not isinstance(expected, bool)
        target = self.folder / name
        try:
            if not target.exists():
                return None
            size = target.stat().st_size
        except OSError:
            return None
        if known and size != expected:
            return None
        sha256 = (
            previous.get("sha256")
            if known and previous and same_file and previous.get("size") == size
            else None
        )
        return {"path": item.path, "file": name, "size": size, "sha256": sha256, "status": "skipped"}

    def _represign(self, paths: list[str]) -> dict[str, str]:
        """Presign one batch of at most ``REPRESIGN_BATCH`` paths and return the URLs received for them."""
        with self._presign_lock:
            received = self.presign(paths)
            urls = {path: received[path] for path in paths if path in received}
            self._represigned += len(urls)
        return urls

    def _fetch(self, item: ExportItem) -> dict[str, Any]:
        name = safe_file_name(item.path)
        # A download goes to a name of its own and replaces the file only once complete, so a download
        # that fails leaves an earlier copy in place, and a file at its final name is always complete.
        partial = self.folder / partial_file_name(name, self._token)
        url = item.url
        represigned = False
        attempt = 0
        while True:
            try:
                size, sha256 = download(
                    self._session(), item.path, url, partial, chunk_size=self.chunk_size, timeout=self.timeout
                )
            except DownloadError as err:
                if err.expired and not represigned:
                    represigned = True
                    url = self._fresh_url(item.path)
                    continue
                attempt += 1
                if not err.retryable or attempt >= self.max_attempts:
                    raise
                wait = min(0.5 * 2**attempt, 30.0)
                self.log.warning(
                    "[Try %d of %d] %s; trying again in %.1f s", attempt, self.max_attempts, err, wait
                )
                self._sleep(wait)
                continue
            try:
                partial.rename(self.folder / name)
            except BaseException:
                _remove_partial(partial)
                raise
            return {"path": item.path, "file": name, "size": size, "sha256": sha256, "status": "downloaded"}

    def _fresh_url(self, path: str) -> str:
        self.log.info("The server rejected the link of %s; presigning it again", path)
        try:
            url = self._represign([path]).get(path)
        except Exception as err:
            raise DownloadError(path, presign_failure_reason(err)) from None
        if url is None:
            raise DownloadError(path, "presigning again returned no URL")
        return url

    def _fetch_or_fail(self, item: ExportItem) -> dict[str, Any] | tuple[str, str]:
        try:
            return self._fetch(item)
        except DownloadError as err:
            self.log.error("Download failed for good: %s", err)
            return (item.path, err.reason)
        except OSError as err:
            self.log.error("Writing %s failed: %s", item.path, type(err).__name__)
            return (item.path, f"write failed ({type(err).__name__})")

    def _refresh_expiring(self, items: list[ExportItem]) -> tuple[list[ExportItem], list[tuple[str, str]]]:
        deadline = self._now() + timedelta(seconds=EXPIRY_MARGIN_SECONDS)
        expiring = [
            item.path for item in items if item.expires_at is not None and item.expires_at <= deadline
        ]
        if not expiring:
            return items, []
        self.log.info(
            "Presigning %d link(s) again because they expire within a minute or have expired", len(expiring)
        )
        urls: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for start in range(0, len(expiring), REPRESIGN_BATCH):
            batch = expiring[start : start + REPRESIGN_BATCH]
            try:
                urls.update(self._represign(batch))
            except Exception as err:
                reason = presign_failure_reason(err)
                self.log.error(
                    "Presigning a batch of %d link(s) again failed, so its files fail: %s", len(batch), reason
                )
                reasons.update(dict.fromkeys(batch, reason))
        renewed = set(expiring)
        fresh, failures = [], []
        for item in items:
            if item.path not in renewed:
                fresh.append(item)
            elif item.path in urls:
                fresh.append(ExportItem(item.path, urls[item.path], None, item.size))
            else:
                failures.append((item.path, reasons.get(item.path, "presigning again returned no URL")))
        return fresh, failures

    def run(self, items: Sequence[ExportItem]) -> ExportReport:
        """
        Export the items, write the manifest, and return what was done; failures do not raise.

        :param items: the files, each path once, as :func:`read_items` returns them.
        """
        redact_http_debug_log()
        self._token = run_token()
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self._previous_manifest(before_downloads=True) or {}
        report = ExportReport()
        outcome: dict[str, dict[str, Any] | tuple[str, str]] = {}
        started = last_report = time.monotonic()
        try:
            with ThreadPoolExecutor(self.max_workers, thread_name_prefix="fxiaoke-export") as pool:
                present = list(pool.map(lambda item: self._present(item, previous.get(item.path)), items))
                pending = [item for item, entry in zip(items, present, strict=True) if entry is None]
                for item, entry in zip(items, present, strict=True):
                    if entry is not None:
                        outcome[item.path] = entry
                self.log.info(
                    "%d file(s) already present; downloading %d with %d worker(s)",
                    len(items) - len(pending),
                    len(pending),
                    self.max_workers,
                )
                pending, refresh_failures = self._refresh_expiring(pending)
                outcome.update((path, (path, reason)) for path, reason in refresh_failures)
                for done, (item, result) in enumerate(
                    zip(pending, pool.map(self._fetch_or_fail, pending), strict=True), 1
                ):
                    outcome[item.path] = result
                    now = time.monotonic()
                    if now - last_report >= PROGRESS_INTERVAL_SECONDS:
                        last_report = now
                        self.log.info(
                            "Progress: %d of %d download(s) in %.0f s", done, len(pending), now - started
                        )
        finally:
            with self._sessions_lock:
                for session in self._sessions:
                    session.close()
                self._sessions.clear()
        for item in items:
            result = outcome[item.path]
            if isinstance(result, tuple):
                report.failures.append(result)
            else:
                report.entries.append(result)
        report.represigned = self._represigned
        # The old manifest is the only record of earlier runs' files, so it is replaced only once the new
        # one is complete.
        # NOTE: object stores have no locks, so two exports into one folder overwrite each other's manifest.
        # Reading it again here keeps entries written meanwhile, but a rename just after this read loses them.
        current = self._previous_manifest(before_downloads=False)
        earlier = previous if current is None else current
        failed = {path for path, _reason in report.failures}
        # Entries of earlier runs come first, in their order, and this run's entry replaces a path's old one.
        # A path that failed here keeps an entry whose file is in place, as another export may have stored it.
        report.kept = [
            {**entry, "status": "kept"}
            for path, entry in earlier.items()
            if path not in outcome or (path in failed and self._recorded_file_present(path, entry))
        ]
        appeared = len(set(earlier) - set(previous) - set(outcome))
        if appeared:
            self.log.warning(
                "The manifest %s gained entries for %d path(s) while this export ran, because another "
                "export writes into the same folder. They are kept. Give each task its own destination "
                "folder",
                self.manifest,
                appeared,
            )
        partial = self.folder / manifest_partial_name(self._token)
        try:
            with partial.open("w") as out:
                for entry in [*report.kept, *report.entries]:
                    out.write(json.dumps(entry) + "\n")
            partial.rename(self.manifest)
        except BaseException:
            _remove_partial(partial)
            raise
        return report

    def _recorded_file_present(self, path: str, entry: Mapping[str, Any]) -> bool:
        """Return whether a manifest entry names the path's file and that file has the recorded size."""
        name = safe_file_name(path)
        if entry.get("file") != name:
            return False
        try:
            target = self.folder / name
            if not target.exists():
                return False
            size = target.stat().st_size
        except OSError:
            return False
        recorded = entry.get("size")
        return not isinstance(recorded, int) or isinstance(recorded, bool) or size == recorded
