"""Injected faults: error codes, delays, dropped connections, cut-off bodies and raw non-JSON responses."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass

#: Codes that the Open API returns for passing failures: system busy, service exception, two rate limits.
TRANSIENT_ERROR_CODES: tuple[int, ...] = (-1, 50009, 14001, 30004)


@dataclass(frozen=True)
class Fault:
    """
    A fault that replaces or delays the handling of matching requests.

    A fault does at most one of three things instead of handling the request: respond HTTP 200 with
    ``error_code``, close the connection (``drop``), or send a raw response (``http_status``/``body``).
    A ``delay_seconds`` sleep comes first; a fault with only a delay lets the request be handled
    normally afterwards. Faults apply before authentication and rate limiting, and the request is
    still recorded in the log.
    """

    #: Path to match exactly, e.g. ``/cgi/crm/v2/file/getPresignedUrl``. A value ending in "/" matches every
    #: path under it, e.g. ``/emulator/files/`` for downloads. None matches every POST to a known endpoint,
    #: token endpoints included.
    endpoint: str | None = None
    #: ``errorCode`` to respond with, in an HTTP 200 JSON envelope.
    error_code: int | None = None
    #: ``errorMessage`` for an ``error_code`` response.
    error_message: str = "fault injected by the emulator"
    #: Real seconds to wait before responding. Keep it small, because a test waits for it.
    delay_seconds: float = 0.0
    #: Close the connection without sending any response.
    drop: bool = False
    #: Handle the request, then send only half of the response body before closing the connection.
    truncate: bool = False
    #: HTTP status of a raw response, e.g. 502 for a proxy error page.
    http_status: int | None = None
    #: Body of a raw response. With ``http_status`` unset, it is sent with status 200.
    body: bytes | None = None
    #: Content type of a raw response.
    content_type: str = "text/html; charset=utf-8"
    #: Number of matching requests the fault applies to; 0 or None means no limit.
    times: int | None = 1
    #: Chance that the fault applies to a matching request, drawn from a generator seeded with
    #: ``EmulatorSettings.random_seed`` so that runs repeat.
    probability: float = 1.0

    def __post_init__(self) -> None:
        actions = [self.error_code is not None, self.drop, self.raw_response, self.truncate]
        if sum(actions) > 1:
            raise ValueError("a fault takes at most one of error_code, drop, truncate and http_status/body")
        if self.body is not None and not isinstance(self.body, bytes):
            raise TypeError(
                f"fault body must be bytes, got {type(self.body).__name__}; encode the text first"
            )
        for name in ("delay_seconds", "probability"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise TypeError(f"fault {name} must be a finite number, got {number!r}")
        if self.times is not None and (isinstance(self.times, bool) or not isinstance(self.times, int)):
            raise TypeError(f"fault times must be an int or None, got {self.times!r}")
        if self.http_status is not None and (
            isinstance(self.http_status, bool) or not isinstance(self.http_status, int)
        ):
            raise TypeError(f"fault http_status must be an int, got {self.http_status!r}")
        if self.error_code is not None and (
            isinstance(self.error_code, bool) or not isinstance(self.error_code, int)
        ):
            raise ValueError(f"fault error_code must be an int, got {self.error_code!r}")
        if self.delay_seconds < 0:
            raise ValueError(f"fault delay_seconds must not be negative, got {self.delay_seconds!r}")
        if self.http_status is not None and not 100 <= self.http_status <= 599:
            raise ValueError(f"fault http_status must be between 100 and 599, got {self.http_status!r}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"fault times must be 0 (no limit) or positive, got {self.times!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be between 0 and 1, got {self.probability!r}")
        if not any(actions) and self.delay_seconds == 0:
            raise ValueError(
                "a fault needs an error_code, drop, truncate, http_status/body or a positive delay_seconds"
            )

    @property
    def raw_response(self) -> bool:
        """Whether the fault sends a raw response instead of a JSON envelope."""
        return self.http_status is not None or self.body is not None

    def matches(self, method: str, path: str, known_endpoint: bool) -> bool:
        """
        Return whether the fault applies to a request.

        :param method: HTTP method of the request.
        :param path: URL path of the request.
        :param known_endpoint: whether the path is a POST endpoint the emulator serves.
        """
        if self.endpoint is None:
            return method == "POST" and known_endpoint
        if self.endpoint.endswith("/"):
            return path.startswith(self.endpoint)
        return path == self.endpoint


class _QueuedFault:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times or None


class FaultQueue:
    """Queued faults in injection order, with the seeded generator behind their probabilities."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._queue: list[_QueuedFault] = []
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> None:
        """
        Queue a fault behind those already queued.

        :param fault: the fault to apply to later requests.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {type(fault).__name__}")
        with self._lock:
            self._queue.append(_QueuedFault(fault))

    def take(self, method: str, path: str, known_endpoint: bool) -> Fault | None:
        """
        Return the first queued fault that matches the request and wins its probability draw, and use it up once.

        :param method: HTTP method of the request.
        :param path: URL path of the request.
        :param known_endpoint: whether the path is a POST endpoint the emulator serves.
        """
        with self._lock:
            for queued in self._queue:
                fault = queued.fault
                if not fault.matches(method, path, known_endpoint):
                    continue
                if fault.probability < 1.0 and self._random.random() >= fault.probability:
                    continue
                if queued.remaining is not None:
                    queued.remaining -= 1
                    if queued.remaining == 0:
                        self._queue.remove(queued)
                return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        """Faults still queued, in injection order."""
        with self._lock:
            return [queued.fault for queued in self._queue]

    def clear(self, seed: int) -> None:
        """
        Drop every queued fault and reseed the generator.

        :param seed: the new seed.
        """
        with self._lock:
            self._queue.clear()
            self._random = random.Random(seed)


def build_random_faults(
    rate: float,
    endpoint: str | None,
    codes: Sequence[int],
    drop_share: float,
    delay_share: float,
    delay_seconds: float,
) -> list[Fault]:
    """
    Build unlimited faults that together hit a ``rate`` share of matching requests with a mix of failures.

    The share left after ``drop_share`` and ``delay_share`` is split evenly over ``codes``. Because the
    queue tries faults in order and a missed draw moves on to the next fault, each fault's probability
    is conditional on the earlier ones missing.

    :param rate: share of matching requests that fail, between 0 and 1.
    :param endpoint: path to match, as in :attr:`Fault.endpoint`.
    :param codes: error codes to respond with.
    :param drop_share: share of the failures that drop the connection.
    :param delay_share: share of the failures that are only delayed.
    :param delay_seconds: real seconds of each delay.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
    if drop_share < 0 or delay_share < 0 or drop_share + delay_share > 1.0:
        raise ValueError(
            f"drop_share and delay_share must be non-negative and sum to at most 1, got {drop_share!r} and {delay_share!r}"
        )
    code_share = 1.0 - drop_share - delay_share
    if code_share > 1e-9 and not codes:
        raise ValueError("codes must not be empty unless drop_share and delay_share sum to 1")
    if delay_share > 0 and delay_seconds <= 0:
        raise ValueError(f"delay_seconds must be positive when delay_share is set, got {delay_seconds!r}")

    weighted: list[tuple[Fault, float]] = [
        (Fault(endpoint=endpoint, error_code=code, times=0), code_share / len(codes)) for code in codes
    ]
    weighted.append((Fault(endpoint=endpoint, drop=True, times=0), drop_share))
    if delay_share > 0:
        weighted.append((Fault(endpoint=endpoint, delay_seconds=delay_seconds, times=0), delay_share))

    faults: list[Fault] = []
    earlier = 0.0
    for fault, share in weighted:
        target = rate * share
        if target <= 0:
            continue
        conditional = min(1.0, target / (1.0 - earlier)) if earlier < 1.0 else 1.0
        faults.append(dataclasses.replace(fault, probability=conditional))
        earlier += target
    return faults
