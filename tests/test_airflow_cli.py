"""Tests of the provider through the ``airflow`` command line, in subprocesses with a migrated home."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

import fxiaoke_provider
from fxiaoke_provider.testing import FxiaokeEmulator
from tests.conftest import connection_dict, run_airflow

pytestmark = pytest.mark.e2e

AIRFLOW_VERSION = Version(importlib.metadata.version("apache-airflow"))

CONN_ID = "fxiaoke_cli"
WRONG_SECRET = "wrong-app-secret-7f3a9c"


def _airflow(airflow_home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    # Airflow masks extras by key name, and "permanent_code" is not one of its default names.
    env = {"AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "permanent_code", **extra_env}
    return run_airflow(airflow_home, *args, env=env)


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return f"Exit status {result.returncode}. Its stderr ends with:\n{result.stderr[-4000:]}"


def _json_rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, _tail(result)
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def _add_connection(
    airflow_home: Path, emulator: FxiaokeEmulator, password: str, cache_dir: Path
) -> subprocess.CompletedProcess[str]:
    conn = connection_dict(emulator, cache_dir)
    return _airflow(
        airflow_home,
        "connections",
        "add",
        CONN_ID,
        "--conn-type",
        "fxiaoke",
        "--conn-host",
        emulator.base_url,
        "--conn-login",
        conn["login"],
        "--conn-password",
        password,
        "--conn-extra",
        json.dumps(conn["extra"]),
    )


@pytest.fixture
def cli_conn_id(airflow_home: Path) -> Iterator[str]:
    """Yield the connection ID that a test adds, and delete that connection from the shared home after it."""
    yield CONN_ID
    _airflow(airflow_home, "connections", "delete", CONN_ID)


class TestProviders:
    def test_list_shows_provider(self, airflow_home: Path) -> None:
        rows = _json_rows(_airflow(airflow_home, "providers", "list", "--output", "json"))
        matches = [row for row in rows if row["package_name"] == "fxiaoke-airflow-provider"]
        assert len(matches) == 1, rows
        assert matches[0]["version"] == fxiaoke_provider.__version__

    def test_hooks_show_fxiaoke(self, airflow_home: Path) -> None:
        rows = _json_rows(_airflow(airflow_home, "providers", "hooks", "--output", "json"))
        matches = [row for row in rows if row["connection_type"] == "fxiaoke"]
        assert len(matches) == 1, rows
        assert matches[0]["class"] == "fxiaoke_provider.hooks.fxiaoke.FxiaokeHook"
        assert matches[0]["package_name"] == "fxiaoke-airflow-provider"


class TestConnections:
    def test_add_and_test_succeed(
        self, airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path, cli_conn_id: str
    ) -> None:
        secret = emulator.settings.credentials.app_secret
        added = _add_connection(airflow_home, emulator, secret, tmp_path / "cache")
        assert added.returncode == 0, _tail(added)
        # The command prints the new connection's extra, permanent code included, so only a flag is asserted.
        confirmed = f"Successfully added `conn_id`={cli_conn_id}" in added.stdout
        assert confirmed
        tested = _airflow(
            airflow_home, "connections", "test", cli_conn_id, AIRFLOW__CORE__TEST_CONNECTION="Enabled"
        )
        assert tested.returncode == 0, _tail(tested)
        assert "Connection success!" in tested.stdout
        assert emulator.token_calls == 1

    def test_wrong_secret_fails_with_20006(
        self, airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path, cli_conn_id: str
    ) -> None:
        added = _add_connection(airflow_home, emulator, WRONG_SECRET, tmp_path / "cache")
        assert added.returncode == 0, _tail(added)
        tested = _airflow(
            airflow_home, "connections", "test", cli_conn_id, AIRFLOW__CORE__TEST_CONNECTION="Enabled"
        )
        output = tested.stdout + tested.stderr
        if AIRFLOW_VERSION >= Version("3.3"):
            # Airflow 3.2 prints the failure but exits with status 0.
            assert tested.returncode != 0
        assert "Connection failed!" in output
        assert "20006" in output
        assert WRONG_SECRET not in output
        assert emulator.settings.credentials.permanent_code not in output
        assert emulator.token_calls == 1
