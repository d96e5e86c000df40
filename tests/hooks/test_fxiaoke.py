"""Tests of FxiaokeHook against the emulator over real HTTP on loopback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from fxiaoke_provider.exceptions import (
    FxiaokeAPIError,
    FxiaokeAuthError,
    FxiaokeConfigError,
    FxiaokeMissingPathsError,
    FxiaokeQuotaError,
    FxiaokeResponseError,
    FxiaokeTransportError,
)
from fxiaoke_provider.hooks.fxiaoke import TEST_MAX_RETRY_WAIT, FxiaokeHook
from fxiaoke_provider.testing import DEMO_CREDENTIALS, DEMO_PATHS, TOKEN_PATH, Fault, FxiaokeEmulator
from tests.conftest import connection_dict

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every back-off wait return at once."""
    monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", lambda _seconds: None)


def _hook_with(monkeypatch: pytest.MonkeyPatch, conn: dict[str, object]) -> FxiaokeHook:
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    hook = FxiaokeHook()
    hook.client._sleep = lambda _seconds: None
    return hook


def _api_calls(emu: FxiaokeEmulator, path: str = PRESIGN) -> list[object]:
    return [r for r in emu.requests if r.path == path]


def _free_after_one_wait(seconds: float) -> Any:
    """Build a ``RateLimiter.try_acquire`` whose first call returns a wait of ``seconds`` and later calls a slot."""
    answers = [seconds]

    def try_acquire(_limiter: object, _endpoint: str) -> float:
        return answers.pop() if answers else 0.0

    return try_acquire


class TestPresign:
    @pytest.mark.parametrize("auth_style", ["header", "legacy"])
    def test_presign_both_styles(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, auth_style: str
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, auth_style))
        urls = hook.get_presigned_urls(DEMO_PATHS, expire_hours=2)
        assert list(urls) == DEMO_PATHS
        for path, url in urls.items():
            response = requests.get(url, timeout=5)
            assert response.status_code == 200
            assert response.content == emulator.files[path]

    def test_header_style_sends_headers(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        call = _api_calls(fxiaoke_conn)[0]
        assert call.headers["authorization"].startswith("Bearer ")
        assert call.headers["x-fs-ea"] == DEMO_CREDENTIALS.ea
        assert call.headers["x-fs-userid"] == DEMO_CREDENTIALS.user_id
        assert call.body["data"] == {"paths": DEMO_PATHS[:1], "expire": 1}

    def test_legacy_style_sends_body_fields(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _hook_with(monkeypatch, connection_dict(emulator, tmp_path, "legacy")).get_presigned_urls(
            DEMO_PATHS[:1]
        )
        call = _api_calls(emulator)[0]
        assert "authorization" not in call.headers
        assert call.body["corpId"] == DEMO_CREDENTIALS.corp_id
        assert call.body["currentOpenUserId"] == DEMO_CREDENTIALS.open_user_id
        assert call.body["corpAccessToken"]

    def test_batches_and_dedup(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        paths = DEMO_PATHS + DEMO_PATHS[:2]
        urls = FxiaokeHook().get_presigned_urls(paths, batch_size=4)
        assert list(urls) == DEMO_PATHS
        sent = [call.body["data"]["paths"] for call in _api_calls(fxiaoke_conn)]
        # The last demo path is a large file (ALIOSS_), which has its own endpoint.
        assert sent == [DEMO_PATHS[:4], DEMO_PATHS[4:5]]
        large = [
            call.body["data"]["path"]
            for call in _api_calls(fxiaoke_conn, "/cgi/crm/v2/generateDownloadSignatureUrlByAuth")
        ]
        assert large == DEMO_PATHS[5:]

    @pytest.mark.parametrize("shape", ["list", "map", "nested"])
    def test_response_shapes(self, fxiaoke_conn: FxiaokeEmulator, shape: str) -> None:
        fxiaoke_conn.settings.presign_response_shape = shape
        urls = FxiaokeHook().get_presigned_urls(DEMO_PATHS)
        assert list(urls) == DEMO_PATHS
        assert all(url.startswith(fxiaoke_conn.base_url) for url in urls.values())

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param("not a list", id="string"),
            pytest.param([1, 2], id="list-of-ints"),
            pytest.param([{"path": "x"}], id="item-without-url"),
            pytest.param(None, id="missing"),
            pytest.param({"a": 1}, id="map-with-non-url"),
        ],
    )
    def test_unexpected_shape_names_trace_id(self, fxiaoke_conn: FxiaokeEmulator, data: object) -> None:
        body = {"errorCode": 0, "errorMessage": "OK", "traceId": "E-O.test.1-feedface", "data": data}
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, http_status=200, body=json.dumps(body).encode()))
        with pytest.raises(FxiaokeResponseError, match="E-O.test.1-feedface"):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])

    def test_missing_paths_listed(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.settings.unknown_path_mode = "omit"
        unknown = [f"N_202401_01_{index:032x}" for index in range(7)]
        with pytest.raises(FxiaokeMissingPathsError) as caught:
            FxiaokeHook().get_presigned_urls([DEMO_PATHS[0], *unknown])
        assert caught.value.missing == unknown
        assert "7 path(s)" in str(caught.value)
        assert "and 2 more" in str(caught.value)
        assert list(caught.value.received) == [DEMO_PATHS[0]]

    def test_large_file_url(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        large = next(path for path in DEMO_PATHS if path.startswith("ALIOSS_"))
        url = FxiaokeHook().get_large_file_url(large)
        assert requests.get(url, timeout=5).content == fxiaoke_conn.files[large]

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            pytest.param({"expire_hours": 0}, ValueError, id="zero-hours"),
            pytest.param({"expire_hours": True}, TypeError, id="bool-hours"),
            pytest.param({"expire_hours": 1.5}, TypeError, id="float-hours"),
            pytest.param({"expire_hours": "2"}, TypeError, id="string-hours"),
            pytest.param({"expire_hours": 169}, ValueError, id="hours-above-max"),
            pytest.param({"batch_size": 0}, ValueError, id="zero-batch"),
            pytest.param({"batch_size": "10"}, TypeError, id="string-batch"),
        ],
    )
    def test_bad_arguments_before_calls(
        self, fxiaoke_conn: FxiaokeEmulator, kwargs: dict[str, object], error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS, **kwargs)  # type: ignore[arg-type]
        assert fxiaoke_conn.requests == []

    @pytest.mark.parametrize("paths", [["ok", ""], ["ok", 3], "N_single"])
    def test_bad_paths_before_calls(self, fxiaoke_conn: FxiaokeEmulator, paths: object) -> None:
        with pytest.raises((TypeError, ValueError)):
            FxiaokeHook().get_presigned_urls(paths)  # type: ignore[arg-type]
        assert fxiaoke_conn.requests == []


class TestTokens:
    def test_one_token_for_many_calls(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        hook = FxiaokeHook()
        for _ in range(5):
            hook.get_presigned_urls(DEMO_PATHS[:2])
        assert fxiaoke_conn.token_calls == 1
        assert len(_api_calls(fxiaoke_conn)) == 5

    def test_token_shared_between_hooks(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert fxiaoke_conn.token_calls == 1

    def test_refresh_on_20016(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        hook = FxiaokeHook()
        hook.get_presigned_urls(DEMO_PATHS[:1])
        fxiaoke_conn.clock.advance(7201)
        urls = hook.get_presigned_urls(DEMO_PATHS[:1])
        assert list(urls) == DEMO_PATHS[:1]
        assert fxiaoke_conn.token_calls == 2
        codes = [r.error_code for r in _api_calls(fxiaoke_conn)]
        assert codes == [0, 20016, 0]
        assert "errorCode 20016" in log_text()

    def test_token_outage_not_multiplied(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, max_retries=2))
        emulator.inject(Fault(endpoint="/oauth2.0/token", error_code=-1, times=0))
        with pytest.raises(FxiaokeAPIError, match="after 3 attempts"):
            hook.get_presigned_urls(DEMO_PATHS[:1])
        assert len(_api_calls(emulator, "/oauth2.0/token")) == 3
        assert _api_calls(emulator) == []

    def test_token_rejected_twice_fails(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=20016, times=2))
        with pytest.raises(FxiaokeAuthError, match="20016"):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert fxiaoke_conn.token_calls == 2

    def test_wrong_secret_fails(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path)
        conn["password"] = "wrong-secret-value-123"
        with pytest.raises(FxiaokeAuthError, match="20006"):
            _hook_with(monkeypatch, conn).get_presigned_urls(DEMO_PATHS[:1])

    def test_wrong_permanent_code_fails(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path, permanent_code="wrong-permanent-code-1")
        with pytest.raises(FxiaokeAuthError, match="20015"):
            _hook_with(monkeypatch, conn).get_presigned_urls(DEMO_PATHS[:1])

    def test_trace_ids_unique_uuid4(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=-1, times=2))
        FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        trace_ids = [r.query["thirdTraceId"] for r in fxiaoke_conn.requests]
        assert len(trace_ids) == 4
        assert len(set(trace_ids)) == 4
        assert all(uuid.UUID(value).version == 4 for value in trace_ids)


class TestErrors:
    def test_transient_code_retried(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=50009, times=2))
        urls = FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert list(urls) == DEMO_PATHS[:1]
        assert len(_api_calls(fxiaoke_conn)) == 3
        text = log_text()
        assert "[Try 1 of 6]" in text
        assert "[Try 2 of 6]" in text
        assert "errorCode 50009" in text

    @pytest.mark.parametrize(
        ("code", "error"), [(30002, FxiaokeQuotaError), (30003, FxiaokeQuotaError), (15003, FxiaokeAPIError)]
    )
    def test_permanent_code_not_retried(
        self, fxiaoke_conn: FxiaokeEmulator, code: int, error: type[Exception]
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=code))
        with pytest.raises(error, match=str(code)) as caught:
            FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert len(_api_calls(fxiaoke_conn)) == 1
        assert caught.value.trace_id
        assert caught.value.trace_id in str(caught.value)

    def test_unknown_endpoint_10006(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        with pytest.raises(FxiaokeAPIError, match="10006") as caught:
            FxiaokeHook().call("/cgi/no/such/endpoint", {"x": 1})
        assert caught.value.endpoint == "/cgi/no/such/endpoint"

    def test_generic_call_returns_body(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        body = FxiaokeHook().call(
            PRESIGN, {"paths": DEMO_PATHS[:1], "expire": 1}, envelope={"includeNull": True}
        )
        assert body["errorCode"] == 0
        assert _api_calls(fxiaoke_conn)[0].body["includeNull"] is True

    def test_proxy_502_retried(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        page = b"<html><body>502 Bad Gateway</body></html>"
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, http_status=502, body=page, content_type="text/html"))
        assert list(FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]

    def test_html_200_not_retried(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        page = b"<html><body>Login</body></html>"
        fxiaoke_conn.inject(
            Fault(endpoint=PRESIGN, http_status=200, body=page, content_type="text/html", times=0)
        )
        with pytest.raises(FxiaokeTransportError, match="not JSON"):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert len(_api_calls(fxiaoke_conn)) == 1

    def test_dropped_connection_retried(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, drop=True))
        assert list(FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]

    def test_cut_off_body_retried(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, truncate=True))
        hook = FxiaokeHook()
        assert list(hook.get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]
        assert hook.client.stats.retries == 1

    def test_read_timeout_retried(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, read_timeout=0.2))
        emulator.inject(Fault(endpoint=PRESIGN, delay_seconds=0.5))
        assert list(hook.get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]

    def test_write_not_resent_after_timeout(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, read_timeout=0.2))
        emulator.inject(Fault(endpoint=PRESIGN, delay_seconds=0.5))
        with pytest.raises(FxiaokeTransportError, match="read timed out"):
            hook.call(PRESIGN, {"paths": DEMO_PATHS[:1], "expire": 1}, idempotent=False)
        # The emulator logs the delayed request only after its delay, so count the client's attempts.
        assert hook.client.stats.attempts - hook.client.stats.token_calls == 1
        assert hook.client.stats.retries == 0

    def test_write_retried_after_error_code(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=-1))
        body = FxiaokeHook().call(PRESIGN, {"paths": DEMO_PATHS[:1], "expire": 1}, idempotent=False)
        assert body["errorCode"] == 0
        assert len(_api_calls(fxiaoke_conn)) == 2

    def test_retries_exhausted(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, max_retries=2))
        emulator.inject(Fault(endpoint=PRESIGN, error_code=-1, times=0))
        with pytest.raises(FxiaokeAPIError, match="after 3 attempts"):
            hook.get_presigned_urls(DEMO_PATHS[:1])
        assert len(_api_calls(emulator)) == 3

    def test_system_error_bounded(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=-2, times=0))
        with pytest.raises(FxiaokeAPIError, match="-2"):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS[:1])
        assert len(_api_calls(fxiaoke_conn)) == 3


class TestConnectionTest:
    def test_connection_ok(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        ok, message = FxiaokeHook().test_connection()
        assert ok, message
        assert fxiaoke_conn.base_url in message

    def test_connection_bad_secret(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path)
        conn["password"] = "another-wrong-secret"
        ok, message = _hook_with(monkeypatch, conn).test_connection()
        assert not ok
        assert "20006" in message
        assert "another-wrong-secret" not in message

    def test_connection_retries_once_and_briefly(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        waits: list[float] = []
        monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", waits.append)
        conn = connection_dict(emulator, tmp_path, max_retries=5, max_retry_wait=30)
        emulator.inject(Fault(endpoint=TOKEN_PATH, error_code=-1, times=0))
        ok, message = _hook_with(monkeypatch, conn).test_connection()
        assert not ok, message
        assert len(_api_calls(emulator, TOKEN_PATH)) == 2
        assert len(waits) == 1
        assert 0 < waits[0] <= TEST_MAX_RETRY_WAIT

    def test_connection_retry_recovers(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        emulator.inject(Fault(endpoint=TOKEN_PATH, error_code=-1))
        ok, message = _hook_with(monkeypatch, connection_dict(emulator, tmp_path)).test_connection()
        assert ok, message

    def test_connection_leaves_task_retries(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, max_retries=5))
        hook.test_connection()
        assert hook.config.max_retries == 5

    @staticmethod
    def _fail_long_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
        """
        Record every wait, and fail on one longer than a connection test allows.

        The patched wait does not move the clock, so a rate limiter that waits would otherwise loop forever.
        """
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if seconds > TEST_MAX_RETRY_WAIT:
                raise AssertionError(f"the connection test waited {seconds:.1f} s")

        monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", sleep)
        return waits

    def test_server_rate_limit_fails_fast(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        waits = self._fail_long_waits(monkeypatch)
        emulator.inject(Fault(endpoint=TOKEN_PATH, error_code=14001, times=0))
        ok, message = _hook_with(monkeypatch, connection_dict(emulator, tmp_path)).test_connection()
        assert not ok
        assert "14001" in message
        assert "Try again in 21 s" in message or "Try again in 22 s" in message
        assert len(_api_calls(emulator, TOKEN_PATH)) == 1
        assert waits == []

    def test_host_token_limit_fails_fast(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        waits = self._fail_long_waits(monkeypatch)
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path))
        # Other processes of the host have used every token call of this minute.
        for _ in range(10):
            assert hook.client.token_limiter.try_acquire(TOKEN_PATH) == 0.0
        ok, message = hook.test_connection()
        assert not ok
        assert "limit of 10 calls a minute" in message
        assert "Try again in " in message
        assert _api_calls(emulator, TOKEN_PATH) == []
        assert waits == []

    def test_short_limiter_wait_made(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        waits = self._fail_long_waits(monkeypatch)
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path))
        monkeypatch.setattr(hook.client.token_limiter.__class__, "try_acquire", _free_after_one_wait(1.5))
        ok, message = hook.test_connection()
        assert ok, message
        assert waits == [1.5]

    def test_connection_cache_dir_under_home(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        home, work = tmp_path / "home", tmp_path / "work"
        home.mkdir()
        work.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.chdir(work)
        conn = connection_dict(emulator, tmp_path)
        conn["extra"]["cache_dir"] = "~/fx-cache"
        ok, message = _hook_with(monkeypatch, conn).test_connection()
        assert ok, message
        assert list(work.iterdir()) == []
        assert any((home / "fx-cache").glob("token-*.json"))

    def test_connection_cache_dir_is_file(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        target = tmp_path / "a-file"
        target.write_text("")
        conn = connection_dict(emulator, target)
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        ok, message = FxiaokeHook().test_connection()
        assert not ok
        assert "extra.cache_dir" in message
        assert str(target) in message
        assert emulator.requests == []

    def test_connection_cache_dir_unusable(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        (tmp_path / "a-file").write_text("")
        target = tmp_path / "a-file" / "cache"
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(connection_dict(emulator, target)))
        ok, message = FxiaokeHook().test_connection()
        assert not ok
        assert "extra.cache_dir" in message
        assert str(target) in message
        assert emulator.requests == []

    def test_padded_secret_rejected_offline(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path)
        conn["password"] = f"{DEMO_CREDENTIALS.app_secret}\n"
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        ok, message = FxiaokeHook().test_connection()
        assert not ok
        assert "field password" in message
        assert DEMO_CREDENTIALS.app_secret not in message
        assert emulator.requests == []

    @pytest.mark.parametrize(
        ("auth_style", "extra", "code"),
        [
            pytest.param("header", {"user_id": "424242"}, 30027, id="employee-id"),
            pytest.param("legacy", {"open_user_id": "FSUID_NOBODY"}, 20012, id="open-user-id"),
        ],
    )
    def test_acting_user_not_checked(
        self,
        emulator: FxiaokeEmulator,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        auth_style: str,
        extra: dict[str, str],
        code: int,
    ) -> None:
        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, auth_style, **extra))
        ok, message = hook.test_connection()
        assert ok, message
        with pytest.raises(FxiaokeAPIError) as caught:
            hook.get_presigned_urls(DEMO_PATHS[:1])
        assert caught.value.error_code == code

    def test_connection_bad_field(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps({"conn_type": "fxiaoke", "login": "x"}))
        ok, message = FxiaokeHook().test_connection()
        assert not ok
        assert "login" in message


class TestSecrets:
    def test_no_secret_in_logs_or_errors(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        hook = FxiaokeHook()
        messages = []
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=-1))
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=30002))
        for _ in range(2):
            try:
                urls = hook.get_presigned_urls(DEMO_PATHS)
            except FxiaokeAPIError as err:
                messages.append(str(err))
                messages.append(repr(err))
        token = hook.client.tokens.get().value
        text = log_text() + "\n".join(messages) + repr(hook.config) + repr(hook.client)
        assert "errorCode -1" in text
        assert messages
        for secret in (DEMO_CREDENTIALS.app_secret, DEMO_CREDENTIALS.permanent_code, token):
            assert secret not in text
        for url in urls.values():
            assert url.split("?", 1)[1] not in text

    def test_secrets_registered_with_masker(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        from airflow.sdk._shared.secrets_masker import redact

        hook = FxiaokeHook()
        hook.get_presigned_urls(DEMO_PATHS[:1])
        token = hook.client.tokens.get().value
        for secret in (DEMO_CREDENTIALS.app_secret, DEMO_CREDENTIALS.permanent_code, token):
            assert redact(f"value {secret} end") == "value *** end"


class TestConnectionFields:
    @pytest.mark.parametrize("code", [pytest.param("  padded-permanent-code-77  ", id="padded"), 987654321])
    def test_permanent_code_masked_as_sent(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: object
    ) -> None:
        from airflow.sdk._shared.secrets_masker import redact

        hook = _hook_with(monkeypatch, connection_dict(emulator, tmp_path, permanent_code=code))
        sent = hook.config.permanent_code
        assert sent == str(code).strip()
        assert redact(f"value {sent} end") == "value *** end"

    def test_bad_field_before_network(
        self, fxiaoke_conn: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = json.loads(fxiaoke_conn.connection_json())
        del conn["extra"]["permanent_code"]
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        with pytest.raises(FxiaokeConfigError, match="extra.permanent_code"):
            FxiaokeHook().get_presigned_urls(DEMO_PATHS)
        assert fxiaoke_conn.requests == []

    def test_extra_not_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_FXIAOKE_DEFAULT",
            json.dumps(
                {"conn_type": "fxiaoke", "login": "FSAID_x", "password": "secret", "extra": "{not json"}
            ),
        )
        with pytest.raises(FxiaokeConfigError, match="extra"):
            FxiaokeHook().config  # noqa: B018

    def test_uri_form(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        from airflow.sdk import Connection

        conn = connection_dict(emulator, tmp_path)
        uri = Connection(
            conn_id="fxiaoke_default",
            conn_type="fxiaoke",
            host=conn["host"],
            login=conn["login"],
            password=conn["password"],
            extra=json.dumps(conn["extra"]),
        ).get_uri()
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", uri)
        hook = FxiaokeHook()
        assert hook.config.base_url == emulator.base_url
        assert list(hook.get_presigned_urls(DEMO_PATHS[:1])) == DEMO_PATHS[:1]
