"""Tests of PresignFilesOperator's output_path option: JSON Lines results and a summary in XCom."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jinja2
import pytest
import requests
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.testing import DEMO_PATHS, Fault, FxiaokeEmulator, make_npath

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"


class RecordingTaskInstance:
    """Stand-in for the ``ti`` of a task context that records the operator's own XCom pushes."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


def _execute(paths: Any, ti: RecordingTaskInstance | None = None, **kwargs: Any) -> Any:
    operator = PresignFilesOperator(task_id="presign", paths=paths, **kwargs)
    return operator.execute({"ti": ti if ti is not None else RecordingTaskInstance()})  # type: ignore[arg-type]


def _lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _presign_requests(emu: FxiaokeEmulator) -> list[Any]:
    return [r for r in emu.requests if r.path == PRESIGN]


class TestJsonLines:
    def test_rows_in_input_order(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "out" / "presigned.jsonl"
        reordered = DEMO_PATHS[::-1]
        _execute(reordered, batch_size=4, output_path=target.as_uri())
        rows = _lines(target)
        assert [row["path"] for row in rows] == reordered
        for row in rows:
            assert set(row) == {"path", "url", "expires_at"}

    def test_urls_download_files(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        _execute(DEMO_PATHS, batch_size=2, output_path=target.as_uri())
        files = fxiaoke_conn.files
        for row in _lines(target):
            assert row["url"].startswith(f"{fxiaoke_conn.base_url}/")
            response = requests.get(row["url"], timeout=5)
            assert response.status_code == 200
            assert response.content == files[row["path"]]

    def test_absolute_local_path(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        summary = _execute(DEMO_PATHS[:2], output_path=str(target))
        assert [row["path"] for row in _lines(target)] == DEMO_PATHS[:2]
        assert summary["count"] == 2

    def test_object_storage_path(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        _execute(DEMO_PATHS[:3], output_path=ObjectStoragePath(target.as_uri()))
        assert [row["path"] for row in _lines(target)] == DEMO_PATHS[:3]

    def test_file_replaced(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        target.write_text("stale line\n" * 50, encoding="utf-8")
        _execute(DEMO_PATHS[:1], output_path=target.as_uri())
        assert [row["path"] for row in _lines(target)] == DEMO_PATHS[:1]

    def test_templated(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        operator = PresignFilesOperator(
            task_id="presign", paths=DEMO_PATHS[:2], output_path="file://{{ folder }}/{{ name }}.jsonl"
        )
        context = {"folder": str(tmp_path), "name": "run_1"}
        operator.render_template_fields(context, jinja_env=jinja2.Environment())  # type: ignore[arg-type]
        summary = operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
        assert summary["location"] == (tmp_path / "run_1.jsonl").as_uri()
        assert [row["path"] for row in _lines(tmp_path / "run_1.jsonl")] == DEMO_PATHS[:2]


class TestSummary:
    def test_return_value(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        ti = RecordingTaskInstance()
        summary = _execute(DEMO_PATHS, ti=ti, batch_size=2, output_path=target.as_uri())
        rows = _lines(target)
        assert summary == {
            "location": target.as_uri(),
            "count": len(DEMO_PATHS),
            "expires_at_min": min(row["expires_at"] for row in rows),
        }
        assert ti.pushed == []

    def test_no_url_in_summary(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        summary = _execute(DEMO_PATHS, output_path=(tmp_path / "presigned.jsonl").as_uri())
        assert "Signature=" not in json.dumps(summary)

    def test_empty_writes_empty_file(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        target = tmp_path / "presigned.jsonl"
        summary = _execute([], skip_on_empty=False, output_path=target.as_uri())
        assert summary == {"location": target.as_uri(), "count": 0, "expires_at_min": None}
        assert target.read_text(encoding="utf-8") == ""
        assert fxiaoke_conn.requests == []


class TestPartialFailure:
    def test_failed_paths_reported(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        fxiaoke_conn.settings.unknown_path_mode = "omit"
        unknown = make_npath("N", random.Random(7))
        paths = [DEMO_PATHS[0], unknown, *DEMO_PATHS[1:3]]
        target = tmp_path / "presigned.jsonl"
        ti = RecordingTaskInstance()
        with pytest.raises(AirflowFailException) as caught:
            _execute(paths, ti=ti, batch_size=2, output_path=target.as_uri())
        assert "3 path(s) succeeded and 1 failed" in str(caught.value)
        assert f"{unknown!r} (no URL returned)" in str(caught.value)
        assert [row["path"] for row in _lines(target)] == DEMO_PATHS[:3]
        assert [key for key, _ in ti.pushed] == ["partial_results"]
        partial = ti.pushed[0][1]
        assert partial["location"] == target.as_uri()
        assert partial["count"] == 3

    def test_stop_keeps_written_rows(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        # A delay-only fault uses up the first presign call, so the quota error hits the second one.
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, delay_seconds=0.001))
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=30002))
        target = tmp_path / "presigned.jsonl"
        ti = RecordingTaskInstance()
        with pytest.raises(AirflowFailException, match="30002"):
            _execute(DEMO_PATHS, ti=ti, batch_size=2, output_path=target.as_uri())
        assert [row["path"] for row in _lines(target)] == DEMO_PATHS[:2]
        assert [(key, value["count"]) for key, value in ti.pushed] == [("partial_results", 2)]


class TestInvalidOutputPath:
    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            pytest.param("", "blank", id="empty"),
            pytest.param("   ", "blank", id="whitespace"),
            pytest.param("out/presigned.jsonl", "relative path", id="relative"),
            pytest.param("file:///tmp/fxiaoke-out/", "names a folder", id="folder-url"),
            pytest.param("file:///tmp/a\nb.jsonl", "control character", id="newline"),
            pytest.param("nosuchscheme://bucket/presigned.jsonl", "no installed filesystem", id="scheme"),
            pytest.param(42, "(int)", id="int"),
            pytest.param(["file:///tmp/x.jsonl"], "(list)", id="list"),
        ],
    )
    def test_rejected_before_calls(self, fxiaoke_conn: FxiaokeEmulator, value: object, fragment: str) -> None:
        with pytest.raises(AirflowFailException, match="output_path") as caught:
            _execute(DEMO_PATHS, output_path=value)
        assert fragment in str(caught.value)
        assert "'presign'" in str(caught.value)
        assert fxiaoke_conn.requests == []

    def test_existing_folder(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        with pytest.raises(AirflowFailException, match="existing folder"):
            _execute(DEMO_PATHS, output_path=tmp_path.as_uri())
        assert fxiaoke_conn.requests == []

    def test_unwritable_location(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path) -> None:
        blocker = tmp_path / "not_a_folder"
        blocker.write_text("", encoding="utf-8")
        with pytest.raises(AirflowFailException, match="Cannot write output_path"):
            _execute(DEMO_PATHS, output_path=(blocker / "presigned.jsonl").as_uri())
        assert _presign_requests(fxiaoke_conn) == []


class TestLogSecrets:
    def test_no_url_in_log(self, fxiaoke_conn: FxiaokeEmulator, tmp_path: Path, log_text: Any) -> None:
        target = tmp_path / "presigned.jsonl"
        _execute(DEMO_PATHS, batch_size=2, output_path=target.as_uri())
        text = log_text()
        assert f"Wrote 6 result(s) as JSON Lines to {target.as_uri()}" in text
        assert "Signature=" not in text
        for row in _lines(target):
            assert row["url"].split("?", 1)[1] not in text
