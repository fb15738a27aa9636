"""The services of the local platform as one stack: start order, dependencies, status.

Each service module (postgres, kafka, minio, emulator, airflow_local, api) provides
``NAME``, ``PROCESSES``, ``COMPOSE_SERVICES``, ``up``, ``down`` and ``status``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from canopywatch.settings import Settings
from canopywatch_dev.platform import (
    SERVICES,
    airflow_local,
    api,
    emulator,
    kafka,
    minio,
    postgres,
)
from canopywatch_dev.platform.process import PlatformError, ProcessStatus, split_host_port

_MODULES: dict[str, ModuleType] = {
    "postgres": postgres,
    "kafka": kafka,
    "minio": minio,
    "emulator": emulator,
    "airflow": airflow_local,
    "api": api,
}
# what a service needs running before it starts
DEPENDS: dict[str, tuple[str, ...]] = {"airflow": ("postgres",), "api": ("postgres", "minio")}


@dataclass(frozen=True)
class Service:
    name: str
    processes: tuple[str, ...]
    compose_services: tuple[str, ...]
    up: Callable[[Settings], None]
    down: Callable[[Settings], None]
    status: Callable[[Settings], list[ProcessStatus]]


def service(name: str) -> Service:
    module = _MODULES.get(name)
    if module is None:
        raise UnknownServiceError(name)
    return Service(
        name=name,
        processes=tuple(module.PROCESSES),
        compose_services=tuple(module.COMPOSE_SERVICES),
        up=module.up,
        down=module.down,
        status=module.status,
    )


class UnknownServiceError(PlatformError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")


def _ordered(names: Iterable[str], *, with_dependencies: bool) -> list[str]:
    wanted = set(names) or set(SERVICES)
    for name in wanted:
        if name not in _MODULES:
            raise UnknownServiceError(name)
    if with_dependencies:
        for name in list(wanted):
            wanted.update(DEPENDS.get(name, ()))
    return [name for name in SERVICES if name in wanted]


def with_dependencies(names: Iterable[str]) -> list[str]:
    """The named services (all when none) and what they depend on, in start order."""
    return _ordered(names, with_dependencies=True)


def up(settings: Settings, names: Iterable[str] = ()) -> None:
    """Start the named services (all when none) and what they depend on; idempotent."""
    for name in _ordered(names, with_dependencies=True):
        service(name).up(settings)


def down(settings: Settings, names: Iterable[str] = ()) -> None:
    """Stop the named services (all when none), in reverse start order."""
    for name in reversed(_ordered(names, with_dependencies=False)):
        service(name).down(settings)


def status(settings: Settings, names: Iterable[str] = ()) -> list[ProcessStatus]:
    rows: list[ProcessStatus] = []
    for name in _ordered(names, with_dependencies=False):
        rows.extend(service(name).status(settings))
    return rows


def compose_services() -> dict[str, tuple[str, ...]]:
    """docker-compose.yaml service names for each local service."""
    return {name: service(name).compose_services for name in SERVICES}


def published_ports(settings: Settings) -> dict[str, tuple[int, ...]]:
    """TCP ports each local service listens on (docker-compose.yaml publishes the same)."""
    return {
        "postgres": (settings.pg_port,),
        "kafka": (split_host_port(settings.kafka_bootstrap)[1],),
        "minio": (split_host_port(minio.address(settings))[1], settings.minio_console_port),
        "emulator": (settings.emulator_port,),
        "airflow": (settings.airflow_port,),
        "api": (settings.api_port,),
    }
