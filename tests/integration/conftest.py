"""Integration fixtures: the real local services, started here, never skipped.

Each test session works in its own Kafka topics (``cwtest-<id>.*``) and bucket, so
runs never see each other's messages or objects; the services themselves are the
ones ``make platform-up`` starts (reused when already running).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest

from canopywatch.settings import Settings

DAG_ID = "deforestation_monitor"
TEST_METADATA_DB = "airflow_tests"
# a small simulated area: ~220 x 220 px, four months of acquisitions
AREA = {
    "name": "it-area",
    "bbox": (-55.40, -7.10, -55.38, -7.08),
    # long enough for the harmonic detector's 90-day history before the clearings (Jan-Mar)
    "start": "2023-10-01",
    "end": "2024-06-30",
    "seed": 11,
}

CONF = {
    "bbox": list(AREA["bbox"]),
    "start": "2023-11-01",
    "end": "2024-05-31",
    "max_cloud": 70,
    "function": "s2l2a_bands",
    "aoi_name": "it-area",
}


@pytest.fixture(scope="session", autouse=True)
def platform_credentials() -> None:
    """The platform's generated credentials as CANOPYWATCH_* variables (the product reads
    credentials only from Settings); values already set in the environment win."""
    from canopywatch_dev.platform.environment import credential_env

    os.environ.update(credential_env(Settings.from_env()))


@pytest.fixture(scope="session")
def platform() -> Iterator[Settings]:
    """PostgreSQL/PostGIS, Kafka and MinIO up, plus this session's topics and bucket."""
    from canopywatch_dev.platform import kafka, minio, stack

    base = Settings.from_env()
    stack.up(
        base, ["postgres", "kafka", "minio"]
    )  # raises PlatformError: the test errors, never skips
    session_id = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        pg_schema=f"cwtest_{session_id}",
        topic_prefix=f"cwtest-{session_id}",
        bucket=f"cwtest-{session_id}",
        exports_bucket=f"cwtest-{session_id}-exports",
    )
    kafka.ensure_topics(settings)
    minio.ensure_buckets(settings)
    from canopywatch.catalog.schema import connect, drop_schema

    connect(settings).close()  # creates the session's schema
    yield settings
    with connect(base) as conn:
        drop_schema(conn, settings.pg_schema)
    admin = kafka.admin_client(settings)
    admin.delete_topics(kafka.topic_names(settings), operation_timeout=30)
    s3 = minio.s3_client(settings)
    for bucket in (settings.bucket, settings.exports_bucket):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)


@contextmanager
def topics_of_their_own(platform: Settings, suffix: str) -> Iterator[Settings]:
    """The session's services with Kafka topics of the caller's own (deleted afterwards):
    a module that produces hand-made messages never feeds another module's consumers."""
    from canopywatch_dev.platform import kafka

    settings = replace(platform, topic_prefix=f"{platform.topic_prefix}-{suffix}")
    kafka.ensure_topics(settings)
    try:
        yield settings
    finally:
        admin = kafka.admin_client(settings)
        admin.delete_topics(kafka.topic_names(settings), operation_timeout=30)


@contextmanager
def bucket_of_its_own(platform: Settings, suffix: str) -> Iterator[Settings]:
    """The session's services with a bucket of the caller's own (emptied and removed
    afterwards): objects it stores never look like the session's downloaded scenes."""
    from canopywatch_dev.platform import minio

    settings = replace(platform, bucket=f"{platform.bucket}-{suffix}")
    minio.ensure_buckets(settings)
    try:
        yield settings
    finally:
        s3 = minio.s3_client(settings)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=settings.bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=settings.bucket)


@dataclass
class Cdse:
    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    emulator: Any
    world: Any


@pytest.fixture(scope="session")
def cdse() -> Iterator[Cdse]:
    """The local CDSE endpoint over the test area, in a thread of this process."""
    from canopywatch_dev.cdse_emulator import (
        Credentials,
        create_app,
        emulator_of,
        serve_in_thread,
        token_url,
    )
    from canopywatch_dev.cdse_world import AreaSpec, World

    spec = AreaSpec(
        AREA["name"],
        AREA["bbox"],
        date.fromisoformat(AREA["start"]),
        date.fromisoformat(AREA["end"]),
        AREA["seed"],
    )
    world = World.from_specs([spec])
    credentials = Credentials("it-client", secrets.token_urlsafe(16))
    app = create_app(world, credentials)
    with serve_in_thread(app) as base_url:
        yield Cdse(
            base_url,
            token_url(base_url),
            credentials.client_id,
            credentials.client_secret,
            emulator_of(app),
            world,
        )


@dataclass
class AirflowEnv:
    """Settings of this session and the CANOPYWATCH_* variables its Airflow runs get."""

    settings: Settings
    variables: dict[str, str]

    def with_settings(self, settings: Settings) -> AirflowEnv:
        return AirflowEnv(settings, self.variables)


@pytest.fixture(scope="session")
def airflow_env(platform: Settings, cdse: Cdse) -> Iterator[AirflowEnv]:
    """What Airflow tasks of this session see; applied only to the Airflow subprocesses.
    The DAG runs store their scenes in a bucket and announce them on Kafka topics of their
    own, so what they count there is exactly what they downloaded and published, whatever
    other modules stored or produced in the session's."""
    with bucket_of_its_own(platform, "dags") as stored, topics_of_their_own(stored, "dags") as dags:
        yield _airflow_env(dags, cdse)


def _airflow_env(platform: Settings, cdse: Cdse) -> AirflowEnv:
    from canopywatch_dev.platform import airflow_local

    variables = {
        "CANOPYWATCH_TOPIC_PREFIX": platform.topic_prefix,
        "CANOPYWATCH_BUCKET": platform.bucket,
        "CANOPYWATCH_EXPORTS_BUCKET": platform.exports_bucket,
        "CANOPYWATCH_PG_SCHEMA": platform.pg_schema,
        "CANOPYWATCH_SH_BASE_URL": cdse.base_url,
        "CANOPYWATCH_SH_TOKEN_URL": cdse.token_url,
        "CANOPYWATCH_CDSE_CLIENT_ID": cdse.client_id,
        "CANOPYWATCH_CDSE_CLIENT_SECRET": cdse.client_secret,
        "CANOPYWATCH_DOWNLOAD_CONCURRENCY": "2",
    }
    # a metadata database and Airflow home of the tests' own: the running platform's
    # connections, DAG runs and asset events are never touched (its scheduler never sees
    # these runs, so no deployment DAG is triggered by them)
    settings = replace(
        Settings.from_env({**os.environ, **variables}), pg_airflow_database=TEST_METADATA_DB
    )
    from canopywatch_dev.platform.paths import ensure_layout

    ensure_layout(settings)
    airflow_local.ensure_metadata_database(settings)
    airflow_local.airflow_home(settings).mkdir(parents=True, exist_ok=True)
    airflow_local.initialise(settings)
    return AirflowEnv(settings, variables)


def airflow_dags_test(env: AirflowEnv, conf: dict[str, Any], dag_id: str = DAG_ID):
    """``airflow dags test <dag_id> --conf ...`` (dag.test()) with the platform's env."""
    from canopywatch_dev.platform import airflow_local

    old = {k: os.environ.get(k) for k in env.variables}
    os.environ.update(env.variables)
    try:
        return airflow_local.airflow_cli(
            env.settings,
            "dags",
            "test",
            dag_id,
            "--conf",
            json.dumps(conf),
            check=False,
            timeout=900,
        )
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def first_run(airflow_env: AirflowEnv, cdse: Cdse) -> tuple[AirflowEnv, Any, int]:
    """One deforestation_monitor run over CONF, with a poison message queued before it."""
    from confluent_kafka import Producer

    settings = airflow_env.settings
    poison = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    poison.produce(
        settings.topic("download-requests"),
        b'{"message_type": "DownloadRequest", "width": "x"}',
        key=b"poison",
    )
    poison.flush(10)
    before = cdse.emulator.stats.count("process")
    result = airflow_dags_test(airflow_env, CONF)
    return airflow_env, result, cdse.emulator.stats.count("process") - before


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The session's one in-process Spark (local[2], Delta jars, Arrow). A JVM takes its
    jars when it starts, so a second session built later in the same process could not
    load Delta: every test that needs Spark in-process shares this one."""
    import sys

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need the venv's packages
    jars_dir = Settings.from_env().home / "lib" / "spark"
    jars = ",".join(sorted(str(p) for p in jars_dir.glob("delta-*.jar")))
    session = (
        SparkSession.builder.master("local[2]")
        .appName("canopywatch-tests")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()
