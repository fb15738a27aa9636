"""Clients built from Airflow connections: the object store, the lake, PostGIS, Kafka, CDSE.

Airflow's hooks and the library clients are imported inside the functions, so a DAG file
that imports a step module at parse time loads neither the providers nor the heavy libraries.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canopywatch.lake.tables import Lake
    from canopywatch.settings import Settings
    from canopywatch.sources.copernicus import CdseEndpoint
    from canopywatch.storage.objects import ObjectStore

log = logging.getLogger(__name__)


def cdse_endpoint(conn_id: str, settings: Settings) -> CdseEndpoint:
    """The CDSE endpoint from an Airflow connection, else from CANOPYWATCH_* variables."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from canopywatch.sources.copernicus import CdseEndpoint

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info(
            "no Airflow connection %r: reading CANOPYWATCH_CDSE_* from the environment", conn_id
        )
        return CdseEndpoint.from_settings(settings)
    return CdseEndpoint.from_connection(conn.login, conn.password, conn.extra_dejson)


def spark_s3_access(aws_conn_id: str) -> tuple[str | None, str, str, str]:
    """(endpoint, region, access key, secret key) of an S3 connection for a Spark job; the
    keys are masked in the task log before anything can print them."""
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    from canopywatch.cog.submit import S3_REGION

    aws = BaseHook.get_connection(aws_conn_id)
    extra = aws.extra_dejson
    access_key, secret_key = aws.login or "", aws.password or ""
    for secret in (access_key, secret_key):
        if secret:
            mask_secret(secret)
    return extra.get("endpoint_url"), extra.get("region_name") or S3_REGION, access_key, secret_key


def object_store(aws_conn_id: str, bucket: str) -> ObjectStore:
    """``bucket`` through an ``aws`` connection's S3 client."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from canopywatch.storage.objects import ObjectStore

    return ObjectStore(S3Hook(aws_conn_id=aws_conn_id).get_conn(), bucket)


def lake(aws_conn_id: str, bucket: str, prefix: str | None = None) -> Lake:
    """The lake in ``bucket`` through an ``aws`` connection (login/password, extra endpoint_url);
    ``prefix`` defaults to the lake's own (``lake/``)."""
    from airflow.sdk import BaseHook

    from canopywatch.lake.tables import LAKE_PREFIX, S3_REGION, Lake

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
        prefix=LAKE_PREFIX if prefix is None else prefix,
    )


def postgis(postgres_conn_id: str) -> Any:
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


def kafka_producer(kafka_conn_id: str) -> Any:
    """A confluent-kafka producer from a ``kafka`` connection."""
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    return KafkaProducerHook(kafka_config_id=kafka_conn_id).get_producer()


def kafka_bootstrap(kafka_conn_id: str) -> str:
    """The ``bootstrap.servers`` of a ``kafka`` connection."""
    from airflow.sdk import BaseHook

    bootstrap = BaseHook.get_connection(kafka_conn_id).extra_dejson.get("bootstrap.servers")
    if not bootstrap:
        raise ValueError(f"connection {kafka_conn_id} has no bootstrap.servers extra")
    return str(bootstrap)
