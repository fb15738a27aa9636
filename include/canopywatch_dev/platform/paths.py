"""Where the local platform keeps its state, all under ``settings.home``.

<home>/data/<service>    service data (databases, logs of Kafka, MinIO objects)
<home>/logs/<name>.log   stdout/stderr of each background process
<home>/run/<name>.pid    pid of each background process
<home>/secrets/          generated credentials (directory 0700, files 0600)
<home>/bin/              installed binaries (minio)
<home>/lib/kafka/        Kafka broker jars (resolved by scripts/bootstrap.sh)
<home>/stamps/           bootstrap stamp files
"""

from __future__ import annotations

from pathlib import Path

from canopywatch.settings import Settings


def ensure_layout(settings: Settings) -> None:
    """Create the directory tree (idempotent); the secrets directory is 0700."""
    for directory in (settings.data_dir, settings.log_dir, settings.run_dir, bin_dir(settings)):
        directory.mkdir(parents=True, exist_ok=True)
    secrets_dir(settings).mkdir(parents=True, exist_ok=True)
    secrets_dir(settings).chmod(0o700)


def secrets_dir(settings: Settings) -> Path:
    """The platform's generated credentials (the product reads them only as CANOPYWATCH_*
    variables or Airflow connections, see ``environment``)."""
    return settings.home / "secrets"


def service_data_dir(settings: Settings, service: str) -> Path:
    return settings.data_dir / service


def log_file(settings: Settings, name: str) -> Path:
    return settings.log_dir / f"{name}.log"


def pid_file(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def bin_dir(settings: Settings) -> Path:
    return settings.home / "bin"


def kafka_lib_dir(settings: Settings) -> Path:
    return settings.home / "lib" / "kafka"
