"""Tests of the example DAGs: each file imports cleanly, and the presign export runs end to end."""

from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import html
import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from airflow.dag_processing.dagbag import DagBag

from fxiaoke_provider.testing import DEMO_PATHS, DOWNLOAD_PREFIX, FxiaokeEmulator
from tests.conftest import REPO_ROOT, connection_dict, run_airflow

DAGS_FOLDER = REPO_ROOT / "dags_examples"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
DAG_ID = "fxiaoke_presign_export"
FROM_EMAIL = "airflow@example.com"
_LINK = re.compile(r"https?://[^\s<>\"']+")


@functools.cache
def _bag(path: Path) -> DagBag:
    return DagBag(dag_folder=str(path))


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    return f"Exit status {result.returncode}. The output ends with:\n{_output(result)[-6000:]}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dags_test(
    airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``airflow dags test`` on the example DAG against the emulator and return the result and export root."""
    export_root = tmp_path / "export"
    export_root.mkdir()
    env = {
        "AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps(connection_dict(emulator, tmp_path / "cache")),
        "FXIAOKE_EXPORT_ROOT": export_root.as_uri(),
        **(extra_env or {}),
    }
    result = run_airflow(airflow_home, "dags", "test", DAG_ID, dags_folder=DAGS_FOLDER, env=env)
    return result, export_root


class _Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    """Start an SMTP server on a free loopback port and yield its inbox and port."""
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    # start() returns only after a probe connection has received the server's greeting.
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def presign_dag() -> Any:
    bag = _bag(DAGS_FOLDER / f"{DAG_ID}.py")
    return bag.dags[DAG_ID]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
class TestDagFiles:
    def test_imports_without_errors(self, path: Path) -> None:
        assert _bag(path).import_errors == {}

    def test_defines_a_dag(self, path: Path) -> None:
        assert _bag(path).dags, f"{path.name} defines no DAG"

    def test_dags_have_tags(self, path: Path) -> None:
        for dag_id, dag in _bag(path).dags.items():
            assert dag.tags, f"{dag_id} has no tags"

    def test_dags_have_doc_md(self, path: Path) -> None:
        for dag_id, dag in _bag(path).dags.items():
            assert dag.doc_md, f"{dag_id} has no doc_md"


class TestPresignExportDag:
    def test_folder_has_dag_files(self) -> None:
        assert DAG_FILES

    def test_default_paths_are_demo_paths(self, presign_dag: Any) -> None:
        assert presign_dag.params["paths"] == DEMO_PATHS

    def test_default_paths_match_seed(self, presign_dag: Any, emulator: FxiaokeEmulator) -> None:
        assert presign_dag.params["paths"] == list(emulator.files)


@pytest.mark.e2e
class TestPresignExportRun:
    def test_exports_identical_files(
        self, airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path
    ) -> None:
        result, export_root = _dags_test(airflow_home, emulator, tmp_path)
        assert result.returncode == 0, _tail(result)

        manifests = list(export_root.rglob("manifest.jsonl"))
        assert len(manifests) == 1, manifests
        folder = manifests[0].parent
        entries = [json.loads(line) for line in manifests[0].read_text().splitlines()]
        files = emulator.files

        assert sorted(entry["path"] for entry in entries) == sorted(files)
        assert {e["path"]: e["size"] for e in entries} == {p: len(data) for p, data in files.items()}
        assert {e["path"]: e["sha256"] for e in entries} == {
            p: hashlib.sha256(data).hexdigest() for p, data in files.items()
        }
        assert {e["path"]: (folder / e["file"]).read_bytes() for e in entries} == files
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [e["file"] for e in entries] + ["manifest.jsonl"]
        )

    def test_log_strips_query_strings(
        self, airflow_home: Path, emulator: FxiaokeEmulator, tmp_path: Path
    ) -> None:
        result, _export_root = _dags_test(airflow_home, emulator, tmp_path)
        assert result.returncode == 0, _tail(result)

        output = _output(result)
        for path in DEMO_PATHS:
            assert f"{path}: {emulator.base_url}{DOWNLOAD_PREFIX}{path} (expires" in output, path
        signed = re.findall(re.escape(f"{emulator.base_url}{DOWNLOAD_PREFIX}") + r"\S*\?\S*", output)
        assert signed == []

    def test_emails_working_links(
        self,
        airflow_home: Path,
        emulator: FxiaokeEmulator,
        tmp_path: Path,
        smtp_server: tuple[_Inbox, int],
        presign_dag: Any,
    ) -> None:
        inbox, port = smtp_server
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": FROM_EMAIL},
        }
        result, _export_root = _dags_test(
            airflow_home, emulator, tmp_path, {"AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp)}
        )
        assert result.returncode == 0, _tail(result)

        assert len(inbox.envelopes) == 1
        envelope = inbox.envelopes[0]
        recipient = presign_dag.params["notify_to"]
        assert envelope.rcpt_tos == [recipient]
        assert envelope.mail_from == FROM_EMAIL
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message["To"] == recipient

        body = message.get_body(preferencelist=("html",))
        assert body is not None
        links = _LINK.findall(html.unescape(body.get_content()))
        assert len(links) == len(DEMO_PATHS), links
        by_path = {unquote(urlsplit(link).path).removeprefix(DOWNLOAD_PREFIX): link for link in links}
        assert sorted(by_path) == sorted(DEMO_PATHS)

        # Every link must point at the emulator before anything is fetched from it.
        for link in links:
            assert link.startswith(f"{emulator.base_url}/"), link
        downloaded = {path: requests.get(link, timeout=10).content for path, link in by_path.items()}
        assert downloaded == emulator.files
