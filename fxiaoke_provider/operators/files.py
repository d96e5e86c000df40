"""Operators for Fxiaoke files: presigned download URLs for lists of file paths."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath
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
from fxiaoke_provider.paths import check_bool, normalize_paths, short_repr, validate_expire_hours

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Seconds between two progress lines in the task log while a long run goes on.
PROGRESS_INTERVAL_SECONDS = 30.0

_EXPECTED_OUTPUT = (
    "expected None, an ObjectStoragePath, or a URL or absolute path of a file such as "
    "'file:///data/presigned.jsonl'"
)
# C0 controls and DEL, which no file name or URL should contain.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_PROTOCOLS = ("", "file", "local")


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


def check_output_path(value: object, *, argument: str = "output_path") -> ObjectStoragePath | None:
    """
    Check the ``output_path`` argument and return it as an ``ObjectStoragePath``, or None when it is unset.

    A string must be a URL with a scheme (``file://``, ``s3://`` and so on) or an absolute local path, and
    must name a file rather than a folder. An existing local folder is rejected too.

    :param value: the rendered ``output_path`` argument.
    :param argument: name of the argument, used in error messages.
    :raises TypeError: if ``value`` is neither None, a string nor an ``ObjectStoragePath``.
    :raises ValueError: if the path is blank, relative, names a folder, contains a control character or
        uses a scheme that no installed filesystem handles.
    """
    if value is None:
        return None
    described = f"{argument} is {short_repr(value)} ({type(value).__name__})"
    if isinstance(value, ObjectStoragePath):
        path = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{described}, which is blank; {_EXPECTED_OUTPUT}")
        if _CONTROL_CHARACTER.search(text):
            raise ValueError(f"{described}, which contains a control character; {_EXPECTED_OUTPUT}")
        if "://" not in text and not text.startswith("/"):
            raise ValueError(f"{described}, which is a relative path; {_EXPECTED_OUTPUT}")
        if text.endswith("/"):
            raise ValueError(f"{described}, which names a folder; add a file name such as 'presigned.jsonl'")
        try:
            path = ObjectStoragePath(text)
        except (ValueError, ImportError) as err:
            raise ValueError(
                f"{described}, whose scheme no installed filesystem handles ({err}); "
                "install the provider of that storage or use a file:// URL"
            ) from None
    else:
        raise TypeError(f"{described}; {_EXPECTED_OUTPUT}")
    if not path.name:
        raise ValueError(f"{described}, which names a folder; add a file name such as 'presigned.jsonl'")
    if path.protocol in _LOCAL_PROTOCOLS and path.is_dir():
        raise ValueError(f"{described}, which is an existing folder; name a file inside it instead")
    return path


class _ResultList:
    """Every result kept in memory, for the default return value."""

    def __init__(self) -> None:
        self.results: list[dict[str, str]] = []

    @property
    def count(self) -> int:
        return len(self.results)

    def add(self, results: list[dict[str, str]]) -> None:
        self.results.extend(results)

    def partial(self) -> list[dict[str, str]]:
        return self.results

    def close(self) -> None:
        """Nothing to release."""


class _JsonLinesFile:
    """A JSON Lines file that receives the results batch by batch, so that memory stays flat."""

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.count = 0
        self.expires_at_min: str | None = None
        if path.protocol in _LOCAL_PROTOCOLS:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._stream: IO[str] = path.open("w", encoding="utf-8")

    def add(self, results: list[dict[str, str]]) -> None:
        if not results:
            return
        self._stream.write("".join(json.dumps(result) + "\n" for result in results))
        self.count += len(results)
        earliest = min(result["expires_at"] for result in results)
        if self.expires_at_min is None or earliest < self.expires_at_min:
            self.expires_at_min = earliest

    def summary(self) -> dict[str, Any]:
        return {"location": str(self.path), "count": self.count, "expires_at_min": self.expires_at_min}

    def partial(self) -> dict[str, Any]:
        return self.summary()

    def close(self) -> None:
        self._stream.close()


class PresignFilesOperator(BaseOperator):
    """
    Get presigned download URLs for Fxiaoke file paths and push them to XCom.

    The result, pushed as ``return_value``, is a list of ``{"path", "url", "expires_at"}`` dicts in
    input order, one per distinct path. ``expires_at`` is an ISO 8601 UTC time computed from the
    request time and ``expire_hours``. It can feed ``.expand()`` downstream. The URLs are bearer
    credentials: the task log shows counts, never a URL.

    With ``output_path`` set, the same dicts are written as JSON Lines to that file, one batch at a
    time, and the return value is only ``{"location", "count", "expires_at_min"}``. Memory then stays
    flat however many paths there are, and XCom holds no URL.

    .. code-block:: python

        presign = PresignFilesOperator(task_id="presign", paths=list_paths(), expire_hours=2)

    :param paths: file paths (templated). Accepted: a list of path strings, a single string, nested
        lists such as a mapped upstream's output, and dicts with a ``path`` or ``npath`` key (CRM
        file-field values), read from the first such key whose value is neither None nor blank.
        ``None`` items are dropped. A template may render any of these, and a rendered list string is
        read as a list. The log counts list strings that contain no path, such as ``"[]"``. A path has at
        most 1024 characters and no control or format character.
    :param expire_hours: URL lifetime in whole hours, at least 1 (templated).
    :param fxiaoke_conn_id: the Fxiaoke connection (templated).
    :param batch_size: paths per ``getPresignedUrl`` call.
    :param skip_on_empty: when there are no paths, skip the task (True, the default) or succeed with an
        empty result (False). Only a ``bool`` is accepted.
    :param output_path: a file to write the results to as JSON Lines instead of returning them
        (templated): an ``ObjectStoragePath``, a URL such as ``file:///data/{{ run_id }}/presigned.jsonl``
        or ``s3://bucket/presigned.jsonl``, or an absolute local path. The file is replaced; missing local
        folders are created. None (the default) returns the list.
    """

    template_fields: Sequence[str] = ("paths", "expire_hours", "fxiaoke_conn_id", "output_path")
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
        output_path: str | ObjectStoragePath | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.expire_hours = expire_hours
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.batch_size = batch_size
        self.skip_on_empty = skip_on_empty
        self.output_path = output_path

    @cached_property
    def hook(self) -> FxiaokeHook:
        """The Fxiaoke hook of ``fxiaoke_conn_id``."""
        return FxiaokeHook(fxiaoke_conn_id=self.fxiaoke_conn_id)

    def execute(self, context: Context) -> list[dict[str, str]] | dict[str, Any]:
        """Presign every distinct path; return the results in input order, or a summary of the file."""
        try:
            normalized = normalize_paths(self.paths)
            expire_hours = validate_expire_hours(self.expire_hours)
            batch_size = check_batch_size(self.batch_size)
            output = check_output_path(self.output_path)
            skip_on_empty = check_bool(self.skip_on_empty, argument="skip_on_empty")
        except (TypeError, ValueError) as err:
            raise AirflowFailException(f"Invalid argument of task {self.task_id!r}: {err}") from err
        if normalized.dropped_none:
            self.log.warning("Dropped %d None item(s) from paths", normalized.dropped_none)
        if normalized.empty_list_strings:
            self.log.warning(
                "Read %d list string(s) in paths, such as '[]', that contain no path; "
                "an upstream result rendered by a template may have been empty",
                normalized.empty_list_strings,
            )
        if normalized.duplicates:
            self.log.info(
                "Removed %d repeated path(s); each distinct path is presigned once", normalized.duplicates
            )
        paths = normalized.paths
        if not paths:
            if skip_on_empty:
                raise AirflowSkipException(
                    "No file paths to presign: the paths argument resolved to an empty list"
                )
            self.log.info(
                "No file paths to presign; returning an empty result because skip_on_empty is False"
            )
            if output is None:
                return []
            empty = self._open_output(output)
            empty.close()
            return empty.summary()

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
        sink: _ResultList | _JsonLinesFile = _ResultList() if output is None else self._open_output(output)
        attempts_before, token_calls_before = client.stats.attempts, client.stats.token_calls
        started = time.monotonic()
        try:
            failures = self._presign(paths, expire_hours, batch_size, context, sink)
        finally:
            sink.close()
        elapsed = time.monotonic() - started
        self.log.info(
            "Presigned %d of %d path(s) in %d batch(es) with %d HTTP request(s) (%d token call(s)) in %.2f s",
            sink.count,
            len(paths),
            batch_count,
            client.stats.attempts - attempts_before,
            client.stats.token_calls - token_calls_before,
            elapsed,
        )
        if isinstance(sink, _JsonLinesFile):
            self.log.info("Wrote %d result(s) as JSON Lines to %s", sink.count, sink.path)
        if failures:
            self._keep_partial_results(context, sink)
            raise AirflowFailException(str(FxiaokePartialFailureError(sink.count, failures)))
        return sink.results if isinstance(sink, _ResultList) else sink.summary()

    def _open_output(self, output: ObjectStoragePath) -> _JsonLinesFile:
        try:
            return _JsonLinesFile(output)
        except OSError as err:
            raise AirflowFailException(
                f"Cannot write output_path {str(output)!r} of task {self.task_id!r}: {err}; "
                "check that the location exists and is writable"
            ) from err

    def _presign(
        self,
        paths: list[str],
        expire_hours: int,
        batch_size: int,
        context: Context,
        sink: _ResultList | _JsonLinesFile,
    ) -> list[tuple[str, str]]:
        failures: list[tuple[str, str]] = []
        total = len(paths)
        started = last_report = time.monotonic()
        for start in range(0, total, batch_size):
            batch_paths = paths[start : start + batch_size]
            try:
                batch = self.hook.presign_batch(batch_paths, expire_hours=expire_hours)
                expires_at = _timestamp(batch)
                sink.add([{"path": p, "url": u, "expires_at": expires_at} for p, u in batch.urls.items()])
                if batch.missing:
                    failures.extend((path, "no URL returned") for path in batch.missing)
                    self.log.error(
                        "The server returned no URL for %d path(s) of a batch (traceId %s)",
                        len(batch.missing),
                        batch.trace_id,
                    )
            except FxiaokeError as err:
                if _ends_the_run(err):
                    self._keep_partial_results(context, sink)
                    if sink.count:
                        self.log.error(
                            "Stopping after %d of %d path(s) were presigned; they are in XCom key 'partial_results'",
                            sink.count,
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
        return failures

    def _keep_partial_results(self, context: Context, sink: _ResultList | _JsonLinesFile) -> None:
        if sink.count and "ti" in context:
            context["ti"].xcom_push(key="partial_results", value=sink.partial())

    def on_kill(self) -> None:
        """Close the HTTP session when the task is stopped."""
        if "hook" in self.__dict__:
            self.hook.close()
