"""Tests of the hook's CRM and file helpers: routed presigning, record paging and preview links."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from fxiaoke_provider.exceptions import FxiaokeResponseError
from fxiaoke_provider.hooks.fxiaoke import FxiaokeHook
from fxiaoke_provider.testing import (
    DEMO_FILES,
    DEMO_PATHS,
    LARGE_FILE_URL_PATH,
    PRESIGN_PATH,
    Fault,
    FxiaokeEmulator,
)

PDF, PNG, CSV, TXT, BARE, LARGE = DEMO_PATHS
PREVIEW = "/cgi/crm/v2/generatorPreviewUrl"


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", lambda _seconds: None)


@pytest.fixture
def hook(fxiaoke_conn: FxiaokeEmulator) -> FxiaokeHook:
    return FxiaokeHook()


def _bodies(emu: FxiaokeEmulator, path: str) -> list[dict[str, Any]]:
    return [r.body["data"] for r in emu.requests if r.path == path and r.error_code == 0]  # type: ignore[index]


class TestPresignAny:
    def test_urls_in_request_order(self, hook: FxiaokeHook) -> None:
        batch = hook.presign_any([LARGE, PDF, PNG], expire_hours=2)
        assert list(batch.urls) == [LARGE, PDF, PNG]

    def test_urls_serve_files(self, hook: FxiaokeHook) -> None:
        batch = hook.presign_any([LARGE, PDF], expire_hours=2)
        downloaded = {path: requests.get(url, timeout=10).content for path, url in batch.urls.items()}
        assert downloaded == {LARGE: DEMO_FILES[LARGE], PDF: DEMO_FILES[PDF]}

    def test_large_file_routed(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        hook.presign_any([PDF, LARGE, PNG], expire_hours=2)
        assert _bodies(fxiaoke_conn, PRESIGN_PATH) == [{"paths": [PDF, PNG], "expire": 2}]
        assert _bodies(fxiaoke_conn, LARGE_FILE_URL_PATH) == [{"path": LARGE}]

    def test_only_large_files(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        hook.presign_any([LARGE], expire_hours=1)
        assert _bodies(fxiaoke_conn, PRESIGN_PATH) == []

    def test_expiry_of_large_file_link(self, hook: FxiaokeHook) -> None:
        batch = hook.presign_any([PDF, LARGE], expire_hours=5)
        assert batch.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)

    def test_expiry_without_large_file(self, hook: FxiaokeHook) -> None:
        batch = hook.presign_any([PDF], expire_hours=5)
        assert batch.expires_at == batch.requested_at + timedelta(hours=5)

    def test_repeats_once(self, hook: FxiaokeHook) -> None:
        assert hook.presign_any([PDF, PDF, LARGE, LARGE]).paths == [PDF, LARGE]

    @pytest.mark.parametrize(
        ("paths", "hours", "error"),
        [
            pytest.param([PDF], 0, ValueError, id="hours-zero"),
            pytest.param([PDF], "2", TypeError, id="hours-string"),
            pytest.param([PDF, ""], 1, ValueError, id="blank-path"),
            pytest.param(PDF, 1, TypeError, id="single-string"),
        ],
    )
    def test_checks_before_calls(
        self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator, paths: Any, hours: Any, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            hook.presign_any(paths, expire_hours=hours)
        assert fxiaoke_conn.requests == []


class TestIterRecords:
    def test_all_records(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.seed_crm_objects()
        ids = [record["_id"] for record in hook.iter_records("Contract__c", page_size=1)]
        assert ids == [record["_id"] for record in fxiaoke_conn.records("Contract__c")]


class TestPreview:
    def test_link_serves_file(self, hook: FxiaokeHook) -> None:
        url = hook.get_preview_url(PNG, "logo.png", expire_seconds=600)
        assert requests.get(url, timeout=10).content == DEMO_FILES[PNG]

    def test_request_fields(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        hook.get_preview_url(CSV, "Accounts.CSV", expire_seconds=60, global_acceleration=True)
        assert _bodies(fxiaoke_conn, PREVIEW) == [
            {
                "fileInfo": {"path": CSV, "filename": "Accounts.CSV", "extension": "csv"},
                "expireTime": 60,
                "globalAcceleration": True,
            }
        ]

    def test_explicit_extension(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        hook.get_preview_url(TXT, "note", extension=".TXT")
        assert _bodies(fxiaoke_conn, PREVIEW)[0]["fileInfo"]["extension"] == "txt"

    @pytest.mark.parametrize(
        ("args", "kwargs", "fragment"),
        [
            pytest.param((LARGE, "a.png"), {}, "must start with", id="alioss"),
            pytest.param(("N_" + "0" * 47, "a.png"), {}, "at most 48", id="long-path"),
            pytest.param((PNG, "x" * 121), {}, "120", id="long-name"),
            pytest.param((PNG, " "), {}, "non-blank", id="blank-name"),
            pytest.param((PDF, "a.pdf"), {}, "cannot be previewed", id="pdf"),
            pytest.param((PNG, "logo"), {}, "cannot be previewed", id="no-extension"),
            pytest.param((PNG, "a.png"), {"expire_seconds": 59}, "expire_seconds", id="short"),
            pytest.param((PNG, "a.png"), {"expire_seconds": 604_801}, "expire_seconds", id="long"),
            pytest.param((PNG, "a.png"), {"global_acceleration": "no"}, "global_acceleration", id="flag"),
        ],
    )
    def test_checks_before_calls(
        self,
        hook: FxiaokeHook,
        fxiaoke_conn: FxiaokeEmulator,
        args: tuple[str, str],
        kwargs: dict[str, Any],
        fragment: str,
    ) -> None:
        with pytest.raises(ValueError, match=fragment):
            hook.get_preview_url(*args, **kwargs)
        assert fxiaoke_conn.requests == []

    def test_response_without_link(self, hook: FxiaokeHook, fxiaoke_conn: FxiaokeEmulator) -> None:
        body = json.dumps({"errorCode": 0, "errorMessage": "OK", "traceId": "E-O.x", "data": {}}).encode()
        fxiaoke_conn.inject(Fault(endpoint=PREVIEW, body=body, content_type="application/json"))
        with pytest.raises(FxiaokeResponseError, match="data.url"):
            hook.get_preview_url(PNG, "logo.png")
