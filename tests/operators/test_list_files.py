"""Tests of FxiaokeListFilesOperator against the emulator's seeded CRM objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from fxiaoke_provider.operators.crm import FxiaokeListFilesOperator
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.paths import normalize_paths
from fxiaoke_provider.testing import DEMO_FILES, DEMO_PATHS, Fault, FxiaokeEmulator

PDF, PNG, CSV, TXT, BARE, LARGE = DEMO_PATHS
QUERY = "/cgi/crm/v2/data/query"
#: 2026-12-03T00:00:00Z in epoch milliseconds.
START_MS = 1_796_256_000_000
KEYS = {"path", "filename", "size", "object_api_name", "record_id", "field"}


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", lambda _seconds: None)


@pytest.fixture
def crm(fxiaoke_conn: FxiaokeEmulator) -> dict[str, list[dict[str, Any]]]:
    return fxiaoke_conn.seed_crm_objects()


def _list(**kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("object_api_name", "AccountObj")
    kwargs.setdefault("file_fields", ["attachments", "logo"])
    return FxiaokeListFilesOperator(task_id="list_files", **kwargs).execute({})  # type: ignore[arg-type]


class TestOutput:
    def test_paths_in_record_order(self, crm: dict[str, Any]) -> None:
        assert [item["path"] for item in _list()] == [PDF, PNG, CSV, TXT]

    def test_item_keys(self, crm: dict[str, Any]) -> None:
        assert {frozenset(item) for item in _list()} == {frozenset(KEYS)}

    def test_sizes_match_files(self, crm: dict[str, Any]) -> None:
        assert {item["path"]: item["size"] for item in _list()} == {
            p: len(DEMO_FILES[p]) for p in (PDF, PNG, CSV, TXT)
        }

    def test_record_and_field(self, crm: dict[str, Any]) -> None:
        first = crm["AccountObj"][0]["_id"]
        assert [(i["record_id"], i["field"]) for i in _list()][:2] == [
            (first, "attachments"),
            (first, "logo"),
        ]

    def test_filenames(self, crm: dict[str, Any]) -> None:
        assert _list()[0]["filename"] == "invoice-2024-10-22.pdf"

    def test_custom_object(self, crm: dict[str, Any]) -> None:
        items = _list(object_api_name="Contract__c", file_fields=["contract_file__c", "scan_images__c"])
        assert [(i["path"], i["object_api_name"]) for i in items] == [
            (LARGE, "Contract__c"),
            (BARE, "Contract__c"),
        ]

    def test_single_field_string(self, crm: dict[str, Any]) -> None:
        assert [item["path"] for item in _list(file_fields="logo")] == [PNG]

    def test_presign_accepts_output(self, crm: dict[str, Any]) -> None:
        items = _list()
        assert normalize_paths(items).paths == [item["path"] for item in items]

    def test_presign_operator_runs_on_output(self, crm: dict[str, Any]) -> None:
        presign = PresignFilesOperator(task_id="presign", paths=_list())
        results = presign.execute({})  # type: ignore[arg-type]
        assert [result["path"] for result in results] == [PDF, PNG, CSV, TXT]

    def test_query_projects_file_fields(self, crm: dict[str, Any], fxiaoke_conn: FxiaokeEmulator) -> None:
        _list()
        (query,) = [r.body["data"] for r in fxiaoke_conn.requests if r.path == QUERY]  # type: ignore[index]
        assert query["search_query_info"]["fieldProjection"] == ["_id", "attachments", "logo"]

    def test_empty_result(self, crm: dict[str, Any]) -> None:
        filters = [{"field_name": "name", "operator": "EQ", "field_values": ["nobody"]}]
        assert _list(filters=filters) == []

    def test_skip_on_empty(self, crm: dict[str, Any]) -> None:
        filters = [{"field_name": "name", "operator": "EQ", "field_values": ["nobody"]}]
        with pytest.raises(AirflowSkipException):
            _list(filters=filters, skip_on_empty=True)


class TestWindow:
    def test_window_selects_records(self, crm: dict[str, Any]) -> None:
        second = crm["AccountObj"][1]["last_modified_time"]
        start = datetime.fromtimestamp(second / 1000, UTC)
        items = _list(modified_between=(start, start + timedelta(milliseconds=1)))
        assert [item["path"] for item in items] == [CSV, TXT]

    def test_window_end_is_excluded(self, crm: dict[str, Any]) -> None:
        second = crm["AccountObj"][1]["last_modified_time"]
        assert _list(modified_between=(second - 10, second)) == []

    def test_rendered_strings(self, crm: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        window = (str(now - timedelta(days=1)), str(now + timedelta(minutes=1)))
        assert len(_list(modified_between=window)) == 4

    def test_window_sent_as_between(self, crm: dict[str, Any], fxiaoke_conn: FxiaokeEmulator) -> None:
        _list(modified_between=(START_MS, START_MS + 1000))
        (query,) = [r.body["data"] for r in fxiaoke_conn.requests if r.path == QUERY]  # type: ignore[index]
        assert query["search_query_info"]["filters"][0] == {
            "field_name": "last_modified_time",
            "operator": "BETWEEN",
            "field_values": [START_MS, START_MS + 999],
        }


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            pytest.param({"object_api_name": "Account Obj"}, "object API name", id="name"),
            pytest.param({"file_fields": []}, "file_fields", id="no-fields"),
            pytest.param({"file_fields": ["a b"]}, "file_fields", id="bad-field"),
            pytest.param({"filters": [{"field_name": "a"}]}, "operator", id="filter"),
            pytest.param({"modified_between": "2026-12-03"}, "pair", id="window-string"),
            pytest.param({"modified_between": (1, 2, 3)}, "pair", id="window-triple"),
            pytest.param(
                {"modified_between": (START_MS + 1000, START_MS)}, "before its start", id="window-backwards"
            ),
            pytest.param({"modified_between": (START_MS, START_MS)}, "zero-length window", id="window-empty"),
            pytest.param(
                {"modified_between": (START_MS, 10**30)}, "after the year 9999", id="window-epoch-huge"
            ),
            pytest.param(
                {"modified_between": (1_733_300_000, 1_733_386_400)}, "epoch seconds", id="window-seconds"
            ),
            pytest.param(
                {"modified_between": ("2026-01-01", "2026-01-02")},
                "'2026-01-01' has no",
                id="window-bare-date",
            ),
            pytest.param({"skip_on_empty": "no"}, "skip_on_empty is 'no'", id="skip-on-empty-string"),
            pytest.param({"page_size": 500}, "page_size", id="page-size"),
        ],
    )
    def test_fails_before_calls(
        self, fxiaoke_conn: FxiaokeEmulator, kwargs: dict[str, Any], fragment: str
    ) -> None:
        with pytest.raises(AirflowFailException, match=fragment):
            _list(**kwargs)
        assert fxiaoke_conn.requests == []

    def test_unknown_object_fails(self, crm: dict[str, Any]) -> None:
        with pytest.raises(AirflowFailException, match="15002"):
            _list(object_api_name="NoSuchObj")

    def test_transient_error_raises_for_retry(
        self, crm: dict[str, Any], fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=QUERY, error_code=-1, times=0))
        with pytest.raises(Exception, match="-1") as caught:
            _list()
        assert not isinstance(caught.value, AirflowFailException)


class TestZeroLengthWindow:
    def test_rendered_zero_length_interval_explains(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        start = "2026-12-03T00:00:00+00:00"
        with pytest.raises(AirflowFailException) as caught:
            _list(modified_between=(start, start))
        message = str(caught.value)
        assert "zero-length window" in message
        assert "schedule='@daily'" in message
        assert "CronTriggerTimetable('@daily', timezone='UTC', interval=timedelta(days=1))" in message
        assert "explicit start and end times" in message
        assert fxiaoke_conn.requests == []

    def test_bare_date_message_shows_value_passed(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        with pytest.raises(AirflowFailException) as caught:
            _list(modified_between=("2026-01-01", "2026-01-02T00:00:00+00:00"))
        assert "modified_between[0]='2026-01-01' has no time zone" in str(caught.value)
        assert "T00:00:00" not in str(caught.value).split(";")[0]


class TestMissingFields:
    def test_warns_for_field_in_no_record(self, crm: dict[str, Any], log_text: Any) -> None:
        assert [item["path"] for item in _list(file_fields=["attachments", "atachments"])] == [PDF, CSV, TXT]
        assert (
            "No record of AccountObj returned the field(s) atachments, among 3 record(s) read" in log_text()
        )

    def test_no_warning_when_every_field_returned(self, crm: dict[str, Any], log_text: Any) -> None:
        _list()
        assert "No record of" not in log_text()

    def test_no_warning_without_records(self, crm: dict[str, Any], log_text: Any) -> None:
        filters = [{"field_name": "name", "operator": "EQ", "field_values": ["nobody"]}]
        assert _list(file_fields=["atachments"], filters=filters) == []
        assert "No record of" not in log_text()

    def test_field_with_null_values_counts_as_returned(
        self, fxiaoke_conn: FxiaokeEmulator, log_text: Any
    ) -> None:
        fxiaoke_conn.add_records("AccountObj", [{"_id": "a1", "attachments": None, "logo": {"path": PNG}}])
        assert [item["path"] for item in _list()] == [PNG]
        assert "No record of" not in log_text()


class TestUnreadable:
    def test_counts_items_without_path(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        fxiaoke_conn.add_records(
            "AccountObj",
            [{"_id": "a1", "attachments": [{"name": "lost"}, {"path": PDF}], "logo": {"npath": PNG}}],
        )
        assert [item["path"] for item in _list()] == [PDF, PNG]
        assert "Skipped 1 field value item(s) that hold no file path" in log_text()
