"""
CRM object queries: every record of an object through ``_id`` keyset paging, and the files its fields contain.

Paging: the query endpoints take at most 100 records per page, an ``offset`` that is a multiple of the
page size, and no ``offset`` above 10,000 (error 10013, "offset out of range 10000"). To reach every
record, each page here keeps ``offset`` at 0, orders by ``_id`` ascending and adds the filter
``_id GT <last _id of the previous page>``. Records that change while the pages are read do not shift
later pages, as they would with offset paging.

File field values: the vendor documents no exact shape for file and image field values in query
output. Its form-plugin event and its command-line upload describe a file as
``{"filename", "ext", "size", "path"}`` with the npath in ``path``; other sources use ``npath`` and
``fileName``. :func:`parse_file_value` therefore reads, in order of precedence, the path from ``path``,
``npath``, ``Path`` or ``nPath``, the name from ``filename``, ``fileName``, ``name`` or ``Filename``, and
the size from ``size``, ``fileSize`` or ``Size``, each from the first key whose value is neither
None nor blank text. A value may be one such dict, a list of them, a bare npath string, or empty.
This is the only place the provider makes that assumption.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fxiaoke_provider.api.client import FxiaokeClient, response_trace_id
from fxiaoke_provider.exceptions import FxiaokeResponseError
from fxiaoke_provider.paths import PATH_KEYS, first_value, short_repr

QUERY_ENDPOINT = "/cgi/crm/v2/data/query"
CUSTOM_QUERY_ENDPOINT = "/cgi/crm/custom/v2/data/query"
#: Suffix of a custom object's API name, whose records the custom query endpoint serves.
CUSTOM_SUFFIX = "__c"
#: Largest page the query endpoints return.
MAX_PAGE_SIZE = 100
#: Filter operators the query endpoints document.
OPERATORS = frozenset(
    {
        "EQ",
        "N",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "LIKE",
        "NLIKE",
        "IS",
        "ISN",
        "IN",
        "NIN",
        "BETWEEN",
        "NBETWEEN",
        "STARTWITH",
        "ENDWITH",
        "CONTAINS",
    }
)
#: Field that contains the time of a record's last change, in epoch milliseconds.
MODIFIED_FIELD = "last_modified_time"
#: Latest epoch time accepted, in milliseconds: the last millisecond of the year 9999 UTC, the latest
#: time a ``datetime`` can hold. The earliest is 0, the start of 1970.
MAX_EPOCH_MS = 253_402_300_799_999
#: Smallest epoch time in milliseconds accepted as a number (1973-03-03). Smaller numbers are far more
#: likely epoch seconds, such as ``{{ data_interval_start.int_timestamp }}``, than times before 1973.
MIN_EPOCH_MS = 100_000_000_000

#: Keys of a file dict, each tuple in order of precedence (see the module docstring).
FILE_PATH_KEYS = PATH_KEYS
FILE_NAME_KEYS = ("filename", "fileName", "name", "Filename")
FILE_SIZE_KEYS = ("size", "fileSize", "Size")

_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
# Field API names may start with an underscore, as ``_id`` does.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class FileRef:
    """One file referenced by a record's field."""

    #: The npath.
    path: str
    #: The file's name as the CRM shows it; the path when the value carries no name.
    filename: str
    #: Size in bytes, when the value carries a whole number.
    size: int | None


def query_endpoint(object_api_name: str) -> str:
    """
    Return the query endpoint of an object: the custom one for API names ending in ``__c``.

    :param object_api_name: the object's API name.
    """
    return CUSTOM_QUERY_ENDPOINT if object_api_name.endswith(CUSTOM_SUFFIX) else QUERY_ENDPOINT


def check_object_api_name(value: object, *, argument: str = "object_api_name") -> str:
    """
    Check an object API name such as ``AccountObj`` or ``Contract__c``.

    :param value: the name.
    :param argument: the argument's name, for the error message.
    :raises ValueError: when it is not letters, digits and underscores starting with a letter.
    """
    if not isinstance(value, str) or not _API_NAME.fullmatch(value.strip()):
        raise ValueError(
            f"{argument}={short_repr(value)} is not an object API name; expected letters, digits and underscores "
            "starting with a letter, such as 'AccountObj' or 'Contract__c'"
        )
    return value.strip()


def check_field_name(value: object, *, argument: str) -> str:
    """
    Check a field API name such as ``_id``, ``owner`` or ``contract_file__c``.

    :param value: the name.
    :param argument: the argument's name, for the error message.
    :raises ValueError: when it is not letters, digits and underscores.
    """
    if not isinstance(value, str) or not _FIELD_NAME.fullmatch(value.strip()):
        raise ValueError(
            f"{argument}={short_repr(value)} is not a field API name; expected letters, digits and underscores, "
            "such as 'attachments' or 'contract_file__c'"
        )
    return value.strip()


def check_field_names(value: object, *, argument: str = "fields") -> list[str]:
    """
    Check a list of field API names (a single name is taken as a list of one); drop repeats.

    :param value: the names.
    :param argument: the argument's name, for error messages.
    :raises ValueError: when the list is empty or a name is not a field API name.
    """
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"{argument}={short_repr(value)} must be a non-empty list of field API names")
    checked: dict[str, None] = {}
    for index, name in enumerate(names):
        checked[check_field_name(name, argument=f"{argument}[{index}]")] = None
    return list(checked)


def check_page_size(value: object) -> int:
    """
    Check a page size: a whole number from 1 to :data:`MAX_PAGE_SIZE`.

    :param value: records per query call.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size={short_repr(value)} must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return value


def check_filters(value: object, *, argument: str = "filters") -> list[dict[str, Any]]:
    """
    Check query filters: a list of ``{"field_name", "operator", "field_values"}`` dicts.

    :param value: the filters; None means none.
    :param argument: the argument's name, for error messages.
    :raises ValueError: naming the first filter that is malformed.
    """
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{argument}={short_repr(value)} must be a list of filter dicts such as "
            '{"field_name": "owner", "operator": "EQ", "field_values": ["1000"]}'
        )
    checked = []
    for index, item in enumerate(value):
        where = f"{argument}[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(
                f"{where}={short_repr(item)} must be a dict with field_name, operator and field_values"
            )
        field_name = check_field_name(item.get("field_name"), argument=f"{where}.field_name")
        operator = item.get("operator")
        if operator not in OPERATORS:
            raise ValueError(
                f"{where}.operator={short_repr(operator)} is not a query operator; use one of {', '.join(sorted(OPERATORS))}"
            )
        values = item.get("field_values")
        if not isinstance(values, (list, tuple)):
            raise ValueError(f"{where}.field_values={short_repr(values)} must be a list of values")
        checked.append({"field_name": field_name, "operator": operator, "field_values": list(values)})
    return checked


def _check_epoch_ms(value: int, argument: str, value_text: str, expected_ms: str) -> int:
    if value < 0:
        raise ValueError(f"{argument}={value_text} is a negative epoch time; {expected_ms}")
    if value < MIN_EPOCH_MS:
        raise ValueError(
            f"{argument}={value_text} would be before 1973-03-03 as epoch milliseconds, so it looks like "
            f"epoch seconds; multiply it by 1000, or pass a datetime or an ISO 8601 time; {expected_ms}"
        )
    if value > MAX_EPOCH_MS:
        raise ValueError(f"{argument}={value_text} is after the year 9999; {expected_ms}")
    return value


def to_epoch_ms(value: object, *, argument: str) -> int:
    """
    Convert a time from 1970 to 9999 (UTC) to epoch milliseconds.

    :param value: a time-zone aware ``datetime``, an ISO 8601 string with an offset (as Airflow renders
        ``{{ data_interval_start }}``), or a whole number of epoch milliseconds from 0 to
        :data:`MAX_EPOCH_MS`, as an ``int`` or a string of ASCII digits; numbers below
        :data:`MIN_EPOCH_MS` are refused as likely epoch seconds.
    :param argument: the argument's name, for error messages.
    :raises ValueError: for a time without a time zone, a time before 1970 or after 9999, or a value of
        another kind.
    """
    value_text = repr(value.isoformat()) if isinstance(value, datetime) else short_repr(value)
    expected_ms = (
        f"expected epoch milliseconds from {MIN_EPOCH_MS} (1973-03-03) to {MAX_EPOCH_MS} (the end of 9999)"
    )
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_epoch_ms(value, argument, value_text, expected_ms)
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text):
            # Compared as text first, because int() raises ValueError for strings of more than 4300 digits.
            if len(text.lstrip("0")) > len(str(MAX_EPOCH_MS)):
                raise ValueError(f"{argument}={value_text} is after the year 9999; {expected_ms}")
            return _check_epoch_ms(int(text), argument, value_text, expected_ms)
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{argument}={value_text} is not an ISO 8601 time; expected for example '2026-12-03T00:00:00+00:00'"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(
            f"{argument}={value_text} must be a datetime, an ISO 8601 string or epoch milliseconds"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{argument}={value_text} has no time zone; add one, such as +00:00")
    try:
        utc_time = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{argument}={value_text} is outside the years 1970 to 9999 in UTC") from None
    if utc_time.year < 1970:
        raise ValueError(f"{argument}={value_text} is before 1970; expected a time from 1970 to 9999")
    return round(utc_time.timestamp() * 1000)


def modified_between_filter(start: object, end: object) -> dict[str, Any]:
    """
    Build the filter for records last modified at or after ``start`` and before ``end``.

    The API's ``BETWEEN`` includes both ends, so the filter ends one millisecond before ``end``: two
    consecutive data intervals then never both select a record.

    :param start: the window's start; see :func:`to_epoch_ms` for the accepted forms.
    :param end: the window's end, after ``start``.
    :raises ValueError: when a time is not accepted, or ``end`` is not after ``start``. The message for
        a zero-length window names its usual cause, a data interval of zero length.
    """
    start_ms = to_epoch_ms(start, argument="modified_between[0]")
    end_ms = to_epoch_ms(end, argument="modified_between[1]")
    if end_ms == start_ms:
        raise ValueError(
            f"modified_between is a zero-length window: it starts and ends at {start_ms} ms "
            f"({_utc_text(start_ms)}), so it can select no record. A rendered data interval is zero-length "
            "on every run of a DAG whose timetable has no interval, such as schedule='@daily' or "
            "schedule=None in Airflow 3, manual runs included; schedule the DAG with "
            "CronTriggerTimetable('@daily', timezone='UTC', interval=timedelta(days=1)) or another "
            "timetable with an interval, or pass explicit start and end times"
        )
    if end_ms < start_ms:
        raise ValueError(
            f"modified_between ends at {end_ms} ms ({_utc_text(end_ms)}), before its start {start_ms} ms "
            f"({_utc_text(start_ms)}); pass (start, end) in that order"
        )
    return {"field_name": MODIFIED_FIELD, "operator": "BETWEEN", "field_values": [start_ms, end_ms - 1]}


def _utc_text(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _first(item: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """Return the value of the first key whose value is neither None nor blank text, as PresignFilesOperator reads it."""
    found = first_value(item, keys)
    return None if found is None else found[1]


def _size(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_file_value(value: object) -> tuple[list[FileRef], int]:
    """
    Read the files of one file or image field value; see the module docstring for the shapes read.

    :param value: the field's value in a query result.
    :return: the files in order, and how many items could not be read as a file.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return [], 0
    items = value if isinstance(value, list) else [value]
    files: list[FileRef] = []
    unreadable = 0
    for item in items:
        if isinstance(item, str) and item.strip():
            files.append(FileRef(item.strip(), item.strip(), None))
            continue
        if not isinstance(item, Mapping):
            unreadable += 1
            continue
        path = _first(item, FILE_PATH_KEYS)
        if not isinstance(path, str) or not path.strip():
            unreadable += 1
            continue
        name = _first(item, FILE_NAME_KEYS)
        path = path.strip()
        filename = name.strip() if isinstance(name, str) and name.strip() else path
        files.append(FileRef(path, filename, _size(_first(item, FILE_SIZE_KEYS))))
    return files, unreadable


def _page_records(body: Mapping[str, Any], endpoint: str) -> list[dict[str, Any]]:
    data = body.get("data")
    records = data.get("dataList") if isinstance(data, Mapping) else None
    if not isinstance(records, list):
        raise FxiaokeResponseError(
            endpoint, response_trace_id(body), "data.dataList is missing or not a list"
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("_id"), str):
            raise FxiaokeResponseError(
                endpoint, response_trace_id(body), f"data.dataList[{index}] is not a record with a string _id"
            )
    return records


def iter_records(
    client: FxiaokeClient,
    object_api_name: str,
    *,
    fields: Iterable[str] | None = None,
    filters: Iterable[Mapping[str, Any]] | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """
    Yield every record of an object that matches the filters, in ``_id`` order, one page per call.

    Every argument is checked before the first call.

    :param client: the API client.
    :param object_api_name: for example ``AccountObj``; names ending in ``__c`` use the custom endpoint.
    :param fields: field API names to return besides ``_id`` (``fieldProjection``); None returns all.
    :param filters: ``{"field_name", "operator", "field_values"}`` dicts, all of which must match.
    :param page_size: records per call, 1 to 100.
    :raises FxiaokeResponseError: when a page lacks ``data.dataList`` or its ``_id`` values do not rise.
    """
    name = check_object_api_name(object_api_name)
    projection = None if fields is None else ["_id", *check_field_names(list(fields), argument="fields")]
    checked = check_filters(None if filters is None else list(filters))
    limit = check_page_size(page_size)
    endpoint = query_endpoint(name)
    return _pages(client, endpoint, name, projection, checked, limit)


def _pages(
    client: FxiaokeClient,
    endpoint: str,
    name: str,
    projection: list[str] | None,
    filters: list[dict[str, Any]],
    limit: int,
) -> Iterator[dict[str, Any]]:
    last_id: str | None = None
    while True:
        page_filters = list(filters)
        if last_id is not None:
            page_filters.append({"field_name": "_id", "operator": "GT", "field_values": [last_id]})
        info: dict[str, Any] = {
            "limit": limit,
            "offset": 0,
            "filters": page_filters,
            "orders": [{"fieldName": "_id", "isAsc": True}],
        }
        if projection is not None:
            info["fieldProjection"] = projection
        body = client.call(
            endpoint, {"dataObjectApiName": name, "find_explicit_total_num": False, "search_query_info": info}
        )
        records = _page_records(body, endpoint)
        for record in records:
            if last_id is not None and record["_id"] <= last_id:
                # Without rising IDs the next page's filter could skip records or repeat them forever.
                raise FxiaokeResponseError(
                    endpoint,
                    response_trace_id(body),
                    f"record _id {record['_id']!r} is not after {last_id!r}; the server ignored the _id order",
                )
            last_id = record["_id"]
            yield record
        if len(records) < limit:
            return
