"""End-to-end run of the DAG fxiaoke_operator_inputs with `airflow dags test` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fxiaoke_provider.testing import DEMO_PATHS, FxiaokeEmulator
from tests.conftest import REPO_ROOT, connection_dict, run_airflow

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"
DAG_ID = "fxiaoke_operator_inputs"


@pytest.mark.e2e
class TestDagInputs:
    def test_mapped_and_rendered_inputs(
        self, emulator: FxiaokeEmulator, airflow_home: Path, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path / "cache")
        result = run_airflow(
            airflow_home,
            "dags",
            "test",
            DAG_ID,
            dags_folder=REPO_ROOT / "tests" / "dags",
            env={"AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps(conn)},
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert "Both operators returned all 6 demo paths in order" in output
        # The last mapped batch repeats the first path, so the flattened mapped output has one repeat.
        assert "Removed 1 repeated path(s)" in output
        assert "Signature=" not in output

        calls = [r for r in emulator.requests if r.path == PRESIGN]
        sent = sorted((r.body["data"]["paths"], r.body["data"]["expire"]) for r in calls)  # type: ignore[index]
        # The last demo path is a large file (ALIOSS_), which each operator presigns through its own endpoint.
        small, large = DEMO_PATHS[:5], DEMO_PATHS[5]
        mapped = [(small[0:2], 1), (small[2:4], 1), (small[4:5], 1)]
        rendered = [(small, 2)]
        assert sent == sorted(mapped + rendered)
        assert all(r.error_code == 0 for r in calls)
        large_calls = [r.body["data"]["path"] for r in emulator.requests if r.path.endswith("ByAuth")]  # type: ignore[index]
        assert large_calls == [large, large]
