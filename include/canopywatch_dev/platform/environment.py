"""The local platform's generated credentials as the product reads them: ``CANOPYWATCH_*``
environment variables (and, in ``airflow_local``, Airflow connections).

The product never reads ``<home>/secrets``; this module is the one way the platform's secret
files reach it. A deployment with its own PostGIS, MinIO/S3 or Kafka sets the same variables.
"""

from __future__ import annotations

from dataclasses import replace

from canopywatch.settings import PREFIX, Settings
from canopywatch_dev.platform import minio, postgres, roles


def credential_env(settings: Settings) -> dict[str, str]:
    """The GIS logins of the platform, none a superuser: ``CANOPYWATCH_PG_USER`` /
    ``_PASSWORD`` (``cw_writer``: the CLI, the sync, areas, alerts),
    ``CANOPYWATCH_PG_READ_USER`` / ``_PASSWORD`` (``cw_reader``: the API's OGC features) and
    ``CANOPYWATCH_DBT_USER`` / ``_PASSWORD`` (``cw_dbt``: ``dbt`` with dbt/profiles.yml);
    then ``CANOPYWATCH_S3_ACCESS_KEY`` and ``CANOPYWATCH_S3_SECRET_KEY``."""
    access_key, secret_key = minio.credentials(settings)
    user, password = roles.login(settings, roles.WRITER)
    read_user, read_password = roles.login(settings, roles.READER)
    dbt_user, dbt_password = roles.login(settings, roles.DBT)
    return {
        f"{PREFIX}PG_USER": user,
        f"{PREFIX}PG_PASSWORD": password,
        f"{PREFIX}PG_READ_USER": read_user,
        f"{PREFIX}PG_READ_PASSWORD": read_password,
        f"{PREFIX}DBT_USER": dbt_user,
        f"{PREFIX}DBT_PASSWORD": dbt_password,
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
