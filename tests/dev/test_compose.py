"""docker-compose.yaml describes the same stack as the local platform scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from canopywatch.settings import REPO_ROOT, Settings
from canopywatch_dev.platform import SERVICES, stack
from canopywatch_dev.platform.kafka import TOPICS

COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ONE_SHOT = {"kafka-init", "minio-init", "airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(Path(COMPOSE_FILE).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _published(service: dict[str, Any]) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        # "127.0.0.1:HOST:CONTAINER" or "HOST:CONTAINER"
        parts = str(spec).split(":")
        ports.add(int(parts[-2]))
    return ports


def test_every_local_service_is_in_compose(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    mapping = stack.compose_services()
    assert set(mapping) == set(SERVICES)
    for local, compose_names in mapping.items():
        assert compose_names, local
        missing = set(compose_names) - names
        assert not missing, f"{local}: {missing} not in docker-compose.yaml"


def test_services_have_images_and_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("image"), f"{name} has no image"
        if name not in ONE_SHOT:
            test = service.get("healthcheck", {}).get("test")
            assert test, f"{name} has no healthcheck"


def test_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgis"]["image"] == "postgis/postgis:15-3.4"
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio-init"]["image"].startswith("minio/mc")
    dockerfile = services["airflow-apiserver"]["build"]["dockerfile_inline"]
    assert "FROM apache/airflow:3.3.2" in dockerfile
    assert "requirements.txt" in dockerfile


def test_same_ports_as_local_platform(compose: dict[str, Any]) -> None:
    services = compose["services"]
    local_ports = stack.published_ports(Settings())
    for local, compose_names in stack.compose_services().items():
        published = set().union(*(_published(services[n]) for n in compose_names))
        assert published == set(local_ports[local]), local


def test_one_shot_jobs_do_not_restart(compose: dict[str, Any]) -> None:
    for name in ONE_SHOT:
        assert compose["services"][name].get("restart") == "no", name


def test_kafka_init_creates_the_same_topics(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    specs = dict(re.findall(r"([a-z.-]+):(\d+)", script.split("; do")[0]))
    assert {name: int(n) for name, n in specs.items()} == TOPICS


def test_airflow_connections_and_env_names_match_local(compose: dict[str, Any]) -> None:
    env = compose["services"]["airflow-scheduler"]["environment"]
    for conn_id in (
        "kafka_default",
        "minio_default",
        "postgis_default",
        "spark_default",
        "cdse_default",
    ):
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    local = Settings()
    assert env["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{local.airflow_port}"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
