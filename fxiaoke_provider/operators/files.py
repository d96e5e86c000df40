"""Operators for Fxiaoke files: presigned download URLs for lists of file paths."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from fxiaoke_provider.api.files import DEFAULT_BATCH_SIZE, PresignedBatch, check_batch_size
from fxiaoke_provider.exceptions import (
    FxiaokeAPIError,
    FxiaokeAuthError,
    FxiaokeError,
    FxiaokePartialFailureError,
    FxiaokeQuotaError,
    FxiaokeResponseError,
)
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook
from fxiaoke_provider.paths import normalize_paths, validate_expire_hours

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Seconds between two progress lines in the task log while a long run goes on.
PROGRESS_INTERVAL_SECONDS = 30.0


def _timestamp(batch: PresignedBatch) -> str:
    # Truncated to whole seconds, so the stated expiry is never later than the real one.
    return batch.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _failure_label(error: FxiaokeError) -> str:
    code = getattr(error, "error_code", None)
    return f"errorCode {code}" if code is not None else type(error).__name__


def _ends_the_run(error: FxiaokeError) -> bool:
    """Tell whether an error would fail every later batch too, so the run stops at once."""
    if isinstance(error, (FxiaokeAuthError, FxiaokeQuotaError)) or error.retryable:
        return True
    return not isinstance(error, (FxiaokeAPIError, FxiaokeResponseError))


class PresignFilesOperator(BaseOperator):
    """
    Get presigned download URLs for Fxiaoke file paths and push them to XCom.

    The result, pushed as ``return_value``, is a list of ``{"path", "url", "expires_at"}`` dicts in
    input order, one per distinct path. ``expires_at`` is an ISO 8601 UTC time computed from the
    request time and ``expire_hours``. It can feed ``.expand()`` downstream. The URLs are bearer
    credentials: the task log shows counts, never a URL.

    .. code-block:: python

        presign = PresignFilesOperator(task_id="presign", paths=list_paths(), expire_hours=2)

    :param paths: file paths (templated). Accepted: a list of path strings, a single string, nested
        lists such as a mapped upstream's output, and dicts with a ``path`` or ``npath`` key (CRM
        file-field values). ``None`` items are dropped. A template may render any of these, and a
        rendered list string is read as a list.
    :param expire_hours: URL lifetime in whole hours, at least 1 (templated).
    :param fxiaoke_conn_id: the Fxiaoke connection (templated).
    :param batch_size: paths per ``getPresignedUrl`` call.
    :param skip_on_empty: when there are no paths, skip the task (True, the default) or succeed with an
        empty list (False).
    """

    template_fields: Sequence[str] = ("paths", "expire_hours", "fxiaoke_conn_id")
    template_fields_renderers = {"paths": "py"}
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        paths: Any,
        expire_hours: int | str = 1,
        fxiaoke_conn_id: str = FxiaokeHook.default_conn_name,
        batch_size: int = DEFAULT_BATCH_SIZE,
        skip_on_empty: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.expire_hours = expire_hours
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.batch_size = batch_size
        self.skip_on_empty = skip_on_empty

    @cached_property
    def hook(self) -> FxiaokeHook:
        """The Fxiaoke hook of ``fxiaoke_conn_id``."""
        return FxiaokeHook(fxiaoke_conn_id=self.fxiaoke_conn_id)

    def execute(self, context: Context) -> list[dict[str, str]]:
        """Presign every distinct path and return the results in input order."""
        try:
            normalized = normalize_paths(self.paths)
            expire_hours = validate_expire_hours(self.expire_hours)
            batch_size = check_batch_size(self.batch_size)
        except (TypeError, ValueError) as err:
            raise AirflowFailException(f"Invalid argument of task {self.task_id!r}: {err}") from err
        if normalized.dropped_none:
            self.log.warning("Dropped %d None item(s) from paths", normalized.dropped_none)
        if normalized.duplicates:
            self.log.info(
                "Removed %d repeated path(s); each distinct path is presigned once", normalized.duplicates
            )
        paths = normalized.paths
        if not paths:
            if self.skip_on_empty:
                raise AirflowSkipException(
                    "No file paths to presign: the paths argument resolved to an empty list"
                )
            self.log.info("No file paths to presign; returning an empty list because skip_on_empty is False")
            return []

        batch_count = -(-len(paths) // batch_size)
        self.log.info(
            "Presigning %d path(s) in %d batch(es) of up to %d, URLs valid for %d hour(s)",
            len(paths),
            batch_count,
            batch_size,
            expire_hours,
        )
        try:
            client = self.hook.client
        except FxiaokeError as err:
            raise AirflowFailException(str(err)) from err
        attempts_before, token_calls_before = client.stats.attempts, client.stats.token_calls
        started = time.monotonic()
        results, failures = self._presign(paths, expire_hours, batch_size, context)
        elapsed = time.monotonic() - started
        self.log.info(
            "Presigned %d of %d path(s) in %d batch(es) with %d HTTP request(s) (%d token call(s)) in %.2f s",
            len(results),
            len(paths),
            batch_count,
            client.stats.attempts - attempts_before,
            client.stats.token_calls - token_calls_before,
            elapsed,
        )
        if failures:
            self._keep_partial_results(context, results)
            raise AirflowFailException(str(FxiaokePartialFailureError(len(results), failures)))
        return results

    def _presign(
        self, paths: list[str], expire_hours: int, batch_size: int, context: Context
    ) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
        results: list[dict[str, str]] = []
        failures: list[tuple[str, str]] = []
        total = len(paths)
        started = last_report = time.monotonic()
        for start in range(0, total, batch_size):
            batch_paths = paths[start : start + batch_size]
            try:
                batch = self.hook.presign_batch(batch_paths, expire_hours=expire_hours)
                expires_at = _timestamp(batch)
                results.extend({"path": p, "url": u, "expires_at": expires_at} for p, u in batch.urls.items())
                if batch.missing:
                    failures.extend((path, "no URL returned") for path in batch.missing)
                    self.log.error(
                        "The server returned no URL for %d path(s) of a batch (traceId %s)",
                        len(batch.missing),
                        batch.trace_id,
                    )
            except FxiaokeError as err:
                if _ends_the_run(err):
                    self._keep_partial_results(context, results)
                    if results:
                        self.log.error(
                            "Stopping after %d of %d path(s) were presigned; they are in XCom key 'partial_results'",
                            len(results),
                            total,
                        )
                    if err.retryable:
                        raise
                    raise AirflowFailException(str(err)) from err
                failures.extend((path, _failure_label(err)) for path in batch_paths)
                self.log.error("Batch of %d path(s) failed: %s", len(batch_paths), err)
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_SECONDS and start + batch_size < total:
                last_report = now
                done = start + len(batch_paths)
                rate = done / (now - started)
                self.log.info(
                    "Progress: %d/%d path(s), %.0f paths/s, about %.0f s left",
                    done,
                    total,
                    rate,
                    (total - done) / rate,
                )
        return results, failures

    def _keep_partial_results(self, context: Context, results: list[dict[str, str]]) -> None:
        if results and "ti" in context:
            context["ti"].xcom_push(key="partial_results", value=results)

    def on_kill(self) -> None:
        """Close the HTTP session when the task is stopped."""
        if "hook" in self.__dict__:
            self.hook.close()
