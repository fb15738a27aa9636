"""MinIO (S3 API) built from source with ``go install``, data under ``<home>/data/minio``.

The root user and password are generated on first start into ``secrets/minio.json``
(0600) and reach the server through its environment only. Buckets ``settings.bucket``
and ``settings.exports_bucket`` are created with boto3 (idempotent).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from canopywatch.settings import Settings
from canopywatch_dev.platform import process
from canopywatch_dev.platform.credentials import load_or_create, new_password
from canopywatch_dev.platform.paths import ensure_layout, service_data_dir
from canopywatch_dev.platform.prerequisites import minio_binary, require

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any

NAME = "minio"
PROCESSES = (NAME,)
COMPOSE_SERVICES = ("minio", "minio-init")
START_TIMEOUT = 60.0
REGION = "us-east-1"

log = logging.getLogger("canopywatch_dev.platform")


def credentials(settings: Settings) -> tuple[str, str]:
    """``(access_key, secret_key)`` of the MinIO root user: the settings' S3 keys when set,
    else the platform's (generated on first use, stored 0600)."""
    if settings.s3_access_key and settings.s3_secret_key:
        return settings.s3_access_key, settings.s3_secret_key
    values = load_or_create(
        settings,
        NAME,
        lambda: {
            "access_key": "canopywatch-" + new_password(8).lower(),
            "secret_key": new_password(40),
        },
    )
    return values["access_key"], values["secret_key"]


def s3_client(settings: Settings) -> S3Client:
    """A boto3 S3 client for the local MinIO (path-style addressing)."""
    import boto3
    from botocore.config import Config

    access_key, secret_key = credentials(settings)
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def address(settings: Settings) -> str:
    return urlsplit(settings.s3_endpoint).netloc


def _host_port(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.s3_endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 9000


def healthy(settings: Settings) -> bool:
    return process.http_ok(settings.s3_endpoint.rstrip("/") + "/minio/health/ready")


def ensure_buckets(settings: Settings) -> list[str]:
    """Create the data and exports buckets if missing; returns the ones it created."""
    client = s3_client(settings)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    created = []
    for bucket in (settings.bucket, settings.exports_bucket):
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
            created.append(bucket)
    if created:
        log.info("minio: created buckets %s", ", ".join(created))
    return created


@process.locked
def up(settings: Settings) -> None:
    require(settings, "minio")
    # a process on its way out (or hung) is waited for, or stopped, never taken as running
    pid = process.settle(settings, NAME, lambda: healthy(settings))
    if pid is not None:
        log.info("minio: already running on %s (pid %d)", address(settings), pid)
        ensure_buckets(settings)
        return
    if pid is None:
        host, port = _host_port(settings)
        for taken in (port, settings.minio_console_port):
            if process.port_open(host, taken):
                raise process.PlatformError(
                    f"minio: port {host}:{taken} is taken by another process; stop it or "
                    "set CANOPYWATCH_S3_ENDPOINT / CANOPYWATCH_MINIO_CONSOLE_PORT"
                )
        ensure_layout(settings)
        data = service_data_dir(settings, NAME)
        data.mkdir(parents=True, exist_ok=True)
        access_key, secret_key = credentials(settings)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": access_key,
            "MINIO_ROOT_PASSWORD": secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER_REDIRECT": "off",
        }
        binary = minio_binary(settings)
        argv = [
            str(binary),
            "server",
            str(data),
            "--address", f"{host}:{port}",
            "--console-address", f"{host}:{settings.minio_console_port}",
            "--quiet",
            "--anonymous",
        ]  # fmt: skip
        pid = process.start_daemon(settings, NAME, argv, env=env, cwd=data)
    took = process.wait_healthy(
        settings, NAME, lambda: healthy(settings), pid=pid, timeout=START_TIMEOUT
    )
    log.info("minio: started on %s (pid %d, %.1f s)", address(settings), pid, took)
    ensure_buckets(settings)


@process.locked
def down(settings: Settings) -> None:
    if process.stop(settings, NAME, timeout=30):
        log.info("minio: stopped")
    else:
        log.info("minio: not running")


def status(settings: Settings) -> list[process.ProcessStatus]:
    return [process.single_status(settings, NAME, address(settings), lambda: healthy(settings))]
