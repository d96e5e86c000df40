"""Tests of the token store that shares tokens between hosts through Airflow Variables."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fxiaoke_provider.api.token_store import Token
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook
from fxiaoke_provider.hooks.variable_token_store import VARIABLE_PREFIX, AirflowVariableTokenStore
from fxiaoke_provider.testing import DEMO_PATHS, FxiaokeEmulator
from tests.conftest import REPO_ROOT, connection_dict, run_airflow

SHARED_TOKEN_DAG = "fxiaoke_shared_token"
HOSTS = ("fxiaoke_host_a", "fxiaoke_host_b", "fxiaoke_host_c")


def _token(value: str = "T" * 32, lifetime: float = 7200.0) -> Token:
    now = time.time()
    return Token(value=value, tenant="fktest188", obtained_at=now, expires_at=now + lifetime)


class TestOutsideTask:
    def test_works_as_host_store(self, tmp_path: Path) -> None:
        store = AirflowVariableTokenStore(tmp_path)
        token = _token()
        store.put("key1", token)
        assert store.get("key1") == token

    def test_discard_drops_host_copy(self, tmp_path: Path) -> None:
        store = AirflowVariableTokenStore(tmp_path)
        store.put("key1", _token("A" * 32))
        store.discard("key1", "A" * 32)
        assert store.get("key1") is None

    def test_discard_keeps_newer_token(self, tmp_path: Path) -> None:
        store = AirflowVariableTokenStore(tmp_path)
        newer = _token("B" * 32)
        store.put("key1", newer)
        store.discard("key1", "A" * 32)
        assert store.get("key1") == newer

    def test_hook_chooses_store(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path, cache_backend="airflow")
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        hook = FxiaokeHook()
        assert isinstance(hook.client.tokens.store, AirflowVariableTokenStore)
        assert list(hook.get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]


@pytest.mark.e2e
class TestAcrossHosts:
    def test_one_token_for_three_hosts(
        self, emulator: FxiaokeEmulator, airflow_home: Path, tmp_path: Path
    ) -> None:
        env = {}
        for host in HOSTS:
            conn = connection_dict(emulator, tmp_path / host, cache_backend="airflow")
            env[f"AIRFLOW_CONN_{host.upper()}"] = json.dumps(conn)
        result = run_airflow(
            airflow_home, "dags", "test", SHARED_TOKEN_DAG, dags_folder=REPO_ROOT / "tests" / "dags", env=env
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert emulator.token_calls == 1
        assert len([r for r in emulator.requests if r.path.endswith("getPresignedUrl")]) == 3
        for host in HOSTS:
            assert list((tmp_path / host).glob("token-*.json")), f"{host} kept no copy of the shared token"
        listed = run_airflow(airflow_home, "variables", "list", "--output", "json")
        names = [row["key"] for row in json.loads(listed.stdout)]
        assert any(name.startswith(VARIABLE_PREFIX) for name in names)
