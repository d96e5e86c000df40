"""
File Service calls: presigned URLs in batches, large-file download URLs, and tolerant response parsing.

The vendor documents the request of ``getPresignedUrl`` (``data.paths``, ``data.expire`` in hours) but
not the ``data`` of its response. Its server-side twin returns a list of ``{path, url}`` objects, and
third-party callers also read ``data.data``, so the parser accepts a list of ``{path, url}``, a
``{path: url}`` map and either one nested under ``data.data``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fxiaoke_provider.api.client import FxiaokeClient, response_trace_id
from fxiaoke_provider.exceptions import FxiaokeAPIError, FxiaokeMissingPathsError, FxiaokeResponseError
from fxiaoke_provider.paths import validate_expire_hours

PRESIGN_ENDPOINT = "/cgi/crm/v2/file/getPresignedUrl"
LARGE_FILE_ENDPOINT = "/cgi/crm/v2/generateDownloadSignatureUrlByAuth"

#: Paths per ``getPresignedUrl`` call, an assumption because the vendor documents no maximum. 100 is the
#: largest list size the vendor documents anywhere (the query page size). It keeps a request body near
#: 10 KB, and at the limit of 100 calls per 20 s it still allows 500 paths a second.
DEFAULT_BATCH_SIZE = 100
#: Upper bound accepted for ``batch_size``; larger batches risk the server's undocumented limits.
MAX_BATCH_SIZE = 1000
#: ``errorCode`` of a rejected parameter (15002).
#: NOTE: the vendor does not document the code for an unknown file path; 15002 is assumed, as the emulator does.
REJECTED_PARAMETER_CODE = 15002
#: Single paths rejected, with no call accepted yet, after which splitting a rejected batch stops.
MAX_REJECTED_BEFORE_GIVING_UP = 4
#: Prefix of large-file paths, which only ``generateDownloadSignatureUrlByAuth`` presigns.
LARGE_FILE_PREFIX = "ALIOSS_"
#: Lifetime in seconds of a large-file download URL, as the vendor documents it (not configurable).
LARGE_FILE_URL_SECONDS = 3600


@dataclass(frozen=True)
class PresignedBatch:
    """The URLs of one ``getPresignedUrl`` call; the URLs are bearer credentials and stay out of the repr."""

    #: Paths of the batch, in request order.
    paths: list[str]
    #: URL by path, in request order.
    urls: dict[str, str]
    #: When the request was sent (UTC).
    requested_at: datetime
    #: When the URLs stop working: the request time plus the requested hours (UTC).
    expires_at: datetime
    #: The response's ``traceId``.
    trace_id: str | None
    #: Requested paths the server returned no URL for, in request order.
    missing: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"PresignedBatch(paths={len(self.paths)}, expires_at={self.expires_at.isoformat()!r})"


_URL_PREFIXES = ("https://", "http://")


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_URL_PREFIXES)


def parse_presigned_urls(body: Mapping[str, Any], requested: Sequence[str], endpoint: str) -> dict[str, str]:
    """
    Read the URL of every requested path from a ``getPresignedUrl`` response body.

    :param body: the whole response body, ``errorCode`` already checked to be 0.
    :param requested: the paths sent, in order.
    :param endpoint: the API path, for error messages.
    :raises FxiaokeResponseError: when ``data`` has none of the accepted shapes; the message names the traceId.
    :raises FxiaokeMissingPathsError: when some requested paths got no URL.
    """
    trace_id = response_trace_id(body)
    data = body.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("data"), (list, Mapping)):
        data = data["data"]
    received: dict[str, str] = {}
    if isinstance(data, list):
        for index, item in enumerate(data):
            # json.loads builds plain dicts; the exact type test spares the slower Mapping check per item.
            if type(item) is not dict and not isinstance(item, Mapping):
                raise FxiaokeResponseError(
                    endpoint,
                    trace_id,
                    f"data[{index}] is {type(item).__name__}, expected an object with path and url",
                )
            path = item.get("path", item.get("npath"))
            url = item.get("url")
            # The same test as _is_url, written out because it runs once per path.
            if not isinstance(path, str) or not (isinstance(url, str) and url.startswith(_URL_PREFIXES)):
                raise FxiaokeResponseError(
                    endpoint,
                    trace_id,
                    f"data[{index}] lacks a string path or an http(s) url (keys: {sorted(item)})",
                )
            received[path] = url
    elif isinstance(data, Mapping) and data and all(isinstance(key, str) for key in data):
        for path, url in data.items():
            if not _is_url(url):
                raise FxiaokeResponseError(
                    endpoint, trace_id, f"the URL of path {path!r} is not an http(s) URL"
                )
            received[path] = url
    else:
        shape = "missing" if data is None else f"{type(data).__name__}"
        raise FxiaokeResponseError(
            endpoint,
            trace_id,
            f"data is {shape}; expected a list of {{path, url}} objects, a {{path: url}} map, or either under data.data",
        )
    missing = [path for path in requested if path not in received]
    if missing:
        kept = {path: received[path] for path in requested if path in received}
        raise FxiaokeMissingPathsError(endpoint, trace_id, missing, kept)
    return {path: received[path] for path in requested}


def check_expire_hours(expire_hours: object) -> int:
    """
    Check that a URL lifetime is an ``int`` of hours within the range the operator accepts too.

    Unlike the operator's templated argument, a string of digits is rejected here.

    :param expire_hours: the lifetime in hours.
    :raises TypeError: for a bool, float or other non-integer.
    :raises ValueError: for a number below 1 or above :data:`~fxiaoke_provider.paths.MAX_EXPIRE_HOURS`.
    """
    if isinstance(expire_hours, bool) or not isinstance(expire_hours, int):
        raise TypeError(
            f"expire_hours={expire_hours!r} ({type(expire_hours).__name__}) must be a whole number of hours"
        )
    return validate_expire_hours(expire_hours)


def check_batch_size(batch_size: object) -> int:
    """
    Check a batch size: a whole number from 1 to :data:`MAX_BATCH_SIZE`.

    :param batch_size: paths per call.
    :raises TypeError: for a non-integer.
    :raises ValueError: when out of range.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size={batch_size!r} ({type(batch_size).__name__}) must be a whole number")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size={batch_size!r} must be between 1 and {MAX_BATCH_SIZE}")
    return batch_size


def distinct_paths(paths: Iterable[object]) -> list[str]:
    """
    Check that every path is a non-blank string and drop repeats, keeping first-seen order.

    :param paths: file paths (npaths).
    :raises TypeError: naming the position of a path that is not a string.
    :raises ValueError: naming the position of a blank path.
    """
    if isinstance(paths, (str, bytes)):
        raise TypeError("paths must be a list of path strings, not a single string")
    seen: dict[str, None] = {}
    for index, path in enumerate(paths):
        if not isinstance(path, str):
            raise TypeError(f"paths[{index}] is {type(path).__name__}, expected a path string")
        if not path.strip():
            raise ValueError(f"paths[{index}] is blank; remove it or supply the file's path")
        seen[path] = None
    return list(seen)


def iter_presigned_batches(
    client: FxiaokeClient,
    paths: Iterable[str],
    *,
    expire_hours: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[PresignedBatch]:
    """
    Presign distinct paths one batch per call, yielding each batch as it arrives.

    Every argument is checked before the first call. Paths the server left out of its response are
    listed in the batch's ``missing``; the caller decides whether that fails the run.

    :param client: the API client.
    :param paths: file paths; repeats are presigned once.
    :param expire_hours: URL lifetime in hours, at least 1.
    :param batch_size: paths per call.
    """
    check_expire_hours(expire_hours)
    check_batch_size(batch_size)
    unique = distinct_paths(paths)
    for start in range(0, len(unique), batch_size):
        yield presign_batch(client, unique[start : start + batch_size], expire_hours=expire_hours)


def _presign_call(client: FxiaokeClient, paths: list[str], expire_hours: int) -> PresignedBatch:
    requested_at = datetime.now(UTC)
    body = client.call(PRESIGN_ENDPOINT, {"paths": paths, "expire": expire_hours})
    missing: list[str] = []
    try:
        urls = parse_presigned_urls(body, paths, PRESIGN_ENDPOINT)
    except FxiaokeMissingPathsError as err:
        urls, missing = err.received, err.missing
    return PresignedBatch(
        paths=paths,
        urls=urls,
        requested_at=requested_at,
        expires_at=requested_at + timedelta(hours=expire_hours),
        trace_id=response_trace_id(body),
        missing=missing,
    )


def _is_rejection(error: FxiaokeAPIError) -> bool:
    return error.error_code == REJECTED_PARAMETER_CODE


def _merge(paths: list[str], parts: list[PresignedBatch]) -> PresignedBatch:
    urls = {path: url for part in parts for path, url in part.urls.items()}
    missing = {path for part in parts for path in part.missing}
    first = min(parts, key=lambda part: part.requested_at)
    return PresignedBatch(
        paths=paths,
        urls={path: urls[path] for path in paths if path in urls},
        requested_at=first.requested_at,
        # The earliest expiry, so the batch never claims a link lives longer than it does.
        expires_at=min(part.expires_at for part in parts),
        trace_id=first.trace_id,
        missing=[path for path in paths if path in missing],
    )


@dataclass
class _SplitState:
    """Progress of splitting one rejected batch."""

    first_error: FxiaokeAPIError
    calls_accepted: int = 0
    paths_rejected: int = 0


def _split(client: FxiaokeClient, paths: list[str], expire_hours: int, state: _SplitState) -> PresignedBatch:
    middle = len(paths) // 2
    halves = (paths[:middle], paths[middle:])
    return _merge(paths, [_presign_or_split(client, half, expire_hours, state) for half in halves])


def _presign_or_split(
    client: FxiaokeClient, paths: list[str], expire_hours: int, state: _SplitState
) -> PresignedBatch:
    try:
        batch = _presign_call(client, paths, expire_hours)
    except FxiaokeAPIError as error:
        if not _is_rejection(error):
            raise
        if len(paths) > 1:
            return _split(client, paths, expire_hours, state)
        state.paths_rejected += 1
        if state.calls_accepted == 0 and state.paths_rejected >= MAX_REJECTED_BEFORE_GIVING_UP:
            # Nothing was accepted yet: the request itself is the likely cause, not its paths.
            raise state.first_error from None
        now = datetime.now(UTC)
        return PresignedBatch(
            paths=paths,
            urls={},
            requested_at=now,
            expires_at=now + timedelta(hours=expire_hours),
            trace_id=error.trace_id,
            missing=list(paths),
        )
    state.calls_accepted += 1
    return batch


def _presign_large_files(client: FxiaokeClient, paths: list[str]) -> PresignedBatch:
    requested_at = datetime.now(UTC)
    urls: dict[str, str] = {}
    missing: list[str] = []
    for path in paths:
        try:
            urls[path] = get_large_file_url(client, path)
        except FxiaokeAPIError as error:
            if not _is_rejection(error):
                raise
            missing.append(path)
    return PresignedBatch(
        paths=paths,
        urls=urls,
        requested_at=requested_at,
        expires_at=requested_at + timedelta(seconds=LARGE_FILE_URL_SECONDS),
        trace_id=None,
        missing=missing,
    )


def presign_batch(client: FxiaokeClient, paths: list[str], *, expire_hours: int) -> PresignedBatch:
    """
    Presign one batch of paths, sending large files (``ALIOSS_`` paths) to their own endpoint.

    Other paths go to ``getPresignedUrl`` (see :func:`presign_npaths`). Each large file takes one
    ``generateDownloadSignatureUrlByAuth`` call, whose link lasts 3600 s whatever ``expire_hours`` is,
    and a large file the server rejects is listed in ``missing``. The batch's ``expires_at`` is the
    earliest expiry of its links.

    :param client: the API client.
    :param paths: the batch's paths, already checked as :func:`presign_npaths` describes.
    :param expire_hours: lifetime of the ``getPresignedUrl`` links in hours.
    """
    large = [path for path in paths if path.startswith(LARGE_FILE_PREFIX)]
    if not large:
        return presign_npaths(client, paths, expire_hours=expire_hours)
    others = [path for path in paths if not path.startswith(LARGE_FILE_PREFIX)]
    parts = [presign_npaths(client, others, expire_hours=expire_hours)] if others else []
    parts.append(_presign_large_files(client, large))
    return _merge(paths, parts)


def presign_npaths(client: FxiaokeClient, paths: list[str], *, expire_hours: int) -> PresignedBatch:
    """
    Presign one batch of paths through ``getPresignedUrl``, usually with one call.

    A server that rejects a whole batch with 15002 (parameter invalid) because one path in it is unknown
    names no path (the code for an unknown path is an assumption, see :data:`REJECTED_PARAMETER_CODE`).
    So on 15002 the batch is split in halves, recursively, and the paths rejected on their own are
    listed in the result's ``missing`` while the rest get URLs. Finding ``k`` unknown paths among ``n``
    takes about ``2 k log2(n)`` calls. When :data:`MAX_REJECTED_BEFORE_GIVING_UP` single paths are
    rejected before any call is accepted, the request itself is taken to be the cause and the first
    error is raised.

    The caller has already checked the arguments: distinct, non-blank paths, no more than fit one call,
    and a whole number of hours. :func:`iter_presigned_batches` does those checks for whole path lists.

    :param client: the API client.
    :param paths: the batch's paths.
    :param expire_hours: URL lifetime in hours.
    :raises FxiaokeAPIError: for every error other than a rejection that splitting resolves.
    """
    try:
        return _presign_call(client, paths, expire_hours)
    except FxiaokeAPIError as error:
        if not _is_rejection(error) or len(paths) == 1:
            raise
        state = _SplitState(first_error=error)
    client.log.warning(
        "Fxiaoke rejected a batch of %d path(s) with errorCode %s (traceId %s); splitting it to find the "
        "rejected path(s)",
        len(paths),
        state.first_error.error_code,
        state.first_error.trace_id,
    )
    return _split(client, paths, expire_hours, state)


def get_large_file_url(client: FxiaokeClient, path: str) -> str:
    """
    Get the download URL of one large file (an ``ALIOSS_`` path), valid for 3600 s.

    :param client: the API client.
    :param path: the file path.
    :raises FxiaokeResponseError: when the response carries no ``data.url``.
    """
    distinct_paths([path])
    body = client.call(LARGE_FILE_ENDPOINT, {"path": path})
    data = body.get("data")
    url = data.get("url") if isinstance(data, Mapping) else data
    if not _is_url(url):
        trace_id = response_trace_id(body)
        raise FxiaokeResponseError(LARGE_FILE_ENDPOINT, trace_id, "data.url is missing or not an http(s) URL")
    return url  # type: ignore[return-value]
