"""Operators for CRM objects: list the files that the file and image fields of an object's records contain."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from fxiaoke_provider.api.crm import (
    MAX_PAGE_SIZE,
    check_field_names,
    check_filters,
    check_object_api_name,
    check_page_size,
    modified_between_filter,
    parse_file_value,
)
from fxiaoke_provider.exceptions import FxiaokeError
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook
from fxiaoke_provider.paths import check_bool, short_repr

if TYPE_CHECKING:
    from airflow.sdk import Context


class FxiaokeListFilesOperator(BaseOperator):
    """
    List the files in the file or image fields of a CRM object's records and push them to XCom.

    Every record that matches the filters is read, in ``_id`` order, with only ``_id`` and the file
    fields returned, so objects of more than 10,000 records are listed in full. The result, pushed as
    ``return_value``, has one ``{"path", "filename", "size", "object_api_name", "record_id", "field"}``
    dict per file and record, in record order; ``size`` is None when the field value gives none.
    ``PresignFilesOperator`` takes this list as its ``paths`` and presigns each distinct path once.

    .. code-block:: python

        files = FxiaokeListFilesOperator(
            task_id="list_files",
            object_api_name="AccountObj",
            file_fields=["attachments", "logo"],
            modified_between=("{{ data_interval_start }}", "{{ data_interval_end }}"),
        )
        presign = PresignFilesOperator(task_id="presign", paths=files.output)

    :param object_api_name: the object, such as ``AccountObj``, or ``Contract__c`` for a custom
        object (templated).
    :param file_fields: API names of the file and image fields to read (templated).
    :param filters: more query filters, ``{"field_name", "operator", "field_values"}`` dicts that must
        all match (templated).
    :param modified_between: a ``(start, end)`` pair: only records whose ``last_modified_time`` is at or
        after ``start`` and before ``end``. Each end is a time-zone aware datetime, an ISO 8601 string
        such as a rendered ``{{ data_interval_start }}``, or epoch milliseconds, from 1970 to 9999
        (templated). A zero-length window fails: in Airflow 3 the data interval has zero length unless
        the DAG's timetable has an interval, such as
        ``CronTriggerTimetable("@daily", timezone="UTC", interval=timedelta(days=1))``.
    :param fxiaoke_conn_id: the Fxiaoke connection (templated).
    :param page_size: records per query call, 1 to 100.
    :param skip_on_empty: when no file is found, skip the task (True) or succeed with an empty list
        (False, the default). Only a ``bool`` is accepted.
    """

    template_fields: Sequence[str] = (
        "object_api_name",
        "file_fields",
        "filters",
        "modified_between",
        "fxiaoke_conn_id",
    )
    template_fields_renderers = {"filters": "json"}
    ui_color = "#e8f4ff"

    def __init__(
        self,
        *,
        object_api_name: str,
        file_fields: Sequence[str] | str,
        filters: list[dict[str, Any]] | None = None,
        modified_between: Sequence[Any] | None = None,
        fxiaoke_conn_id: str = FxiaokeHook.default_conn_name,
        page_size: int = MAX_PAGE_SIZE,
        skip_on_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.object_api_name = object_api_name
        self.file_fields = file_fields
        self.filters = filters
        self.modified_between = modified_between
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.page_size = page_size
        self.skip_on_empty = skip_on_empty

    @cached_property
    def hook(self) -> FxiaokeHook:
        """The Fxiaoke hook of ``fxiaoke_conn_id``."""
        return FxiaokeHook(fxiaoke_conn_id=self.fxiaoke_conn_id)

    def _query(self) -> tuple[str, list[str], list[dict[str, Any]], int]:
        name = check_object_api_name(self.object_api_name)
        fields = check_field_names(self.file_fields, argument="file_fields")
        filters = check_filters(self.filters)
        window = self.modified_between
        if window is not None:
            if isinstance(window, (str, bytes)) or not isinstance(window, Sequence) or len(window) != 2:
                raise ValueError(
                    f"modified_between={short_repr(window)} must be a (start, end) pair, such as "
                    "('{{ data_interval_start }}', '{{ data_interval_end }}')"
                )
            filters.append(modified_between_filter(window[0], window[1]))
        check_bool(self.skip_on_empty, argument="skip_on_empty")
        return name, fields, filters, check_page_size(self.page_size)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Read every matching record and return its files in record order."""
        try:
            name, fields, filters, page_size = self._query()
        except (TypeError, ValueError) as err:
            raise AirflowFailException(f"Invalid argument of task {self.task_id!r}: {err}") from err
        self.log.info(
            "Listing the files of %s fields %s with %d filter(s), %d record(s) per call",
            name,
            ", ".join(fields),
            len(filters),
            page_size,
        )
        started = time.monotonic()
        files: list[dict[str, Any]] = []
        records = with_files = unreadable = 0
        # The file fields that at least one record returned, to catch a misspelt field name.
        returned: set[str] = set()
        try:
            for record in self.hook.iter_records(name, fields=fields, filters=filters, page_size=page_size):
                records += 1
                found = len(files)
                returned.update(field for field in fields if field in record)
                for field in fields:
                    refs, bad = parse_file_value(record.get(field))
                    unreadable += bad
                    files.extend(
                        {
                            "path": ref.path,
                            "filename": ref.filename,
                            "size": ref.size,
                            "object_api_name": name,
                            "record_id": record["_id"],
                            "field": field,
                        }
                        for ref in refs
                    )
                with_files += len(files) > found
        except FxiaokeError as err:
            if err.retryable:
                raise
            raise AirflowFailException(str(err)) from err
        absent = [field for field in fields if field not in returned]
        if records and absent:
            self.log.warning(
                "No record of %s returned the field(s) %s, among %d record(s) read; check that each is "
                "the API name of a file or image field of %s",
                name,
                ", ".join(absent),
                records,
                name,
            )
        if unreadable:
            self.log.warning(
                "Skipped %d field value item(s) that hold no file path (text under path, npath, Path or nPath)",
                unreadable,
            )
        self.log.info(
            "Found %d file(s) in %d of %d record(s) of %s in %.2f s",
            len(files),
            with_files,
            records,
            name,
            time.monotonic() - started,
        )
        if not files and self.skip_on_empty:
            raise AirflowSkipException(f"No files in the matching records of {name}")
        return files

    def on_kill(self) -> None:
        """Close the HTTP session when the task is stopped."""
        if "hook" in self.__dict__:
            self.hook.close()
