"""Seeded CRM object records and the rules of the two object query endpoints."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fxiaoke_provider.testing.envelope import ApiError, show_value
from fxiaoke_provider.testing.seed import DEMO_FILES, DEMO_PATHS, make_npath

#: Operators the emulator evaluates. The real API has more, which the emulator rejects with 15002.
SUPPORTED_OPERATORS = frozenset({"EQ", "N", "GT", "GTE", "LT", "LTE", "IN", "NIN", "BETWEEN"})
#: Suffix of a custom object's API name. Such objects are queried through the custom endpoint.
CUSTOM_SUFFIX = "__c"


@dataclass(frozen=True)
class QueryRules:
    """The paging limits one query is checked against."""

    #: Largest ``limit`` accepted (vendor: 100).
    max_limit: int
    #: Largest ``offset`` accepted (vendor: 10000).
    max_offset: int
    #: Code returned for an offset above ``max_offset`` (vendor: 10013).
    offset_error_code: int


class ObjectStore:
    """
    Records of CRM objects by object API name, each kept sorted by ``_id``.

    Keeping the records sorted lets an ``_id GT`` filter start with a binary search, so paging through
    tens of thousands of records stays cheap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._ids: dict[str, list[str]] = {}

    def add(self, object_api_name: str, records: Iterable[Mapping[str, Any]]) -> int:
        """
        Store records, replacing any record of the same object with the same ``_id``; return the count added.

        :param object_api_name: for example ``AccountObj`` or ``Contract__c``.
        :param records: dicts, each with a string ``_id``.
        """
        if not isinstance(object_api_name, str) or not object_api_name:
            raise ValueError(f"object API name must be a non-empty string, got {object_api_name!r}")
        new = {}
        for index, record in enumerate(records):
            record_id = record.get("_id")
            if not isinstance(record_id, str) or not record_id:
                raise ValueError(f"records[{index}] of {object_api_name} has no string _id")
            new[record_id] = dict(record)
        with self._lock:
            merged = {record["_id"]: record for record in self._records.get(object_api_name, [])}
            merged.update(new)
            ordered = sorted(merged.values(), key=lambda record: record["_id"])
            self._records[object_api_name] = ordered
            self._ids[object_api_name] = [record["_id"] for record in ordered]
        return len(new)

    def names(self) -> list[str]:
        """Return the API names of the objects that have records."""
        with self._lock:
            return list(self._records)

    def snapshot(self, object_api_name: str) -> list[dict[str, Any]]:
        """
        Return copies of an object's records, sorted by ``_id``.

        :param object_api_name: the object's API name.
        """
        with self._lock:
            return [dict(record) for record in self._records.get(object_api_name, [])]

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()
            self._ids.clear()

    def query(
        self, data: Mapping[str, object], *, custom_endpoint: bool, rules: QueryRules
    ) -> dict[str, object]:
        """
        Return the response ``data`` of one ``data/query`` request, or raise :class:`ApiError`.

        :param data: the request's ``data`` object.
        :param custom_endpoint: whether the request came to the endpoint for custom objects.
        :param rules: the paging limits.
        """
        name = data.get("dataObjectApiName")
        if not isinstance(name, str) or not name:
            raise ApiError(
                15002, f"data.dataObjectApiName must be a non-empty string, got {show_value(name)}"
            )
        if name.endswith(CUSTOM_SUFFIX) and not custom_endpoint:
            raise ApiError(
                15002, f"{name} is a custom object: query it through /cgi/crm/custom/v2/data/query"
            )
        if custom_endpoint and not name.endswith(CUSTOM_SUFFIX):
            raise ApiError(15002, f"{name} is not a custom object: query it through /cgi/crm/v2/data/query")
        info = data.get("search_query_info")
        if not isinstance(info, dict):
            raise ApiError(15002, "data.search_query_info must be an object with limit and offset")
        limit, offset = _paging(info, rules)
        filters = [_compile_filter(index, item) for index, item in enumerate(_list(info, "filters"))]
        orders = [_order(index, item) for index, item in enumerate(_list(info, "orders"))]
        projection = _projection(info)
        with self._lock:
            if name not in self._records:
                raise ApiError(15002, f"object {show_value(name)} does not exist")
            records = self._records[name]
            start = _keyset_start(self._ids[name], _list(info, "filters"))
            matching = [record for record in records[start:] if all(check(record) for check in filters)]
        for field, ascending in reversed(orders):
            if field != "_id" or not ascending:
                matching.sort(key=lambda record: _sort_key(record.get(field)), reverse=not ascending)
        page = matching[offset : offset + limit]
        total = len(matching) if data.get("find_explicit_total_num", True) is not False else 0
        return {
            "dataList": [_project(record, projection) for record in page],
            "offset": offset,
            "limit": limit,
            "total": total,
        }


def _list(info: Mapping[str, object], key: str) -> list[object]:
    value = info.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(15002, f"search_query_info.{key} must be a list, got {show_value(value)}")
    return value


def _paging(info: Mapping[str, object], rules: QueryRules) -> tuple[int, int]:
    limit = info.get("limit")
    offset = info.get("offset", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= rules.max_limit:
        raise ApiError(
            15002,
            f"search_query_info.limit must be a whole number from 1 to {rules.max_limit}, got {show_value(limit)}",
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ApiError(
            15002, f"search_query_info.offset must be a whole number >= 0, got {show_value(offset)}"
        )
    if offset % limit:
        raise ApiError(15002, f"search_query_info.offset {offset} must be a multiple of limit {limit}")
    if offset > rules.max_offset:
        raise ApiError(rules.offset_error_code, f"offset out of range {rules.max_offset}")
    return limit, offset


def _sort_key(value: object) -> tuple[int, Any]:
    # None sorts first; numbers before strings, so mixed fields still sort without a TypeError.
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def _compile_filter(index: int, item: object) -> Callable[[Mapping[str, Any]], bool]:
    where = f"search_query_info.filters[{index}]"
    if not isinstance(item, dict):
        raise ApiError(15002, f"{where} must be an object with field_name, operator and field_values")
    field = item.get("field_name")
    operator = item.get("operator")
    values = item.get("field_values")
    if not isinstance(field, str) or not field:
        raise ApiError(15002, f"{where}.field_name must be a non-empty string, got {show_value(field)}")
    if operator not in SUPPORTED_OPERATORS:
        raise ApiError(
            15002,
            f"{where}.operator {show_value(operator)} is not supported; use one of {', '.join(sorted(SUPPORTED_OPERATORS))}",
        )
    if not isinstance(values, list) or not values:
        raise ApiError(15002, f"{where}.field_values must be a non-empty list, got {show_value(values)}")
    if operator == "BETWEEN" and len(values) != 2:
        raise ApiError(15002, f"{where}: BETWEEN takes two field_values, got {len(values)}")
    keys = [_sort_key(value) for value in values]

    def check(record: Mapping[str, Any]) -> bool:
        actual = record.get(field)
        if actual is None:
            return operator in ("N", "NIN")
        key = _sort_key(actual)
        if operator == "EQ":
            return key == keys[0]
        if operator == "N":
            return key != keys[0]
        if operator == "GT":
            return key > keys[0]
        if operator == "GTE":
            return key >= keys[0]
        if operator == "LT":
            return key < keys[0]
        if operator == "LTE":
            return key <= keys[0]
        if operator == "IN":
            return key in keys
        if operator == "NIN":
            return key not in keys
        return keys[0] <= key <= keys[1]

    return check


def _keyset_start(ids: Sequence[str], filters: list[object]) -> int:
    """Return where an ``_id GT`` filter lets the scan start; the filter itself is still applied."""
    start = 0
    for item in filters:
        if isinstance(item, dict) and item.get("field_name") == "_id" and item.get("operator") == "GT":
            values = item.get("field_values")
            if isinstance(values, list) and values and isinstance(values[0], str):
                start = max(start, bisect.bisect_right(ids, values[0]))
    return start


def _order(index: int, item: object) -> tuple[str, bool]:
    if not isinstance(item, dict) or not isinstance(item.get("fieldName"), str):
        raise ApiError(15002, f"search_query_info.orders[{index}] must be an object with fieldName and isAsc")
    return item["fieldName"], item.get("isAsc", True) is not False


def _projection(info: Mapping[str, object]) -> list[str] | None:
    value = info.get("fieldProjection")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ApiError(
            15002, f"search_query_info.fieldProjection must be a list of field names, got {show_value(value)}"
        )
    return value


def _project(record: Mapping[str, Any], projection: list[str] | None) -> dict[str, Any]:
    if projection is None:
        return dict(record)
    fields = {"_id": record["_id"]}
    fields.update({name: record[name] for name in projection if name in record})
    return fields


def file_value(path: str, filename: str, size: int) -> dict[str, object]:
    """
    Build one element of a file or image field value, in the shape the emulator assumes.

    The vendor documents no exact shape for these values in query output. The emulator returns a list
    of ``{"filename", "ext", "path", "size"}`` objects per field, the shape of the vendor's form-plugin
    file event and of its command-line upload output.

    :param path: the npath.
    :param filename: the name shown in the CRM.
    :param size: the size in bytes.
    """
    ext = filename.rpartition(".")[2] if "." in filename else ""
    return {"filename": filename, "ext": ext, "path": path, "size": size}


def generate_records(
    count: int,
    *,
    file_field: str = "attachments",
    every: int = 1,
    modified_ms: int = 1_729_555_200_000,
    seed: int = 7,
    file_bytes: int = 48,
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """
    Generate records with one small attached file on every ``every``-th record, cheaply and repeatably.

    :param count: how many records.
    :param file_field: name of the file field.
    :param every: put a file on records 0, ``every``, ``2 * every``, ...; the others get an empty list.
    :param modified_ms: ``last_modified_time`` of the first record in epoch ms; each later one is 1 s later.
    :param seed: seed of the generator of IDs, paths and contents.
    :param file_bytes: size of each file.
    :return: the records, and the files' contents by npath.
    """
    if count < 0 or every < 1 or file_bytes < 0:
        raise ValueError(
            f"count={count}, every={every}, file_bytes={file_bytes}: need count >= 0, every >= 1, file_bytes >= 0"
        )
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for index in range(count):
        record: dict[str, Any] = {
            "_id": f"{rng.getrandbits(128):032x}",
            "name": f"Record {index + 1}",
            "last_modified_time": modified_ms + index * 1000,
            file_field: [],
        }
        if index % every == 0:
            path = make_npath("N", rng, ext="txt")
            content = rng.randbytes(file_bytes)
            files[path] = content
            record[file_field] = [file_value(path, f"record-{index + 1}.txt", len(content))]
        records.append(record)
    return records, files


def demo_records(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """
    Build the demo CRM records, whose file and image fields reference the demo files.

    :param now_ms: the current time in epoch ms; every record was modified within the hour before it.
    :return: records by object API name: ``AccountObj`` and the custom object ``Contract__c``.
    """
    pdf, png, csv, txt, bare, large = DEMO_PATHS
    sizes = {path: len(data) for path, data in DEMO_FILES.items()}

    def files(*pairs: tuple[str, str]) -> list[dict[str, object]]:
        return [file_value(path, name, sizes[path]) for path, name in pairs]

    accounts = [
        {
            "_id": "65a0000000000000000000a1",
            "name": "Demo account 1",
            "last_modified_time": now_ms - 3_000_000,
            "attachments": files((pdf, "invoice-2024-10-22.pdf")),
            "logo": files((png, "logo.png")),
        },
        {
            "_id": "65a0000000000000000000a2",
            "name": "Demo account 2",
            "last_modified_time": now_ms - 2_000_000,
            "attachments": files((csv, "accounts.csv"), (txt, "note.txt")),
            "logo": [],
        },
        {
            "_id": "65a0000000000000000000a3",
            "name": "Demo account 3",
            "last_modified_time": now_ms - 1_000_000,
            "attachments": [],
            "logo": None,
        },
    ]
    contracts = [
        {
            "_id": "65b0000000000000000000c1",
            "name": "Demo contract 1",
            "last_modified_time": now_ms - 2_500_000,
            "contract_file__c": files((large, "contract-scan.bin")),
            "scan_images__c": files((bare, "page-1")),
        },
        {
            "_id": "65b0000000000000000000c2",
            "name": "Demo contract 2",
            "last_modified_time": now_ms - 1_500_000,
            "contract_file__c": [],
            "scan_images__c": [],
        },
    ]
    return {"AccountObj": accounts, "Contract__c": contracts}
