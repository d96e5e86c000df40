"""Fill the Fxiaoke connection form of a real Airflow API server in headless Chromium."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fxiaoke_provider.api.config import config_from_connection
from fxiaoke_provider.get_provider_info import get_provider_info
from fxiaoke_provider.testing import FxiaokeEmulator
from tests import secret_scan
from tests.conftest import REPO_ROOT, run_airflow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--window-size=1280,900",
]

pytestmark = [
    pytest.mark.ui,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Selenium logs every WebDriver request and response at DEBUG, including the values typed into and read
# back from the secret fields, so its log stays at WARNING.
logging.getLogger("selenium").setLevel(logging.WARNING)

#: Upper bound, in seconds, for the API server to respond after it starts.
SERVER_START_TIMEOUT = 180
#: Upper bound, in seconds, for one element or page change in the browser.
UI_TIMEOUT = 30
CONN_ID = "fxiaoke_ui"
BAD_CONN_ID = "fxiaoke_ui_wrong_secret"
#: The app secret of the second connection, which the emulator refuses.
WRONG_SECRET = "wrong-app-secret-for-the-ui-test"
WRONG_PERMANENT_CODE = "wrong-permanent-code-for-the-ui-test"
#: Set to 1 to copy the screenshots of the filled form into docs/img (``make docs-img``).
UPDATE_DOCS_ENV = "FXIAOKE_UPDATE_DOCS_IMG"

_CONN_TYPE = get_provider_info()["connection-types"][0]
_RELABELED = _CONN_TYPE["ui-field-behaviour"]["relabeling"]
_EXTRA_FIELDS: dict[str, Any] = _CONN_TYPE["conn-fields"]


def _airflow_version() -> tuple[int, int]:
    from importlib.metadata import version

    major, minor = version("apache-airflow").split(".")[:2]
    return int(major), int(minor)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ui_env() -> dict[str, str]:
    return {
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
    }


@pytest.fixture(scope="module")
def emu() -> Iterator[FxiaokeEmulator]:
    with FxiaokeEmulator() as emulator:
        emulator.seed_demo_files()
        yield emulator


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Start ``airflow api-server`` on a free loopback port with a fresh home, and return its URL and home."""
    home = tmp_path_factory.mktemp("ui_airflow_home")
    dags = tmp_path_factory.mktemp("ui_dags")
    migrated = run_airflow(home, "db", "migrate", dags_folder=dags, env=_ui_env())
    if migrated.returncode != 0:
        pytest.fail(f"airflow db migrate exited with {migrated.returncode}:\n{migrated.stderr[-4000:]}")

    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **_ui_env(),
        }
    )
    log_path = home / "api-server.log"

    # A long-running server cannot go through run_airflow, which waits for the command to end. So its
    # output goes to a file, which the secret scan reads when the server stops.
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(_airflow_command()), "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    try:
        _wait_for_server(url, server, log_path)
        yield url, home
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        secret_scan.add_text(log_path.read_text(errors="replace"))


def _airflow_command() -> Path:
    return Path(sys.executable).parent / "airflow"


def _wait_for_server(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll the version endpoint until it responds, the process exits, or the start timeout passes."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"airflow api-server exited with {server.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/api/v2/version", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(
        f"airflow api-server did not respond within {SERVER_START_TIMEOUT} s:\n{log_path.read_text()[-4000:]}"
    )


@dataclass
class FormRun:
    """What the browser saw while adding the connection."""

    standard_labels: dict[str, str] = field(default_factory=dict)
    extra_labels: dict[str, str] = field(default_factory=dict)
    input_types: dict[str, str] = field(default_factory=dict)
    field_names: set[str] = field(default_factory=set)
    listed_after_save: bool = False
    test_message: str = ""
    token_calls_by_test: int = 0
    failed_test_message: str = ""
    failed_test_page: str = field(default="", repr=False)
    screenshots: dict[str, Path] = field(default_factory=dict)
    typed_extras: dict[str, str] = field(default_factory=dict)


def _label_of(driver: Any, element: Any) -> str:
    """Return the text of an input's label: the one that names its id, else the nearest one around it."""
    element_id = element.get_attribute("id")
    labels = driver.find_elements(By.CSS_SELECTOR, f"label[for='{element_id}']") if element_id else []
    if not labels:
        labels = element.find_elements(By.XPATH, "./ancestor::*[.//label][1]//label")
    return " ".join(labels[0].get_attribute("textContent").split()).rstrip(" *") if labels else ""


def _fill(driver: Any, name: str, value: str) -> None:
    """
    Type a value into a field one key at a time and check that the field contains exactly that value.

    The form's extra fields re-render while a value is typed and can lose a key sent in the same burst,
    so each key waits until the field shows it.
    """
    wait = WebDriverWait(driver, UI_TIMEOUT)
    element = wait.until(expected_conditions.visibility_of_element_located((By.NAME, name)))
    element.clear()
    for end in range(1, len(value) + 1):
        element.send_keys(value[end - 1])
        wait.until(lambda _driver, prefix=value[:end]: element.get_attribute("value") == prefix)
    typed = element.get_attribute("value")
    assert typed == value, f"field {name} holds {len(typed)} characters after typing {len(value)}"


#: Titles of the notices the connection list shows after a test, success first. They tell the test's notice
#: apart from the save notice, whose text also contains "successfully".
TEST_NOTICE_TITLES = ("Test Connection Successful", "Test Connection Failed")


def _test_outcome(driver: Any) -> str | bool:
    """
    Return the connection-test notice, its title and the message under it, once both show.

    Return False until then, so that the wait goes on.
    """
    for title in TEST_NOTICE_TITLES:
        for element in driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{title}']"):
            # The title and the message are children of one element of the notice.
            text = " ".join(element.find_element(By.XPATH, "..").text.split())
            if text.startswith(title) and len(text) > len(title):
                return text
    return False


def _press_test(driver: Any, row: Any) -> str:
    """Press the Test button of a connection's row and return the notice that follows, or ``""``."""
    row.find_element(By.CSS_SELECTOR, "button[aria-label='Test Connection']").click()
    try:
        return str(WebDriverWait(driver, UI_TIMEOUT).until(_test_outcome))
    except TimeoutException:
        return ""


def _open_section(driver: Any, title: str) -> None:
    button = driver.find_element(By.XPATH, f"//button[normalize-space()='{title}']")
    if button.get_attribute("aria-expanded") != "true":
        button.click()


@pytest.fixture(scope="module")
def form_run(
    api_server: tuple[str, Path], emu: FxiaokeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FormRun]:
    """Add the connection through the UI, save it, press Test, and record what happened."""
    url, home = api_server
    out = tmp_path_factory.mktemp("ui_screenshots")
    conn = json.loads(emu.connection_json())
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    run = FormRun()
    try:
        wait = WebDriverWait(driver, UI_TIMEOUT)
        driver.get(f"{url}/connections")
        wait.until(
            expected_conditions.element_to_be_clickable(
                (By.XPATH, "//button[normalize-space()='Add Connection']")
            )
        ).click()
        combo = wait.until(
            expected_conditions.visibility_of_element_located(
                (By.CSS_SELECTOR, "[role=dialog] input[role=combobox]")
            )
        )
        combo.send_keys(_CONN_TYPE["hook-name"])
        wait.until(
            expected_conditions.element_to_be_clickable(
                (By.XPATH, f"//*[@role='option'][normalize-space()='{_CONN_TYPE['hook-name']}']")
            )
        )
        combo.send_keys(Keys.ENTER)
        wait.until(expected_conditions.visibility_of_element_located((By.NAME, "host")))
        for element in driver.find_elements(
            By.CSS_SELECTOR, "[role=dialog] input[name], [role=dialog] textarea[name]"
        ):
            name = element.get_attribute("name")
            run.field_names.add(name)
            run.input_types[name] = element.get_attribute("type")
            if name in ("host", "port", "login", "password"):
                run.standard_labels[name] = _label_of(driver, element)

        _fill(driver, "connection_id", CONN_ID)
        # The port goes in its own field: on Airflow 3.3.2 the list's Test button works only for a
        # connection that stores a port.
        base = urlsplit(conn["host"])
        _fill(driver, "host", f"{base.scheme}://{base.hostname}")
        _fill(driver, "port", str(base.port))
        _fill(driver, "login", conn["login"])
        _fill(driver, "password", conn["password"])
        run.screenshots["standard"] = out / "connection-form.png"
        driver.save_screenshot(str(run.screenshots["standard"]))

        _open_section(driver, "Extra Fields")
        run.typed_extras = {
            "permanent_code": conn["extra"]["permanent_code"],
            "user_id": conn["extra"]["user_id"],
            "cache_dir": str(out / "fxiaoke-cache"),
        }
        for key, value in run.typed_extras.items():
            _fill(driver, f"element_{key}", value)
        for key in _EXTRA_FIELDS:
            (element,) = driver.find_elements(By.CSS_SELECTOR, f"[role=dialog] [name='element_{key}']")
            target = element
            if element.get_attribute("type") == "hidden":
                # A select keeps its value in a hidden input; its label belongs to the visible combobox.
                target = element.find_element(By.XPATH, "./preceding::input[@role='combobox'][1]")
            run.extra_labels[key] = _label_of(driver, target)
        # A taller window shows every extra field at once.
        driver.set_window_size(1280, 1900)
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center'})",
            driver.find_element(By.NAME, "element_permanent_code"),
        )
        run.screenshots["extra"] = out / "connection-form-extra.png"
        driver.save_screenshot(str(run.screenshots["extra"]))
        driver.set_window_size(1280, 900)

        driver.find_element(By.XPATH, "//button[normalize-space()='Save']").click()
        row_xpath = f"//tr[.//td[normalize-space()='{CONN_ID}']]"
        try:
            row = wait.until(expected_conditions.visibility_of_element_located((By.XPATH, row_xpath)))
            run.listed_after_save = True
        except TimeoutException:
            row = None
        if row is not None:
            calls_before = emu.token_calls
            run.test_message = _press_test(driver, row)
            run.token_calls_by_test = emu.token_calls - calls_before
            run.screenshots["result"] = out / "connection-test-result.png"
            driver.save_screenshot(str(run.screenshots["result"]))

        # A second connection, added from the command line, carries a wrong app secret.
        bad = {
            **conn,
            "password": WRONG_SECRET,
            "host": f"{base.scheme}://{base.hostname}",
            "port": base.port,
        }
        # ``connections add`` prints the extras in clear, so the demo permanent code stays out of them.
        bad["extra"] = {
            **conn["extra"],
            "permanent_code": WRONG_PERMANENT_CODE,
            "cache_dir": str(out / "fxiaoke-cache-bad"),
        }
        added = run_airflow(
            home, "connections", "add", BAD_CONN_ID, "--conn-json", json.dumps(bad), env=_ui_env()
        )
        assert added.returncode == 0, added.stderr[-2000:]
        driver.get(f"{url}/connections")
        bad_row = wait.until(
            expected_conditions.visibility_of_element_located(
                (By.XPATH, f"//tr[.//td[normalize-space()='{BAD_CONN_ID}']]")
            )
        )
        run.failed_test_message = _press_test(driver, bad_row)
        run.failed_test_page = driver.page_source
        yield run
    finally:
        driver.quit()
    if os.environ.get(UPDATE_DOCS_ENV) == "1":
        docs_img = REPO_ROOT / "docs" / "img"
        docs_img.mkdir(exist_ok=True)
        for key in ("standard", "extra"):
            shutil.copyfile(run.screenshots[key], docs_img / run.screenshots[key].name)


@dataclass
class StoredConnection:
    """The saved connection as stored in the metadata database; the repr leaves the secrets out."""

    host: str
    port: int | None
    login: str
    password: str = field(repr=False)
    extra: dict[str, Any] = field(repr=False)


@pytest.fixture(scope="module")
def stored(
    form_run: FormRun, api_server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> StoredConnection:
    """
    Read the saved connection back from the metadata database, after the form run.

    ``airflow connections export`` writes it to a file, so the secrets stay out of the command's output.
    """
    target = tmp_path_factory.mktemp("ui_export") / "connections.json"
    result = run_airflow(
        api_server[1], "connections", "export", str(target), "--file-format", "json", env=_ui_env()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads(target.read_text())[CONN_ID]
    extra = saved["extra"] if isinstance(saved["extra"], dict) else json.loads(saved["extra"])
    return StoredConnection(
        host=saved["host"],
        port=saved["port"],
        login=saved["login"],
        password=saved["password"],
        extra=extra,
    )


class TestForm:
    @pytest.mark.parametrize("name", sorted(_RELABELED))
    def test_standard_label(self, form_run: FormRun, name: str) -> None:
        assert form_run.standard_labels[name] == _RELABELED[name]

    @pytest.mark.parametrize("key", sorted(_EXTRA_FIELDS))
    def test_extra_label(self, form_run: FormRun, key: str) -> None:
        assert form_run.extra_labels[key] == _EXTRA_FIELDS[key]["label"]

    @pytest.mark.parametrize("name", _CONN_TYPE["ui-field-behaviour"]["hidden-fields"])
    def test_hidden_field_absent(self, form_run: FormRun, name: str) -> None:
        assert name not in form_run.field_names

    @pytest.mark.parametrize(
        "name",
        [
            "password",
            *(
                f"element_{key}"
                for key, spec in sorted(_EXTRA_FIELDS.items())
                if spec["schema"].get("format") == "password"
            ),
        ],
    )
    def test_secret_is_password_input(
        self, form_run: FormRun, name: str, request: pytest.FixtureRequest
    ) -> None:
        if name != "password" and _airflow_version() < (3, 3):
            request.applymarker(
                pytest.mark.xfail(
                    strict=True, reason="Airflow 3.2's form shows password-format extra fields as text inputs"
                )
            )
        assert form_run.input_types[name] == "password"

    @pytest.mark.parametrize("key", ["standard", "extra"])
    def test_screenshot_png(self, form_run: FormRun, key: str) -> None:
        assert form_run.screenshots[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class TestSaved:
    def test_listed(self, form_run: FormRun) -> None:
        assert form_run.listed_after_save

    def test_stored_host_and_port(self, stored: StoredConnection, emu: FxiaokeEmulator) -> None:
        base = urlsplit(emu.base_url)
        assert (stored.host, stored.port) == (f"{base.scheme}://{base.hostname}", base.port)

    def test_stored_password(self, stored: StoredConnection, emu: FxiaokeEmulator) -> None:
        # Compared as a flag, so that a failure does not print the secret.
        matches = stored.password == emu.settings.credentials.app_secret
        assert matches

    @pytest.mark.parametrize("key", ["permanent_code", "user_id", "cache_dir"])
    def test_stored_extra(self, form_run: FormRun, stored: StoredConnection, key: str) -> None:
        matches = stored.extra.get(key) == form_run.typed_extras[key]
        assert matches

    def test_stored_connection_valid(self, stored: StoredConnection, emu: FxiaokeEmulator) -> None:
        # The secrets are replaced, so that the traceback of the expected failure shows none of them.
        config = config_from_connection(
            host=stored.host,
            login=stored.login,
            password="placeholder-app-secret",
            port=stored.port,
            extra={**stored.extra, "permanent_code": "placeholder-permanent-code"},
        )
        assert (config.app_id, config.base_url) == (stored.login, emu.base_url)


class TestTestButton:
    def test_fetches_one_token(self, form_run: FormRun) -> None:
        assert form_run.token_calls_by_test == 1

    def test_page_shows_success(self, form_run: FormRun) -> None:
        assert form_run.test_message.startswith(TEST_NOTICE_TITLES[0]), form_run.test_message

    def test_message_names_the_emulator(self, form_run: FormRun, emu: FxiaokeEmulator) -> None:
        assert f"Connected to {emu.base_url} " in form_run.test_message

    def test_failure_shows_error_code(self, form_run: FormRun) -> None:
        assert form_run.failed_test_message.startswith(TEST_NOTICE_TITLES[1]), form_run.failed_test_message
        assert "20006" in form_run.failed_test_message

    def test_failure_page_hides_secret(self, form_run: FormRun) -> None:
        leaked = WRONG_SECRET in form_run.failed_test_page
        assert not leaked

    def test_result_screenshot_png(self, form_run: FormRun) -> None:
        assert form_run.screenshots["result"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
