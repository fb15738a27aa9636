"""The lake and the catalog from Airflow connections (Airflow imported lazily)."""

from __future__ import annotations

import logging
from typing import Any

from canopywatch.lake.tables import LAKE_PREFIX, S3_REGION, Lake

log = logging.getLogger(__name__)


def lake_from_airflow(aws_conn_id: str, bucket: str, prefix: str = LAKE_PREFIX) -> Lake:
    """The lake in ``bucket`` through an ``aws`` connection (login/password, extra endpoint_url)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(aws_conn_id)
    extra = conn.extra_dejson
    endpoint = extra.get("endpoint_url") or (extra.get("service_config", {}).get("s3") or {}).get(
        "endpoint_url"
    )
    return Lake.s3(
        bucket,
        endpoint_url=endpoint,
        access_key=conn.login or "",
        secret_key=conn.password or "",
        region=extra.get("region_name") or S3_REGION,
        prefix=prefix,
    )


def postgis_from_airflow(postgres_conn_id: str) -> Any:
    """A psycopg 3 connection from a ``postgres`` connection."""
    import psycopg
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(postgres_conn_id)
    options = conn.extra_dejson.get("options")  # e.g. "-c search_path=myschema,public"
    return psycopg.connect(
        host=conn.host or "127.0.0.1",
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password,
        dbname=conn.schema or "postgres",
        **({"options": options} if options else {}),
    )
