"""Mutable server state: issued tokens, stored files, rate windows, seen trace IDs and the request log."""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

TokenStyle = Literal["header", "legacy"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it, with the response it got."""

    method: str
    #: URL path without the query string, as sent (still percent-encoded).
    path: str
    query: dict[str, str]
    #: Request headers with lower-cased names.
    headers: dict[str, str]
    #: Parsed JSON body, or None when the body was empty or not JSON.
    body: object | None
    #: ``errorCode`` of the JSON response, or None for downloads, raw fault responses and dropped connections.
    error_code: int | None
    #: HTTP status sent, or 0 when the connection was closed without a response.
    http_status: int
    #: Emulator-clock time at which the request arrived, in epoch seconds.
    at: float


@dataclass
class IssuedToken:
    """An access token returned by one of the token endpoints."""

    value: str
    style: TokenStyle
    app_id: str
    #: Emulator-clock time of issue, in epoch seconds.
    issued_at: float
    #: Set by :meth:`TokenRegistry.expire_all`; an expired token is rejected on use and never reused.
    expired: bool = False

    def age(self, now: float) -> float:
        """
        Return the seconds since issue.

        :param now: the emulator-clock time.
        """
        return now - self.issued_at

    def is_valid(self, now: float, lifetime_seconds: float) -> bool:
        """
        Return whether the token may still authenticate a call.

        :param now: the emulator-clock time.
        :param lifetime_seconds: the token lifetime in force.
        """
        return not self.expired and self.age(now) <= lifetime_seconds


class TokenRegistry:
    """Every token issued since the last reset, and the current token per style and app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_value: dict[str, IssuedToken] = {}
        self._current: dict[tuple[TokenStyle, str], IssuedToken] = {}

    def issue_or_reuse(self, style: TokenStyle, app_id: str, now: float, reuse_seconds: float) -> IssuedToken:
        """
        Return the current token while it is younger than ``reuse_seconds``, else issue a new one.

        The replaced token stays valid until its own lifetime ends.

        :param style: "header" for ``/oauth2.0/token``, "legacy" for ``/cgi/corpAccessToken/get/V2``.
        :param app_id: the app the token belongs to.
        :param now: the emulator-clock time.
        :param reuse_seconds: how long after issue the same token is returned.
        """
        with self._lock:
            current = self._current.get((style, app_id))
            if current is not None and not current.expired and current.age(now) < reuse_seconds:
                return current
            token = IssuedToken(secrets.token_hex(16).upper(), style, app_id, now)
            self._by_value[token.value] = token
            self._current[(style, app_id)] = token
            return token

    def lookup(self, value: str, style: TokenStyle) -> IssuedToken | None:
        """
        Return the token with this value if it was issued for this style.

        :param value: the token string sent by the client.
        :param style: the authentication style the client used.
        """
        with self._lock:
            token = self._by_value.get(value)
        if token is None or token.style != style:
            return None
        return token

    def expire_all(self) -> None:
        """Mark every issued token expired, so the next token call issues a new one."""
        with self._lock:
            for token in self._by_value.values():
                token.expired = True

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._by_value.clear()
            self._current.clear()


class SlidingWindowLimiter:
    """Per-key call timestamps that admit at most ``limit`` calls within any ``window`` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[object, collections.deque[float]] = {}

    def try_acquire(self, key: object, now: float, limit: int, window: float) -> bool:
        """
        Record a call and return True, or return False without recording when the window is full.

        :param key: what the limit applies to, e.g. an ``(app_id, path)`` pair.
        :param now: the emulator-clock time.
        :param limit: calls allowed within one window.
        :param window: window length in seconds.
        """
        with self._lock:
            calls = self._calls.setdefault(key, collections.deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()


class TraceIdRegistry:
    """The most recent ``thirdTraceId`` values, for the duplicate check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: collections.deque[str] = collections.deque()
        self._seen: set[str] = set()

    def remember(self, trace_id: str, capacity: int) -> bool:
        """
        Store a trace ID and return False if it was already stored.

        :param trace_id: the ``thirdTraceId`` value; compared case-insensitively.
        :param capacity: how many IDs to keep; the oldest are forgotten first.
        """
        key = trace_id.lower()
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            self._order.append(key)
            while len(self._order) > max(capacity, 1):
                self._seen.discard(self._order.popleft())
            return True

    def clear(self) -> None:
        """Forget every stored trace ID."""
        with self._lock:
            self._order.clear()
            self._seen.clear()


class FileStore:
    """File bytes by npath, and the HMAC key that signs their download URLs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}
        # A fresh key per emulator, so a URL signed by one emulator is rejected by another.
        self._key = secrets.token_bytes(32)

    def add(self, path: str, data: bytes) -> None:
        """
        Store a file, replacing any file with the same path.

        :param path: the npath, e.g. ``N_202410_22_<32 hex>.pdf``.
        :param data: the file content.
        """
        if not isinstance(path, str) or not path:
            raise ValueError(f"file path must be a non-empty string, got {path!r}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"file content for {path!r} must be bytes, got {type(data).__name__}")
        with self._lock:
            self._files[path] = bytes(data)

    def remove(self, path: str) -> bool:
        """
        Delete a file and return whether it existed.

        :param path: the npath.
        """
        with self._lock:
            return self._files.pop(path, None) is not None

    def get(self, path: str) -> bytes | None:
        """
        Return a file's content, or None if the path is not stored.

        :param path: the npath.
        """
        with self._lock:
            return self._files.get(path)

    def contains(self, path: str) -> bool:
        """
        Return whether a path is stored.

        :param path: the npath.
        """
        with self._lock:
            return path in self._files

    def snapshot(self) -> dict[str, bytes]:
        """Return a copy of the path-to-content mapping."""
        with self._lock:
            return dict(self._files)

    def sign(self, path: str, expires: int) -> str:
        """
        Return the hex HMAC-SHA256 signature of a download URL.

        :param path: the npath the URL serves.
        :param expires: expiry of the URL in epoch seconds.
        """
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, path: str, expires: int, signature: str) -> bool:
        """
        Return whether a signature matches a path and expiry; the comparison takes constant time.

        :param path: the npath from the URL.
        :param expires: the ``Expires`` query parameter.
        :param signature: the ``Signature`` query parameter.
        """
        # Compare bytes: compare_digest raises TypeError for str values with non-ASCII characters.
        return hmac.compare_digest(
            self.sign(path, expires).encode(), signature.encode("utf-8", "surrogateescape")
        )


class EmulatorState:
    """Everything the emulator remembers between requests, apart from its settings and queued faults."""

    def __init__(self, request_log_size: int) -> None:
        self.tokens = TokenRegistry()
        self.token_windows = SlidingWindowLimiter()
        self.rate_windows = SlidingWindowLimiter()
        self.trace_ids = TraceIdRegistry()
        self.files = FileStore()
        self._lock = threading.Lock()
        self._log: collections.deque[RecordedRequest] = collections.deque(maxlen=max(request_log_size, 1))
        self._token_calls = 0
        self._token_calls_in_flight = 0
        self._max_concurrent_token_calls = 0
        self._rate_limit_errors = 0

    @contextmanager
    def token_call(self) -> Iterator[bool]:
        """
        Count one token call for as long as it is in flight; yield whether another call overlaps it.
        """
        with self._lock:
            self._token_calls += 1
            self._token_calls_in_flight += 1
            overlapping = self._token_calls_in_flight > 1
            self._max_concurrent_token_calls = max(
                self._max_concurrent_token_calls, self._token_calls_in_flight
            )
        try:
            yield overlapping
        finally:
            with self._lock:
                self._token_calls_in_flight -= 1

    def count_rate_limit_error(self) -> None:
        """Count one call rejected by the per-interface rate limit."""
        with self._lock:
            self._rate_limit_errors += 1

    def record(self, request: RecordedRequest) -> None:
        """
        Append a request to the log, dropping the oldest entry when the log is full.

        :param request: the request and its response.
        """
        with self._lock:
            self._log.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def counters(self) -> Mapping[str, int]:
        """Token calls, in-flight token calls, max concurrent token calls and rate-limit errors."""
        with self._lock:
            return {
                "token_calls": self._token_calls,
                "token_calls_in_flight": self._token_calls_in_flight,
                "max_concurrent_token_calls": self._max_concurrent_token_calls,
                "rate_limit_errors": self._rate_limit_errors,
            }

    def reset(self, request_log_size: int) -> None:
        """
        Clear tokens, limits, trace IDs, the log and the counters; keep the files.

        :param request_log_size: maximum length of the new request log.
        """
        self.tokens.clear()
        self.token_windows.clear()
        self.rate_windows.clear()
        self.trace_ids.clear()
        with self._lock:
            self._log = collections.deque(maxlen=max(request_log_size, 1))
            self._token_calls = 0
            self._max_concurrent_token_calls = self._token_calls_in_flight
            self._rate_limit_errors = 0
