"""Reliability under faults, parallel processes, token expiry, permanent errors and malformed responses."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from fxiaoke_provider.api.codes import ERROR_CODES, ErrorClass
from fxiaoke_provider.api.config import config_from_connection
from fxiaoke_provider.api.files import iter_presigned_batches
from fxiaoke_provider.api.rate_limit import RateLimiter
from fxiaoke_provider.exceptions import (
    FxiaokeAPIError,
    FxiaokeError,
    FxiaokeResponseError,
    FxiaokeTransportError,
)
from fxiaoke_provider.testing import DEMO_PATHS, Fault, FxiaokeEmulator, make_npath
from tests.conftest import connection_dict, make_client

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"
TOKEN = "/oauth2.0/token"


def _seed(emu: FxiaokeEmulator, count: int) -> list[str]:
    paths = [f"N_202411_11_{index:032x}.txt" for index in range(count)]
    for path in paths:
        emu.add_file(path, path.encode())
    return paths


class TestFaultInjection:
    def test_5000_paths_under_faults(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = _seed(emulator, 5000)
        client = make_client(emulator, tmp_path, read_timeout=0.2)
        emulator.inject_random_faults(
            rate=0.2, endpoint=PRESIGN, drop_share=0.2, delay_share=0.1, delay_seconds=0.3
        )
        urls: dict[str, str] = {}
        for batch in iter_presigned_batches(client, paths, expire_hours=1, batch_size=100):
            assert not batch.missing
            for path, url in batch.urls.items():
                assert path not in urls
                urls[path] = url
        assert list(urls) == paths
        presign_requests = [r for r in emulator.requests if r.path == PRESIGN]
        failed = [r for r in presign_requests if r.error_code != 0]
        assert failed, "the fault injection did not fire"
        assert client.stats.calls == 50
        assert client.stats.attempts - client.stats.token_calls <= 50 * (client.config.max_retries + 1)
        assert client.stats.retries >= len([r for r in failed if r.error_code is not None])
        assert emulator.token_calls == 1


def _presign_in_process(conn: dict[str, Any], paths: list[str], results: Any) -> None:
    config = config_from_connection(
        host=conn["host"], login=conn["login"], password=conn["password"], port=None, extra=conn["extra"]
    )
    from fxiaoke_provider.api.client import FxiaokeClient

    client = FxiaokeClient(config)
    urls = {}
    for batch in iter_presigned_batches(client, paths, expire_hours=1, batch_size=5):
        urls.update(batch.urls)
    results.put((len(urls), client.stats.token_calls))


class TestParallelProcesses:
    def test_16_processes_one_token(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        emulator.settings.token_latency_seconds = 0.3
        conn = connection_dict(emulator, tmp_path / "cache")
        paths = _seed(emulator, 15)
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [
            context.Process(target=_presign_in_process, args=(conn, paths, results)) for _ in range(16)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        outcomes = [results.get(timeout=5) for _ in workers]
        assert all(worker.exitcode == 0 for worker in workers)
        assert [count for count, _ in outcomes] == [15] * 16
        assert sum(token_calls for _, token_calls in outcomes) == 1
        assert emulator.token_calls == 1
        assert emulator.max_concurrent_token_calls == 1
        assert emulator.rate_limit_errors == 0
        assert len([r for r in emulator.requests if r.path == PRESIGN]) == 16 * 3


def _take_slots(directory: str, attempts: int, results: Any) -> None:
    limiter = RateLimiter(50, 1000.0, key="shared", directory=Path(directory))
    results.put(sum(1 for _ in range(attempts) if limiter.try_acquire(PRESIGN) == 0.0))


class TestSharedRateLimit:
    def test_limit_shared_across_processes(self, tmp_path: Path) -> None:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [context.Process(target=_take_slots, args=(str(tmp_path), 10, results)) for _ in range(16)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        taken = [results.get(timeout=5) for _ in workers]
        assert sum(taken) == 50

    def test_client_paces_under_limit(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = _seed(emulator, 250)
        client = make_client(emulator, tmp_path)
        started = emulator.clock.now()
        urls = {}
        for batch in iter_presigned_batches(client, paths, expire_hours=1, batch_size=1):
            urls.update(batch.urls)
        assert len(urls) == 250
        assert emulator.rate_limit_errors == 0
        assert emulator.clock.now() - started >= 40.0
        assert client.limiter.waited > 0


class TestTokenExpiry:
    def test_proactive_refresh_mid_run(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = _seed(emulator, 100)
        client = make_client(emulator, tmp_path)
        for index, _batch in enumerate(iter_presigned_batches(client, paths, expire_hours=1, batch_size=10)):
            if index == 4:
                emulator.clock.advance(6700)
        assert emulator.token_calls == 2
        assert all(r.error_code == 0 for r in emulator.requests)

    def test_server_expiry_mid_run(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = _seed(emulator, 100)
        client = make_client(emulator, tmp_path)
        client.tokens._clock = lambda: 0.0  # the client believes its token is fresh throughout
        for index, _batch in enumerate(iter_presigned_batches(client, paths, expire_hours=1, batch_size=10)):
            if index == 4:
                emulator.expire_tokens()
        assert emulator.token_calls == 2
        assert [r.error_code for r in emulator.requests if r.error_code].count(20016) == 1


PERMANENT_CODES = sorted(
    code
    for code, entry in ERROR_CODES.items()
    if entry.error_class is ErrorClass.PERMANENT and code not in (10006,)
)


class TestPermanentCodes:
    @pytest.mark.parametrize("code", PERMANENT_CODES)
    def test_fails_fast(self, emulator: FxiaokeEmulator, tmp_path: Path, code: int) -> None:
        client = make_client(emulator, tmp_path)
        client.check_credentials()
        emulator.inject(Fault(endpoint=PRESIGN, error_code=code))
        with pytest.raises(FxiaokeAPIError) as caught:
            list(iter_presigned_batches(client, DEMO_PATHS[:1]))
        presign_requests = [r for r in emulator.requests if r.path == PRESIGN]
        assert len(presign_requests) == 1
        assert caught.value.error_code == code
        assert f"error {code} " in str(caught.value)
        assert caught.value.trace_id
        assert caught.value.trace_id in str(caught.value)
        assert client.stats.retries == 0


def _envelope(**fields: Any) -> bytes:
    return json.dumps({"errorMessage": "OK", "traceId": "E-O.bad.1-0123456789abcdef", **fields}).encode()


BAD_ANSWERS = [
    pytest.param(200, b"", "text/plain", FxiaokeTransportError, "not JSON", id="empty-body"),
    pytest.param(200, b"<html>Sign in</html>", "text/html", FxiaokeTransportError, "not JSON", id="html-200"),
    pytest.param(
        200, b"{truncated", "application/json", FxiaokeTransportError, "not JSON", id="truncated-json"
    ),
    pytest.param(200, b"[1, 2]", "application/json", FxiaokeResponseError, "JSON object", id="json-array"),
    pytest.param(200, b'"text"', "application/json", FxiaokeResponseError, "JSON object", id="json-string"),
    pytest.param(200, b"{}", "application/json", FxiaokeResponseError, "errorCode", id="no-error-code"),
    pytest.param(
        200, _envelope(errorCode="x"), "application/json", FxiaokeResponseError, "errorCode", id="code-text"
    ),
    pytest.param(
        200, _envelope(errorCode=None), "application/json", FxiaokeResponseError, "errorCode", id="code-null"
    ),
    pytest.param(
        200, _envelope(errorCode=0), "application/json", FxiaokeResponseError, "data is missing", id="no-data"
    ),
    pytest.param(
        200,
        _envelope(errorCode=0, data=5),
        "application/json",
        FxiaokeResponseError,
        "data is int",
        id="data-int",
    ),
    pytest.param(
        200,
        _envelope(errorCode=0, data=[5]),
        "application/json",
        FxiaokeResponseError,
        r"data\[0\]",
        id="item-int",
    ),
    pytest.param(
        200,
        _envelope(errorCode=0, data=[{"path": DEMO_PATHS[0], "url": "ftp://x"}]),
        "application/json",
        FxiaokeResponseError,
        "url",
        id="item-ftp-url",
    ),
    pytest.param(
        200,
        _envelope(errorCode=0, data={DEMO_PATHS[0]: None}),
        "application/json",
        FxiaokeResponseError,
        "not an http",
        id="map-null-url",
    ),
    pytest.param(
        200,
        _envelope(errorCode=0, data={}),
        "application/json",
        FxiaokeResponseError,
        "data is dict",
        id="empty-map",
    ),
    pytest.param(
        404, b"<html>Not Found</html>", "text/html", FxiaokeTransportError, "HTTP status 404", id="http-404"
    ),
    pytest.param(403, b"denied", "text/plain", FxiaokeTransportError, "HTTP status 403", id="http-403"),
    pytest.param(
        200,
        _envelope(errorCode=99999),
        "application/json",
        FxiaokeAPIError,
        "unknown error code",
        id="unknown-code",
    ),
]


class TestMalformedAnswers:
    @pytest.mark.parametrize(("status", "body", "content_type", "error", "fragment"), BAD_ANSWERS)
    def test_clear_error(
        self,
        emulator: FxiaokeEmulator,
        tmp_path: Path,
        status: int,
        body: bytes,
        content_type: str,
        error: type[FxiaokeError],
        fragment: str,
    ) -> None:
        client = make_client(emulator, tmp_path)
        client.check_credentials()
        emulator.inject(
            Fault(endpoint=PRESIGN, http_status=status, body=body, content_type=content_type, times=0)
        )
        with pytest.raises(error, match=fragment) as caught:
            list(iter_presigned_batches(client, DEMO_PATHS[:1]))
        assert PRESIGN in str(caught.value)

    @pytest.mark.parametrize(
        ("status", "retried"), [pytest.param(500, True, id="500"), pytest.param(429, True, id="429")]
    )
    def test_server_errors_retried(
        self, emulator: FxiaokeEmulator, tmp_path: Path, status: int, retried: bool
    ) -> None:
        client = make_client(emulator, tmp_path, max_retries=2)
        client.check_credentials()
        emulator.inject(
            Fault(endpoint=PRESIGN, http_status=status, body=b"busy", content_type="text/plain", times=0)
        )
        with pytest.raises(FxiaokeTransportError, match=f"HTTP status {status}"):
            list(iter_presigned_batches(client, DEMO_PATHS[:1]))
        assert len([r for r in emulator.requests if r.path == PRESIGN]) == 3

    def test_bad_token_response(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        client = make_client(emulator, tmp_path)
        emulator.inject(
            Fault(endpoint=TOKEN, http_status=200, body=_envelope(errorCode=0, accessToken=""), times=0)
        )
        with pytest.raises(FxiaokeResponseError, match="accessToken"):
            client.check_credentials()


def test_make_npath_shapes() -> None:
    assert make_npath("N").startswith("N_")
    assert make_npath("ALIOSS").startswith("ALIOSS_")
