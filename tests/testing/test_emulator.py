"""Tests of the Open API emulator, driven with plain requests over real HTTP on loopback."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fxiaoke_provider.api.client import FxiaokeClient
from fxiaoke_provider.api.crm import iter_records
from fxiaoke_provider.testing import (
    DEMO_CREDENTIALS,
    DEMO_FILES,
    DEMO_PATHS,
    LARGE_FILE_URL_PATH,
    LEGACY_TOKEN_PATH,
    PRESIGN_PATH,
    TOKEN_PATH,
    TRANSIENT_ERROR_CODES,
    EmulatorSettings,
    Fault,
    FxiaokeEmulator,
    TenantCredentials,
    make_npath,
)
from fxiaoke_provider.testing.emulator import is_loopback_host
from fxiaoke_provider.testing.objects import demo_records
from tests.conftest import config_from_dict

CREDENTIALS = DEMO_CREDENTIALS
TRACE_ID_PATTERN = re.compile(r"E-O\.fktest188\.(\d+)-[0-9a-f]{16}")
HEX_TOKEN_PATTERN = re.compile(r"[0-9A-F]{32}")
TIMEOUT = 10.0


@pytest.fixture
def emulator() -> Iterator[FxiaokeEmulator]:
    with FxiaokeEmulator(port=0) as running:
        running.seed_demo_files()
        yield running


def call(
    emulator: FxiaokeEmulator,
    path: str,
    body: object,
    headers: dict[str, str] | None = None,
    *,
    trace_id: str | None = None,
    omit_trace_id: bool = False,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """POST a JSON body, by default with a fresh thirdTraceId, and return the parsed response."""
    params = {} if omit_trace_id else {"thirdTraceId": trace_id or str(uuid.uuid4())}
    sender: Any = session if session is not None else requests
    response = sender.post(
        emulator.base_url + path, params=params, json=body, headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def token_body(credentials: TenantCredentials = CREDENTIALS, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "appId": credentials.app_id,
        "appSecret": credentials.app_secret,
        "permanentCode": credentials.permanent_code,
        "grantType": "app_secret",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def legacy_token_body(credentials: TenantCredentials = CREDENTIALS, **overrides: object) -> dict[str, object]:
    body = token_body(credentials, **overrides)
    body.pop("grantType", None)
    return body


def access_token(emulator: FxiaokeEmulator) -> str:
    result = call(emulator, TOKEN_PATH, token_body())
    assert result["errorCode"] == 0
    return str(result["accessToken"])


def corp_access_token(emulator: FxiaokeEmulator) -> str:
    result = call(emulator, LEGACY_TOKEN_PATH, legacy_token_body())
    assert result["errorCode"] == 0
    return str(result["corpAccessToken"])


def header_auth(token: str, ea: str = CREDENTIALS.ea, user_id: str = CREDENTIALS.user_id) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "x-fs-ea": ea, "x-fs-userid": user_id}


def legacy_request(token: str, data: object, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "corpAccessToken": token,
        "corpId": CREDENTIALS.corp_id,
        "currentOpenUserId": CREDENTIALS.open_user_id,
        "data": data,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def presign(
    emulator: FxiaokeEmulator,
    token: str,
    paths: list[str],
    expire: object = 1,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    return call(
        emulator,
        PRESIGN_PATH,
        {"data": {"paths": paths, "expire": expire}},
        header_auth(token),
        session=session,
    )


def large_file_url(emulator: FxiaokeEmulator, token: str, path: object) -> dict[str, Any]:
    return call(emulator, LARGE_FILE_URL_PATH, {"data": {"path": path}}, header_auth(token))


def url_expiry(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["Expires"][0])


class TestEmulatorLifecycle:
    def test_base_url_shows_bound_port(self, emulator: FxiaokeEmulator) -> None:
        assert emulator.port > 0
        assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"

    def test_base_url_before_start_raises(self) -> None:
        with pytest.raises(RuntimeError, match="not running"):
            _ = FxiaokeEmulator().base_url

    def test_start_returns_self(self) -> None:
        emulator = FxiaokeEmulator()
        try:
            assert emulator.start() is emulator
            assert emulator.running
        finally:
            emulator.stop()
        assert not emulator.running

    def test_context_manager_stops_server(self) -> None:
        with FxiaokeEmulator() as emulator:
            url = emulator.base_url
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/emulator/health", timeout=TIMEOUT)

    def test_stop_closes_keepalive_connection(self) -> None:
        emulator = FxiaokeEmulator().start()
        session = requests.Session()
        url = emulator.base_url + "/emulator/health"
        assert session.get(url, timeout=TIMEOUT).status_code == 200
        emulator.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(url, timeout=TIMEOUT)

    def test_health_path(self, emulator: FxiaokeEmulator) -> None:
        response = requests.get(emulator.base_url + "/emulator/health", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_server_header_has_no_python_version(self, emulator: FxiaokeEmulator) -> None:
        response = requests.get(emulator.base_url + "/emulator/health", timeout=TIMEOUT)
        assert response.headers["Server"] == "FxiaokeEmulator"

    def test_public_url_rejects_missing_scheme(self) -> None:
        with pytest.raises(ValueError, match="public_url"):
            FxiaokeEmulator(public_url="emulator:8099")

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:1/x?y",
            "http://127.0.0.1:8099/base",
            "http://127.0.0.1:8099?x=1",
            "http://user:pw@127.0.0.1:8099",
            "http://:8099",
            "ftp://127.0.0.1:8099",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
        ],
    )
    def test_public_url_rejects_non_base_url(self, url: str) -> None:
        with pytest.raises(ValueError, match="scheme://host"):
            FxiaokeEmulator(public_url=url)

    def test_public_url_used_in_links(self) -> None:
        with FxiaokeEmulator(public_url="http://emulator.test:8099/") as emulator:
            emulator.seed_demo_files()
            result = presign(emulator, access_token(emulator), DEMO_PATHS[:1])
            assert result["data"][0]["url"].startswith("http://emulator.test:8099/emulator/files/")
            assert json.loads(emulator.connection_json())["host"] == "http://emulator.test:8099"

    def test_loopback_host_detection(self) -> None:
        assert is_loopback_host("127.0.0.1")
        assert is_loopback_host("localhost")
        assert is_loopback_host("::1")
        assert not is_loopback_host("0.0.0.0")
        assert not is_loopback_host("example.com")


class TestEmulatorTokens:
    def test_header_token_fields(self, emulator: FxiaokeEmulator) -> None:
        result = call(emulator, TOKEN_PATH, token_body())
        assert result["errorCode"] == 0
        assert result["errorMessage"] == "OK"
        assert result["errorDescription"] == "success"
        assert HEX_TOKEN_PATTERN.fullmatch(result["accessToken"])
        assert result["expiresIn"] == 7200
        assert result["appId"] == CREDENTIALS.app_id
        assert result["ea"] == CREDENTIALS.ea
        assert result["openUserId"] == CREDENTIALS.corp_id
        match = TRACE_ID_PATTERN.fullmatch(result["traceId"])
        assert match is not None
        assert match.group(1) == "0"

    def test_legacy_token_fields(self, emulator: FxiaokeEmulator) -> None:
        result = call(emulator, LEGACY_TOKEN_PATH, legacy_token_body())
        assert result["errorCode"] == 0
        assert HEX_TOKEN_PATTERN.fullmatch(result["corpAccessToken"])
        assert result["corpId"] == CREDENTIALS.corp_id
        assert result["expiresIn"] == 7200
        assert "accessToken" not in result

    def test_styles_get_distinct_tokens(self, emulator: FxiaokeEmulator) -> None:
        header_token = access_token(emulator)
        legacy_token = corp_access_token(emulator)
        assert header_token != legacy_token
        as_bearer = presign(emulator, legacy_token, DEMO_PATHS[:1])
        assert as_bearer["errorCode"] == 20005
        in_body = call(
            emulator, PRESIGN_PATH, legacy_request(header_token, {"paths": DEMO_PATHS[:1], "expire": 1})
        )
        assert in_body["errorCode"] == 11014

    @pytest.mark.parametrize("path", [TOKEN_PATH, LEGACY_TOKEN_PATH])
    @pytest.mark.parametrize(
        ("field", "code"), [("appId", 10001), ("appSecret", 10002), ("permanentCode", 10012)]
    )
    def test_missing_field(self, emulator: FxiaokeEmulator, path: str, field: str, code: int) -> None:
        body = token_body() if path == TOKEN_PATH else legacy_token_body()
        del body[field]
        assert call(emulator, path, body)["errorCode"] == code
        body[field] = ""
        assert call(emulator, path, body)["errorCode"] == code

    @pytest.mark.parametrize("path", [TOKEN_PATH, LEGACY_TOKEN_PATH])
    def test_wrong_app_id(self, emulator: FxiaokeEmulator, path: str) -> None:
        body = (
            token_body(appId="FSAID_other") if path == TOKEN_PATH else legacy_token_body(appId="FSAID_other")
        )
        result = call(emulator, path, body)
        assert result["errorCode"] == 20006
        assert "FSAID_other" in result["errorMessage"]

    @pytest.mark.parametrize("path", [TOKEN_PATH, LEGACY_TOKEN_PATH])
    def test_wrong_secret_not_echoed(self, emulator: FxiaokeEmulator, path: str) -> None:
        wrong = "wrong-secret-value-1234"
        body = token_body(appSecret=wrong) if path == TOKEN_PATH else legacy_token_body(appSecret=wrong)
        result = call(emulator, path, body)
        assert result["errorCode"] == 20006
        assert wrong not in json.dumps(result)
        assert CREDENTIALS.app_secret not in json.dumps(result)

    @pytest.mark.parametrize("path", [TOKEN_PATH, LEGACY_TOKEN_PATH])
    def test_wrong_permanent_code(self, emulator: FxiaokeEmulator, path: str) -> None:
        wrong = "wrong-permanent-code-1234"
        body = (
            token_body(permanentCode=wrong) if path == TOKEN_PATH else legacy_token_body(permanentCode=wrong)
        )
        result = call(emulator, path, body)
        assert result["errorCode"] == 20015
        assert wrong not in json.dumps(result)
        assert CREDENTIALS.permanent_code not in json.dumps(result)

    @pytest.mark.parametrize("grant_type", [None, "refresh_token", "client_credentials", ""])
    def test_grant_type_other_than_app_secret(
        self, emulator: FxiaokeEmulator, grant_type: str | None
    ) -> None:
        body = token_body()
        body.pop("grantType")
        if grant_type is not None:
            body["grantType"] = grant_type
        assert call(emulator, TOKEN_PATH, body)["errorCode"] == 15002

    def test_non_string_app_id(self, emulator: FxiaokeEmulator) -> None:
        assert call(emulator, TOKEN_PATH, token_body(appId=12345))["errorCode"] == 15002

    def test_same_token_within_reuse_window(self, emulator: FxiaokeEmulator) -> None:
        first = call(emulator, TOKEN_PATH, token_body())
        emulator.clock.advance(100)
        second = call(emulator, TOKEN_PATH, token_body())
        assert second["accessToken"] == first["accessToken"]
        assert second["expiresIn"] == 7100

    def test_new_token_after_reuse_window(self, emulator: FxiaokeEmulator) -> None:
        old = access_token(emulator)
        emulator.clock.advance(6600)
        result = call(emulator, TOKEN_PATH, token_body())
        new = result["accessToken"]
        assert new != old
        assert result["expiresIn"] == 7200
        emulator.clock.advance(500)
        assert presign(emulator, old, DEMO_PATHS[:1])["errorCode"] == 0
        emulator.clock.advance(101)
        assert presign(emulator, old, DEMO_PATHS[:1])["errorCode"] == 20016
        assert presign(emulator, new, DEMO_PATHS[:1])["errorCode"] == 0

    def test_header_token_expires(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0
        emulator.clock.advance(7201)
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 20016

    def test_legacy_token_expires(self, emulator: FxiaokeEmulator) -> None:
        token = corp_access_token(emulator)
        emulator.clock.advance(7201)
        result = call(emulator, PRESIGN_PATH, legacy_request(token, {"paths": DEMO_PATHS[:1], "expire": 1}))
        assert result["errorCode"] == 20016

    def test_expire_tokens(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.expire_tokens()
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 20016
        renewed = access_token(emulator)
        assert renewed != token
        assert presign(emulator, renewed, DEMO_PATHS[:1])["errorCode"] == 0

    def test_token_calls_counter(self, emulator: FxiaokeEmulator) -> None:
        access_token(emulator)
        corp_access_token(emulator)
        call(emulator, TOKEN_PATH, token_body(appSecret="wrong-secret-value-1234"))
        assert emulator.token_calls == 3

    def test_custom_credentials(self) -> None:
        other = TenantCredentials(
            app_id="FSAID_other0002",
            app_secret="other-app-secret-not-real",
            permanent_code="other-permanent-code-not-real",
            ea="othercorp",
            corp_id="FSCID_other0002",
            user_id="2000",
            open_user_id="FSUID_" + "AB" * 16,
        )
        with FxiaokeEmulator(settings=EmulatorSettings(credentials=other)) as emulator:
            emulator.seed_demo_files()
            assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == 20006
            result = call(emulator, TOKEN_PATH, token_body(other))
            assert result["ea"] == "othercorp"
            headers = header_auth(result["accessToken"], ea="othercorp", user_id="2000")
            presigned = call(
                emulator, PRESIGN_PATH, {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}, headers
            )
            assert presigned["errorCode"] == 0
            assert presigned["traceId"].startswith("E-O.othercorp.2000-")


class TestEmulatorTokenLimits:
    def test_eleventh_call_in_minute_rejected(self, emulator: FxiaokeEmulator) -> None:
        codes = [call(emulator, TOKEN_PATH, token_body())["errorCode"] for _ in range(10)]
        assert codes == [0] * 10
        assert call(emulator, LEGACY_TOKEN_PATH, legacy_token_body())["errorCode"] == 14001
        emulator.clock.advance(60)
        assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == 0

    def test_limit_error_code_configurable(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.token_calls_per_minute = 1
        emulator.settings.token_limit_error_code = 30004
        access_token(emulator)
        assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == 30004

    def test_concurrent_call_rejected(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.token_latency_seconds = 0.5
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def fetch() -> None:
            barrier.wait(timeout=TIMEOUT)
            codes.append(call(emulator, TOKEN_PATH, token_body())["errorCode"])

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT)
        assert sorted(codes) == [0, 14001]
        assert emulator.max_concurrent_token_calls == 2
        assert emulator.token_calls == 2

    def test_limits_off_allow_overlap(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.enforce_token_limits = False
        emulator.settings.token_latency_seconds = 0.3
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def fetch() -> None:
            barrier.wait(timeout=TIMEOUT)
            codes.append(call(emulator, TOKEN_PATH, token_body())["errorCode"])

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT)
        assert codes == [0, 0]
        assert emulator.max_concurrent_token_calls == 2

    def test_limits_off_allow_many_calls(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.enforce_token_limits = False
        codes = {call(emulator, TOKEN_PATH, token_body())["errorCode"] for _ in range(12)}
        assert codes == {0}

    def test_sequential_calls_not_concurrent(self, emulator: FxiaokeEmulator) -> None:
        for _ in range(3):
            access_token(emulator)
        assert emulator.max_concurrent_token_calls == 1


class TestEmulatorTraceId:
    @pytest.mark.parametrize("path", [TOKEN_PATH, PRESIGN_PATH])
    def test_missing_trace_id(self, emulator: FxiaokeEmulator, path: str) -> None:
        result = call(emulator, path, token_body(), omit_trace_id=True)
        assert result["errorCode"] == 15002
        assert "thirdTraceId" in result["errorMessage"]

    @pytest.mark.parametrize(
        "trace_id",
        [
            "not-a-uuid",
            str(uuid.uuid1()),
            uuid.uuid4().hex,
            "{" + str(uuid.uuid4()) + "}",
            "00000000-0000-4000-0000-000000000000",
        ],
    )
    def test_invalid_trace_id(self, emulator: FxiaokeEmulator, trace_id: str) -> None:
        result = call(emulator, TOKEN_PATH, token_body(), trace_id=trace_id)
        assert result["errorCode"] == 15002

    def test_uppercase_uuid4_accepted(self, emulator: FxiaokeEmulator) -> None:
        result = call(emulator, TOKEN_PATH, token_body(), trace_id=str(uuid.uuid4()).upper())
        assert result["errorCode"] == 0

    def test_duplicate_trace_id(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        trace_id = str(uuid.uuid4())
        body = {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}
        assert call(emulator, PRESIGN_PATH, body, header_auth(token), trace_id=trace_id)["errorCode"] == 0
        again = call(emulator, PRESIGN_PATH, body, header_auth(token), trace_id=trace_id.upper())
        assert again["errorCode"] == 15002
        assert "already used" in again["errorMessage"]

    def test_duplicates_allowed_when_configured(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.reject_duplicate_trace_id = False
        trace_id = str(uuid.uuid4())
        assert call(emulator, TOKEN_PATH, token_body(), trace_id=trace_id)["errorCode"] == 0
        assert call(emulator, TOKEN_PATH, token_body(), trace_id=trace_id)["errorCode"] == 0

    def test_check_off(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.require_trace_id = False
        assert call(emulator, TOKEN_PATH, token_body(), omit_trace_id=True)["errorCode"] == 0
        assert call(emulator, TOKEN_PATH, token_body(), trace_id="anything")["errorCode"] == 0

    def test_error_code_configurable(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.trace_id_error_code = 32000
        assert call(emulator, TOKEN_PATH, token_body(), omit_trace_id=True)["errorCode"] == 32000

    def test_memory_bounded(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.trace_id_memory = 2
        first, second, third = (str(uuid.uuid4()) for _ in range(3))
        for trace_id in (first, second, third):
            assert call(emulator, TOKEN_PATH, token_body(), trace_id=trace_id)["errorCode"] == 0
        assert call(emulator, TOKEN_PATH, token_body(), trace_id=third)["errorCode"] == 15002
        assert call(emulator, TOKEN_PATH, token_body(), trace_id=first)["errorCode"] == 0


class TestEmulatorRouting:
    def test_unknown_post_path(self, emulator: FxiaokeEmulator) -> None:
        result = call(emulator, "/cgi/crm/v2/no/such", {"data": {}})
        assert result["errorCode"] == 10006
        assert result["errorMessage"] == "the request uri=[/cgi/crm/v2/no/such] is not exists"
        assert TRACE_ID_PATTERN.fullmatch(result["traceId"])

    def test_unknown_get_path(self, emulator: FxiaokeEmulator) -> None:
        response = requests.get(emulator.base_url + "/cgi/crm/v2/no/such", timeout=TIMEOUT)
        assert response.status_code == 404

    def test_empty_body(self, emulator: FxiaokeEmulator) -> None:
        url = emulator.base_url + TOKEN_PATH
        response = requests.post(url, params={"thirdTraceId": str(uuid.uuid4())}, data=b"", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json()["errorCode"] == 12004

    @pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
    def test_body_not_json_object(self, emulator: FxiaokeEmulator, raw: bytes) -> None:
        url = emulator.base_url + PRESIGN_PATH
        response = requests.post(url, params={"thirdTraceId": str(uuid.uuid4())}, data=raw, timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json()["errorCode"] == 15002

    def test_chunked_body(self, emulator: FxiaokeEmulator) -> None:
        encoded = json.dumps(token_body()).encode()
        chunks = iter([encoded[:10], encoded[10:]])
        url = emulator.base_url + TOKEN_PATH
        response = requests.post(
            url, params={"thirdTraceId": str(uuid.uuid4())}, data=chunks, timeout=TIMEOUT
        )
        assert emulator.requests[-1].headers.get("transfer-encoding") == "chunked"
        assert response.json()["errorCode"] == 0

    def test_body_too_large(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.max_body_bytes = 100
        url = emulator.base_url + TOKEN_PATH
        body = {"padding": "x" * 200}
        response = requests.post(url, params={"thirdTraceId": str(uuid.uuid4())}, json=body, timeout=TIMEOUT)
        assert response.status_code == 413

    def test_invalid_content_length(self, emulator: FxiaokeEmulator) -> None:
        request = f"POST {TOKEN_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=TIMEOUT) as connection:
            connection.sendall(request)
            status_line = connection.makefile("rb").readline()
        assert status_line.startswith(b"HTTP/1.1 400")

    def test_internal_error_returns_500(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def fail(*args: object) -> None:
            raise RuntimeError("emulator bug")

        monkeypatch.setattr(emulator._protocol, "handle_post", fail)
        url = emulator.base_url + TOKEN_PATH
        response = requests.post(url, params={"thirdTraceId": str(uuid.uuid4())}, json={}, timeout=TIMEOUT)
        assert response.status_code == 500
        assert "emulator bug" in caplog.text
        assert emulator.requests[-1].http_status == 500

    def test_keepalive_reuses_connection(self, emulator: FxiaokeEmulator) -> None:
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=TIMEOUT) as connection:
            reader = connection.makefile("rb")
            for _ in range(2):
                connection.sendall(b"GET /emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert reader.readline().startswith(b"HTTP/1.1 200")
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                assert reader.read(length) == b'{"status": "ok"}'


class TestEmulatorHeaderAuth:
    def test_valid_headers(self, emulator: FxiaokeEmulator) -> None:
        result = presign(emulator, access_token(emulator), DEMO_PATHS[:1])
        assert result["errorCode"] == 0
        match = TRACE_ID_PATTERN.fullmatch(result["traceId"])
        assert match is not None
        assert match.group(1) == "1000"

    @pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer ", "Bearer " + "0" * 32])
    def test_bad_authorization(self, emulator: FxiaokeEmulator, authorization: str | None) -> None:
        headers = header_auth("unused")
        if authorization is None:
            del headers["authorization"]
        else:
            headers["authorization"] = authorization
        result = call(emulator, PRESIGN_PATH, {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}, headers)
        assert result["errorCode"] == 20005

    @pytest.mark.parametrize("ea", [None, "otherea"])
    def test_wrong_ea(self, emulator: FxiaokeEmulator, ea: str | None) -> None:
        headers = header_auth(access_token(emulator))
        if ea is None:
            del headers["x-fs-ea"]
        else:
            headers["x-fs-ea"] = ea
        result = call(emulator, PRESIGN_PATH, {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}, headers)
        assert result["errorCode"] == 20017

    @pytest.mark.parametrize("user_id", [None, "1453", "FSUID_X"])
    def test_unknown_user_id(self, emulator: FxiaokeEmulator, user_id: str | None) -> None:
        headers = header_auth(access_token(emulator))
        if user_id is None:
            del headers["x-fs-userid"]
        else:
            headers["x-fs-userid"] = user_id
        result = call(emulator, PRESIGN_PATH, {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}, headers)
        assert result["errorCode"] == 30027

    def test_user_ids_changed_at_run_time(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        body = {"data": {"paths": DEMO_PATHS[:1], "expire": 1}}
        assert call(emulator, PRESIGN_PATH, body, header_auth(token, user_id="1453"))["errorCode"] == 30027
        emulator.settings.user_ids.add("1453")
        assert call(emulator, PRESIGN_PATH, body, header_auth(token, user_id="1453"))["errorCode"] == 0

    def test_no_credentials_at_all(self, emulator: FxiaokeEmulator) -> None:
        result = call(emulator, PRESIGN_PATH, {"data": {"paths": DEMO_PATHS[:1], "expire": 1}})
        assert result["errorCode"] == 10013


class TestEmulatorLegacyAuth:
    def test_valid_body_credentials(self, emulator: FxiaokeEmulator) -> None:
        token = corp_access_token(emulator)
        result = call(emulator, PRESIGN_PATH, legacy_request(token, {"paths": DEMO_PATHS[:2], "expire": 1}))
        assert result["errorCode"] == 0
        assert [entry["path"] for entry in result["data"]] == DEMO_PATHS[:2]

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            pytest.param({"corpAccessToken": None}, 10013, id="token-missing"),
            pytest.param({"corpAccessToken": "F" * 32}, 11014, id="token-unknown"),
            pytest.param({"corpId": None}, 10014, id="corp-id-missing"),
            pytest.param({"corpId": "FSCID_other"}, 11015, id="corp-id-wrong"),
            pytest.param({"currentOpenUserId": None}, 10010, id="open-user-id-missing"),
            pytest.param({"currentOpenUserId": "FSUID_" + "0" * 32}, 20012, id="open-user-id-unknown"),
        ],
    )
    def test_bad_body_credentials(
        self, emulator: FxiaokeEmulator, overrides: dict[str, object], code: int
    ) -> None:
        token = corp_access_token(emulator)
        body = legacy_request(token, {"paths": DEMO_PATHS[:1], "expire": 1}, **overrides)
        assert call(emulator, PRESIGN_PATH, body)["errorCode"] == code


class TestEmulatorRateLimit:
    def test_default_limit(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        with requests.Session() as session:
            codes = [
                presign(emulator, token, DEMO_PATHS[:1], session=session)["errorCode"] for _ in range(100)
            ]
            assert codes == [0] * 100
            rejected = presign(emulator, token, DEMO_PATHS[:1], session=session)
            assert rejected["errorCode"] == 14001
            assert emulator.rate_limit_errors == 1
            emulator.clock.advance(20)
            assert presign(emulator, token, DEMO_PATHS[:1], session=session)["errorCode"] == 0

    def test_window_slides(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 4
        token = access_token(emulator)
        codes = [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(2)]
        emulator.clock.advance(10)
        codes += [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(3)]
        assert codes == [0, 0, 0, 0, 14001]
        emulator.clock.advance(10)
        codes = [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(3)]
        assert codes == [0, 0, 14001]
        assert emulator.rate_limit_errors == 2

    def test_limit_per_path(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 1
        token = access_token(emulator)
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 14001
        assert large_file_url(emulator, token, DEMO_PATHS[-1])["errorCode"] == 0

    def test_token_and_rejected_calls_not_counted(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 1
        for _ in range(3):
            assert presign(emulator, "0" * 32, DEMO_PATHS[:1])["errorCode"] == 20005
        token = access_token(emulator)
        access_token(emulator)
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0
        assert emulator.rate_limit_errors == 0

    def test_limit_off(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 2
        emulator.settings.enforce_rate_limit = False
        token = access_token(emulator)
        codes = [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(4)]
        assert codes == [0] * 4
        assert emulator.rate_limit_errors == 0

    def test_error_code_configurable(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 1
        emulator.settings.rate_limit_error_code = 30004
        token = access_token(emulator)
        presign(emulator, token, DEMO_PATHS[:1])
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 30004
        assert emulator.rate_limit_errors == 1


class TestEmulatorPresign:
    def test_list_shape(self, emulator: FxiaokeEmulator) -> None:
        paths = list(reversed(DEMO_PATHS))
        before = emulator.clock.now()
        result = presign(emulator, access_token(emulator), paths, expire=2)
        assert result["errorCode"] == 0
        assert [entry["path"] for entry in result["data"]] == paths
        first_url = result["data"][0]["url"]
        assert first_url.startswith(f"{emulator.base_url}/emulator/files/{paths[0]}?Expires=")
        assert re.search(r"&Signature=[0-9a-f]{64}$", first_url)
        assert before + 7200 - 1 <= url_expiry(first_url) <= emulator.clock.now() + 7200

    def test_map_shape(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.presign_response_shape = "map"
        result = presign(emulator, access_token(emulator), DEMO_PATHS[:3])
        assert sorted(result["data"]) == sorted(DEMO_PATHS[:3])
        assert all(url.startswith(emulator.base_url) for url in result["data"].values())

    def test_nested_shape(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.presign_response_shape = "nested"
        result = presign(emulator, access_token(emulator), DEMO_PATHS[:3])
        assert [entry["path"] for entry in result["data"]["data"]] == DEMO_PATHS[:3]

    def test_default_max_paths(self, emulator: FxiaokeEmulator) -> None:
        rng = random.Random(7)
        paths = [make_npath(rng=rng, ext="pdf") for _ in range(101)]
        for path in paths:
            emulator.add_file(path, b"%PDF-1.4")
        token = access_token(emulator)
        assert len(presign(emulator, token, paths[:100])["data"]) == 100
        too_many = presign(emulator, token, paths)
        assert too_many["errorCode"] == 15002
        assert "101" in too_many["errorMessage"]

    def test_max_paths_configurable(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.max_paths_per_call = 2
        token = access_token(emulator)
        assert presign(emulator, token, DEMO_PATHS[:2])["errorCode"] == 0
        assert presign(emulator, token, DEMO_PATHS[:3])["errorCode"] == 15002

    @pytest.mark.parametrize("expire", [1, 168])
    def test_expire_in_bounds(self, emulator: FxiaokeEmulator, expire: int) -> None:
        assert presign(emulator, access_token(emulator), DEMO_PATHS[:1], expire=expire)["errorCode"] == 0

    @pytest.mark.parametrize("expire", [0, -1, 169, True, "1", 1.5, None])
    def test_expire_out_of_bounds(self, emulator: FxiaokeEmulator, expire: object) -> None:
        result = presign(emulator, access_token(emulator), DEMO_PATHS[:1], expire=expire)
        assert result["errorCode"] == 15002
        assert "expire" in result["errorMessage"]

    def test_max_expire_configurable(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.max_expire_hours = 24
        assert presign(emulator, access_token(emulator), DEMO_PATHS[:1], expire=25)["errorCode"] == 15002

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(None, id="no-data"),
            pytest.param([], id="data-list"),
            pytest.param({"expire": 1}, id="no-paths"),
            pytest.param({"paths": [], "expire": 1}, id="empty-paths"),
            pytest.param({"paths": "N_x", "expire": 1}, id="paths-string"),
            pytest.param({"paths": [""], "expire": 1}, id="empty-path"),
            pytest.param({"paths": [123], "expire": 1}, id="path-number"),
        ],
    )
    def test_invalid_paths(self, emulator: FxiaokeEmulator, data: object) -> None:
        body = {} if data is None else {"data": data}
        result = call(emulator, PRESIGN_PATH, body, header_auth(access_token(emulator)))
        assert result["errorCode"] == 15002

    def test_not_file_dedicated(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.file_dedicated = False
        token = access_token(emulator)
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 15003
        emulator.settings.not_file_dedicated_error_code = 20020
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 20020

    def test_unknown_path_error(self, emulator: FxiaokeEmulator) -> None:
        missing = make_npath(ext="pdf")
        result = presign(emulator, access_token(emulator), [DEMO_PATHS[0], missing])
        assert result["errorCode"] == 15002
        assert missing in result["errorMessage"]
        assert "data" not in result

    def test_unknown_path_omitted(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.unknown_path_mode = "omit"
        missing = make_npath(ext="pdf")
        result = presign(emulator, access_token(emulator), [DEMO_PATHS[0], missing, DEMO_PATHS[1]])
        assert result["errorCode"] == 0
        assert [entry["path"] for entry in result["data"]] == [DEMO_PATHS[0], DEMO_PATHS[1]]

    def test_large_file_url(self, emulator: FxiaokeEmulator) -> None:
        path = DEMO_PATHS[-1]
        result = large_file_url(emulator, access_token(emulator), path)
        assert result["errorCode"] == 0
        url = result["data"]["url"]
        assert url.startswith(f"{emulator.base_url}/emulator/files/{path}?")
        assert abs(url_expiry(url) - (emulator.clock.now() + 3600)) <= 2

    @pytest.mark.parametrize("path", ["", None, 5, ["x"], "ALIOSS_" + "0" * 32])
    def test_large_file_url_bad_path(self, emulator: FxiaokeEmulator, path: object) -> None:
        assert large_file_url(emulator, access_token(emulator), path)["errorCode"] == 15002


class TestEmulatorDownloads:
    def test_download_presigned(self, emulator: FxiaokeEmulator) -> None:
        result = presign(emulator, access_token(emulator), DEMO_PATHS)
        for entry in result["data"]:
            response = requests.get(entry["url"], timeout=TIMEOUT)
            assert response.status_code == 200
            assert response.content == DEMO_FILES[entry["path"]]
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Length"] == str(len(DEMO_FILES[entry["path"]]))

    def test_bad_signature(self, emulator: FxiaokeEmulator) -> None:
        url = presign(emulator, access_token(emulator), DEMO_PATHS[:1])["data"][0]["url"]
        tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
        assert requests.get(tampered, timeout=TIMEOUT).status_code == 403
        unsigned = url.split("&Signature=")[0]
        assert requests.get(unsigned, timeout=TIMEOUT).status_code == 403
        later = url.replace(f"Expires={url_expiry(url)}", f"Expires={url_expiry(url) + 3600}")
        assert requests.get(later, timeout=TIMEOUT).status_code == 403

    def test_non_ascii_signature(self, emulator: FxiaokeEmulator) -> None:
        url = emulator.download_url(DEMO_PATHS[0]).split("&Signature=")[0] + "&Signature=%C3%A9"
        assert requests.get(url, timeout=TIMEOUT).status_code == 403

    def test_signature_bound_to_path(self, emulator: FxiaokeEmulator) -> None:
        url = presign(emulator, access_token(emulator), DEMO_PATHS[:1])["data"][0]["url"]
        swapped = url.replace(DEMO_PATHS[0], DEMO_PATHS[1])
        assert requests.get(swapped, timeout=TIMEOUT).status_code == 403

    def test_signature_bound_to_emulator(self, emulator: FxiaokeEmulator) -> None:
        with FxiaokeEmulator() as other:
            other.seed_demo_files()
            url = presign(other, access_token(other), DEMO_PATHS[:1])["data"][0]["url"]
        foreign = url.replace(urlsplit(url).netloc, urlsplit(emulator.base_url).netloc)
        assert requests.get(foreign, timeout=TIMEOUT).status_code == 403

    def test_expired_url(self, emulator: FxiaokeEmulator) -> None:
        url = presign(emulator, access_token(emulator), DEMO_PATHS[:1])["data"][0]["url"]
        emulator.clock.advance(3590)
        assert requests.get(url, timeout=TIMEOUT).status_code == 200
        emulator.clock.advance(20)
        assert requests.get(url, timeout=TIMEOUT).status_code == 403

    def test_removed_file(self, emulator: FxiaokeEmulator) -> None:
        url = presign(emulator, access_token(emulator), DEMO_PATHS[:1])["data"][0]["url"]
        assert emulator.remove_file(DEMO_PATHS[0])
        assert DEMO_PATHS[0] not in emulator.files
        assert requests.get(url, timeout=TIMEOUT).status_code == 404

    def test_large_file(self, emulator: FxiaokeEmulator) -> None:
        content = bytes(range(256)) * (8 * 1024 * 1024 // 256) + b"tail"
        path = make_npath("ALIOSS")
        emulator.add_file(path, content)
        url = large_file_url(emulator, access_token(emulator), path)["data"]["url"]
        digest = hashlib.sha256()
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(len(content))
            for chunk in response.iter_content(chunk_size=1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(content).hexdigest()

    def test_quoted_path(self, emulator: FxiaokeEmulator) -> None:
        path = "N_202410_22_odd name/with?chars&.txt"
        emulator.add_file(path, b"odd")
        url = presign(emulator, access_token(emulator), [path])["data"][0]["url"]
        assert " " not in url
        assert requests.get(url, timeout=TIMEOUT).content == b"odd"

    def test_downloads_not_rate_limited(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 1
        url = presign(emulator, access_token(emulator), DEMO_PATHS[:1])["data"][0]["url"]
        statuses = [requests.get(url, timeout=TIMEOUT).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert emulator.rate_limit_errors == 0

    def test_download_url_helper(self, emulator: FxiaokeEmulator) -> None:
        url = emulator.download_url(DEMO_PATHS[0], expires_in=60)
        assert requests.get(url, timeout=TIMEOUT).content == DEMO_FILES[DEMO_PATHS[0]]
        emulator.clock.advance(61)
        assert requests.get(url, timeout=TIMEOUT).status_code == 403


class TestEmulatorFaults:
    def test_error_code_once(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, error_code=50009))
        assert emulator.faults == [Fault(endpoint=PRESIGN_PATH, error_code=50009)]
        result = presign(emulator, token, DEMO_PATHS[:1])
        assert result["errorCode"] == 50009
        assert result["errorDescription"] == "service exception"
        assert TRACE_ID_PATTERN.fullmatch(result["traceId"])
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0
        assert emulator.faults == []

    def test_times(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, error_code=-1, times=2))
        codes = [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(3)]
        assert codes == [-1, -1, 0]

    @pytest.mark.parametrize("times", [0, None])
    def test_unlimited_until_cleared(self, emulator: FxiaokeEmulator, times: int | None) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, error_code=30004, times=times))
        codes = [presign(emulator, token, DEMO_PATHS[:1])["errorCode"] for _ in range(5)]
        assert codes == [30004] * 5
        emulator.clear_faults()
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0

    def test_endpoint_matching(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(endpoint=PRESIGN_PATH, error_code=50009))
        assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == 0
        assert len(emulator.faults) == 1

    def test_any_endpoint_includes_token(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(error_code=-1))
        assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == -1
        assert emulator.token_calls == 0

    def test_any_endpoint_skips_unknown_paths(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(error_code=-1))
        assert call(emulator, "/cgi/no/such", {})["errorCode"] == 10006
        assert len(emulator.faults) == 1

    def test_applies_before_auth(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(endpoint=PRESIGN_PATH, error_code=14001))
        assert call(emulator, PRESIGN_PATH, {"data": {}}, omit_trace_id=True)["errorCode"] == 14001
        assert emulator.requests[-1].error_code == 14001
        assert emulator.rate_limit_errors == 0

    def test_drop(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, drop=True))
        with pytest.raises(requests.ConnectionError):
            presign(emulator, token, DEMO_PATHS[:1])
        assert emulator.requests[-1].http_status == 0
        assert emulator.requests[-1].error_code is None
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0

    def test_delay_causes_read_timeout(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, delay_seconds=0.5))
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                emulator.base_url + PRESIGN_PATH,
                params={"thirdTraceId": str(uuid.uuid4())},
                json={"data": {"paths": DEMO_PATHS[:1], "expire": 1}},
                headers=header_auth(token),
                timeout=(TIMEOUT, 0.05),
            )
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 0

    def test_delay_then_handled(self, emulator: FxiaokeEmulator) -> None:
        token = access_token(emulator)
        emulator.inject(Fault(endpoint=PRESIGN_PATH, delay_seconds=0.2))
        started = time.monotonic()
        result = presign(emulator, token, DEMO_PATHS[:1])
        assert time.monotonic() - started >= 0.2
        assert result["errorCode"] == 0

    def test_proxy_error_page(self, emulator: FxiaokeEmulator) -> None:
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        emulator.inject(Fault(endpoint=TOKEN_PATH, http_status=502, body=page))
        response = requests.post(
            emulator.base_url + TOKEN_PATH,
            params={"thirdTraceId": str(uuid.uuid4())},
            json=token_body(),
            timeout=TIMEOUT,
        )
        assert response.status_code == 502
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.content == page
        assert emulator.requests[-1].http_status == 502
        assert emulator.requests[-1].error_code is None

    def test_non_json_200(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(endpoint=TOKEN_PATH, body=b"upstream says hi", content_type="text/plain"))
        response = requests.post(
            emulator.base_url + TOKEN_PATH,
            params={"thirdTraceId": str(uuid.uuid4())},
            json=token_body(),
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        with pytest.raises(ValueError, match="Expecting value"):
            response.json()

    def test_download_fault(self, emulator: FxiaokeEmulator) -> None:
        url = emulator.download_url(DEMO_PATHS[0])
        emulator.inject(Fault(endpoint="/emulator/files/", http_status=503, body=b"busy"))
        assert requests.get(url, timeout=TIMEOUT).status_code == 503
        assert requests.get(url, timeout=TIMEOUT).status_code == 200

    def test_probability_repeats_with_seed(self) -> None:
        outcomes: list[list[int]] = []
        for _ in range(2):
            with FxiaokeEmulator(
                settings=EmulatorSettings(enforce_token_limits=False, random_seed=42)
            ) as emulator:
                emulator.inject(Fault(endpoint=TOKEN_PATH, error_code=-1, times=0, probability=0.5))
                outcomes.append([call(emulator, TOKEN_PATH, token_body())["errorCode"] for _ in range(30)])
        assert outcomes[0] == outcomes[1]
        assert set(outcomes[0]) == {0, -1}

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({}, id="no-action"),
            pytest.param({"error_code": 1, "drop": True}, id="two-actions"),
            pytest.param({"error_code": 1, "http_status": 502}, id="code-and-status"),
            pytest.param({"error_code": 1, "probability": 1.5}, id="probability"),
            pytest.param({"error_code": 1, "times": -1}, id="times"),
            pytest.param({"delay_seconds": -1.0}, id="delay"),
            pytest.param({"http_status": 99}, id="status"),
            pytest.param({"error_code": True}, id="bool-code"),
            pytest.param({"drop": True, "truncate": True}, id="drop-and-truncate"),
        ],
    )
    def test_invalid_fault(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="fault"):
            Fault(**kwargs)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"body": "<html>"}, id="text-body"),
            pytest.param({"error_code": 1, "times": "3"}, id="text-times"),
            pytest.param({"error_code": 1, "probability": "0.5"}, id="text-probability"),
            pytest.param({"http_status": "502"}, id="text-status"),
            pytest.param({"delay_seconds": float("inf")}, id="endless-delay"),
            pytest.param({"error_code": 1, "probability": float("nan")}, id="nan-probability"),
        ],
    )
    def test_fault_wrong_type(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(TypeError, match="fault"):
            Fault(**kwargs)

    def test_truncated_body(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject(Fault(endpoint=TOKEN_PATH, truncate=True))
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.post(
                emulator.base_url + TOKEN_PATH,
                params={"thirdTraceId": str(uuid.uuid4())},
                json=token_body(),
                timeout=TIMEOUT,
            )
        assert emulator.token_calls == 1
        assert call(emulator, TOKEN_PATH, token_body())["errorCode"] == 0

    def test_truncated_download(self, emulator: FxiaokeEmulator) -> None:
        emulator.seed_demo_files()
        url = emulator.download_url(DEMO_PATHS[0])
        emulator.inject(Fault(endpoint="/emulator/files/", truncate=True))
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            announced = int(response.headers["Content-Length"])
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                response.content  # noqa: B018
        assert announced == len(DEMO_FILES[DEMO_PATHS[0]])
        assert requests.get(url, timeout=TIMEOUT).content == DEMO_FILES[DEMO_PATHS[0]]

    @pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -1.0])
    def test_clock_rejects_bad_move(self, emulator: FxiaokeEmulator, seconds: float) -> None:
        before = emulator.clock.now()
        with pytest.raises(ValueError, match="finite"):
            emulator.clock.advance(seconds)
        assert emulator.clock.now() >= before

    def test_inject_random_faults(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.enforce_rate_limit = False
        token = access_token(emulator)
        faults = emulator.inject_random_faults(rate=0.2, endpoint=PRESIGN_PATH)
        assert len(faults) == len(TRANSIENT_ERROR_CODES)
        with requests.Session() as session:
            codes = [
                presign(emulator, token, DEMO_PATHS[:1], session=session)["errorCode"] for _ in range(300)
            ]
        failed = [code for code in codes if code != 0]
        assert set(failed) <= set(TRANSIENT_ERROR_CODES)
        assert 30 <= len(failed) <= 90
        assert len(set(failed)) >= 3

    def test_random_faults_drop(self, emulator: FxiaokeEmulator) -> None:
        emulator.inject_random_faults(rate=1.0, endpoint=TOKEN_PATH, codes=(), drop_share=1.0)
        with pytest.raises(requests.ConnectionError):
            call(emulator, TOKEN_PATH, token_body())

    def test_random_faults_reject_bad_shares(self, emulator: FxiaokeEmulator) -> None:
        with pytest.raises(ValueError, match="sum to at most 1"):
            emulator.inject_random_faults(drop_share=0.7, delay_share=0.5)
        with pytest.raises(ValueError, match="rate"):
            emulator.inject_random_faults(rate=1.5)


class TestEmulatorRequestLog:
    def test_post_recorded(self, emulator: FxiaokeEmulator) -> None:
        emulator.clock.advance(1000)
        trace_id = str(uuid.uuid4())
        call(emulator, TOKEN_PATH, token_body(appSecret="wrong-secret-value-1234"), trace_id=trace_id)
        recorded = emulator.requests[-1]
        assert recorded.method == "POST"
        assert recorded.path == TOKEN_PATH
        assert recorded.query == {"thirdTraceId": trace_id}
        assert recorded.headers["content-type"] == "application/json"
        assert recorded.body == token_body(appSecret="wrong-secret-value-1234")
        assert recorded.error_code == 20006
        assert recorded.http_status == 200
        assert abs(recorded.at - emulator.clock.now()) < 5
        assert recorded.at > time.time() + 990

    def test_get_recorded(self, emulator: FxiaokeEmulator) -> None:
        requests.get(emulator.base_url + "/no/such", timeout=TIMEOUT)
        recorded = emulator.requests[-1]
        assert recorded.method == "GET"
        assert recorded.http_status == 404
        assert recorded.error_code is None
        assert recorded.body is None

    def test_log_bounded(self) -> None:
        with FxiaokeEmulator(settings=EmulatorSettings(request_log_size=3)) as emulator:
            for index in range(5):
                requests.get(f"{emulator.base_url}/missing/{index}", timeout=TIMEOUT)
            assert [recorded.path for recorded in emulator.requests] == [f"/missing/{i}" for i in (2, 3, 4)]

    def test_requests_is_copy(self, emulator: FxiaokeEmulator) -> None:
        access_token(emulator)
        emulator.requests.clear()
        assert len(emulator.requests) == 1

    def test_reset(self, emulator: FxiaokeEmulator) -> None:
        emulator.settings.rate_limit_calls = 1
        token = access_token(emulator)
        presign(emulator, token, DEMO_PATHS[:1])
        presign(emulator, token, DEMO_PATHS[:1])
        emulator.inject(Fault(error_code=-1))
        emulator.reset()
        assert emulator.requests == []
        assert emulator.token_calls == 0
        assert emulator.rate_limit_errors == 0
        assert emulator.max_concurrent_token_calls == 0
        assert emulator.faults == []
        assert emulator.files == DEMO_FILES
        assert presign(emulator, token, DEMO_PATHS[:1])["errorCode"] == 20005
        assert presign(emulator, access_token(emulator), DEMO_PATHS[:1])["errorCode"] == 0


class TestEmulatorLogging:
    def test_requests_logged_at_debug(
        self, emulator: FxiaokeEmulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG, logger="fxiaoke_provider.testing"):
            token = access_token(emulator)
            presign(emulator, token, DEMO_PATHS[:1])
        messages = [
            record.getMessage() for record in caplog.records if record.name == "fxiaoke_provider.testing"
        ]
        assert any(message.startswith(f"POST {TOKEN_PATH} -> HTTP 200, errorCode 0") for message in messages)
        assert any(message.startswith(f"POST {PRESIGN_PATH} -> HTTP 200") for message in messages)
        assert token not in caplog.text
        assert CREDENTIALS.app_secret not in caplog.text

    def test_no_access_log_on_stderr(
        self, emulator: FxiaokeEmulator, capfd: pytest.CaptureFixture[str]
    ) -> None:
        access_token(emulator)
        requests.get(emulator.base_url + "/no/such", timeout=TIMEOUT)
        emulator.inject(Fault(endpoint=TOKEN_PATH, drop=True))
        with pytest.raises(requests.ConnectionError):
            call(emulator, TOKEN_PATH, token_body())
        captured = capfd.readouterr()
        assert captured.err == ""


class TestEmulatorConnection:
    def test_header_extra(self, emulator: FxiaokeEmulator) -> None:
        assert emulator.connection_extra() == {
            "permanent_code": CREDENTIALS.permanent_code,
            "user_id": "1000",
            "auth_style": "header",
        }

    def test_legacy_extra(self, emulator: FxiaokeEmulator) -> None:
        assert emulator.connection_extra("legacy") == {
            "permanent_code": CREDENTIALS.permanent_code,
            "open_user_id": CREDENTIALS.open_user_id,
            "auth_style": "legacy",
        }

    def test_unknown_style(self, emulator: FxiaokeEmulator) -> None:
        with pytest.raises(ValueError, match="auth_style"):
            emulator.connection_extra("oauth")  # type: ignore[arg-type]

    def test_connection_json(self, emulator: FxiaokeEmulator) -> None:
        connection = json.loads(emulator.connection_json("legacy"))
        assert connection == {
            "conn_type": "fxiaoke",
            "host": emulator.base_url,
            "login": CREDENTIALS.app_id,
            "password": CREDENTIALS.app_secret,
            "extra": emulator.connection_extra("legacy"),
        }

    def test_demo_credentials(self) -> None:
        assert CREDENTIALS.app_id == "FSAID_demo0001"
        assert CREDENTIALS.ea == "fktest188"
        assert CREDENTIALS.corp_id == "FSCID_demo0001"
        assert CREDENTIALS.user_id == "1000"
        assert re.fullmatch(r"FSUID_[0-9A-F]{32}", CREDENTIALS.open_user_id)
        assert len(CREDENTIALS.app_secret) >= 16
        assert len(CREDENTIALS.permanent_code) >= 16

    def test_secrets_not_in_repr(self) -> None:
        text = repr(EmulatorSettings())
        assert CREDENTIALS.app_secret not in text
        assert CREDENTIALS.permanent_code not in text
        assert CREDENTIALS.app_id in text


class TestSeed:
    def test_npath_shapes(self) -> None:
        assert re.fullmatch(r"N_\d{6}_\d{2}_[0-9a-f]{32}\.pdf", make_npath(ext="pdf"))
        assert re.fullmatch(r"N_\d{6}_\d{2}_[0-9a-f]{32}", make_npath())
        assert re.fullmatch(r"TN_[0-9a-f]{32}", make_npath("TN"))
        assert re.fullmatch(r"ALIOSS_[0-9a-f]{32}", make_npath("ALIOSS"))

    def test_npath_day(self) -> None:
        path = make_npath(day=datetime.date(2024, 10, 22), ext=".png")
        assert path.startswith("N_202410_22_")
        assert path.endswith(".png")

    def test_npath_seeded(self) -> None:
        rng_a = random.Random(3)
        rng_b = random.Random(3)
        assert [make_npath(rng=rng_a) for _ in range(3)] == [make_npath(rng=rng_b) for _ in range(3)]

    @pytest.mark.parametrize(("kind", "ext"), [("X", None), ("N", "p.df"), ("TN", "")])
    def test_npath_invalid(self, kind: str, ext: str | None) -> None:
        with pytest.raises(ValueError, match="npath kind|extension"):
            make_npath(kind, ext=ext)

    def test_demo_files(self) -> None:
        assert DEMO_PATHS == list(DEMO_FILES)
        assert len(DEMO_FILES) == 6
        for path, content in DEMO_FILES.items():
            assert re.fullmatch(r"(N_202410_22_|ALIOSS_)[0-9a-f]{32}(\.(pdf|png|csv|txt))?", path)
            assert 100 <= len(content) <= 210_000
        by_ext = {path.rsplit(".", 1)[-1]: content for path, content in DEMO_FILES.items() if "." in path}
        assert by_ext["pdf"].startswith(b"%PDF-1.4")
        assert by_ext["pdf"].rstrip().endswith(b"%%EOF")
        assert by_ext["png"].startswith(b"\x89PNG\r\n\x1a\n")
        assert by_ext["csv"].startswith(b"_id,name,owner,amount,last_modified_time\n")
        assert sum(1 for path in DEMO_PATHS if "." not in path) == 2

    def test_demo_files_deterministic(self) -> None:
        script = (
            "import hashlib; from fxiaoke_provider.testing import DEMO_FILES; "
            "print(hashlib.sha256(b''.join(DEMO_FILES.values())).hexdigest())"
        )
        output = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        assert output.stdout.strip() == hashlib.sha256(b"".join(DEMO_FILES.values())).hexdigest()


class _LineReader:
    """Collect a process's stdout lines on a thread, so a test can wait for one with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            match = pattern.search(line)
            if match:
                return match
        pytest.fail(f"no stdout line matched {pattern.pattern!r}; output so far: {''.join(self.seen)!r}")


class TestEmulatorPackage:
    def test_import_is_airflow_free(self) -> None:
        script = (
            "import sys, fxiaoke_provider.testing; "
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'airflow'))"
        )
        output = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        assert output.stdout.strip() == "[]"


class TestEmulatorCli:
    @pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
    def test_serves_until_signal(self, stop_signal: signal.Signals) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "fxiaoke_provider.testing", "--port", "0", "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        output = _LineReader(process.stdout)
        try:
            deadline = time.monotonic() + 30
            listening = output.wait_for(re.compile(r"listening on (http://127\.0\.0\.1:(\d+))$"), deadline)
            base_url = listening.group(1)
            assert int(listening.group(2)) > 0
            connection_line = output.wait_for(
                re.compile(r"^export AIRFLOW_CONN_FXIAOKE_DEFAULT='(.*)'$"), deadline
            )
            connection = json.loads(connection_line.group(1))
            assert connection["host"] == base_url
            assert connection["login"] == CREDENTIALS.app_id

            response = requests.post(
                base_url + TOKEN_PATH,
                params={"thirdTraceId": str(uuid.uuid4())},
                json=token_body(),
                timeout=TIMEOUT,
            )
            assert response.json()["errorCode"] == 0
            assert presign_demo_path(base_url, response.json()["accessToken"])["errorCode"] == 0
            assert count_records(connection, "AccountObj") == len(demo_records(0)["AccountObj"])

            process.send_signal(stop_signal)
            assert process.wait(timeout=15) == 0
            output.wait_for(re.compile(r"emulator stopped"), time.monotonic() + 5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)
            process.stdout.close()

    def test_help_describes_units(self) -> None:
        output = subprocess.run(
            [sys.executable, "-m", "fxiaoke_provider.testing", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "--max-expire-hours" in output.stdout
        assert "in hours" in output.stdout
        assert "--public-url" in output.stdout

    def test_port_in_use(self) -> None:
        with socket.socket() as occupied:
            occupied.bind(("127.0.0.1", 0))
            occupied.listen()
            port = occupied.getsockname()[1]
            output = subprocess.run(
                [sys.executable, "-m", "fxiaoke_provider.testing", "--port", str(port)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert output.returncode == 1
        assert f"cannot bind 127.0.0.1:{port}" in output.stderr

    def test_invalid_port(self) -> None:
        output = subprocess.run(
            [sys.executable, "-m", "fxiaoke_provider.testing", "--port", "70000"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert output.returncode == 2
        assert "between 0 and 65535" in output.stderr


def count_records(connection: dict[str, Any], object_api_name: str) -> int:
    """Count an object's records on an emulator known only by its printed connection."""
    config = config_from_dict({**connection, "extra": {**connection["extra"], "cache_backend": "memory"}})
    client = FxiaokeClient(config)
    try:
        return sum(1 for _ in iter_records(client, object_api_name, fields=["_id"]))
    finally:
        client.close()


def presign_demo_path(base_url: str, token: str) -> dict[str, Any]:
    """Presign one demo path on an emulator known only by URL, as the CLI test needs."""
    response = requests.post(
        base_url + PRESIGN_PATH,
        params={"thirdTraceId": str(uuid.uuid4())},
        json={"data": {"paths": DEMO_PATHS[:1], "expire": 1}},
        headers=header_auth(token),
        timeout=TIMEOUT,
    )
    result: dict[str, Any] = response.json()
    return result
