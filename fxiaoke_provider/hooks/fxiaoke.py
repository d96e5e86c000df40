"""The Airflow hook for the Fxiaoke (ShareCRM) Open API."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from fxiaoke_provider.api.client import TOKEN_CALLS_PER_MINUTE, FxiaokeClient
from fxiaoke_provider.api.config import ClientConfig, config_from_connection
from fxiaoke_provider.api.crm import MAX_PAGE_SIZE, iter_records
from fxiaoke_provider.api.files import (
    DEFAULT_BATCH_SIZE,
    PRESIGN_ENDPOINT,
    PresignedBatch,
    check_expire_hours,
    distinct_paths,
    get_large_file_url,
    iter_presigned_batches,
    presign_batch,
)
from fxiaoke_provider.api.preview import get_preview_url
from fxiaoke_provider.api.token_store import default_cache_dir
from fxiaoke_provider.exceptions import FxiaokeConfigError, FxiaokeError, FxiaokeMissingPathsError
from fxiaoke_provider.hooks.variable_token_store import AirflowVariableTokenStore

#: Retries of a connection test after its first try.
TEST_MAX_RETRIES = 1
#: Maximum wait, in seconds, of a connection test. A rate limit that needs a longer wait fails the test.
TEST_MAX_RETRY_WAIT = 2.0


class _RateLimitWait(Exception):
    """Raised instead of a rate-limit wait longer than a connection test allows."""

    def __init__(self, seconds: float, *, on_host: bool) -> None:
        super().__init__(seconds)
        #: How long the wait would have been.
        self.seconds = seconds
        #: True for this host's own count of token calls, False for the server's 14001 response.
        self.on_host = on_host


def _brief_sleep(*, on_host: bool) -> Callable[[float], None]:
    """
    Return a wait function for a connection test, which raises instead of waiting out a rate limit.

    :param on_host: True for the host's token-call limiter, False for the client's retry waits.
    """

    def sleep(seconds: float) -> None:
        if seconds > TEST_MAX_RETRY_WAIT:
            raise _RateLimitWait(seconds, on_host=on_host)
        # Looked up at call time, so tests can patch ``time.sleep``.
        time.sleep(seconds)

    return sleep


class FxiaokeHook(BaseHook):
    """
    Call the Fxiaoke Open API with the credentials of an Airflow connection.

    The hook reads the connection on first use, not when it is built. It fetches the access token once
    and shares it with every task process of the host. It retries transient failures and paces calls
    under the API's rate limits. The app secret, the permanent code and every token are registered
    with Airflow's secrets masker as soon as they are read.

    .. code-block:: python

        hook = FxiaokeHook(fxiaoke_conn_id="fxiaoke_default")
        urls = hook.get_presigned_urls(["N_202410_22_a981ae9fe95c43bea8ee8aaebc0c9490.pdf"], expire_hours=2)

    :param fxiaoke_conn_id: the ID of a connection of type ``fxiaoke``.
    """

    conn_name_attr = "fxiaoke_conn_id"
    default_conn_name = "fxiaoke_default"
    conn_type = "fxiaoke"
    hook_name = "Fxiaoke CRM"

    def __init__(self, fxiaoke_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fxiaoke_conn_id = fxiaoke_conn_id

    @cached_property
    def config(self) -> ClientConfig:
        """The validated client configuration, read from the connection on first use."""
        conn = self.get_connection(self.fxiaoke_conn_id)
        if conn.password:
            mask_secret(conn.password)
        try:
            extra = json.loads(conn.extra) if conn.extra else {}
        except json.JSONDecodeError as err:
            raise FxiaokeConfigError(
                "extra", f"is not valid JSON ({err.msg} at position {err.pos})"
            ) from None
        code = extra.get("permanent_code") if isinstance(extra, Mapping) else None
        if isinstance(code, (str, int)) and not isinstance(code, bool):
            # Requests carry the code as the config reader returns it: a stripped string.
            mask_secret(str(code).strip())
        return config_from_connection(
            host=conn.host, login=conn.login, password=conn.password, port=conn.port, extra=extra
        )

    @cached_property
    def client(self) -> FxiaokeClient:
        """The API client, built once per hook."""
        return self._build_client(self.config)

    def _build_client(
        self, config: ClientConfig, *, sleep: Callable[[float], None] | None = None
    ) -> FxiaokeClient:
        store = AirflowVariableTokenStore(config.cache_dir) if config.token_store == "airflow" else None
        return FxiaokeClient(config, logger=self.log, on_secret=mask_secret, token_store=store, sleep=sleep)

    def get_conn(self) -> FxiaokeClient:
        """Return the API client."""
        return self.client

    def call(
        self,
        endpoint: str,
        data: Mapping[str, Any] | None = None,
        *,
        envelope: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """
        Call any Open API endpoint and return the whole response body.

        Use it for endpoints that have no helper here. The hook adds the credentials, the
        ``thirdTraceId`` and the ``{"data": ...}`` envelope, and raises on a non-zero ``errorCode``.

        :param endpoint: the API path, for example ``/cgi/crm/v2/data/query``.
        :param data: the operation's parameters, sent under ``data``.
        :param envelope: other top-level body fields, such as ``{"includeNull": True}``.
        :param idempotent: set to False for writes, so a read timeout or dropped connection is not retried.
        """
        return self.client.call(endpoint, data, envelope=envelope, idempotent=idempotent)

    def iter_presigned_batches(
        self, paths: Iterable[str], *, expire_hours: int = 1, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[PresignedBatch]:
        """
        Presign paths one batch per call and yield each batch as it arrives.

        .. seealso:: https://developer.fxiaoke.com/openapi_v2/en/common/system/other/file/get.html

        :param paths: file paths (npaths); repeats are presigned once.
        :param expire_hours: URL lifetime in hours, at least 1.
        :param batch_size: paths per call.
        """
        return iter_presigned_batches(self.client, paths, expire_hours=expire_hours, batch_size=batch_size)

    def presign_batch(self, paths: list[str], *, expire_hours: int) -> PresignedBatch:
        """
        Presign one batch of already checked, distinct paths.

        Large files (``ALIOSS_`` paths) go to ``generateDownloadSignatureUrlByAuth``, the rest to one
        ``getPresignedUrl`` call.

        :param paths: the batch's paths, at most as many as one call takes.
        :param expire_hours: URL lifetime in hours.
        """
        return presign_batch(self.client, paths, expire_hours=expire_hours)

    def get_presigned_urls(
        self, paths: Iterable[str], expire_hours: int = 1, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> dict[str, str]:
        """
        Get a presigned download URL for every distinct path, in first-seen order.

        The URLs are bearer credentials, because anyone with a URL can read the file until it expires.

        :param paths: file paths (npaths).
        :param expire_hours: URL lifetime in hours, at least 1.
        :param batch_size: paths per call.
        :return: URL by path.
        :raises FxiaokeMissingPathsError: after every batch, when the server left some paths out; the
            error's ``received`` contains the URLs that did arrive.
        """
        urls: dict[str, str] = {}
        missing: list[str] = []
        trace_id = None
        for batch in self.iter_presigned_batches(paths, expire_hours=expire_hours, batch_size=batch_size):
            urls.update(batch.urls)
            if batch.missing:
                missing.extend(batch.missing)
                trace_id = trace_id or batch.trace_id
        if missing:
            raise FxiaokeMissingPathsError(PRESIGN_ENDPOINT, trace_id, missing, urls)
        return urls

    def get_large_file_url(self, path: str) -> str:
        """
        Get the download URL of one large file (an ``ALIOSS_`` path), valid for 3600 s.

        .. seealso:: https://developer.fxiaoke.com/openapi_v2/en/common/system/other/file/download.html

        :param path: the file path.
        """
        return get_large_file_url(self.client, path)

    def test_connection(self) -> tuple[bool, str]:
        """
        Fetch an access token to check the connection; return the outcome instead of raising.

        Someone is waiting on the answer (the UI's Test button, ``airflow connections test``), so a
        transient failure is retried at most :data:`TEST_MAX_RETRIES` times, and no wait lasts more
        than :data:`TEST_MAX_RETRY_WAIT` seconds, whatever the connection allows its tasks. A rate limit
        that would need a longer wait (errorCode 14001, or this host's count of token calls) fails the
        test at once, with the time after which to try again.

        The test proves the app ID, app secret, permanent code and host. It does not check the acting
        user (``user_id`` or ``open_user_id``): the token call does not send it, and the first API call
        checks it.
        """
        try:
            config = dataclasses.replace(
                self.config,
                max_retries=min(self.config.max_retries, TEST_MAX_RETRIES),
                max_retry_wait=min(self.config.max_retry_wait, TEST_MAX_RETRY_WAIT),
            )
            # NOTE: after a 14001 response the client logs a retry one rate-limit window later before this
            # wait raises, so the log announces a retry that the test does not make.
            client = self._build_client(config, sleep=_brief_sleep(on_host=False))
            client.token_limiter.sleep = _brief_sleep(on_host=True)
            try:
                client.check_credentials()
            finally:
                client.close()
        except (FxiaokeError, ValueError) as err:
            return False, str(err)
        except _RateLimitWait as wait:
            return False, self._rate_limit_message(wait)
        except OSError as err:
            return False, self._cache_dir_message(err)
        return True, f"Connected to {self.config.base_url} as app {self.config.app_id}"

    def _rate_limit_message(self, wait: _RateLimitWait) -> str:
        """
        Describe a rate limit that stopped a connection test, and when to try again.

        :param wait: the wait that the test did not make.
        """
        again = f"Try again in {math.ceil(wait.seconds)} s. The test does not wait for a rate limit."
        if wait.on_host:
            return (
                f"Not tested: this host has used the token endpoint's limit of {TOKEN_CALLS_PER_MINUTE} "
                f"calls a minute for app {self.config.app_id}. {again}"
            )
        return (
            "Not tested: the token endpoint answered errorCode 14001 (interface call limit exceeded). "
            f"{again}"
        )

    def _cache_dir_message(self, err: OSError) -> str:
        """
        Describe a file-system error of a connection test as a problem of ``extra.cache_dir``.

        The token store and the rate limiter keep their files there, and the test reads and writes no other file.

        :param err: the error raised while the client used its files.
        """
        if "extra.cache_dir" in str(err):
            return str(err)
        folder = self.config.cache_dir or str(default_cache_dir())
        return (
            f"Invalid fxiaoke connection field extra.cache_dir: the folder {folder!r} cannot hold the token "
            f"and rate-limit files ({err}); set extra.cache_dir to a folder of the user running Airflow"
        )

    def close(self) -> None:
        """Close the HTTP session."""
        if "client" in self.__dict__:
            self.client.close()

    def iter_records(
        self,
        object_api_name: str,
        *,
        fields: Iterable[str] | None = None,
        filters: Iterable[Mapping[str, Any]] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield every record of a CRM object that matches the filters, in ``_id`` order.

        Each page keeps ``offset`` at 0 and asks for the records after the previous page's last ``_id``,
        so objects of more than 10,000 records, the API's offset cap, are read to the end.

        .. seealso:: https://developer.fxiaoke.com/openapi_v2/en/FAQ/deep-paging.html

        :param object_api_name: for example ``AccountObj``; a custom object's name ends in ``__c``.
        :param fields: field API names to return besides ``_id``; None returns every field.
        :param filters: ``{"field_name", "operator", "field_values"}`` dicts, all of which must match.
        :param page_size: records per call, 1 to 100.
        """
        return iter_records(self.client, object_api_name, fields=fields, filters=filters, page_size=page_size)

    def presign_any(self, paths: Iterable[str], *, expire_hours: int = 1) -> PresignedBatch:
        """
        Check and presign one batch of paths, sending large files (``ALIOSS_`` paths) to their own endpoint.

        Each large file's link lasts 3600 s whatever ``expire_hours`` is, and the batch's ``expires_at``
        is the earliest expiry of its links.

        :param paths: file paths, at most as many as one ``getPresignedUrl`` call takes; repeats are
            presigned once.
        :param expire_hours: lifetime of the ``getPresignedUrl`` links in hours.
        """
        check_expire_hours(expire_hours)
        return self.presign_batch(distinct_paths(paths), expire_hours=expire_hours)

    def get_preview_url(
        self,
        path: str,
        filename: str,
        *,
        extension: str | None = None,
        expire_seconds: int = 3600,
        global_acceleration: bool = False,
    ) -> str:
        """
        Get a link that shows a file in the browser, checked against the vendor's rules before the call.

        .. seealso:: https://www.fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/other/file/view/

        :param path: the npath, starting with ``N_``, ``TN_``, ``C_`` or ``TC_``, at most 48 characters.
        :param filename: the name shown, at most 120 characters.
        :param extension: the file type without the dot, such as ``png``; None takes it from ``filename``.
        :param expire_seconds: the link's lifetime, 60 to 604800 seconds.
        :param global_acceleration: serve the link through the global acceleration network.
        """
        return get_preview_url(
            self.client,
            path,
            filename,
            extension=extension,
            expire_seconds=expire_seconds,
            global_acceleration=global_acceleration,
        )
