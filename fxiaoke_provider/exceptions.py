"""
Errors raised by the Fxiaoke provider.

The tree::

    FxiaokeError
     +-- FxiaokeConfigError          a connection field is missing or malformed (also a ValueError)
     +-- FxiaokeTransportError       no usable HTTP response: connection error, timeout, HTTP status, non-JSON body
     +-- FxiaokeResponseError        a JSON response of an unexpected shape
     |    +-- FxiaokeMissingPathsError   the presign response left out some requested paths
     +-- FxiaokeAPIError             the API returned a non-zero ``errorCode``
     |    +-- FxiaokeAuthError           credentials or the access token were rejected
     |    +-- FxiaokeRateLimitError      a rate limit was still exceeded after every retry
     |    +-- FxiaokeQuotaError          the tenant's daily quota is used up, or none was bought
     +-- FxiaokePartialFailureError  some batches of a multi-call job failed for good

No message carries a request or response body, a credential, a token or a presigned URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fxiaoke_provider.api.codes import ErrorClass, lookup

#: How many failed items an error message lists before it gives only the count.
MAX_LISTED = 5


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(item) for item in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f" and {len(items) - MAX_LISTED} more"
    return shown


class FxiaokeError(Exception):
    """Base of every error this provider raises."""

    #: Whether sending the same request again may succeed.
    retryable: bool = False

    def __init__(self, *args: object) -> None:
        super().__init__(*args)


class FxiaokeConfigError(FxiaokeError, ValueError):
    """
    A connection field is missing or malformed.

    Raised while the connection is read, before any network call.

    :param field: the connection field at fault, for example ``extra.permanent_code``.
    :param problem: what is wrong and what to put there.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"Invalid fxiaoke connection field {field}: {problem}")


class FxiaokeTransportError(FxiaokeError):
    """
    The server sent no usable HTTP response.

    :param endpoint: the API path called.
    :param reason: what went wrong, without any body or credential.
    :param http_status: the HTTP status, when a response arrived.
    :param retryable: whether sending the request again may succeed.
    :param request_sent: whether the request may have reached the server; False only when no
        connection was made, so that even a write can be sent again safely.
    """

    def __init__(
        self,
        endpoint: str,
        reason: str,
        *,
        http_status: int | None = None,
        retryable: bool,
        request_sent: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.http_status = http_status
        self.retryable = retryable
        self.request_sent = request_sent
        self.error_code: int | None = None
        self.trace_id: str | None = None
        super().__init__(f"Fxiaoke request to {endpoint} failed: {reason}")


class FxiaokeResponseError(FxiaokeError):
    """
    The server returned JSON of an unexpected shape.

    :param endpoint: the API path called.
    :param trace_id: the response's ``traceId``, for a support ticket.
    :param problem: what is wrong with the shape.
    """

    def __init__(self, endpoint: str, trace_id: str | None, problem: str) -> None:
        self.endpoint = endpoint
        self.trace_id = trace_id
        self.error_code: int | None = None
        super().__init__(f"Unexpected response from {endpoint} (traceId {trace_id!r}): {problem}")


class FxiaokeMissingPathsError(FxiaokeResponseError):
    """
    The presign response left out some of the requested paths.

    :param endpoint: the API path called.
    :param trace_id: the response's ``traceId``.
    :param missing: the paths with no URL, in request order.
    :param received: the URLs that did arrive, so callers can keep them.
    """

    def __init__(
        self, endpoint: str, trace_id: str | None, missing: Sequence[str], received: Mapping[str, str]
    ) -> None:
        self.missing = list(missing)
        self.received = dict(received)
        super().__init__(
            endpoint,
            trace_id,
            f"no URL returned for {len(self.missing)} path(s): {_listing(self.missing)}. "
            "Check that these files exist in the tenant's file store.",
        )


class FxiaokeAPIError(FxiaokeError):
    """
    The Open API returned a non-zero ``errorCode``.

    :param error_code: the ``errorCode``.
    :param endpoint: the API path called.
    :param trace_id: the response's ``traceId``, for a support ticket.
    :param server_message: the response's ``errorMessage``, kept as an attribute only.
    :param attempts: how many attempts were made before giving up.
    """

    def __init__(
        self,
        error_code: int,
        endpoint: str,
        trace_id: str | None,
        *,
        server_message: str | None = None,
        attempts: int = 1,
    ) -> None:
        entry = lookup(error_code)
        self.error_code = error_code
        self.endpoint = endpoint
        self.trace_id = trace_id
        self.meaning = entry.meaning
        self.advice = entry.advice
        self.error_class = entry.error_class
        self.retryable = entry.error_class in (ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED)
        self.server_message = (server_message or "")[:200]
        self.attempts = attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"Fxiaoke API error {error_code} ({entry.meaning}) from {endpoint}{tries}, "
            f"traceId {trace_id!r}. {entry.advice}"
        )


class FxiaokeAuthError(FxiaokeAPIError):
    """The credentials or the access token were rejected."""


class FxiaokeRateLimitError(FxiaokeAPIError):
    """A rate limit was still exceeded after every retry."""


class FxiaokeQuotaError(FxiaokeAPIError):
    """The tenant's daily call quota is used up, or the tenant bought none."""


_AUTH_CODES = frozenset({10001, 10002, 10012, 11001, 11002, 11013, 20006, 20015, 20021, 20022})


def api_error_for(
    error_code: int,
    endpoint: str,
    trace_id: str | None,
    *,
    server_message: str | None = None,
    attempts: int = 1,
) -> FxiaokeAPIError:
    """
    Build the most specific :class:`FxiaokeAPIError` subclass for an error code.

    :param error_code: the response's ``errorCode``.
    :param endpoint: the API path called.
    :param trace_id: the response's ``traceId``.
    :param server_message: the response's ``errorMessage``.
    :param attempts: how many attempts were made.
    """
    entry = lookup(error_code)
    cls: type[FxiaokeAPIError] = FxiaokeAPIError
    if entry.error_class is ErrorClass.TOKEN or error_code in _AUTH_CODES:
        cls = FxiaokeAuthError
    elif entry.error_class is ErrorClass.RATE_LIMITED:
        cls = FxiaokeRateLimitError
    elif error_code in (30002, 30003):
        cls = FxiaokeQuotaError
    return cls(error_code, endpoint, trace_id, server_message=server_message, attempts=attempts)


class FxiaokePartialFailureError(FxiaokeError):
    """
    Some batches of a multi-call job failed for good while others succeeded.

    :param succeeded: how many items succeeded.
    :param failures: each failed item with the error code (or error type) that failed it, in input order.
    """

    def __init__(self, succeeded: int, failures: Sequence[tuple[str, str]]) -> None:
        self.succeeded = succeeded
        self.failures = list(failures)
        listed = ", ".join(f"{path!r} ({code})" for path, code in self.failures[:MAX_LISTED])
        more = f" and {len(self.failures) - MAX_LISTED} more" if len(self.failures) > MAX_LISTED else ""
        super().__init__(
            f"{succeeded} path(s) succeeded and {len(self.failures)} failed; first failures: {listed}{more}"
        )
