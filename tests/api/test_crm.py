"""Tests of CRM object paging and of reading file references from field values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fxiaoke_provider.api.crm import (
    CUSTOM_QUERY_ENDPOINT,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    QUERY_ENDPOINT,
    FileRef,
    check_field_names,
    check_filters,
    check_object_api_name,
    iter_records,
    modified_between_filter,
    parse_file_value,
    query_endpoint,
    to_epoch_ms,
)
from fxiaoke_provider.exceptions import FxiaokeResponseError
from fxiaoke_provider.testing import EmulatorSettings, FxiaokeEmulator
from tests.conftest import make_client

RECORDS = 10_050


@dataclass
class BigListing:
    """One listing of an object of more than 10,000 records, and what the emulator saw."""

    ids: list[str]
    seeded: list[str]
    queries: list[dict[str, Any]]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigListing:
    with FxiaokeEmulator(settings=EmulatorSettings(rate_limit_calls=1000)) as emu:
        emu.seed_records("AccountObj", RECORDS, every=500)
        client = make_client(emu, tmp_path_factory.mktemp("cache"), rate_limit_calls=1000)
        ids = [record["_id"] for record in iter_records(client, "AccountObj", fields=["attachments"])]
        return BigListing(ids, [record["_id"] for record in emu.records("AccountObj")], _queries(emu))


def _queries(emu: FxiaokeEmulator) -> list[dict[str, Any]]:
    return [r.body["data"] for r in emu.requests if r.path == QUERY_ENDPOINT]  # type: ignore[index]


class TestIterRecords:
    def test_reads_past_offset_cap(self, big: BigListing) -> None:
        assert big.ids == big.seeded

    def test_every_page_has_offset_zero(self, big: BigListing) -> None:
        assert {query["search_query_info"]["offset"] for query in big.queries} == {0}

    def test_page_count(self, big: BigListing) -> None:
        assert len(big.queries) == RECORDS // 100 + 1

    def test_pages_ordered_by_id(self, big: BigListing) -> None:
        orders = {str(query["search_query_info"]["orders"]) for query in big.queries}
        assert orders == {str([{"fieldName": "_id", "isAsc": True}])}

    def test_projection_sent(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        fxiaoke_conn.seed_crm_objects()
        client = make_client(fxiaoke_conn, tmp_path / "cache")
        list(iter_records(client, "AccountObj", fields=["logo", "logo"]))
        assert _queries(fxiaoke_conn)[0]["search_query_info"]["fieldProjection"] == ["_id", "logo"]

    def test_custom_object(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        emulator.seed_crm_objects()
        client = make_client(emulator, tmp_path / "cache")
        records = list(iter_records(client, "Contract__c", page_size=1))
        assert [r["_id"] for r in records] == [r["_id"] for r in emulator.records("Contract__c")]

    def test_user_filters_kept(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        emulator.seed_crm_objects()
        client = make_client(emulator, tmp_path / "cache")
        name = {"field_name": "name", "operator": "EQ", "field_values": ["Demo account 2"]}
        records = list(iter_records(client, "AccountObj", filters=[name], page_size=1))
        assert [r["name"] for r in records] == ["Demo account 2"]

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            pytest.param({"object_api_name": "Account Obj"}, "object API name", id="name-with-space"),
            pytest.param({"object_api_name": ""}, "object API name", id="empty-name"),
            pytest.param({"fields": []}, "non-empty list", id="no-fields"),
            pytest.param({"fields": ["a-b"]}, "field API name", id="bad-field"),
            pytest.param({"page_size": 101}, "page_size", id="page-too-big"),
            pytest.param({"page_size": 0}, "page_size", id="page-zero"),
        ],
    )
    def test_checks_arguments_before_calling(
        self, emulator: FxiaokeEmulator, tmp_path: Path, kwargs: dict[str, Any], fragment: str
    ) -> None:
        client = make_client(emulator, tmp_path / "cache")
        arguments: dict[str, Any] = {"object_api_name": "AccountObj", **kwargs}
        with pytest.raises(ValueError, match=fragment):
            iter_records(client, arguments.pop("object_api_name"), **arguments)
        assert emulator.requests == []


class StubClient:
    """A client stub that returns the given pages in order, one per call."""

    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def call(self, endpoint: str, data: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(dict(data))
        return {"errorCode": 0, "traceId": "E-O.test", "data": self.pages.pop(0)}


class TestResponses:
    def test_ids_must_rise(self) -> None:
        client = StubClient([{"dataList": [{"_id": "b"}]}, {"dataList": [{"_id": "a"}]}])
        with pytest.raises(FxiaokeResponseError, match="not after"):
            list(iter_records(client, "AccountObj", page_size=1))  # type: ignore[arg-type]

    def test_missing_data_list(self) -> None:
        client = StubClient([{"records": []}])
        with pytest.raises(FxiaokeResponseError, match="dataList"):
            list(iter_records(client, "AccountObj"))  # type: ignore[arg-type]

    def test_record_without_id(self) -> None:
        client = StubClient([{"dataList": [{"name": "x"}]}])
        with pytest.raises(FxiaokeResponseError, match="_id"):
            list(iter_records(client, "AccountObj"))  # type: ignore[arg-type]

    def test_next_page_filters_after_last_id(self) -> None:
        client = StubClient([{"dataList": [{"_id": "a"}]}, {"dataList": []}])
        list(iter_records(client, "AccountObj", page_size=1))  # type: ignore[arg-type]
        assert client.calls[1]["search_query_info"]["filters"] == [
            {"field_name": "_id", "operator": "GT", "field_values": ["a"]}
        ]


class TestEndpoint:
    @pytest.mark.parametrize(
        ("name", "endpoint"),
        [
            pytest.param("AccountObj", QUERY_ENDPOINT, id="preset"),
            pytest.param("Contract__c", CUSTOM_QUERY_ENDPOINT, id="custom"),
        ],
    )
    def test_endpoint(self, name: str, endpoint: str) -> None:
        assert query_endpoint(name) == endpoint


class TestParseFileValue:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(None, ([], 0), id="none"),
            pytest.param("", ([], 0), id="empty-string"),
            pytest.param([], ([], 0), id="empty-list"),
            pytest.param(
                [{"filename": "a.pdf", "ext": "pdf", "path": "N_1.pdf", "size": 12}],
                ([FileRef("N_1.pdf", "a.pdf", 12)], 0),
                id="list-of-dicts",
            ),
            pytest.param(
                {"npath": "N_2", "fileName": "b.png", "fileSize": "34"},
                ([FileRef("N_2", "b.png", 34)], 0),
                id="single-dict-other-keys",
            ),
            pytest.param({"Path": "N_3", "name": "c"}, ([FileRef("N_3", "c", None)], 0), id="name-no-size"),
            pytest.param({"nPath": " N_4 "}, ([FileRef("N_4", "N_4", None)], 0), id="no-name"),
            pytest.param("N_5", ([FileRef("N_5", "N_5", None)], 0), id="bare-string"),
            pytest.param(
                [{"path": "N_6", "size": -1}], ([FileRef("N_6", "N_6", None)], 0), id="negative-size"
            ),
            pytest.param([{"path": "N_7", "size": True}], ([FileRef("N_7", "N_7", None)], 0), id="bool-size"),
            pytest.param([{"url": "x"}, 5, {"path": ""}], ([], 3), id="unreadable"),
            pytest.param([{"path": "N_8"}, {"name": "lost"}], ([FileRef("N_8", "N_8", None)], 1), id="mixed"),
            pytest.param("   ", ([], 0), id="blank-string"),
            pytest.param(
                {"path": None, "npath": "N_9", "filename": " ", "name": "i.pdf"},
                ([FileRef("N_9", "i.pdf", None)], 0),
                id="empty-keys-give-way",
            ),
            pytest.param(
                {"path": "N_10", "size": None, "fileSize": 56},
                ([FileRef("N_10", "N_10", 56)], 0),
                id="null-size-gives-way",
            ),
        ],
    )
    def test_shapes(self, value: object, expected: tuple[list[FileRef], int]) -> None:
        assert parse_file_value(value) == expected


START = datetime(2026, 12, 3, tzinfo=UTC)
START_MS = 1_796_256_000_000


class TestTimes:
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(START, id="datetime"),
            pytest.param(START.astimezone(timezone(timedelta(hours=8))), id="other-zone"),
            pytest.param("2026-12-03T00:00:00+00:00", id="iso"),
            pytest.param("2026-12-03 00:00:00+00:00", id="rendered"),
            pytest.param("2026-12-03T00:00:00Z", id="zulu"),
            pytest.param(START_MS, id="epoch-ms"),
            pytest.param(str(START_MS), id="epoch-ms-string"),
        ],
    )
    def test_to_epoch_ms(self, value: object) -> None:
        assert to_epoch_ms(value, argument="t") == START_MS

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            pytest.param(datetime(2026, 12, 3), "no time zone", id="naive"),
            pytest.param("2026-12-03T00:00:00", "no time zone", id="naive-string"),
            pytest.param("yesterday", "not an ISO 8601", id="words"),
            pytest.param(-1, "negative", id="negative"),
            pytest.param(1_733_300_000, "looks like epoch seconds", id="epoch-seconds"),
            pytest.param("1733300000", "looks like epoch seconds", id="epoch-seconds-string"),
            pytest.param(0, "looks like epoch seconds", id="zero"),
            pytest.param(1.5, "must be", id="float"),
            pytest.param(10**30, "after the year 9999", id="epoch-10e30"),
            pytest.param(MAX_EPOCH_MS + 1, "after the year 9999", id="epoch-after-9999"),
            pytest.param(str(10**30), "after the year 9999", id="epoch-string-10e30"),
            pytest.param("9" * 5000, "after the year 9999", id="epoch-string-5000-digits"),
            pytest.param("١٢٣", "not an ISO 8601", id="non-ascii-digits"),
            pytest.param("1969-12-31T23:59:59+00:00", "before 1970", id="before-1970"),
            pytest.param(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "outside", id="year-1"),
        ],
    )
    def test_to_epoch_ms_rejects(self, value: object, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment):
            to_epoch_ms(value, argument="t")

    def test_epoch_bounds_accepted(self) -> None:
        assert to_epoch_ms(MIN_EPOCH_MS, argument="t") == MIN_EPOCH_MS
        assert to_epoch_ms(MAX_EPOCH_MS, argument="t") == MAX_EPOCH_MS
        assert (
            to_epoch_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), argument="t") == MAX_EPOCH_MS
        )

    def test_bare_date_shows_value_passed(self) -> None:
        with pytest.raises(ValueError, match=r"^t='2026-01-01' has no time zone"):
            to_epoch_ms("2026-01-01", argument="t")

    def test_naive_datetime_shown_as_iso(self) -> None:
        with pytest.raises(ValueError, match=r"^t='2026-12-03T00:00:00' has no time zone"):
            to_epoch_ms(datetime(2026, 12, 3), argument="t")

    def test_huge_value_message_short(self) -> None:
        with pytest.raises(
            ValueError, match=r"^t='x{60}'\.\.\. \(1000000 characters\) is not an ISO"
        ) as caught:
            to_epoch_ms("x" * 1_000_000, argument="t")
        assert len(str(caught.value)) < 300

    def test_window_is_half_open(self) -> None:
        window = modified_between_filter(START, START + timedelta(days=1))
        assert window["field_values"] == [START_MS, START_MS + 86_400_000 - 1]

    def test_window_operator(self) -> None:
        assert modified_between_filter(START, START + timedelta(days=1))["operator"] == "BETWEEN"

    def test_window_must_move_forward(self) -> None:
        with pytest.raises(ValueError, match="before its start .*; pass \\(start, end\\) in that order"):
            modified_between_filter(START + timedelta(days=1), START)

    def test_zero_length_window_names_cause_and_fix(self) -> None:
        with pytest.raises(ValueError, match="zero-length window") as caught:
            modified_between_filter(START, START)
        message = str(caught.value)
        assert message.startswith(
            f"modified_between is a zero-length window: it starts and ends at {START_MS} ms "
            "(2026-12-03T00:00:00.000+00:00)"
        )
        assert "schedule='@daily' or schedule=None" in message
        assert "CronTriggerTimetable('@daily', timezone='UTC', interval=timedelta(days=1))" in message
        assert "pass explicit start and end times" in message


class TestCheckFilters:
    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            pytest.param({"field_name": "a"}, "must be a list", id="dict"),
            pytest.param(["x"], "must be a dict", id="string-item"),
            pytest.param(
                [{"field_name": "a", "operator": "EQUALS", "field_values": [1]}], "operator", id="operator"
            ),
            pytest.param(
                [{"field_name": "a", "operator": "EQ", "field_values": 1}], "field_values", id="values"
            ),
            pytest.param([{"operator": "EQ", "field_values": [1]}], "field_name", id="no-field"),
        ],
    )
    def test_rejects(self, value: object, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment):
            check_filters(value)

    def test_accepts_id_field(self) -> None:
        item = {"field_name": "_id", "operator": "IN", "field_values": ("a", "b")}
        assert check_filters([item]) == [{"field_name": "_id", "operator": "IN", "field_values": ["a", "b"]}]

    def test_none_is_empty(self) -> None:
        assert check_filters(None) == []


class TestLongValues:
    @pytest.mark.parametrize(
        "check",
        [
            pytest.param(lambda value: check_object_api_name(value), id="object-api-name"),
            pytest.param(lambda value: check_field_names([value]), id="field-name"),
            pytest.param(
                lambda value: check_filters([{"field_name": "a", "operator": value, "field_values": []}]),
                id="operator",
            ),
        ],
    )
    def test_message_shows_head_and_length(self, check: Any) -> None:
        with pytest.raises(ValueError, match=r"'a{60}'\.\.\. \(1000000 characters\)") as caught:
            check("a" * 1_000_000)
        assert len(str(caught.value)) < 400
