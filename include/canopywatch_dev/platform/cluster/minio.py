"""MinIO in distributed (erasure-coded) mode: one server over 4 drive directories.

``minio server <data>/minio/drive{1...4}`` forms one erasure set of 4 drives (2 data + 2
parity by default), so objects survive the loss of 2 drives. The same binary and root
credentials scheme as the local profile (``secrets/minio.json`` under the cluster home).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from canopywatch.settings import Settings
from canopywatch_dev.platform import minio as local_minio
from canopywatch_dev.platform import process
from canopywatch_dev.platform.cluster.profile import MINIO_DRIVES, Profile
from canopywatch_dev.platform.paths import service_data_dir
from canopywatch_dev.platform.prerequisites import minio_binary, require

NAME = "minio"
PROCESSES = (NAME,)
COMPOSE_SERVICES = ("minio-cluster", "minio-cluster-init")
START_TIMEOUT = 90.0

log = logging.getLogger("canopywatch_dev.platform")


def drives(settings: Settings) -> list[str]:
    data = service_data_dir(settings, NAME)
    return [str(data / f"drive{n}") for n in range(1, MINIO_DRIVES + 1)]


def drive_pattern(settings: Settings) -> str:
    """MinIO's ellipsis notation for the drives: ``.../drive{1...4}``."""
    return str(service_data_dir(settings, NAME) / f"drive{{1...{MINIO_DRIVES}}}")


def healthy(settings: Settings) -> bool:
    # the cluster endpoint answers 200 only when the erasure set has write quorum
    return process.http_ok(settings.s3_endpoint.rstrip("/") + "/minio/health/cluster")


def up(profile: Profile, settings: Settings) -> None:
    require(settings, "minio")
    with process.platform_lock(settings):
        pid = process.settle(settings, NAME, lambda: healthy(settings))
        if pid is not None:
            log.info("minio: already running on %s (pid %d)", local_minio.address(settings), pid)
            local_minio.ensure_buckets(settings)
            return
        host, port = process.split_host_port(local_minio.address(settings))
        for taken in (port, settings.minio_console_port):
            if process.port_open(host, taken):
                raise process.PlatformError(
                    f"minio: port {host}:{taken} is taken by another process; stop it or "
                    "set CANOPYWATCH_CLUSTER_PORT_BASE"
                )
        for drive in drives(settings):
            Path(drive).mkdir(parents=True, exist_ok=True)
        access_key, secret_key = local_minio.credentials(settings)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": access_key,
            "MINIO_ROOT_PASSWORD": secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER_REDIRECT": "off",
            # on loopback the 4 drives are folders on the root disk, which an erasure set
            # refuses ("drive not found") unless its root-disk check is off
            "MINIO_CI_CD": "on",
        }
        argv = [
            str(minio_binary(settings)),
            "server",
            drive_pattern(settings),
            "--address", f"{host}:{port}",
            "--console-address", f"{host}:{settings.minio_console_port}",
            "--quiet",
            "--anonymous",
        ]  # fmt: skip
        pid = process.start_daemon(
            settings, NAME, argv, env=env, cwd=service_data_dir(settings, NAME)
        )
        took = process.wait_healthy(
            settings, NAME, lambda: healthy(settings), pid=pid, timeout=START_TIMEOUT
        )
        log.info(
            "minio: started on %s over %d drives (erasure coding; pid %d, %.1f s)",
            local_minio.address(settings),
            MINIO_DRIVES,
            pid,
            took,
        )
        local_minio.ensure_buckets(settings)


def down(profile: Profile, settings: Settings) -> None:
    with process.platform_lock(settings):
        stopped = process.stop(settings, NAME, timeout=30)
    log.info("minio: %s", "stopped" if stopped else "not running")


def status(profile: Profile, settings: Settings) -> list[process.ProcessStatus]:
    return [
        process.single_status(
            settings, NAME, local_minio.address(settings), lambda: healthy(settings)
        )
    ]
