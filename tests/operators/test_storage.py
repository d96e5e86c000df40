"""Tests of PresignedFilesToObjectStorageOperator and its streaming exporter, against the emulator."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from fxiaoke_provider.api.downloads import (
    MANIFEST_NAME,
    MAX_ATTEMPTS,
    DownloadError,
    Exporter,
    ExportItem,
    download,
    read_items,
    safe_file_name,
)
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.operators.storage import PresignedFilesToObjectStorageOperator
from fxiaoke_provider.testing import (
    DEMO_FILES,
    DEMO_PATHS,
    DOWNLOAD_PREFIX,
    LARGE_FILE_URL_PATH,
    PRESIGN_PATH,
    Fault,
    FxiaokeEmulator,
)

PDF, PNG, CSV, TXT, BARE, LARGE = DEMO_PATHS


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every back-off wait, of API calls and of downloads, return at once."""
    monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", lambda _seconds: None)
    monkeypatch.setattr("fxiaoke_provider.api.downloads.time.sleep", lambda _seconds: None)


@pytest.fixture
def presigned(fxiaoke_conn: FxiaokeEmulator) -> list[dict[str, str]]:
    operator = PresignFilesOperator(task_id="presign", paths=DEMO_PATHS)
    return operator.execute({})  # type: ignore[arg-type]


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "export"


def _export(results: Any, dest: Path | str, **kwargs: Any) -> dict[str, Any]:
    destination = dest.as_uri() if isinstance(dest, Path) else dest
    operator = PresignedFilesToObjectStorageOperator(
        task_id="export", results=results, destination=destination, **kwargs
    )
    return operator.execute({})  # type: ignore[arg-type]


def _manifest(dest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (dest / MANIFEST_NAME).read_text().splitlines()]


def _gets(emu: FxiaokeEmulator) -> list[int]:
    return [r.http_status for r in emu.requests if r.method == "GET" and r.path.startswith(DOWNLOAD_PREFIX)]


def _calls(emu: FxiaokeEmulator, path: str) -> int:
    """Count the accepted calls to an endpoint; a call rejected for an expired token is sent again."""
    return sum(r.path == path and r.error_code == 0 for r in emu.requests)


def _exported(dest: Path) -> dict[str, bytes]:
    return {entry["path"]: (dest / entry["file"]).read_bytes() for entry in _manifest(dest)}


class TestExport:
    def test_files_identical(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        assert _exported(dest) == DEMO_FILES

    def test_manifest_sizes(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        assert {e["path"]: e["size"] for e in _manifest(dest)} == {p: len(d) for p, d in DEMO_FILES.items()}

    def test_manifest_hashes(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        expected = {p: hashlib.sha256(d).hexdigest() for p, d in DEMO_FILES.items()}
        assert {e["path"]: e["sha256"] for e in _manifest(dest)} == expected

    def test_manifest_in_input_order(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(list(reversed(presigned)), dest)
        assert [e["path"] for e in _manifest(dest)] == list(reversed(DEMO_PATHS))

    def test_folder_holds_files_and_manifest(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        assert sorted(p.name for p in dest.iterdir()) == sorted([*DEMO_PATHS, MANIFEST_NAME])

    def test_summary(self, presigned: list[dict[str, str]], dest: Path) -> None:
        summary = _export(presigned, dest)
        expected = {"downloaded": 6, "skipped": 0, "bytes": sum(len(d) for d in DEMO_FILES.values())}
        assert {key: summary[key] for key in expected} == expected

    def test_repeated_path_downloaded_once(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned + presigned[:2], dest)
        assert len(_gets(fxiaoke_conn)) == len(DEMO_PATHS)

    def test_object_storage_path_destination(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, ObjectStoragePath(dest.as_uri()))  # type: ignore[arg-type]
        assert _exported(dest) == DEMO_FILES

    def test_empty_results(self, fxiaoke_conn: FxiaokeEmulator, dest: Path) -> None:
        assert _export([], dest)["downloaded"] == 0
        assert (dest / MANIFEST_NAME).read_text() == ""

    def test_no_url_in_logs(self, presigned: list[dict[str, str]], dest: Path, log_text: Any) -> None:
        _export(presigned, dest)
        assert "Signature=" not in log_text()


class TestRerun:
    def test_second_run_downloads_nothing(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned, dest)
        before = len(_gets(fxiaoke_conn))
        _export(presigned, dest)
        assert len(_gets(fxiaoke_conn)) == before

    def test_second_run_reports_skipped(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        summary = _export(presigned, dest)
        assert summary["downloaded"] == 0
        assert summary["skipped"] == len(DEMO_PATHS)

    def test_second_manifest_keeps_hashes(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        first = {e["path"]: e["sha256"] for e in _manifest(dest)}
        _export(presigned, dest)
        assert {e["path"]: e["sha256"] for e in _manifest(dest)} == first

    def test_wrong_size_downloaded_again(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned, dest)
        (dest / PDF).write_bytes(b"cut off")
        before = len(_gets(fxiaoke_conn))
        _export(presigned, dest)
        assert len(_gets(fxiaoke_conn)) - before == 1
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]

    def test_known_size_skips_without_manifest(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        dest.mkdir()
        (dest / PDF).write_bytes(DEMO_FILES[PDF])
        results = [{**result, "size": len(DEMO_FILES[result["path"]])} for result in presigned]
        _export(results, dest)
        assert len(_gets(fxiaoke_conn)) == len(DEMO_PATHS) - 1


class TestExpiredLinks:
    def test_rejected_link_presigned_again(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.clock.advance(2 * 3600)
        _export(presigned, dest)
        assert _exported(dest) == DEMO_FILES

    def test_large_file_presigned_through_its_endpoint(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        before = _calls(fxiaoke_conn, LARGE_FILE_URL_PATH)
        fxiaoke_conn.clock.advance(2 * 3600)
        _export(presigned, dest)
        assert _calls(fxiaoke_conn, LARGE_FILE_URL_PATH) == before + 1

    def test_each_rejection_costs_one_get(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.clock.advance(2 * 3600)
        _export(presigned, dest)
        assert sorted(_gets(fxiaoke_conn)) == [200] * len(DEMO_PATHS) + [403] * len(DEMO_PATHS)

    def test_known_expiry_presigned_before_use(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.clock.advance(2 * 3600)
        past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        _export([{**result, "expires_at": past} for result in presigned], dest)
        assert 403 not in _gets(fxiaoke_conn)
        assert _calls(fxiaoke_conn, PRESIGN_PATH) == 2

    def test_rejected_again_fails(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=DOWNLOAD_PREFIX, http_status=403, body=b"denied", times=0))
        with pytest.raises(AirflowException, match="403"):
            _export(presigned[:1], dest)
        assert _gets(fxiaoke_conn) == [403, 403]


class TestFailures:
    def test_missing_file_named(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.remove_file(CSV)
        with pytest.raises(AirflowException, match=f"5 path\\(s\\) succeeded and 1 failed.*{CSV}.*404"):
            _export(presigned, dest)

    def test_others_written(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.remove_file(CSV)
        with pytest.raises(AirflowException):
            _export(presigned, dest)
        assert _exported(dest) == {p: d for p, d in DEMO_FILES.items() if p != CSV}

    def test_failure_not_in_manifest(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.remove_file(CSV)
        with pytest.raises(AirflowException):
            _export(presigned, dest)
        assert CSV not in {e["path"] for e in _manifest(dest)}

    def test_failure_message_has_no_url(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator, log_text: Any
    ) -> None:
        fxiaoke_conn.remove_file(CSV)
        with pytest.raises(AirflowException) as caught:
            _export(presigned, dest)
        assert "Signature=" not in str(caught.value)
        assert "Signature=" not in log_text()

    @pytest.mark.parametrize(
        "fault",
        [
            pytest.param(
                Fault(endpoint=DOWNLOAD_PREFIX, http_status=502, body=b"bad gateway"), id="http-502"
            ),
            pytest.param(Fault(endpoint=DOWNLOAD_PREFIX, drop=True), id="dropped"),
        ],
    )
    def test_transient_error_retried(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator, fault: Fault
    ) -> None:
        fxiaoke_conn.inject(fault)
        _export(presigned[:1], dest)
        assert len(_gets(fxiaoke_conn)) == 2
        assert _exported(dest) == {PDF: DEMO_FILES[PDF]}

    def test_lasting_error_gives_up(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=DOWNLOAD_PREFIX, http_status=503, body=b"busy", times=0))
        with pytest.raises(AirflowException, match="503"):
            _export(presigned[:1], dest)
        assert len(_gets(fxiaoke_conn)) == MAX_ATTEMPTS

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            pytest.param({"results": "N_1"}, "expected the list", id="string-results"),
            pytest.param({"results": [{"path": "N_1"}]}, "url", id="no-url"),
            pytest.param({"results": [{"url": "https://x/y"}]}, "path", id="no-path"),
            pytest.param({"results": [{"path": "N_1", "url": "ftp://x"}]}, "not an http", id="ftp-url"),
            pytest.param(
                {"results": [{"path": "N_1", "url": "https://x/y", "expires_at": "soon"}]}, "ISO", id="expiry"
            ),
            pytest.param({"destination": "/tmp/relative-or-bare"}, "object storage URL", id="no-scheme"),
            pytest.param({"max_workers": 0}, "max_workers", id="no-workers"),
            pytest.param({"chunk_size": 10}, "chunk_size", id="tiny-chunks"),
            pytest.param({"expire_hours": 0}, "expire_hours", id="expire-hours"),
        ],
    )
    def test_bad_input(
        self, fxiaoke_conn: FxiaokeEmulator, dest: Path, kwargs: dict[str, Any], fragment: str
    ) -> None:
        arguments: dict[str, Any] = {"results": [], "dest": dest, **kwargs}
        if "destination" in arguments:
            arguments["dest"] = arguments.pop("destination")
        with pytest.raises(AirflowFailException, match=fragment):
            _export(arguments.pop("results"), arguments.pop("dest"), **arguments)
        assert fxiaoke_conn.requests == []


class FakeResponse:
    """A streamed response whose body is shorter than its Content-Length."""

    status_code = 200
    headers = {"Content-Length": "10"}

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        yield b"abc"


class FakeSession:
    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        return FakeResponse()


class TestDownload:
    def test_short_body_removed(self, tmp_path: Path) -> None:
        target = tmp_path / "file"
        with pytest.raises(DownloadError, match="received 3 bytes but Content-Length was 10"):
            download(FakeSession(), "N_1", "https://x/y", target)  # type: ignore[arg-type]
        assert not target.exists()

    def test_short_body_retryable(self, tmp_path: Path) -> None:
        with pytest.raises(DownloadError) as caught:
            download(FakeSession(), "N_1", "https://x/y", tmp_path / "file")  # type: ignore[arg-type]
        assert caught.value.retryable

    def test_peak_memory_near_chunk_size(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        chunk = 256 * 1024
        emulator.add_file("N_large", bytes(range(256)) * (32 * 1024 * 1024 // 256))
        exporter = Exporter(ObjectStoragePath(tmp_path.as_uri()), dict, chunk_size=chunk, max_workers=1)
        exporter.run([ExportItem("N_warm_up", emulator.download_url("N_large"))])
        tracemalloc.start()
        try:
            report = exporter.run([ExportItem("N_large", emulator.download_url("N_large"))])
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.downloaded == 1
        assert peak < 4 * chunk, f"peak {peak} bytes while streaming a 32 MiB file in {chunk}-byte chunks"


class TestNames:
    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("../../etc/passwd", id="parent"),
            pytest.param("/abs/path", id="absolute"),
            pytest.param("..", id="dots"),
            pytest.param("a\\b", id="backslash"),
            pytest.param("s3://bucket/key", id="url"),
            pytest.param("x" * 300, id="long"),
            pytest.param("", id="empty"),
        ],
    )
    def test_stays_in_folder(self, path: str) -> None:
        name = safe_file_name(path)
        assert not name.startswith(".")
        assert "/" not in name
        assert "\\" not in name
        assert 0 < len(name) <= 200

    def test_npath_kept(self) -> None:
        assert safe_file_name(PDF) == PDF

    def test_manifest_name_reserved(self) -> None:
        assert safe_file_name(MANIFEST_NAME) != MANIFEST_NAME

    def test_no_collision(self) -> None:
        assert safe_file_name("a/b") != safe_file_name("a_b")


class TestReadItems:
    def test_repeats_dropped(self) -> None:
        item = {"path": "N_1", "url": "https://x/y"}
        assert [i.path for i in read_items([item, item])] == ["N_1"]

    def test_naive_expiry_is_utc(self) -> None:
        (item,) = read_items([{"path": "N_1", "url": "https://x/y", "expires_at": "2026-12-04T10:00:00"}])
        assert item.expires_at == datetime(2026, 12, 4, 10, tzinfo=UTC)

    def test_repr_hides_url(self) -> None:
        (item,) = read_items([{"path": "N_1", "url": "https://x/y?Signature=abc"}])
        assert "Signature" not in repr(item)


@pytest.fixture
def many(emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FxiaokeEmulator:
    """An emulator with 10,050 seeded records, every twentieth with a file, and a connection without rate pauses."""
    emulator.settings.rate_limit_calls = 100_000
    emulator.seed_records("Contract__c", 10_050, file_field="contract_file__c", every=20)
    from tests.conftest import connection_dict

    conn = connection_dict(emulator, tmp_path / "cache", rate_limit_calls=100_000)
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    return emulator


class TestAcceptance:
    def test_list_presign_export_rerun(self, many: FxiaokeEmulator, dest: Path) -> None:
        from fxiaoke_provider.operators.crm import FxiaokeListFilesOperator

        listing = FxiaokeListFilesOperator(
            task_id="list_files", object_api_name="Contract__c", file_fields=["contract_file__c"]
        )
        files = listing.execute({})  # type: ignore[arg-type]
        results = PresignFilesOperator(task_id="presign", paths=files).execute({})  # type: ignore[arg-type]
        _export(results, dest)
        expected = {path: data for path, data in many.files.items() if path not in DEMO_FILES}
        gets = len(_gets(many))
        summary = _export(results, dest)
        assert len(files) == 503
        assert _exported(dest) == expected
        assert len(_gets(many)) - gets == 0
        assert summary["skipped"] == 503
