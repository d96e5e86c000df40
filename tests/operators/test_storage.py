"""Tests of PresignedFilesToObjectStorageOperator and its streaming exporter, against the emulator."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import random
import re
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from fxiaoke_provider.api import downloads as downloads_module
from fxiaoke_provider.api.downloads import (
    MANIFEST_NAME,
    MANIFEST_TEMP_NAME,
    MAX_ATTEMPTS,
    MAX_ATTEMPTS_LIMIT,
    DownloadError,
    Exporter,
    ExportItem,
    download,
    manifest_partial_name,
    partial_file_name,
    read_items,
    safe_file_name,
)
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.operators.storage import PresignedFilesToObjectStorageOperator, _HiddenLinks
from fxiaoke_provider.testing import (
    DEMO_FILES,
    DEMO_PATHS,
    DOWNLOAD_PREFIX,
    LARGE_FILE_URL_PATH,
    PRESIGN_PATH,
    Fault,
    FxiaokeEmulator,
    make_npath,
)

PDF, PNG, CSV, TXT, BARE, LARGE = DEMO_PATHS
#: An expiry an hour before the test runs, so every link with it is presigned again before use.
_PAST = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class TestEntryOfAnotherName:
    def test_hash_not_copied(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned[:1], dest)
        (entry,) = _manifest(dest)
        (dest / MANIFEST_NAME).write_text(json.dumps({**entry, "file": "another-name"}) + "\n")
        _export([{**presigned[0], "size": len(DEMO_FILES[PDF])}], dest)
        assert [(e["file"], e["status"], e["sha256"]) for e in _manifest(dest)] == [(PDF, "skipped", None)]


class TestPartialDownloads:
    def test_cut_off_download_keeps_good_copy(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned[:1], dest)
        (dest / MANIFEST_NAME).unlink()
        fxiaoke_conn.inject(Fault(endpoint=DOWNLOAD_PREFIX, truncate=True, times=0))
        # A size that the file in the folder does not have makes the export download it again.
        with pytest.raises(AirflowException, match="body cut off"):
            _export([{**presigned[0], "size": len(DEMO_FILES[PDF]) + 1}], dest)
        assert len(_gets(fxiaoke_conn)) == 1 + MAX_ATTEMPTS
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]

    def test_cut_off_leaves_no_partial(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=DOWNLOAD_PREFIX, truncate=True, times=0))
        with pytest.raises(AirflowException, match="body cut off"):
            _export(presigned[:1], dest)
        assert sorted(p.name for p in dest.iterdir()) == [MANIFEST_NAME]

    def test_download_written_under_partial_name(
        self, presigned: list[dict[str, str]], dest: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        opened: list[str] = []
        real_open = ObjectStoragePath.open

        def record_open(self: ObjectStoragePath, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if mode == "wb":
                opened.append(self.name)
            return real_open(self, mode, *args, **kwargs)

        monkeypatch.setattr(ObjectStoragePath, "open", record_open)
        _export(presigned[:1], dest)
        assert len(opened) == 1
        assert re.fullmatch(rf"\.{re.escape(PDF)}\.[0-9a-f]{{16}}\.part", opened[0])
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]

    def test_interrupted_run_resumes(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        # A first run stored every file but one and was stopped before it wrote its manifest.
        fxiaoke_conn.remove_file(TXT)
        with pytest.raises(AirflowException):
            _export(presigned, dest)
        (dest / MANIFEST_NAME).unlink()
        fxiaoke_conn.add_file(TXT, DEMO_FILES[TXT])
        before = len(_gets(fxiaoke_conn))
        summary = _export(presigned, dest)
        assert len(_gets(fxiaoke_conn)) - before == 1
        assert (summary["downloaded"], summary["skipped"]) == (1, len(DEMO_PATHS) - 1)
        assert _exported(dest) == DEMO_FILES

    def test_resumed_entry_has_size_and_no_hash(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned[:1], dest)
        (dest / MANIFEST_NAME).unlink()
        _export(presigned[:1], dest)
        assert _manifest(dest) == [
            {"path": PDF, "file": PDF, "size": len(DEMO_FILES[PDF]), "sha256": None, "status": "skipped"}
        ]

    def test_known_size_still_checked(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        dest.mkdir()
        (dest / PDF).write_bytes(b"an older version")
        _export([{**presigned[0], "size": len(DEMO_FILES[PDF])}], dest)
        assert len(_gets(fxiaoke_conn)) == 1
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]


class TestConcurrentExports:
    def test_entries_written_meanwhile_kept(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        monkeypatch: pytest.MonkeyPatch,
        log_text: Any,
    ) -> None:
        # A second export into the same folder runs to its end while the first one is downloading.
        real_fetch = Exporter._fetch_or_fail
        calls: list[str] = []

        def fetch_while_another_export_runs(self: Exporter, item: ExportItem) -> Any:
            calls.append(item.path)
            if len(calls) == 1:
                monkeypatch.setattr(Exporter, "_fetch_or_fail", real_fetch)
                _export(presigned[3:], dest)
            return real_fetch(self, item)

        monkeypatch.setattr(Exporter, "_fetch_or_fail", fetch_while_another_export_runs)
        _export(presigned[:3], dest, max_workers=1)
        statuses = {e["path"]: e["status"] for e in _manifest(dest)}
        assert statuses == dict.fromkeys(DEMO_PATHS[3:], "kept") | dict.fromkeys(DEMO_PATHS[:3], "downloaded")
        assert _exported(dest) == DEMO_FILES
        assert "gained entries for 3 path(s) while this export ran" in log_text()

    def test_removed_manifest_keeps_start_entries(
        self, presigned: list[dict[str, str]], dest: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _export(presigned[3:], dest)
        real_fetch = Exporter._fetch_or_fail

        def remove_manifest_then_fetch(self: Exporter, item: ExportItem) -> Any:
            (dest / MANIFEST_NAME).unlink(missing_ok=True)
            return real_fetch(self, item)

        monkeypatch.setattr(Exporter, "_fetch_or_fail", remove_manifest_then_fetch)
        _export(presigned[:3], dest)
        assert sorted(e["path"] for e in _manifest(dest)) == sorted(DEMO_PATHS)

    def test_same_paths_at_once_in_threads(
        self, presigned: list[dict[str, str]], dest: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Two exports of the same two paths run in threads. Every download waits until all four have
        # written their temporary file. Each export waits after opening its new manifest until the other
        # has opened its own. So both would use one temporary name at once if they shared it.
        # A barrier that is not reached fails the test after its timeout instead of hanging it.
        downloads = threading.Barrier(4, timeout=30)
        manifests = threading.Barrier(2, timeout=30)
        real_download = downloads_module.download
        writers: set[int] = set()
        writers_lock = threading.Lock()

        def download_then_wait(*args: Any, **kwargs: Any) -> tuple[int, str]:
            result = real_download(*args, **kwargs)
            downloads.wait()
            return result

        def dumps_first_waits(entry: Any) -> str:
            with writers_lock:
                first = threading.get_ident() not in writers
                writers.add(threading.get_ident())
            if first:
                manifests.wait()
            return json.dumps(entry)

        monkeypatch.setattr(downloads_module, "download", download_then_wait)
        monkeypatch.setattr(
            downloads_module, "json", SimpleNamespace(loads=json.loads, dumps=dumps_first_waits)
        )
        outcomes: list[Any] = [None, None]

        def run(index: int) -> None:
            try:
                outcomes[index] = _export(presigned[:2], dest, max_workers=2)
            except BaseException as err:
                outcomes[index] = err

        threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [outcome["downloaded"] for outcome in outcomes] == [2, 2], outcomes
        assert {e["path"]: e["status"] for e in _manifest(dest)} == dict.fromkeys(
            DEMO_PATHS[:2], "downloaded"
        )
        assert _exported(dest) == {path: DEMO_FILES[path] for path in DEMO_PATHS[:2]}
        assert sorted(p.name for p in dest.iterdir()) == sorted([MANIFEST_NAME, *DEMO_PATHS[:2]])

    def test_failed_path_keeps_entry_written_meanwhile(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        monkeypatch: pytest.MonkeyPatch,
        fxiaoke_conn: FxiaokeEmulator,
    ) -> None:
        # A second export stores the file while the first one waits. Then the first one's download fails.
        real_fetch = Exporter._fetch_or_fail

        def fetch_after_another_export(self: Exporter, item: ExportItem) -> Any:
            monkeypatch.setattr(Exporter, "_fetch_or_fail", real_fetch)
            _export(presigned[:1], dest)
            fxiaoke_conn.remove_file(PDF)
            return real_fetch(self, item)

        monkeypatch.setattr(Exporter, "_fetch_or_fail", fetch_after_another_export)
        with pytest.raises(AirflowException, match="404"):
            _export(presigned[:1], dest)
        (entry,) = _manifest(dest)
        assert (entry["path"], entry["status"], entry["size"]) == (PDF, "kept", len(DEMO_FILES[PDF]))
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]


class TestManifestKeepsEarlierRuns:
    def test_earlier_entries_kept(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned[:3], dest)
        _export(presigned[3:], dest)
        statuses = {e["path"]: e["status"] for e in _manifest(dest)}
        assert statuses == {
            **dict.fromkeys(DEMO_PATHS[:3], "kept"),
            **dict.fromkeys(DEMO_PATHS[3:], "downloaded"),
        }
        assert _exported(dest) == DEMO_FILES

    def test_kept_entry_keeps_size_and_hash(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        first = {e["path"]: (e["file"], e["size"], e["sha256"]) for e in _manifest(dest)}
        _export(presigned[:1], dest)
        assert {e["path"]: (e["file"], e["size"], e["sha256"]) for e in _manifest(dest)} == first

    def test_entry_of_this_run_wins(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        _export(presigned[:1], dest)
        entries = _manifest(dest)
        assert sorted(e["path"] for e in entries) == sorted(DEMO_PATHS)
        assert {e["path"]: e["status"] for e in entries}[PDF] == "skipped"

    def test_earlier_entries_first(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        _export([presigned[2], presigned[0]], dest)
        order = [e["path"] for e in _manifest(dest)]
        assert order == [p for p in DEMO_PATHS if p not in (PDF, CSV)] + [CSV, PDF]

    def test_crash_while_writing_keeps_old_manifest(
        self, presigned: list[dict[str, str]], dest: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _export(presigned, dest)
        before = (dest / MANIFEST_NAME).read_bytes()
        written: list[str] = []

        def dumps_then_fail(entry: Any) -> str:
            written.append(entry["path"])
            if len(written) == 3:
                raise OSError("no space left on device")
            return json.dumps(entry)

        # Only the export module's view of json changes; Airflow's own use of json.dumps is untouched.
        monkeypatch.setattr(
            "fxiaoke_provider.api.downloads.json", SimpleNamespace(loads=json.loads, dumps=dumps_then_fail)
        )
        with pytest.raises(OSError, match="no space left"):
            _export(presigned[:1], dest)
        assert (dest / MANIFEST_NAME).read_bytes() == before

    def test_no_partial_manifest_left(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        _export(presigned[:2], dest)
        assert sorted(p.name for p in dest.iterdir()) == sorted(
            [MANIFEST_NAME, *(e["file"] for e in _manifest(dest))]
        )

    def test_empty_run_keeps_manifest(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned, dest)
        _export([], dest)
        assert {e["path"]: e["status"] for e in _manifest(dest)} == dict.fromkeys(DEMO_PATHS, "kept")
        assert _exported(dest) == DEMO_FILES

    def test_file_of_an_earlier_run_still_skipped(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned, dest)
        _export(presigned[:1], dest)
        before = len(_gets(fxiaoke_conn))
        summary = _export(presigned, dest)
        assert len(_gets(fxiaoke_conn)) == before
        assert summary["skipped"] == len(DEMO_PATHS)

    def test_failed_path_dropped_from_manifest(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned, dest)
        (dest / CSV).write_bytes(b"changed")
        fxiaoke_conn.remove_file(CSV)
        with pytest.raises(AirflowException, match="404"):
            _export(presigned, dest)
        assert sorted(e["path"] for e in _manifest(dest)) == sorted(p for p in DEMO_PATHS if p != CSV)

    def test_unreadable_manifest_stops_before_downloads(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        (dest / MANIFEST_NAME).mkdir(parents=True)
        with pytest.raises(AirflowFailException, match=f"{MANIFEST_NAME}.*move it away"):
            _export(presigned, dest)
        assert _gets(fxiaoke_conn) == []

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            pytest.param(b"\xff\xfe not text", "not UTF-8 text", id="not-utf8"),
            pytest.param(b'{"path": "N_1.pdf", "file"', "not JSON", id="cut-off"),
            pytest.param(b'["N_1.pdf"]', "not a JSON object with a path string", id="list"),
            pytest.param(b'{"file": "N_1.pdf"}', "not a JSON object with a path string", id="no-path"),
        ],
    )
    def test_damaged_line_stops_before_downloads(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        fxiaoke_conn: FxiaokeEmulator,
        line: bytes,
        reason: str,
    ) -> None:
        _export(presigned[:1], dest)
        manifest = dest / MANIFEST_NAME
        damaged = manifest.read_bytes() + line + b"\n"
        manifest.write_bytes(damaged)
        before = len(_gets(fxiaoke_conn))
        with pytest.raises(AirflowFailException) as caught:
            _export(presigned[1:], dest)
        message = str(caught.value)
        assert f"1 damaged line(s), the first is line 2 ({reason})" in message
        assert str(manifest) in message
        assert "move the manifest away" in message
        assert len(_gets(fxiaoke_conn)) == before
        assert manifest.read_bytes() == damaged

    def test_blank_lines_accepted(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned[:1], dest)
        manifest = dest / MANIFEST_NAME
        manifest.write_bytes(b"\n  \n" + manifest.read_bytes())
        _export(presigned[1:], dest)
        assert {e["path"]: e["status"] for e in _manifest(dest)}[PDF] == "kept"

    def test_new_manifest_after_moving_damaged_one_away(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export(presigned, dest)
        manifest = dest / MANIFEST_NAME
        manifest.write_bytes(b"not json\n" + manifest.read_bytes())
        with pytest.raises(AirflowFailException, match="damaged"):
            _export(presigned, dest)
        manifest.rename(dest.parent / "damaged-manifest.jsonl")
        before = len(_gets(fxiaoke_conn))
        assert _export(presigned, dest)["skipped"] == len(DEMO_PATHS)
        assert len(_gets(fxiaoke_conn)) == before


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


class TestRepresignBatches:
    def test_failed_batch_fails_only_its_files(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        fxiaoke_conn: FxiaokeEmulator,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr("fxiaoke_provider.api.downloads.REPRESIGN_BATCH", 2)
        fxiaoke_conn.clock.advance(2 * 3600)
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN_PATH, error_code=15003))
        with pytest.raises(AirflowException, match="4 path\\(s\\) succeeded and 2 failed") as caught:
            _export([{**result, "expires_at": _PAST} for result in presigned], dest)
        assert PDF in str(caught.value)
        assert PNG in str(caught.value)
        assert _exported(dest) == {p: d for p, d in DEMO_FILES.items() if p not in (PDF, PNG)}
        assert sorted(_gets(fxiaoke_conn)) == [200] * 4

    def test_earlier_batch_kept_when_a_later_one_fails(
        self, dest: Path, fxiaoke_conn: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The first batch holds only large files, which go to their own endpoint, so the fault on
        # getPresignedUrl hits the second batch.
        second_large = make_npath("ALIOSS", rng=random.Random(7))
        fxiaoke_conn.add_file(second_large, b"second large file")
        order = [LARGE, second_large, PDF, PNG, CSV, TXT]
        results = [{"path": p, "url": fxiaoke_conn.download_url(p), "expires_at": _PAST} for p in order]
        monkeypatch.setattr("fxiaoke_provider.api.downloads.REPRESIGN_BATCH", 2)
        fxiaoke_conn.clock.advance(2 * 3600)
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN_PATH, error_code=15003))
        with pytest.raises(AirflowException, match="4 path\\(s\\) succeeded and 2 failed") as caught:
            _export(results, dest)
        assert PDF in str(caught.value)
        assert PNG in str(caught.value)
        assert set(_exported(dest)) == {LARGE, second_large, CSV, TXT}
        assert 403 not in _gets(fxiaoke_conn)

    def test_same_reason_both_ways(self, emulator: FxiaokeEmulator, tmp_path: Path, log_text: Any) -> None:
        def reject_every_call(paths: list[str]) -> dict[str, str]:
            raise RuntimeError("gateway rejected https://files.invalid/x?Signature=abc")

        folder = ObjectStoragePath(tmp_path.as_uri())
        url = emulator.download_url(PDF)
        past = datetime.now(UTC) - timedelta(hours=1)
        before_use = Exporter(folder, reject_every_call).run([ExportItem(PDF, url, past)])
        emulator.clock.advance(2 * 3600)
        after_403 = Exporter(folder, reject_every_call).run([ExportItem(PDF, url)])
        expected = "presigning again failed (RuntimeError: gateway rejected <URL>)"
        assert before_use.failures == after_403.failures == [(PDF, expected)]
        assert "Signature=" not in log_text()
        assert "files.invalid" not in log_text()

    def test_represigned_counts_links_received(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        fxiaoke_conn: FxiaokeEmulator,
        monkeypatch: pytest.MonkeyPatch,
        log_text: Any,
    ) -> None:
        monkeypatch.setattr("fxiaoke_provider.api.downloads.REPRESIGN_BATCH", 2)
        fxiaoke_conn.clock.advance(2 * 3600)
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN_PATH, error_code=15003))
        with pytest.raises(AirflowException):
            _export([{**result, "expires_at": _PAST} for result in presigned], dest)
        assert "4 link(s) presigned again" in log_text()


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
            pytest.param({"max_attempts": 0}, "max_attempts=0 ", id="no-attempts"),
            pytest.param({"max_attempts": -1}, "max_attempts=-1 ", id="negative-attempts"),
            pytest.param({"max_attempts": 2.5}, "max_attempts=2.5 ", id="float-attempts"),
            pytest.param({"max_attempts": "3"}, "max_attempts='3' ", id="string-attempts"),
            pytest.param({"max_attempts": None}, "max_attempts=None ", id="none-attempts"),
            pytest.param({"max_attempts": True}, "max_attempts=True ", id="bool-attempts"),
            pytest.param(
                {"max_attempts": MAX_ATTEMPTS_LIMIT + 1}, f"max_attempts={MAX_ATTEMPTS_LIMIT + 1} ", id="many"
            ),
            pytest.param({"max_workers": "4"}, "max_workers='4' ", id="string-workers"),
            pytest.param({"max_workers": 2.0}, "max_workers=2.0 ", id="float-workers"),
            pytest.param({"chunk_size": None}, "chunk_size=None ", id="none-chunks"),
            pytest.param(
                {"results": [{"path": "N_\ud800.pdf", "url": "https://x/y"}]},
                r"results\[0\]\.path .*lone surrogate",
                id="surrogate",
            ),
            pytest.param(
                {"results": [{"path": "  ", "url": "https://x/y"}]},
                r"results\[0\]\.path .*, which is blank",
                id="blank",
            ),
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

    @pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS_LIMIT])
    def test_max_attempts_bounds_accepted(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator, attempts: int
    ) -> None:
        fxiaoke_conn.inject(Fault(endpoint=DOWNLOAD_PREFIX, http_status=503, body=b"busy", times=0))
        with pytest.raises(AirflowException, match="503"):
            _export(presigned[:1], dest, max_attempts=attempts)
        assert len(_gets(fxiaoke_conn)) == attempts


_S3_USABLE = all(importlib.util.find_spec(name) is not None for name in ("s3fs", "airflow.providers.amazon"))


class TestSetupErrors:
    @pytest.mark.parametrize(
        ("destination", "fragment"),
        [
            pytest.param(
                "s3://bucket/fxiaoke",
                "apache-airflow-providers-amazon",
                id="s3",
                marks=pytest.mark.skipif(_S3_USABLE, reason="s3fs and the Amazon provider are installed"),
            ),
            pytest.param("memory://bucket/fxiaoke", "No filesystem registered", id="not-registered"),
            pytest.param("nosuch://bucket/fxiaoke", "Unsupported filesystem", id="unknown"),
        ],
    )
    def test_storage_package_missing(
        self, presigned: list[dict[str, str]], fxiaoke_conn: FxiaokeEmulator, destination: str, fragment: str
    ) -> None:
        with pytest.raises(AirflowFailException) as caught:
            _export(presigned, destination)
        message = str(caught.value)
        assert f"destination {destination!r}" in message
        assert fragment in message
        assert "Install the Airflow provider" in message
        assert _gets(fxiaoke_conn) == []

    def test_connection_without_permanent_code(
        self,
        presigned: list[dict[str, str]],
        dest: Path,
        fxiaoke_conn: FxiaokeEmulator,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        from tests.conftest import connection_dict

        conn = connection_dict(fxiaoke_conn, tmp_path / "cache")
        del conn["extra"]["permanent_code"]
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        with pytest.raises(AirflowFailException, match="fxiaoke_default.*permanent_code"):
            _export(presigned, dest)
        assert _gets(fxiaoke_conn) == []
        assert not dest.exists()

    def test_unknown_connection(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        with pytest.raises(AirflowFailException, match="no_such_connection"):
            _export(presigned, dest, fxiaoke_conn_id="no_such_connection")
        assert _gets(fxiaoke_conn) == []
        assert not dest.exists()


class TestDestination:
    @pytest.mark.parametrize(
        ("destination", "fragment"),
        [
            pytest.param("file://relative/dir", "names the host 'relative'", id="host"),
            pytest.param("file://data/fxiaoke", "'file:///data/fxiaoke'", id="right-form"),
            pytest.param("FILE://server/share", "names the host 'server'", id="upper-case-scheme"),
            pytest.param("file://", "has no folder path", id="no-path"),
            pytest.param("file://{tmp}/fx\niaoke", "control character '\\\\n'", id="line-break"),
            pytest.param("file://{tmp}/fx\tiaoke", "control character '\\\\t'", id="tab"),
            pytest.param("s3://bucket/a\x00b", "control character", id="nul"),
            pytest.param("file:///{tmp}/x", "give 'file://{tmp}/x'", id="four-slashes"),
            pytest.param("file://localhost/{tmp}/x", "give 'file://{tmp}/x'", id="localhost-two-slashes"),
            pytest.param("file://///{tmp}/x", "'file:///abs/path'", id="five-slashes"),
        ],
    )
    def test_rejected_before_any_work(
        self,
        fxiaoke_conn: FxiaokeEmulator,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        destination: str,
        fragment: str,
    ) -> None:
        # Without the check these would write below the working directory or into tmp_path.
        monkeypatch.chdir(tmp_path)
        destination = destination.replace("{tmp}", str(tmp_path))
        with pytest.raises(AirflowFailException) as caught:
            _export([], destination)
        assert re.search(fragment.replace("{tmp}", re.escape(str(tmp_path))), str(caught.value))
        assert repr(destination) in str(caught.value)
        assert list(tmp_path.iterdir()) == []
        assert fxiaoke_conn.requests == []

    def test_existing_file_rejected_before_any_work(
        self, presigned: list[dict[str, str]], tmp_path: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        existing = tmp_path / "export"
        existing.write_bytes(b"a file")
        with pytest.raises(AirflowFailException, match="is an existing file, not a folder") as caught:
            _export(presigned, existing)
        assert repr(existing.as_uri()) in str(caught.value)
        assert _gets(fxiaoke_conn) == []
        assert existing.read_bytes() == b"a file"

    def test_localhost_is_the_local_machine(
        self, presigned: list[dict[str, str]], dest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        summary = _export(presigned[:1], f"file://localhost{dest}")
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]
        assert summary["destination"] == dest.as_uri()

    def test_surrounding_line_break_stripped(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export(presigned[:1], f"{dest.as_uri()}\n")
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]


class TestRenderedFields:
    """Airflow stores and shows the template fields after rendering; ``results`` must not show a URL."""

    @staticmethod
    def _serialized(task: Any) -> str:
        from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

        return json.dumps(_serialize_rendered_fields(task))

    def test_xcom_arg_rendered_without_urls(self, presigned: list[dict[str, str]], dest: Path) -> None:
        from airflow.sdk import DAG

        with DAG("rendered_fields"):
            presign = PresignFilesOperator(task_id="presign", paths=DEMO_PATHS)
            export = PresignedFilesToObjectStorageOperator(
                task_id="export", results=presign.output, destination=dest.as_uri()
            )
        pulled: list[str] = []

        def xcom_pull(task_ids: str, **kwargs: Any) -> Any:
            pulled.append(task_ids)
            return presigned

        export.render_template_fields({"ti": SimpleNamespace(xcom_pull=xcom_pull, _upstream_map_indexes={})})  # type: ignore[arg-type]
        assert export.upstream_task_ids == {"presign"}
        assert pulled == ["presign"]
        rendered = self._serialized(export)
        assert "Signature=" not in rendered
        assert "127.0.0.1" not in rendered
        assert PDF in rendered
        export.execute({})  # type: ignore[arg-type]
        assert _exported(dest) == DEMO_FILES

    def test_mapped_instance_rendered_without_urls(self, presigned: list[dict[str, str]], dest: Path) -> None:
        from airflow.sdk import DAG

        with DAG("rendered_fields_mapped") as dag:
            mapped = PresignedFilesToObjectStorageOperator.partial(
                task_id="export", destination=dest.as_uri()
            ).expand(results=[presigned[:3], presigned[3:]])
        ti = SimpleNamespace(task=mapped, map_index=1, _upstream_map_indexes={})
        context: dict[str, Any] = {"ti": ti, "dag": dag, "dag_run": SimpleNamespace(conf={})}
        mapped.render_template_fields(context)  # type: ignore[arg-type]
        unmapped = context["task"]
        rendered = self._serialized(unmapped)
        assert "Signature=" not in rendered
        assert TXT in rendered
        unmapped.execute({})
        assert _exported(dest) == {p: d for p, d in DEMO_FILES.items() if p in DEMO_PATHS[3:]}

    def test_literal_results_rendered_without_urls(self, presigned: list[dict[str, str]], dest: Path) -> None:
        export = PresignedFilesToObjectStorageOperator(
            task_id="export", results=presigned, destination=dest.as_uri()
        )
        export.render_template_fields({})  # type: ignore[arg-type]
        export.render_template_fields({})  # type: ignore[arg-type]
        assert isinstance(export.results, _HiddenLinks)
        assert "Signature=" not in self._serialized(export)
        assert "Signature=" not in repr(export.results)

    def test_other_value_hidden(self) -> None:
        hidden = _HiddenLinks("https://x/y?Signature=abc")
        assert hidden.serialize() == "a str, not shown because it may hold URLs"
        assert str(hidden) == repr(hidden) == hidden.serialize()


class TestPaths:
    def test_path_stripped(self, presigned: list[dict[str, str]], dest: Path) -> None:
        _export([{**presigned[0], "path": f"  {PDF}\n"}], dest)
        assert [(e["path"], e["file"]) for e in _manifest(dest)] == [(PDF, PDF)]
        assert (dest / PDF).read_bytes() == DEMO_FILES[PDF]

    def test_paths_differing_in_spaces_exported_once(
        self, presigned: list[dict[str, str]], dest: Path, fxiaoke_conn: FxiaokeEmulator
    ) -> None:
        _export([presigned[0], {**presigned[0], "path": f" {PDF} "}], dest)
        assert len(_gets(fxiaoke_conn)) == 1
        assert [e["path"] for e in _manifest(dest)] == [PDF]

    def test_read_items_strips(self) -> None:
        (item,) = read_items([{"path": "\tN_1 ", "url": "https://x/y"}])
        assert item.path == "N_1"


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


class DiskFullAfterOneWrite:
    """A target file that takes the first write and then fails as a full disk does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0

    def open(self, mode: str) -> DiskFullAfterOneWrite:
        self._stream = self.path.open(mode)
        return self

    def __enter__(self) -> DiskFullAfterOneWrite:
        return self

    def __exit__(self, *args: object) -> None:
        self._stream.close()

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._stream.write(data)

    def unlink(self, missing_ok: bool = False) -> None:
        self.path.unlink(missing_ok=missing_ok)


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

    def test_write_error_removes_partial_file(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        target = DiskFullAfterOneWrite(tmp_path / LARGE)
        with requests.Session() as session, pytest.raises(OSError, match="No space left"):
            download(session, LARGE, emulator.download_url(LARGE), target, chunk_size=1024)  # type: ignore[arg-type]
        assert target.writes == 2
        assert not (tmp_path / LARGE).exists()

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

    def test_no_collision_with_a_hashed_name(self) -> None:
        assert safe_file_name("N_a b.pdf") == "N_a_b.pdf-51379162fd6f43cf"
        assert safe_file_name("N_a_b.pdf-51379162fd6f43cf") != "N_a_b.pdf-51379162fd6f43cf"
        assert safe_file_name("N_a_b.pdf-51379162FD6F43CF") != "N_a_b.pdf-51379162FD6F43CF"

    @pytest.mark.parametrize("name", [MANIFEST_NAME, MANIFEST_TEMP_NAME])
    def test_reserved_names_ignore_case(self, name: str) -> None:
        assert safe_file_name(name.upper()).casefold() != name.casefold()
        assert safe_file_name(name.title()).casefold() != name.casefold()

    def test_partial_name_never_a_final_name(self) -> None:
        assert partial_file_name(PDF) == f".{PDF}.part"
        assert partial_file_name(PDF, "0a1b") == f".{PDF}.0a1b.part"
        assert safe_file_name(partial_file_name(PDF, "0a1b")) != partial_file_name(PDF, "0a1b")

    def test_manifest_partial_name_never_a_final_name(self) -> None:
        name = manifest_partial_name("0a1b")
        assert name == f".{MANIFEST_NAME}.0a1b.partial"
        assert safe_file_name(name) != name
        assert safe_file_name(name.upper()).casefold() != name.casefold()

    def test_lone_surrogate_gets_a_name(self) -> None:
        name = safe_file_name("N_\ud800.pdf")
        assert name.startswith("N__.pdf-")
        name.encode()

    def test_generated_paths_get_distinct_names(self) -> None:
        rng = random.Random(20261204)
        alphabet = "aAbZ09._-/ \\:é文\n"
        paths = {
            "N_a b.pdf",
            "N_a_b.pdf-51379162fd6f43cf",
            "MANIFEST.JSONL",
            "Manifest.Jsonl.Partial",
            f".{PDF}.part",
            "",
            "x" * 183 + "-" + "0" * 16,
        }
        for _ in range(5000):
            paths.add(
                "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 5, 20, 199, 200, 201, 260])))
            )
        # Names are valid paths too, so a path that spells another path's name must get another name.
        paths |= {safe_file_name(path) for path in list(paths)}
        paths |= {partial_file_name(safe_file_name(path)) for path in list(paths)}
        paths |= {safe_file_name(path).upper() for path in list(paths)}
        names = {path: safe_file_name(path) for path in paths}
        assert len(set(names.values())) == len(paths)
        reserved = {MANIFEST_NAME.casefold(), MANIFEST_TEMP_NAME.casefold()}
        for path, name in names.items():
            assert 0 < len(name) <= 200, path
            assert not name.startswith("."), path
            assert "/" not in name, path
            assert "\\" not in name, path
            assert name.casefold() not in reserved, path


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

    @pytest.mark.parametrize(
        ("path", "fragment"),
        [
            pytest.param("N_\ud800.pdf", "lone surrogate '\\ud800' (U+D800) at offset 2", id="surrogate"),
            pytest.param("N_" + "x" * 1023, "1025 characters long", id="too-long"),
            pytest.param("N_\u200b1.pdf", "format character", id="zero-width-space"),
            pytest.param("N_\u202e1.pdf", "format character", id="right-to-left-override"),
            pytest.param("N_\x001.pdf", "control character", id="nul"),
        ],
    )
    def test_path_rules_of_presign(self, path: str, fragment: str) -> None:
        results = [{"path": "N_1", "url": "https://x/y"}, {"path": path, "url": "https://x/z?Signature=abc"}]
        with pytest.raises(ValueError, match=r"^results\[1\]\.path ") as caught:
            read_items(results)
        assert fragment in str(caught.value)
        assert "Signature" not in str(caught.value)

    def test_longest_path_accepted(self) -> None:
        (item,) = read_items([{"path": "N_" + "x" * 1022, "url": "https://x/y"}])
        assert len(item.path) == 1024


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
