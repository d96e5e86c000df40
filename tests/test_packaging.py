"""Build the sdist and wheel, check their contents, and install each into a fresh virtual environment."""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

import fxiaoke_provider
from tests import secret_scan
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

#: Upper bound, in seconds, of one build or install step, so a hung step fails its test.
STEP_TIMEOUT = 900

DIST_NAME = "fxiaoke-airflow-provider"
#: Folders and files of a checkout that are not sources: virtual environments, build output and caches.
COPY_IGNORED = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
VERSION = fxiaoke_provider.__version__


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, keep its output for the secret scan and fail the test with its output if it fails."""
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    secret_scan.add_text(result.stdout + result.stderr)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited with {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


def _constraints_file() -> Path:
    """Return the constraints file that pins the Airflow version this suite runs on."""
    pin = f"apache-airflow=={_airflow_version()}"
    for candidate in sorted(REPO_ROOT.glob("constraints*.txt")):
        if pin in candidate.read_text().splitlines():
            return candidate
    pytest.fail(f"no constraints*.txt file in {REPO_ROOT} pins {pin}; add one with `pip freeze`")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the sdist, and the wheel from it, with ``python -m build`` into a temporary folder."""
    # The build runs on a copy, because setuptools writes build/ and *.egg-info into the source folder,
    # and two builds sharing them (such as the suites of two Airflow versions) would collide.
    source = tmp_path_factory.mktemp("source") / "fxiaoke-airflow-provider"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, source, cwd=source)
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def _sdist(dist: Path) -> Path:
    (sdist,) = dist.glob("*.tar.gz")
    return sdist


class TestArtifacts:
    def test_wheel_py_typed(self, dist: Path) -> None:
        names = zipfile.ZipFile(_wheel(dist)).namelist()
        assert "fxiaoke_provider/py.typed" in names

    def test_wheel_only_package(self, dist: Path) -> None:
        names = zipfile.ZipFile(_wheel(dist)).namelist()
        strays = [name for name in names if not name.startswith(("fxiaoke_provider/", "fxiaoke_airflow_"))]
        assert strays == []

    def test_wheel_entry_point(self, dist: Path) -> None:
        wheel = zipfile.ZipFile(_wheel(dist))
        (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
        text = wheel.read(entry_points).decode()
        assert (
            "[apache_airflow_provider]\nprovider_info = fxiaoke_provider.get_provider_info:get_provider_info"
            in text
        )

    def test_wheel_version(self, dist: Path) -> None:
        wheel = zipfile.ZipFile(_wheel(dist))
        (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
        headers = email.parser.Parser().parsestr(wheel.read(metadata).decode())
        assert headers["Version"] == VERSION

    def test_sdist_version(self, dist: Path) -> None:
        with tarfile.open(_sdist(dist)) as archive:
            pkg_info = archive.extractfile(f"fxiaoke_airflow_provider-{VERSION}/PKG-INFO")
            assert pkg_info is not None
            headers = email.parser.Parser().parsestr(pkg_info.read().decode())
        assert headers["Version"] == VERSION

    @pytest.mark.parametrize(
        "member",
        [
            pytest.param("fxiaoke_provider/py.typed", id="py-typed"),
            pytest.param("fxiaoke_provider/get_provider_info.py", id="provider-info"),
            pytest.param("tests/conftest.py", id="test-fixtures"),
            pytest.param("constraints.txt", id="constraints"),
            pytest.param("docs/connection.md", id="docs"),
        ],
    )
    def test_sdist_member(self, dist: Path, member: str) -> None:
        with tarfile.open(_sdist(dist)) as archive:
            names = archive.getnames()
        assert f"fxiaoke_airflow_provider-{VERSION}/{member}" in names

    def test_twine_check(self, dist: Path) -> None:
        result = _run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()), cwd=dist)
        assert result.stdout.count("PASSED") == 2


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Create an empty virtual environment, without this one's packages."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=venv.parent)
    return venv


def _json_list(text: str) -> list[Any]:
    """Return the first JSON list in a command's output, which may start with log lines."""
    decoder = json.JSONDecoder()
    for index, character in enumerate(text):
        if character == "[":
            try:
                value, _ = decoder.raw_decode(text, index)
            except ValueError:
                continue
            if isinstance(value, list):
                return value
    raise AssertionError(f"no JSON list in the output: {text[-2000:]}")


def _providers(venv: Path) -> dict[str, str]:
    """Run the fresh environment's ``airflow providers list`` and return {package name: version}."""
    home = venv.parent / "airflow_home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    # The working folder is outside the checkout, so only the installed copy of the package can be imported.
    result = _run(venv / "bin" / "airflow", "providers", "list", "--output", "json", cwd=venv.parent, env=env)
    return {item["package_name"]: item["version"] for item in _json_list(result.stdout)}


def _install(venv: Path, artifact: Path) -> None:
    _run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--constraint",
        _constraints_file(),
        artifact,
        cwd=venv.parent,
    )


def _installed_package(venv: Path) -> Path:
    """Return the folder the fresh environment imports ``fxiaoke_provider`` from."""
    script = (
        "import fxiaoke_provider, pathlib; print(pathlib.Path(fxiaoke_provider.__file__).resolve().parent)"
    )
    result = _run(venv / "bin" / "python", "-c", script, cwd=venv.parent)
    return Path(result.stdout.strip())


@pytest.fixture(scope="module", params=[pytest.param("whl", id="wheel"), pytest.param("tar.gz", id="sdist")])
def installed(request: pytest.FixtureRequest, dist: Path, fresh_venv: Path) -> Path:
    """
    Install one artifact with its dependencies into the fresh environment and return the environment.

    The wheel goes in first and pulls in Airflow from the constraints file of the Airflow version this
    suite runs on. For the sdist the wheel is uninstalled first; the sdist then resolves the same
    dependencies, already present, and is built from the archive.
    """
    (artifact,) = dist.glob(f"*.{request.param}")
    if (fresh_venv / "bin" / "airflow").exists():
        _run(
            fresh_venv / "bin" / "python", "-m", "pip", "uninstall", "--yes", DIST_NAME, cwd=fresh_venv.parent
        )
    _install(fresh_venv, artifact)
    return fresh_venv


class TestInstall:
    def test_registered(self, installed: Path) -> None:
        assert _providers(installed).get(DIST_NAME) == VERSION

    def test_imported_from_venv(self, installed: Path) -> None:
        assert _installed_package(installed).is_relative_to(installed.resolve())

    def test_py_typed_installed(self, installed: Path) -> None:
        assert (_installed_package(installed) / "py.typed").is_file()
