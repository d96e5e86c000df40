"""
One request to the Open API: envelope, ``thirdTraceId``, timeouts, session, response parsing and retries.

The retry policy, by error class (see :mod:`fxiaoke_provider.api.codes`):

* transient codes (-1, -2, 50009), HTTP 5xx and 429, connection errors and read timeouts: exponential
  back-off with jitter, capped at ``max_retry_wait``; -2 (system error) is retried at most twice;
* rate-limit codes: 14001 waits one whole rate-limit window so the server's window moves, 30004 backs off
  exponentially;
* token codes (20016, 20005, 11014, 11003, 12002): the token is dropped from the store, a new one is
  fetched once and the request is sent again;
* every other code is permanent and raised at once.

Every attempt sends a new ``thirdTraceId``.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import tenacity

from fxiaoke_provider import __version__
from fxiaoke_provider.api.auth import (
    TokenManager,
    apply_auth,
    parse_token,
    token_endpoint,
    token_request_body,
)
from fxiaoke_provider.api.codes import ErrorClass
from fxiaoke_provider.api.config import ClientConfig
from fxiaoke_provider.api.rate_limit import RateLimiter
from fxiaoke_provider.api.token_store import FileTokenStore, MemoryTokenStore, TokenStore, default_cache_dir
from fxiaoke_provider.exceptions import (
    FxiaokeAPIError,
    FxiaokeError,
    FxiaokeResponseError,
    FxiaokeTransportError,
    api_error_for,
)

#: The token endpoint allows at most 10 calls a minute.
TOKEN_CALLS_PER_MINUTE = 10
#: -2 (system error) may be a persistent fault, so it gets fewer retries than other transient codes.
SYSTEM_ERROR_RETRIES = 2
#: First back-off wait in seconds; it doubles on every retry, plus up to one second of jitter.
INITIAL_RETRY_WAIT = 0.5


class LoggerLike(Protocol):
    """The logger methods the client calls, which both a stdlib logger and Airflow's task logger provide."""

    def debug(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...
    def info(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class ClientStats:
    """Counters of one client's traffic."""

    #: API calls requested by callers, token calls excluded.
    calls: int = 0
    #: HTTP requests sent, retries and token calls included.
    attempts: int = 0
    #: Requests sent to a token endpoint.
    token_calls: int = 0
    #: Attempts that failed and were retried.
    retries: int = 0


def response_trace_id(body: Mapping[str, Any]) -> str | None:
    """Return a response body's ``traceId``, or None when it is missing or not a string."""
    trace_id = body.get("traceId")
    return trace_id if isinstance(trace_id, str) else None


def _sleep(seconds: float) -> None:
    # Looked up at call time, so tests can patch ``time.sleep`` for every client at once.
    time.sleep(seconds)


def _check_endpoint(endpoint: str) -> str:
    if (
        not isinstance(endpoint, str)
        or not endpoint.startswith("/")
        or "://" in endpoint
        or endpoint.startswith("//")
    ):
        raise ValueError(
            f"Endpoint {endpoint!r} must be an API path starting with '/', such as /cgi/crm/v2/data/query"
        )
    return endpoint


class FxiaokeClient:
    """
    A synchronous client for the Fxiaoke Open API, with no Airflow dependency.

    :param config: the tenant and credentials.
    :param logger: where retries and calls are logged; the hook passes its task logger.
    :param on_secret: receives every token value as it is read; the hook registers it with Airflow's masker.
    :param token_store: overrides the store chosen by ``config.token_store``.
    :param sleep: waits a number of seconds; tests pass a fake one so nothing sleeps.
    :param clock: returns the current epoch time.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        logger: LoggerLike | None = None,
        on_secret: Callable[[str], None] | None = None,
        token_store: TokenStore | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.log: LoggerLike = logger or logging.getLogger(__name__)
        self.stats = ClientStats()
        self._sleep = sleep or _sleep
        self._clock = clock
        self._session: requests.Session | None = None
        if token_store is not None:
            store = token_store
        elif config.token_store != "memory":
            # "airflow" needs Airflow Variables, which the hook supplies; without the hook it is the file store.
            store = FileTokenStore(config.cache_dir)
        else:
            store = MemoryTokenStore()
        # The rate limiter shares its state through the token store's folder, when the store has one.
        shared_dir = getattr(store, "directory", None)
        self.tokens = TokenManager(
            config, store, self._fetch_token, on_token=on_secret or (lambda _: None), clock=clock
        )
        self.limiter = RateLimiter(
            config.rate_limit_calls,
            config.rate_limit_window,
            key=self.tokens.key,
            directory=shared_dir,
            clock=clock,
            sleep=self._wait,
            logger=self.log,
        )
        self.token_limiter = RateLimiter(
            TOKEN_CALLS_PER_MINUTE,
            60.0,
            key=self.tokens.key,
            directory=shared_dir,
            clock=clock,
            sleep=self._wait,
            logger=self.log,
        )

    def __repr__(self) -> str:
        return f"FxiaokeClient(base_url={self.config.base_url!r}, app_id={self.config.app_id!r})"

    def _wait(self, seconds: float) -> None:
        self._sleep(seconds)

    @property
    def session(self) -> requests.Session:
        """The HTTP session, created on first use and reused for every request."""
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"fxiaoke-airflow-provider/{__version__}"
            session.verify = True
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the HTTP session; a later call opens a new one."""
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- sending and parsing ------------------------------------------------------------------------

    def _post(self, endpoint: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        trace = str(uuid.uuid4())
        self.stats.attempts += 1
        self.log.debug("Calling Fxiaoke %s (thirdTraceId %s)", endpoint, trace)
        try:
            response = self.session.post(
                self.config.base_url + endpoint,
                params={"thirdTraceId": trace},
                json=body,
                headers=dict(headers),
                timeout=self.config.timeout,
            )
        except requests.ConnectTimeout as err:
            raise FxiaokeTransportError(
                endpoint, "connection timed out", retryable=True, request_sent=False
            ) from err
        except requests.ReadTimeout as err:
            raise FxiaokeTransportError(endpoint, "read timed out", retryable=True) from err
        except requests.ConnectionError as err:
            raise FxiaokeTransportError(
                endpoint, f"connection failed ({type(err).__name__})", retryable=True
            ) from err
        except requests.exceptions.ChunkedEncodingError as err:
            # The connection broke while the response body was arriving, a passing network fault.
            raise FxiaokeTransportError(endpoint, "response body cut off", retryable=True) from err
        except requests.RequestException as err:
            raise FxiaokeTransportError(
                endpoint, f"request failed ({type(err).__name__})", retryable=False
            ) from err
        with response:
            return self._parse(endpoint, response)

    @staticmethod
    def _parse(endpoint: str, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        if status != 200:
            retryable = status >= 500 or status == 429
            raise FxiaokeTransportError(
                endpoint, f"HTTP status {status}", http_status=status, retryable=retryable
            )
        try:
            body = response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "unknown")
            raise FxiaokeTransportError(
                endpoint,
                f"the body is not JSON (Content-Type {content_type!r}); a proxy or a wrong host may be responding",
                http_status=status,
                retryable=False,
            ) from None
        if not isinstance(body, dict):
            raise FxiaokeResponseError(endpoint, None, f"expected a JSON object, got {type(body).__name__}")
        trace_id = response_trace_id(body)
        code = body.get("errorCode")
        if isinstance(code, bool) or not isinstance(code, int):
            if isinstance(code, str) and code.lstrip("-").isdigit():
                code = int(code)
            else:
                raise FxiaokeResponseError(endpoint, trace_id, f"errorCode is {code!r}, not an integer")
        if code != 0:
            message = body.get("errorMessage")
            raise api_error_for(
                code, endpoint, trace_id, server_message=message if isinstance(message, str) else None
            )
        return body

    # -- retries -----------------------------------------------------------------------------------

    def _retry_wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, FxiaokeAPIError) and error.error_code == 14001:
            # The server counts calls per 20 s window: wait for the window to move, not a fixed back-off.
            return self.config.rate_limit_window + random.uniform(0, 1)
        exponential = INITIAL_RETRY_WAIT * 2 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, 1), self.config.max_retry_wait)

    def _retrying(self, idempotent: bool, *, token_call: bool = False) -> tenacity.Retrying:
        def should_retry(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if not isinstance(error, FxiaokeError) or not error.retryable:
                return False
            if not token_call and getattr(error, "endpoint", None) == token_endpoint(self.config):
                # The token fetch has already used its own retries; retrying it again here would multiply them.
                return False
            if not idempotent and isinstance(error, FxiaokeTransportError) and error.request_sent:
                # The request may have reached the server, and a write must not be sent twice.
                return False
            if isinstance(error, FxiaokeAPIError) and error.error_code == -2:
                return state.attempt_number <= SYSTEM_ERROR_RETRIES
            return True

        def log_retry(state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self.log.warning(
                "[Try %d of %d] %s (errorCode %s, traceId %s); retrying in %.1f s",
                state.attempt_number,
                self.config.max_retries + 1,
                error,
                getattr(error, "error_code", None),
                getattr(error, "trace_id", None),
                wait,
            )

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.max_retries + 1),
            wait=self._retry_wait,
            retry=should_retry,
            before_sleep=log_retry,
            sleep=self._wait,
            reraise=True,
        )

    def _with_retries(
        self, operation: Callable[[], dict[str, Any]], *, idempotent: bool = True, token_call: bool = False
    ) -> dict[str, Any]:
        retrying = self._retrying(idempotent, token_call=token_call)
        try:
            return retrying(operation)
        except FxiaokeAPIError as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            if attempts > 1 and error.attempts == 1:
                raise api_error_for(
                    error.error_code,
                    error.endpoint,
                    error.trace_id,
                    server_message=error.server_message,
                    attempts=attempts,
                ) from error
            raise

    # -- tokens ------------------------------------------------------------------------------------

    def _fetch_token(self) -> Any:
        endpoint = token_endpoint(self.config)

        def once() -> dict[str, Any]:
            self.token_limiter.acquire(endpoint)
            self.stats.token_calls += 1
            return self._post(endpoint, token_request_body(self.config), {})

        body = self._with_retries(once, token_call=True)
        try:
            token = parse_token(self.config, body, self._clock())
        except ValueError as err:
            raise FxiaokeResponseError(endpoint, response_trace_id(body), str(err)) from None
        self.log.info(
            "Fetched a new Fxiaoke access token (valid for %.0f s)", token.expires_at - token.obtained_at
        )
        return token

    # -- API calls ---------------------------------------------------------------------------------

    def call(
        self,
        endpoint: str,
        data: Mapping[str, Any] | None = None,
        *,
        envelope: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """
        Call an Open API endpoint with the ``{"data": ...}`` envelope and return the whole response body.

        :param endpoint: the API path, for example ``/cgi/crm/v2/data/query``.
        :param data: the operation's parameters, sent under ``data``.
        :param envelope: other top-level body fields, such as ``includeNull`` or ``convertMediaId``.
        :param idempotent: whether the call may be sent again after a read timeout or a dropped connection.
            Set it to False for writes, which the API has no idempotency key for.
        :raises FxiaokeAPIError: for a non-zero ``errorCode`` that retries did not clear.
        :raises FxiaokeTransportError: when no usable HTTP response arrived.
        """
        _check_endpoint(endpoint)
        base_body: dict[str, Any] = dict(envelope or {})
        base_body["data"] = dict(data or {})
        self.stats.calls += 1

        def send(token: Any) -> dict[str, Any]:
            self.limiter.acquire(endpoint)
            body, headers = apply_auth(self.config, token, base_body, {})
            return self._post(endpoint, body, headers)

        def once() -> dict[str, Any]:
            token = self.tokens.get()
            try:
                return send(token)
            except FxiaokeAPIError as error:
                if error.error_class is not ErrorClass.TOKEN:
                    raise
                self.log.warning(
                    "Fxiaoke rejected the access token with errorCode %s (traceId %s); fetching a new one",
                    error.error_code,
                    error.trace_id,
                )
                self.tokens.invalidate(token)
                return send(self.tokens.get())

        return self._with_retries(once, idempotent=idempotent)

    def check_credentials(self) -> None:
        """Fetch a token, or reuse the shared one, to prove the credentials work."""
        self.tokens.get()


__all__ = ["ClientStats", "FxiaokeClient", "default_cache_dir"]
