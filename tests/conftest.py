"""Shared fixtures: an isolated Airflow home, a running emulator and connections that point at it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Airflow reads its configuration when first imported, so the test home must be set before any import.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="fxiaoke-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parent.parent / "dags_examples")

import pytest  # noqa: E402

from fxiaoke_provider.api.client import FxiaokeClient, LoggerLike  # noqa: E402
from fxiaoke_provider.api.config import ClientConfig, config_from_connection  # noqa: E402
from fxiaoke_provider.api.token_store import MemoryTokenStore  # noqa: E402
from fxiaoke_provider.testing import FxiaokeEmulator  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _forget_tokens() -> Iterator[None]:
    MemoryTokenStore.clear()
    yield
    MemoryTokenStore.clear()


@pytest.fixture
def emulator() -> Iterator[FxiaokeEmulator]:
    """Start an emulator with the demo files on a free loopback port."""
    with FxiaokeEmulator() as emu:
        emu.seed_demo_files()
        yield emu


def connection_dict(
    emu: FxiaokeEmulator, cache_dir: Path, auth_style: str = "header", **extra: Any
) -> dict[str, Any]:
    """Build the JSON form of a connection to the emulator, with a private cache folder."""
    conn = json.loads(emu.connection_json(auth_style))  # type: ignore[arg-type]
    conn["extra"]["cache_dir"] = str(cache_dir)
    conn["extra"].update(extra)
    return conn


@pytest.fixture
def fxiaoke_conn(
    emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> FxiaokeEmulator:
    """Point ``fxiaoke_default`` at the emulator (header style) and return the emulator."""
    conn = connection_dict(emulator, tmp_path / "cache")
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
    return emulator


def config_from_dict(conn: dict[str, Any]) -> ClientConfig:
    """Read the client configuration from the JSON form of a connection, as the hook reads a stored one."""
    return config_from_connection(
        host=conn["host"], login=conn["login"], password=conn["password"], port=None, extra=conn["extra"]
    )


def make_client(
    emu: FxiaokeEmulator,
    cache_dir: Path,
    auth_style: str = "header",
    *,
    logger: LoggerLike | None = None,
    **extra: Any,
) -> FxiaokeClient:
    """
    Build a client for the emulator whose clock is the emulator's and whose waits move that clock.

    Nothing sleeps: a back-off or rate-limit wait advances the emulator's clock instead.
    """
    config = config_from_dict(connection_dict(emu, cache_dir, auth_style, **extra))
    return FxiaokeClient(config, logger=logger, clock=emu.clock.now, sleep=emu.clock.advance)


@pytest.fixture
def log_text(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Any:
    """
    Return a function that reads everything logged so far, at every level.

    Airflow's hook and task loggers write through structlog to the process's output, not to the
    standard ``logging`` handlers that ``caplog`` reads, so both sources are read.
    """
    caplog.set_level(logging.DEBUG)
    collected: list[str] = []

    from tests import secret_scan

    def read() -> str:
        out, err = capfd.readouterr()
        # Output read here never reaches the test report, which the secret scan reads, so it goes to
        # the scan directly.
        secret_scan.add_text(out + err)
        collected.append(out + err)
        return caplog.text + "".join(collected)

    return read


def pytest_configure(config: pytest.Config) -> None:
    """Start recording secrets and output for the suite-wide secret scan."""
    from tests import secret_scan

    secret_scan.install()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each test phase's captured output and log records for the secret scan."""
    from tests import secret_scan

    secret_scan.add_text(report.capstdout)
    secret_scan.add_text(report.capstderr)
    secret_scan.add_text(report.caplog)
    if report.longrepr is not None:
        secret_scan.add_text(str(report.longrepr))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the secret scan after every other test."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_zz_secret_scan.py"))


#: Upper bound, in seconds, of one ``airflow`` subprocess, so a hung run fails its test instead of blocking.
AIRFLOW_COMMAND_TIMEOUT = 300


def run_airflow(
    home: Path, *args: str, dags_folder: Path = REPO_ROOT / "dags_examples", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """
    Run the ``airflow`` command of this virtual environment and keep its output for the secret scan.

    The subprocess gets none of this process's ``AIRFLOW*`` variables, only the given home and DAGs folder,
    no example DAGs, and ``env`` on top.

    :param home: the ``AIRFLOW_HOME`` of the subprocess.
    :param args: the command's arguments, for example ``"dags", "test", "my_dag"``.
    :param dags_folder: the DAGs folder of the subprocess.
    :param env: further environment variables, such as ``AIRFLOW_CONN_*``.
    """
    from tests import secret_scan

    command_env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    command_env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    command_env.update(env or {})
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        env=command_env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=AIRFLOW_COMMAND_TIMEOUT,
        check=False,
    )
    secret_scan.add_text(result.stdout + result.stderr)
    return result


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    Return an Airflow home whose metadata database ``airflow db migrate`` has built, shared by the session.

    It is for ``airflow`` subprocesses started with :func:`run_airflow`. The in-process home set at the
    top of this file stays separate.
    """
    home = tmp_path_factory.mktemp("airflow_home")
    result = run_airflow(home, "db", "migrate")
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate exited with status {result.returncode}:\n{result.stderr[-4000:]}")
    return home
