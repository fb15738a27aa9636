"""docker-compose.yaml's ``cluster`` profile describes the same cluster as
``python -m canopywatch_dev.platform.cluster`` (no services needed: runs in ``make test``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from canopywatch.settings import REPO_ROOT
from canopywatch_dev.platform.cluster import SERVICES, stack
from canopywatch_dev.platform.cluster.kafka import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR
from canopywatch_dev.platform.cluster.profile import KAFKA_BROKERS, Profile
from canopywatch_dev.platform.kafka import TOPICS


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(Path(REPO_ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    return dict(document["services"])


def _published(service: dict[str, Any]) -> set[int]:
    return {int(str(spec).split(":")[-2]) for spec in service.get("ports", [])}


def test_every_cluster_service_is_in_the_cluster_profile(services: dict[str, Any]) -> None:
    mapping = stack.compose_services()
    assert set(mapping) == set(SERVICES)
    in_profile = {n for n, s in services.items() if "cluster" in (s.get("profiles") or [])}
    assert set().union(*mapping.values()) == in_profile
    # the local profile's services stay outside it
    assert {"postgis", "kafka", "minio", "airflow-scheduler"}.isdisjoint(in_profile)


def test_the_cluster_profile_publishes_the_cluster_ports(services: dict[str, Any]) -> None:
    profile = Profile()
    ports = profile.ports()
    # the controllers' and workers' own RPC ports are internal to the cluster
    internal = {profile.kafka_controller_port(n) for n in range(1, KAFKA_BROKERS + 1)} | {
        profile.spark_worker_port(w) for w in (1, 2)
    }
    for name, compose_names in stack.compose_services().items():
        published = set().union(*(_published(services[n]) for n in compose_names))
        assert published == set(ports[name]) - internal, name


def test_kafka_brokers_replicate_three_ways_without_unclean_elections(
    services: dict[str, Any],
) -> None:
    for n in range(1, KAFKA_BROKERS + 1):
        env = services[f"kafka-{n}"]["environment"]
        assert env["KAFKA_NODE_ID"] == n
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == REPLICATION_FACTOR
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == MIN_INSYNC_REPLICAS
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == KAFKA_BROKERS
    script = "\n".join(services["kafka-cluster-init"]["command"])
    specs = dict(re.findall(r"([a-z.-]+):(\d+)", script.split("; do")[0]))
    assert {name: int(n) for name, n in specs.items()} == TOPICS
    assert "--replication-factor 3" in script and "min.insync.replicas=2" in script


def test_airflow_runs_celery_and_minio_four_drives(services: dict[str, Any]) -> None:
    for name in ("airflow-cluster-scheduler", "airflow-cluster-celery-worker-1"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert "spark://spark-master" in env["AIRFLOW_CONN_SPARK_DEFAULT"]
        assert env["CANOPYWATCH_KAFKA_BOOTSTRAP"].count(",") == KAFKA_BROKERS - 1
    workers = [n for n in services if n.startswith("airflow-cluster-celery-worker-")]
    assert len(workers) == 2
    assert "/data{1...4}" in services["minio-cluster"]["command"]
    assert len(services["minio-cluster"]["volumes"]) == 4
