"""Operators that store Fxiaoke files: stream presigned files into Airflow object storage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import fsspec
from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

from fxiaoke_provider.api.downloads import (
    CHUNK_SIZE,
    MANIFEST_NAME,
    MAX_ATTEMPTS,
    Exporter,
    ManifestError,
    read_items,
)
from fxiaoke_provider.exceptions import FxiaokeError, FxiaokePartialFailureError
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook
from fxiaoke_provider.paths import validate_expire_hours

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context


_INSTALL_HINT = (
    "Install the Airflow provider of that storage together with its filesystem package, such as "
    "apache-airflow-providers-amazon[s3fs] for s3:// or apache-airflow-providers-google for gs://, "
    "or write to a file:// URL"
)


def _no_filesystem(destination: str, err: Exception) -> ValueError:
    return ValueError(
        f"destination {destination!r} has no usable filesystem ({type(err).__name__}: {err}). {_INSTALL_HINT}"
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _parse_destination(value: str) -> ObjectStoragePath:
    """
    Return the folder of a destination URL, refusing the values that the path parser would silently change.

    The parser drops control characters. It also takes the host of a ``file://`` URL as a folder below
    the working directory, and so a path that starts with two slashes (``file:////data`` or
    ``file://localhost//data``). Each would write to a folder other than the one in the URL.

    :raises ValueError: naming the value and showing the right form.
    """
    text = value.strip()
    control = _CONTROL.search(text)
    if control:
        raise ValueError(
            f"destination={value!r} contains the control character {control.group()!r}, which the path "
            "would silently lose; remove it, for example a line break left by a template"
        )
    scheme, _, rest = text.partition("://")
    if scheme.lower() == "file":
        host, slash, folder_path = rest.partition("/")
        if not slash:
            raise ValueError(
                f"destination={value!r} has no folder path; give an absolute path after three slashes, "
                "as in 'file:///data/fxiaoke'"
            )
        if host.lower() not in ("", "localhost"):
            raise ValueError(
                f"destination={value!r} names the host {host!r}, but a file:// URL takes an absolute path "
                f"after three slashes, as in 'file:///{host}/{folder_path}' or 'file:///data/fxiaoke'"
            )
        if folder_path.startswith("/"):
            absolute = "/" + folder_path.lstrip("/")
            raise ValueError(
                f"destination={value!r} has more than one slash before the folder path, which would make "
                f"it a folder below the working directory; give 'file://{absolute}', three slashes and the "
                "absolute path, as in 'file:///abs/path'"
            )
        # The parser would take "localhost" as a folder, so the URL is given without it.
        text = f"{scheme}://{slash}{folder_path}"
    try:
        return ObjectStoragePath(text)
    except (ImportError, ValueError) as err:
        raise _no_filesystem(text, err) from None


def _destination(value: object) -> ObjectStoragePath:
    """
    Return the destination folder, after checking that a filesystem for its scheme is installed.

    The check looks up fsspec's filesystem class and builds Airflow's filesystem for the scheme, which
    touches no file in the destination.

    :raises ValueError: for a value that is not an object storage URL, holds a control character or is a
        ``file://`` URL with a host or with more than three slashes, and for a scheme that no installed
        package handles, naming the destination and what to do.
    """
    if isinstance(value, ObjectStoragePath):
        folder = value
    elif not isinstance(value, str) or "://" not in value.strip():
        raise ValueError(
            f"destination={value!r} must be an object storage URL such as 'file:///data/fxiaoke' or "
            "'s3://bucket/prefix', or an ObjectStoragePath"
        )
    else:
        folder = _parse_destination(value)
    try:
        # fsspec's class serves the folder operations and Airflow's registered filesystem opens the files.
        fsspec.get_filesystem_class(folder.protocol or "file")
        _ = folder.fs
    except (ImportError, ValueError) as err:
        raise _no_filesystem(str(folder), err) from None
    return folder


def _check_not_a_file(folder: ObjectStoragePath) -> None:
    """
    Reject a destination that is an existing file, where no folder can be made.

    :raises ValueError: naming the destination and what to do.
    """
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"destination {str(folder)!r} is an existing file, not a folder; give a folder, or a path where "
            "none exists yet, or move the file away"
        )


class _HiddenLinks:
    """
    The rendered ``results``, shown without their URLs in Airflow's rendered fields.

    Airflow stores every template field after rendering, shows it in the Rendered Templates view and
    names it in its debug log. In place of the list it serializes this object, whose text gives the
    number of items and their paths but no URL.

    :param value: the rendered ``results``, passed on unchanged to the export.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def serialize(self) -> str:
        """Return the text that Airflow stores as the rendered field."""
        value = self.value
        if isinstance(value, (list, tuple)):
            paths = [item.get("path") if isinstance(item, Mapping) else None for item in value]
            return f"{len(value)} item(s), URLs not shown; paths: {paths!r}"
        return f"a {type(value).__name__}, not shown because it may hold URLs"

    __repr__ = __str__ = serialize


class PresignedFilesToObjectStorageOperator(BaseOperator):
    """
    Stream the files that ``PresignFilesOperator`` presigned into an object storage folder.

    Each file is downloaded a chunk at a time, so no whole file is held in memory, with ``max_workers``
    downloads in parallel. Its size is checked against ``Content-Length`` and it is stored under a name
    made from its path that cannot leave the folder. ``manifest.jsonl`` beside the files gets one
    ``{"path", "file", "size", "sha256", "status"}`` line per file, ``status`` being ``downloaded`` or
    ``skipped``. Entries of earlier runs for paths that this run does not handle are kept, with
    ``status`` ``kept``, so the manifest also lists the files that earlier runs stored.

    Every argument, the destination's filesystem package and the Fxiaoke connection are checked before
    any download, and a bad one fails the task at once, without retries. So does a destination that is
    an existing file. A previous manifest that cannot be read or has a damaged line fails the task in the
    same way, because replacing it would lose the record of earlier runs: repair it or move it away.
    Running the task again is safe: a file already in the folder is skipped without a download, when it
    has the size recorded in the manifest or, with no size recorded, whatever its size. Each download is
    written under a temporary name, unique to the run, and renamed once complete, so a file at its final
    name is complete.
    Links that have expired by the time they are used, as on a retry hours later, are presigned again
    through the hook. A file that still fails after retries is named in the log, the other files are
    written, and the task then fails with the counts.

    .. code-block:: python

        export = PresignedFilesToObjectStorageOperator(
            task_id="export",
            results=presign.output,
            destination="s3://bucket/fxiaoke/{{ ds_nodash }}",
        )

    :param results: the list of ``{"path", "url", "expires_at"}`` dicts that ``PresignFilesOperator``
        returns (templated). A ``size`` key, when present, is the expected size in bytes. Airflow's
        rendered fields show the number of items and their paths, not the URLs.
    :param destination: the folder, an ``ObjectStoragePath`` or its URL (templated); ``s3://``,
        ``gs://`` and others work once their Airflow provider is installed. Give each task instance its
        own folder, because two exports into one folder at the same time overwrite each other's manifest.
    :param max_workers: parallel downloads.
    :param fxiaoke_conn_id: the Fxiaoke connection used to presign expired links again (templated).
    :param expire_hours: lifetime of links presigned again, in whole hours.
    :param chunk_size: bytes per read of a download.
    :param max_attempts: tries of a download that fails with a transient error, from 1 to 10.
    """

    template_fields: Sequence[str] = ("results", "destination", "fxiaoke_conn_id")
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        results: Any,
        destination: str | ObjectStoragePath,
        max_workers: int = 4,
        fxiaoke_conn_id: str = FxiaokeHook.default_conn_name,
        expire_hours: int = 1,
        chunk_size: int = CHUNK_SIZE,
        max_attempts: int = MAX_ATTEMPTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.destination = destination
        self.max_workers = max_workers
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.expire_hours = expire_hours
        self.chunk_size = chunk_size
        self.max_attempts = max_attempts

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Airflow calls this for a task and for each of its mapped instances, after resolving XComArgs and
        # before it stores the rendered fields, so the URLs in ``results`` are hidden from both.
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self and not isinstance(self.results, _HiddenLinks):
            self.results = _HiddenLinks(self.results)

    @cached_property
    def hook(self) -> FxiaokeHook:
        """The Fxiaoke hook of ``fxiaoke_conn_id``."""
        return FxiaokeHook(fxiaoke_conn_id=self.fxiaoke_conn_id)

    def _presign(self, paths: list[str]) -> dict[str, str]:
        return self.hook.presign_any(paths, expire_hours=self.expire_hours).urls

    def execute(self, context: Context) -> dict[str, Any]:
        """Export every file, write the manifest, and return the folder, the manifest and the counts."""
        try:
            results = self.results.value if isinstance(self.results, _HiddenLinks) else self.results
            items = read_items(results)
            folder = _destination(self.destination)
            _check_not_a_file(folder)
            self.expire_hours = validate_expire_hours(self.expire_hours)
            exporter = Exporter(
                folder,
                self._presign,
                max_workers=self.max_workers,
                chunk_size=self.chunk_size,
                max_attempts=self.max_attempts,
                logger=self.log,
            )
        except (TypeError, ValueError) as err:
            raise AirflowFailException(f"Invalid argument of task {self.task_id!r}: {err}") from err
        try:
            # Reads and checks the connection without a request, so a bad one fails before any download.
            _ = self.hook.config
        except (FxiaokeError, AirflowNotFoundException) as err:
            raise AirflowFailException(
                f"Connection fxiaoke_conn_id={self.fxiaoke_conn_id!r} of task {self.task_id!r} cannot be "
                f"used to presign links again: {err}"
            ) from err
        self.log.info("Exporting %d file(s) to %s", len(items), folder)
        try:
            report = exporter.run(items)
        except ManifestError as err:
            if not err.before_downloads:
                raise
            # A retry would stop at the same manifest, so the task fails at once.
            raise AirflowFailException(f"Task {self.task_id!r} cannot export to {folder}: {err}") from err
        self.log.info(
            "Downloaded %d file(s) (%d bytes), skipped %d already present, %d failed, %d link(s) presigned "
            "again; manifest: %s",
            report.downloaded,
            report.bytes_written,
            report.skipped,
            len(report.failures),
            report.represigned,
            folder / MANIFEST_NAME,
        )
        if report.failures:
            raise AirflowException(str(FxiaokePartialFailureError(len(report.entries), report.failures)))
        return {
            "destination": str(folder),
            "manifest": str(folder / MANIFEST_NAME),
            "downloaded": report.downloaded,
            "skipped": report.skipped,
            "bytes": report.bytes_written,
        }

    def on_kill(self) -> None:
        """Close the hook's HTTP session when the task is stopped."""
        if "hook" in self.__dict__:
            self.hook.close()
