"""A platform instance of the campaign's own: PostgreSQL/PostGIS, Kafka, MinIO and the CDSE
endpoint under a home folder of its own, on free loopback ports, with canary credentials.

The user's running platform is never touched: nothing here reads or writes its home except
the installed binaries (``bin/`` and ``lib/``, linked read-only into the new home), and
every port is one the kernel gave out as free. ``stop`` tears the instance down and removes
its home.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from canopywatch.settings import PREFIX, Settings
from canopywatch_dev.platform import kafka, minio, stack
from canopywatch_dev.platform.process import read_pid

SERVICES = ("postgres", "kafka", "minio", "emulator")
# a small simulated area: one request tile, ~110 x 110 px, a year of acquisitions (each run
# covers a random 30-60 day window of it)
AREA = {
    "name": "faults-area",
    "bbox": [-55.400, -7.100, -55.390, -7.090],
    "start": "2023-07-01",
    "end": "2024-06-30",
    "seed": 23,
}


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports of the loopback that were free a moment ago."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


@dataclass(frozen=True)
class Canaries:
    """Credentials planted in the instance: none of them may show up anywhere they land."""

    pg_password: str
    s3_secret_key: str
    cdse_client_secret: str

    @classmethod
    def new(cls) -> Canaries:
        return cls(*(f"CANARY{kind}{secrets.token_hex(12)}" for kind in ("pg", "s3", "cdse")))

    def values(self) -> tuple[str, ...]:
        return (self.pg_password, self.s3_secret_key, self.cdse_client_secret)


@dataclass(frozen=True)
class Instance:
    settings: Settings
    canaries: Canaries

    def env(self) -> dict[str, str]:
        """Every CANOPYWATCH_* variable a task of this instance gets (canaries included): all
        the settings, so nothing of the calling process's environment (the user's platform,
        another test's schema or topics) reaches a task."""
        env = {
            PREFIX + f.name.upper(): _text(getattr(self.settings, f.name)) for f in fields(Settings)
        }
        env[f"{PREFIX}SH_MAX_RETRIES"] = "2"
        env[f"{PREFIX}DOWNLOAD_CONCURRENCY"] = "2"
        # the local CDSE endpoint speaks plain HTTP on the loopback (as in airflow_local)
        env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        return env

    def pid(self, service: str) -> int | None:
        return read_pid(self.settings, service)

    def up(self, services: tuple[str, ...] = SERVICES) -> None:
        stack.up(self.settings, services)

    def alive(self, service: str) -> bool:
        return all(row.state == "running" for row in stack.status(self.settings, [service]))


WARM_UP_TOPIC = "sensor-readings.dlq"  # a topic no run reads


def warm_up(settings: Settings, timeout: float = 120.0) -> None:
    """Wait until a fresh broker takes an idempotent producer's message (its coordinators are
    loaded), so the first run does not time out on the broker's own start-up."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    while True:
        failures.clear()
        producer.produce(
            settings.topic(WARM_UP_TOPIC),
            b"warm-up",
            on_delivery=lambda err, _m: failures.append(str(err)) if err else None,
        )
        if producer.flush(30) == 0 and not failures:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"kafka of the instance takes no message: {failures[:1]}")


def _text(value: object) -> str:
    """A settings value as ``Settings.from_env`` reads it back (empty: the default)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def link_installed(base: Settings, home: Path) -> None:
    """The installed binaries and jars of the user's platform, linked (never copied)."""
    for name in ("bin", "lib", "stamps"):
        source = base.home / name
        if source.exists():
            (home / name).symlink_to(source, target_is_directory=True)


def settings_for(home: Path, base: Settings, canaries: Canaries, name: str = "faults") -> Settings:
    """``base`` moved to an instance of its own: ``home``, free ports, the canary
    credentials, and ``name`` for its schema, topics, buckets and client ids."""
    pg, broker, controller, s3, console, emulator, airflow, api = free_ports(8)
    world = home / "world.json"
    return replace(
        base,
        home=home,
        pg_port=pg,
        pg_password=canaries.pg_password,
        pg_schema=name,
        kafka_bootstrap=f"127.0.0.1:{broker}",
        kafka_controller_port=controller,
        s3_endpoint=f"http://127.0.0.1:{s3}",
        s3_access_key=f"{name}-" + secrets.token_hex(4),
        s3_secret_key=canaries.s3_secret_key,
        minio_console_port=console,
        emulator_port=emulator,
        emulator_world=str(world),
        sh_base_url=f"http://127.0.0.1:{emulator}",
        sh_token_url=f"http://127.0.0.1:{emulator}/auth/realms/CDSE/protocol/openid-connect/token",
        cdse_client_id=f"{name}-client",
        cdse_client_secret=canaries.cdse_client_secret,
        airflow_port=airflow,
        api_port=api,
        topic_prefix=name,
        bucket=name,
        exports_bucket=f"{name}-exports",
    )


@contextlib.contextmanager
def running(base: Settings | None = None) -> Iterator[Instance]:
    """Start an instance (own home, own ports, canary credentials); stop and remove it after."""
    base = base or Settings.from_env()
    # under /tmp and traversable: the postgres OS user runs the cluster in it
    home = Path(tempfile.mkdtemp(prefix="canopywatch-faults-", dir="/tmp"))
    home.chmod(0o755)
    canaries = Canaries.new()
    settings = settings_for(home, base, canaries)
    Path(settings.emulator_world).write_text(
        json.dumps({"areas": [AREA]}, indent=2) + "\n", encoding="utf-8"
    )
    link_installed(base, home)
    instance = Instance(settings, canaries)
    try:
        instance.up()
        kafka.ensure_topics(settings)
        minio.ensure_buckets(settings)
        warm_up(settings)
        yield instance
    finally:
        try:
            stack.down(settings, SERVICES)
        finally:
            if os.environ.get("CANOPYWATCH_FAULTS_KEEP") != "1":
                shutil.rmtree(home, ignore_errors=True)
