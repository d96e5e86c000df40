"""End-to-end run of the DAG fxiaoke_operator_inputs with `airflow dags test` against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fxiaoke_provider.testing import DEMO_PATHS, FxiaokeEmulator
from tests import secret_scan
from tests.conftest import REPO_ROOT, connection_dict

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"
DAG_ID = "fxiaoke_operator_inputs"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Upper bound in seconds for one Airflow command, so a hung run fails the test instead of blocking it.
COMMAND_TIMEOUT = 300


def _airflow_env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "tests" / "dags")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


def _run_airflow(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


@pytest.mark.e2e
class TestDagInputs:
    def test_mapped_and_rendered_inputs(
        self, emulator: FxiaokeEmulator, airflow_home: Path, tmp_path: Path
    ) -> None:
        # The airflow_home fixture of tests/conftest.py is a temporary home that `airflow db migrate` has built.
        env = _airflow_env(airflow_home)
        conn = connection_dict(emulator, tmp_path / "cache")
        env["AIRFLOW_CONN_FXIAOKE_DEFAULT"] = json.dumps(conn)
        result = _run_airflow(["dags", "test", DAG_ID], env)
        output = result.stdout + result.stderr
        secret_scan.add_text(output)
        assert result.returncode == 0, output[-6000:]
        assert "Both operators returned all 6 demo paths in order" in output
        # The last mapped batch repeats the first path, so the flattened mapped output has one repeat.
        assert "Removed 1 repeated path(s)" in output
        assert "Signature=" not in output

        calls = [r for r in emulator.requests if r.path == PRESIGN]
        sent = sorted((r.body["data"]["paths"], r.body["data"]["expire"]) for r in calls)  # type: ignore[index]
        mapped = [(DEMO_PATHS[0:2], 1), (DEMO_PATHS[2:4], 1), (DEMO_PATHS[4:6], 1)]
        rendered = [(DEMO_PATHS, 2)]
        assert sent == sorted(mapped + rendered)
        assert all(r.error_code == 0 for r in calls)
