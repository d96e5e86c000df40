"""Tests of the scheduled CRM files example DAG: its shape, and a run end to end against the emulator."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from fxiaoke_provider.testing import DEMO_FILES, DOWNLOAD_PREFIX, FxiaokeEmulator
from tests.conftest import REPO_ROOT, connection_dict, run_airflow

DAGS_FOLDER = REPO_ROOT / "dags_examples"
DAG_ID = "fxiaoke_crm_files_to_storage"


@pytest.fixture(scope="module")
def crm_dag() -> Any:
    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


class TestShape:
    def test_tasks(self, crm_dag: Any) -> None:
        assert sorted(crm_dag.task_ids) == ["export", "list_files", "notify", "presign"]

    def test_order(self, crm_dag: Any) -> None:
        assert sorted(crm_dag.get_task("presign").upstream_task_ids) == ["list_files"]
        assert sorted(crm_dag.get_task("export").upstream_task_ids) == ["presign"]
        assert sorted(crm_dag.get_task("notify").upstream_task_ids) == ["export", "list_files"]

    def test_daily_at_midnight(self, crm_dag: Any) -> None:
        assert crm_dag.timetable.expression in ("@daily", "0 0 * * *")

    def test_interval_is_one_day(self, crm_dag: Any) -> None:
        assert crm_dag.timetable.interval == timedelta(days=1)

    def test_no_catchup(self, crm_dag: Any) -> None:
        assert crm_dag.catchup is False

    def test_window_from_data_interval(self, crm_dag: Any) -> None:
        window = crm_dag.get_task("list_files").modified_between
        assert window == ("{{ data_interval_start }}", "{{ data_interval_end }}")


def _dags_test(
    airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    export_root = tmp_path / "export"
    env = {
        "AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps(connection_dict(emulator, tmp_path / "cache")),
        "FXIAOKE_EXPORT_ROOT": export_root.as_uri(),
    }
    return run_airflow(airflow_home, "dags", "test", DAG_ID, dags_folder=DAGS_FOLDER, env=env), export_root


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"Exit status {result.returncode}. The output ends with:\n{(result.stdout + result.stderr)[-6000:]}"
    )


@pytest.mark.e2e
class TestRun:
    def test_exports_changed_files(
        self, airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path
    ) -> None:
        seeded = emulator.seed_crm_objects()
        result, export_root = _dags_test(airflow_home, emulator, tmp_path)
        assert result.returncode == 0, _tail(result)

        manifests = list(export_root.rglob("manifest.jsonl"))
        assert len(manifests) == 1, manifests
        entries = [json.loads(line) for line in manifests[0].read_text().splitlines()]
        expected = {
            item["path"]
            for record in seeded["AccountObj"]
            for field in ("attachments", "logo")
            for item in record[field] or []
        }
        exported = {entry["path"]: (manifests[0].parent / entry["file"]).read_bytes() for entry in entries}
        assert exported == {path: DEMO_FILES[path] for path in expected}

        output = result.stdout + result.stderr
        assert "AccountObj.attachments: 3 file(s)" in output
        assert "Signature=" not in output
        assert sum(
            r.method == "GET" and r.path.startswith(DOWNLOAD_PREFIX) for r in emulator.requests
        ) == len(expected)
