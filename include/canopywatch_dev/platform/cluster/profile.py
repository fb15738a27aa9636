"""Where the cluster profile lives: its home directory and its ports.

Every port is ``port_base`` plus a fixed offset, so a second instance (the integration
test's) only needs another base. Defaults: home ``.platform/cluster``, base ``29000``;
``CANOPYWATCH_CLUSTER_HOME`` and ``CANOPYWATCH_CLUSTER_PORT_BASE`` override them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from canopywatch.settings import REPO_ROOT, Settings

DEFAULT_HOME = REPO_ROOT / ".platform" / "cluster"
DEFAULT_PORT_BASE = 29000
KAFKA_BROKERS = 3
SPARK_WORKERS = 2
CELERY_WORKERS = 2
MINIO_DRIVES = 4

# offsets from the port base
_MINIO, _MINIO_CONSOLE = 0, 1
_SPARK_MASTER, _SPARK_MASTER_UI = 77, 180  # workers: +78.. and +181..
_AIRFLOW = 80
_KAFKA = 92  # broker n (1-based): +92 + 100 (n - 1); its controller listener one above
_REDIS = 379
_POSTGRES = 432
_EMULATOR = 500
_API = 600


class ProfileError(ValueError):
    """CANOPYWATCH_CLUSTER_* holds a value that cannot be used."""


@dataclass(frozen=True)
class Profile:
    """One cluster instance: its home and port base."""

    home: Path = DEFAULT_HOME
    port_base: int = DEFAULT_PORT_BASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Profile:
        env = os.environ if environ is None else environ
        home = env.get("CANOPYWATCH_CLUSTER_HOME") or ""
        base = env.get("CANOPYWATCH_CLUSTER_PORT_BASE") or ""
        try:
            port_base = int(base) if base else DEFAULT_PORT_BASE
        except ValueError as exc:
            raise ProfileError(f"CANOPYWATCH_CLUSTER_PORT_BASE={base!r} is not a port") from exc
        if not 1024 <= port_base <= 64000:
            raise ProfileError(f"CANOPYWATCH_CLUSTER_PORT_BASE={port_base} is not in 1024-64000")
        return cls(Path(home).expanduser().resolve() if home else DEFAULT_HOME, port_base)

    # ports ----------------------------------------------------------------------------
    def kafka_port(self, node: int) -> int:
        return self.port_base + _KAFKA + 100 * (node - 1)

    def kafka_controller_port(self, node: int) -> int:
        return self.kafka_port(node) + 1

    @property
    def redis_port(self) -> int:
        return self.port_base + _REDIS

    @property
    def spark_master_port(self) -> int:
        return self.port_base + _SPARK_MASTER

    @property
    def spark_master_ui_port(self) -> int:
        return self.port_base + _SPARK_MASTER_UI

    def spark_worker_port(self, worker: int) -> int:
        return self.spark_master_port + worker

    def spark_worker_ui_port(self, worker: int) -> int:
        return self.spark_master_ui_port + worker

    @property
    def spark_master_url(self) -> str:
        return f"spark://127.0.0.1:{self.spark_master_port}"

    def ports(self) -> dict[str, tuple[int, ...]]:
        """Every TCP port each service listens on."""
        return {
            "postgres": (self.port_base + _POSTGRES,),
            "redis": (self.redis_port,),
            "kafka": tuple(
                port
                for n in range(1, KAFKA_BROKERS + 1)
                for port in (self.kafka_port(n), self.kafka_controller_port(n))
            ),
            "minio": (self.port_base + _MINIO, self.port_base + _MINIO_CONSOLE),
            "spark": (
                self.spark_master_port,
                self.spark_master_ui_port,
                *(self.spark_worker_port(w) for w in range(1, SPARK_WORKERS + 1)),
                *(self.spark_worker_ui_port(w) for w in range(1, SPARK_WORKERS + 1)),
            ),
            "emulator": (self.port_base + _EMULATOR,),
            "airflow": (self.port_base + _AIRFLOW,),
        }

    def settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """The product's settings on this cluster: the environment's, with the cluster's
        home, addresses and the local CDSE endpoint; credentials are the cluster's own
        (generated under its home), never the local profile's."""
        base = Settings.from_env(environ)
        bootstrap = ",".join(f"127.0.0.1:{self.kafka_port(n)}" for n in range(1, KAFKA_BROKERS + 1))
        emulator_port = self.port_base + _EMULATOR
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        return replace(
            base,
            home=self.home,
            pg_port=self.port_base + _POSTGRES,
            pg_password="",
            kafka_bootstrap=bootstrap,
            kafka_controller_port=self.kafka_controller_port(1),
            s3_endpoint=f"http://127.0.0.1:{self.port_base + _MINIO}",
            s3_access_key="",
            s3_secret_key="",
            minio_console_port=self.port_base + _MINIO_CONSOLE,
            airflow_port=self.port_base + _AIRFLOW,
            emulator_port=emulator_port,
            emulator_world="",
            sh_base_url=emulator_url,
            sh_token_url=emulator_url + "/auth/realms/CDSE/protocol/openid-connect/token",
            cdse_client_id="",
            cdse_client_secret="",
            api_port=self.port_base + _API,
        )
