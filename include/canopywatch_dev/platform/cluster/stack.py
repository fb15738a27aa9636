"""The cluster profile's services as one stack: start order, dependencies, status.

PostgreSQL/PostGIS and the CDSE emulator are the local profile's modules run with the
cluster's settings; Redis, the Kafka brokers, MinIO, Spark and Airflow are this package's.
``up`` is idempotent and starts only what is not running, so after a ``kill -9`` of one
broker, worker or Spark worker, ``up SERVICE`` restarts just that process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from canopywatch.settings import Settings
from canopywatch_dev.platform import emulator, postgres
from canopywatch_dev.platform.cluster import SERVICES, airflow, kafka, minio, redis, spark
from canopywatch_dev.platform.cluster.layout import link_installed
from canopywatch_dev.platform.cluster.profile import Profile
from canopywatch_dev.platform.process import PlatformError, ProcessStatus

log = logging.getLogger("canopywatch_dev.platform")

# what a service needs running before it starts
DEPENDS: dict[str, tuple[str, ...]] = {
    "airflow": ("postgres", "redis", "kafka", "minio", "spark", "emulator")
}

# the simulated area the cluster's CDSE endpoint serves (the integration test's): forest,
# pasture and dated clearings, long enough for the harmonic detector's history
WORLD = {
    "areas": [
        {
            "name": "cluster-area",
            "bbox": [-55.40, -7.10, -55.38, -7.08],
            "start": "2023-10-01",
            "end": "2024-06-30",
            "seed": 11,
        }
    ]
}


@dataclass(frozen=True)
class Service:
    name: str
    processes: tuple[str, ...]
    compose_services: tuple[str, ...]
    up: Callable[[Profile, Settings], None]
    down: Callable[[Profile, Settings], None]
    status: Callable[[Profile, Settings], list[ProcessStatus]]


def _emulator_up(profile: Profile, settings: Settings) -> None:
    world = emulator.world_file(settings)
    if not world.exists():
        world.parent.mkdir(parents=True, exist_ok=True)
        world.write_text(json.dumps(WORLD, indent=2) + "\n", encoding="utf-8")
    emulator.up(settings)


_SERVICES: dict[str, Service] = {
    "postgres": Service(
        "postgres",
        postgres.PROCESSES,
        ("postgis-cluster",),
        lambda _p, s: postgres.up(s),
        lambda _p, s: postgres.down(s),
        lambda _p, s: postgres.status(s),
    ),
    "redis": Service(
        "redis", redis.PROCESSES, redis.COMPOSE_SERVICES, redis.up, redis.down, redis.status
    ),
    "kafka": Service(
        "kafka", kafka.PROCESSES, kafka.COMPOSE_SERVICES, kafka.up, kafka.down, kafka.status
    ),
    "minio": Service(
        "minio", minio.PROCESSES, minio.COMPOSE_SERVICES, minio.up, minio.down, minio.status
    ),
    "spark": Service(
        "spark", spark.PROCESSES, spark.COMPOSE_SERVICES, spark.up, spark.down, spark.status
    ),
    "emulator": Service(
        "emulator",
        emulator.PROCESSES,
        ("cdse-emulator-cluster",),
        _emulator_up,
        lambda _p, s: emulator.down(s),
        lambda _p, s: emulator.status(s),
    ),
    "airflow": Service(
        "airflow",
        airflow.PROCESSES,
        airflow.COMPOSE_SERVICES,
        airflow.up,
        airflow.down,
        airflow.status,
    ),
}


class UnknownServiceError(PlatformError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")


def service(name: str) -> Service:
    if name not in _SERVICES:
        raise UnknownServiceError(name)
    return _SERVICES[name]


def _ordered(names: Iterable[str], *, with_dependencies: bool) -> list[str]:
    wanted = set(names) or set(SERVICES)
    for name in wanted:
        service(name)
    if with_dependencies:
        for name in list(wanted):
            wanted.update(DEPENDS.get(name, ()))
    return [name for name in SERVICES if name in wanted]


def up(profile: Profile, names: Iterable[str] = ()) -> Settings:
    """Start the named services (all when none) and what they need; returns the settings."""
    settings = profile.settings()
    link_installed(settings)
    for name in _ordered(names, with_dependencies=True):
        service(name).up(profile, settings)
    return settings


def down(profile: Profile, names: Iterable[str] = ()) -> None:
    """Stop the named services (all when none), in reverse start order."""
    settings = profile.settings()
    for name in reversed(_ordered(names, with_dependencies=False)):
        service(name).down(profile, settings)


def status(profile: Profile, names: Iterable[str] = ()) -> list[ProcessStatus]:
    settings = profile.settings()
    rows: list[ProcessStatus] = []
    for name in _ordered(names, with_dependencies=False):
        rows.extend(service(name).status(profile, settings))
    return rows


def compose_services() -> dict[str, tuple[str, ...]]:
    """docker-compose.yaml service names (profile ``cluster``) for each cluster service."""
    return {name: service(name).compose_services for name in SERVICES}
