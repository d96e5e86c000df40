"""Tests of the emulator's CRM objects: the query endpoints' paging rules and filters, and the preview endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from fxiaoke_provider.api.client import FxiaokeClient
from fxiaoke_provider.exceptions import FxiaokeAPIError
from fxiaoke_provider.testing import DEMO_FILES, DEMO_PATHS, FxiaokeEmulator
from fxiaoke_provider.testing.objects import generate_records
from tests.conftest import make_client

QUERY = "/cgi/crm/v2/data/query"
CUSTOM_QUERY = "/cgi/crm/custom/v2/data/query"
PREVIEW = "/cgi/crm/v2/generatorPreviewUrl"
PDF, PNG, CSV, TXT, BARE, LARGE = DEMO_PATHS


@pytest.fixture
def crm(emulator: FxiaokeEmulator) -> FxiaokeEmulator:
    emulator.seed_crm_objects()
    return emulator


@pytest.fixture
def client(crm: FxiaokeEmulator, tmp_path: Path) -> FxiaokeClient:
    return make_client(crm, tmp_path / "cache", max_retries=0)


def _query(
    client: FxiaokeClient, name: str = "AccountObj", endpoint: str = QUERY, **info: Any
) -> dict[str, Any]:
    info.setdefault("limit", 100)
    info.setdefault("offset", 0)
    body = client.call(endpoint, {"dataObjectApiName": name, "search_query_info": info})
    return body["data"]


def _error(client: FxiaokeClient, endpoint: str, data: dict[str, Any]) -> FxiaokeAPIError:
    with pytest.raises(FxiaokeAPIError) as caught:
        client.call(endpoint, data)
    return caught.value


def _ids(data: dict[str, Any]) -> list[str]:
    return [record["_id"] for record in data["dataList"]]


class TestPaging:
    @pytest.mark.parametrize(
        ("info", "fragment"),
        [
            pytest.param({"limit": 101, "offset": 0}, "limit", id="limit-above-100"),
            pytest.param({"limit": 0, "offset": 0}, "limit", id="limit-zero"),
            pytest.param({"offset": 0}, "limit", id="limit-missing"),
            pytest.param({"limit": 30, "offset": 50}, "multiple", id="offset-not-multiple"),
            pytest.param({"limit": 10, "offset": -10}, "offset", id="offset-negative"),
        ],
    )
    def test_bad_paging_is_15002(self, client: FxiaokeClient, info: dict[str, Any], fragment: str) -> None:
        error = _error(client, QUERY, {"dataObjectApiName": "AccountObj", "search_query_info": info})
        assert error.error_code == 15002
        assert fragment in error.server_message

    def test_offset_beyond_cap_is_10013(self, client: FxiaokeClient) -> None:
        data = {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 100, "offset": 10_100}}
        error = _error(client, QUERY, data)
        assert error.error_code == 10013
        assert error.server_message == "offset out of range 10000"

    def test_offset_at_cap_is_accepted(self, client: FxiaokeClient) -> None:
        assert _query(client, limit=100, offset=10_000)["dataList"] == []

    def test_offset_pages(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        first = _query(client, limit=2, offset=0)
        second = _query(client, limit=2, offset=2)
        assert _ids(first) + _ids(second) == [record["_id"] for record in crm.records("AccountObj")]

    def test_total_counts_matches(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        assert _query(client, limit=1)["total"] == len(crm.records("AccountObj"))

    def test_total_zero_without_count(self, client: FxiaokeClient) -> None:
        body = client.call(
            QUERY,
            {
                "dataObjectApiName": "AccountObj",
                "find_explicit_total_num": False,
                "search_query_info": {"limit": 1, "offset": 0},
            },
        )
        assert body["data"]["total"] == 0

    def test_keyset_reads_past_cap(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        emulator.settings.rate_limit_calls = 1000
        emulator.seed_records("Big__c", 10_050, every=1000)
        client = make_client(emulator, tmp_path / "cache", rate_limit_calls=1000)
        seen: list[str] = []
        page: list[str] = ["start"]
        while page:
            filters = [{"field_name": "_id", "operator": "GT", "field_values": [seen[-1]]}] if seen else []
            orders = [{"fieldName": "_id", "isAsc": True}]
            page = _ids(_query(client, "Big__c", CUSTOM_QUERY, filters=filters, orders=orders))
            seen.extend(page)
        assert seen == [record["_id"] for record in emulator.records("Big__c")]


class TestObjects:
    def test_custom_object_on_preset_endpoint(self, client: FxiaokeClient) -> None:
        error = _error(
            client,
            QUERY,
            {"dataObjectApiName": "Contract__c", "search_query_info": {"limit": 1, "offset": 0}},
        )
        assert error.error_code == 15002
        assert CUSTOM_QUERY in error.server_message

    def test_preset_object_on_custom_endpoint(self, client: FxiaokeClient) -> None:
        error = _error(
            client,
            CUSTOM_QUERY,
            {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 1, "offset": 0}},
        )
        assert error.error_code == 15002

    def test_custom_object_on_custom_endpoint(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        data = _query(client, "Contract__c", CUSTOM_QUERY)
        assert _ids(data) == [record["_id"] for record in crm.records("Contract__c")]

    def test_unknown_object(self, client: FxiaokeClient) -> None:
        error = _error(
            client, QUERY, {"dataObjectApiName": "NoSuchObj", "search_query_info": {"limit": 1, "offset": 0}}
        )
        assert error.error_code == 15002
        assert "NoSuchObj" in error.server_message

    def test_projection_keeps_id(self, client: FxiaokeClient) -> None:
        data = _query(client, fieldProjection=["logo"])
        assert {frozenset(record) for record in data["dataList"]} == {frozenset({"_id", "logo"})}

    def test_file_fields_reference_files(self, crm: FxiaokeEmulator) -> None:
        paths = {
            item["path"]
            for name in ("AccountObj", "Contract__c")
            for record in crm.records(name)
            for field in ("attachments", "logo", "contract_file__c", "scan_images__c")
            for item in record.get(field) or []
        }
        assert paths == set(DEMO_FILES)

    def test_file_values_carry_sizes(self, crm: FxiaokeEmulator) -> None:
        sizes = {
            item["path"]: item["size"]
            for record in crm.records("AccountObj")
            for item in record["attachments"] + (record["logo"] or [])
        }
        assert sizes == {path: len(DEMO_FILES[path]) for path in sizes}


class TestFilters:
    def test_between_includes_both_ends(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        times = sorted(record["last_modified_time"] for record in crm.records("AccountObj"))
        between = {"field_name": "last_modified_time", "operator": "BETWEEN", "field_values": times[:2]}
        data = _query(client, filters=[between])
        assert sorted(record["last_modified_time"] for record in data["dataList"]) == times[:2]

    def test_id_gt(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        ids = [record["_id"] for record in crm.records("AccountObj")]
        data = _query(client, filters=[{"field_name": "_id", "operator": "GT", "field_values": [ids[0]]}])
        assert _ids(data) == ids[1:]

    def test_filters_combine(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        ids = [record["_id"] for record in crm.records("AccountObj")]
        filters = [
            {"field_name": "_id", "operator": "GT", "field_values": [ids[0]]},
            {"field_name": "name", "operator": "EQ", "field_values": ["Demo account 3"]},
        ]
        assert _ids(_query(client, filters=filters)) == [ids[2]]

    def test_descending_order(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        data = _query(client, orders=[{"fieldName": "last_modified_time", "isAsc": False}])
        times = [record["last_modified_time"] for record in data["dataList"]]
        assert times == sorted(times, reverse=True)

    @pytest.mark.parametrize(
        "item",
        [
            pytest.param({"field_name": "name", "operator": "LIKE", "field_values": ["x"]}, id="unsupported"),
            pytest.param({"field_name": "name", "operator": "EQ", "field_values": []}, id="no-values"),
            pytest.param({"operator": "EQ", "field_values": ["x"]}, id="no-field"),
            pytest.param({"field_name": "x", "operator": "BETWEEN", "field_values": [1]}, id="between-one"),
        ],
    )
    def test_bad_filter_is_15002(self, client: FxiaokeClient, item: dict[str, Any]) -> None:
        data = {
            "dataObjectApiName": "AccountObj",
            "search_query_info": {"limit": 1, "offset": 0, "filters": [item]},
        }
        assert _error(client, QUERY, data).error_code == 15002


class TestGenerateRecords:
    def test_ids_are_distinct(self) -> None:
        records, _files = generate_records(500)
        assert len({record["_id"] for record in records}) == 500

    def test_every_nth_has_a_file(self) -> None:
        records, files = generate_records(25, every=10)
        assert [bool(record["attachments"]) for record in records] == [i % 10 == 0 for i in range(25)]

    def test_files_match_records(self) -> None:
        records, files = generate_records(20, every=3)
        assert {item["path"] for record in records for item in record["attachments"]} == set(files)

    def test_repeatable(self) -> None:
        assert generate_records(5, seed=3) == generate_records(5, seed=3)


def _preview(**overrides: Any) -> dict[str, Any]:
    info = {"path": PNG, "filename": "logo.png", "extension": "png"}
    info.update(overrides.pop("fileInfo", {}))
    return {"fileInfo": info, "expireTime": 600, **overrides}


class TestPreview:
    def test_url_serves_file(self, client: FxiaokeClient) -> None:
        url = client.call(PREVIEW, _preview())["data"]["url"]
        assert requests.get(url, timeout=10).content == DEMO_FILES[PNG]

    def test_url_expires(self, client: FxiaokeClient, crm: FxiaokeEmulator) -> None:
        url = client.call(PREVIEW, _preview())["data"]["url"]
        crm.clock.advance(601)
        assert requests.get(url, timeout=10).status_code == 403

    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            pytest.param(_preview(fileInfo={"path": LARGE}), "must start with", id="alioss-path"),
            pytest.param(_preview(fileInfo={"path": "N_" + "0" * 47}), "at most 48", id="path-too-long"),
            pytest.param(_preview(fileInfo={"filename": "x" * 121}), "120", id="filename-too-long"),
            pytest.param(_preview(fileInfo={"extension": "pdf"}), "cannot be previewed", id="pdf"),
            pytest.param(_preview(fileInfo={"extension": ".png"}), "cannot be previewed", id="dotted"),
            pytest.param(_preview(fileInfo={"filename": ""}), "filename", id="no-filename"),
            pytest.param(_preview(expireTime=59), "expireTime", id="below-60"),
            pytest.param(_preview(expireTime=604_801), "expireTime", id="above-7-days"),
            pytest.param(_preview(globalAcceleration="yes"), "globalAcceleration", id="acceleration"),
            pytest.param({"expireTime": 600}, "fileInfo", id="no-file-info"),
        ],
    )
    def test_rejects(self, client: FxiaokeClient, data: dict[str, Any], fragment: str) -> None:
        error = _error(client, PREVIEW, data)
        assert error.error_code == 15002
        assert fragment in error.server_message

    def test_unknown_path(self, client: FxiaokeClient) -> None:
        error = _error(client, PREVIEW, _preview(fileInfo={"path": "N_202401_01_" + "0" * 32 + ".png"}))
        assert error.error_code == 15002
        assert "not found" in error.server_message
