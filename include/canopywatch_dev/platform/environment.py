"""The local platform's generated credentials as the product reads them: ``CANOPYWATCH_*``
environment variables (and, in ``airflow_local``, Airflow connections).

The product never reads ``<home>/secrets``; this module is the one way the platform's secret
files reach it. A deployment with its own PostGIS, MinIO/S3 or Kafka sets the same variables.
"""

from __future__ import annotations

from dataclasses import replace

from canopywatch.settings import PREFIX, Settings
from canopywatch_dev.platform import minio, postgres


def credential_env(settings: Settings) -> dict[str, str]:
    """``CANOPYWATCH_PG_PASSWORD``, ``CANOPYWATCH_S3_ACCESS_KEY`` and
    ``CANOPYWATCH_S3_SECRET_KEY`` of the platform (values set in ``settings`` win)."""
    access_key, secret_key = minio.credentials(settings)
    return {
        f"{PREFIX}PG_PASSWORD": postgres.password(settings),
        f"{PREFIX}S3_ACCESS_KEY": access_key,
        f"{PREFIX}S3_SECRET_KEY": secret_key,
    }


def with_credentials(settings: Settings) -> Settings:
    """``settings`` with the platform's PostgreSQL password and S3 keys where none is set."""
    access_key, secret_key = minio.credentials(settings)
    return replace(
        settings,
        pg_password=postgres.password(settings),
        s3_access_key=access_key,
        s3_secret_key=secret_key,
    )
