"""The local platform: PostgreSQL/PostGIS, Kafka, MinIO, the CDSE emulator, Airflow, the API.

Started as plain background processes (no Docker) with ``python -m canopywatch_dev.platform``;
``docker-compose.yaml`` describes the same stack for Docker users.
"""

from __future__ import annotations

# start order; ``up`` also starts what a service depends on (see canopywatch_dev.platform.stack)
SERVICES: tuple[str, ...] = ("postgres", "kafka", "minio", "emulator", "airflow", "api")

__all__ = ["SERVICES"]
