"""Check the Docker image and compose files statically: no test here needs a Docker engine."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from fxiaoke_provider.testing.settings import DEMO_CREDENTIALS
from tests.conftest import REPO_ROOT, config_from_dict

DOCKER = REPO_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yaml"

#: The image the compose file builds from docker/Dockerfile; every Airflow service must run it.
PROVIDER_IMAGE_NAME = "fxiaoke-airflow"

#: Airflow services of the Celery set-up and the command each runs.
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = [*AIRFLOW_COMMANDS, "airflow-init"]


def _tested_airflow_version() -> str:
    """Return the Airflow version that ``constraints.txt`` pins, the one the suite is tested with."""
    match = re.search(r"^apache-airflow==(\S+)$", (REPO_ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert match is not None, "constraints.txt pins no apache-airflow version"
    return match.group(1)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), f"{COMPOSE} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return env


def _dockerfile_from() -> str:
    (line,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM ")]
    return line.split()[1]


def _connection(service: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_env(service)["AIRFLOW_CONN_FXIAOKE_DEFAULT"])


class TestDockerfile:
    def test_from_tested_airflow(self) -> None:
        assert _dockerfile_from() == f"apache/airflow:{_tested_airflow_version()}-python3.11"

    def test_python_supported(self) -> None:
        python = _dockerfile_from().rsplit("-python", 1)[1]
        pyproject = (REPO_ROOT / "pyproject.toml").read_text()
        assert f'"Programming Language :: Python :: {python}"' in pyproject

    def test_installs_as_airflow_user(self) -> None:
        lines = DOCKERFILE.read_text().splitlines()
        users = [index for index, line in enumerate(lines) if line.strip() == "USER airflow"]
        (pip,) = [index for index, line in enumerate(lines) if "pip install" in line]
        assert users
        assert users[-1] < pip

    def test_repins_airflow(self) -> None:
        (pip,) = [line for line in DOCKERFILE.read_text().splitlines() if "pip install" in line]
        assert '"apache-airflow==${AIRFLOW_VERSION}"' in pip

    def test_copy_sources_exist(self) -> None:
        sources = [
            source
            for line in DOCKERFILE.read_text().splitlines()
            if line.startswith("COPY ")
            for source in [part for part in line.split()[1:-1] if not part.startswith("--")]
        ]
        missing = [source for source in sources if not (REPO_ROOT / source).exists()]
        assert sources
        assert missing == []


class TestCompose:
    def test_services_present(self, services: dict[str, Any]) -> None:
        expected = {"postgres", "redis", "fxiaoke-emulator", *AIRFLOW_SERVICES}
        assert expected <= set(services)

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_provider_image(self, services: dict[str, Any], name: str) -> None:
        assert services[name]["image"] == f"{PROVIDER_IMAGE_NAME}:{_tested_airflow_version()}"

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_built_from_dockerfile(self, services: dict[str, Any], name: str) -> None:
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()

    @pytest.mark.parametrize(("name", "command"), list(AIRFLOW_COMMANDS.items()))
    def test_command(self, services: dict[str, Any], name: str, command: str) -> None:
        assert services[name]["command"] == command

    def test_init_migrates(self, services: dict[str, Any]) -> None:
        assert "airflow db migrate" in "\n".join(services["airflow-init"]["command"])

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_celery_executor(self, services: dict[str, Any], name: str) -> None:
        assert _env(services[name])["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    def test_one_jwt_secret(self, services: dict[str, Any]) -> None:
        secrets = {_env(services[name]).get("AIRFLOW__API_AUTH__JWT_SECRET") for name in AIRFLOW_SERVICES}
        assert len(secrets) == 1
        assert None not in secrets

    @pytest.mark.parametrize("name", ["postgres", "redis"])
    def test_backing_image_pinned(self, services: dict[str, Any], name: str) -> None:
        image = services[name]["image"]
        assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+(\.\d+)?[A-Za-z0-9.-]*", image), image

    def test_every_image_pinned(self, services: dict[str, Any]) -> None:
        unpinned = [
            name
            for name, service in services.items()
            if ":" not in service.get("image", "") or service["image"].endswith(":latest")
        ]
        assert unpinned == []

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_dags_mounted(self, services: dict[str, Any], name: str) -> None:
        mounts = [volume.split(":") for volume in services[name]["volumes"]]
        sources = [source for source, target, *_ in mounts if target == "/opt/airflow/dags"]
        assert [(COMPOSE.parent / source).resolve() for source in sources] == [REPO_ROOT / "dags_examples"]

    def test_example_dag_in_mount(self) -> None:
        assert (REPO_ROOT / "dags_examples" / "fxiaoke_presign_export.py").is_file()


class TestEmulatorService:
    def test_shares_worker_network(self, services: dict[str, Any]) -> None:
        assert services["fxiaoke-emulator"]["network_mode"] == "service:airflow-worker"

    def test_provider_image(self, services: dict[str, Any]) -> None:
        assert services["fxiaoke-emulator"]["image"] == services["airflow-worker"]["image"]

    def test_runs_emulator(self, services: dict[str, Any]) -> None:
        command = services["fxiaoke-emulator"]["command"]
        assert command[:3] == ["python", "-m", "fxiaoke_provider.testing"]

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_connection_points_at_emulator(self, services: dict[str, Any], name: str) -> None:
        command = services["fxiaoke-emulator"]["command"]
        emulator_url = f"http://{command[command.index('--host') + 1]}:{command[command.index('--port') + 1]}"
        assert _connection(services[name])["host"] == emulator_url

    def test_connection_valid(self, services: dict[str, Any]) -> None:
        conn = _connection(services["airflow-worker"])
        config = config_from_dict(conn)
        assert config.base_url.startswith("http://127.0.0.1:")

    @pytest.mark.parametrize(
        ("field", "expected"),
        [
            pytest.param("login", DEMO_CREDENTIALS.app_id, id="app-id"),
            pytest.param("password", DEMO_CREDENTIALS.app_secret, id="app-secret"),
        ],
    )
    def test_demo_credentials(self, services: dict[str, Any], field: str, expected: str) -> None:
        assert _connection(services["airflow-worker"])[field] == expected

    def test_demo_permanent_code(self, services: dict[str, Any]) -> None:
        extra = _connection(services["airflow-worker"])["extra"]
        assert extra["permanent_code"] == DEMO_CREDENTIALS.permanent_code


class TestReadme:
    def test_says_not_in_ci(self) -> None:
        readme = " ".join((REPO_ROOT / "README.md").read_text().split())
        assert "`docker/` is checked statically only; no test starts a container." in readme
