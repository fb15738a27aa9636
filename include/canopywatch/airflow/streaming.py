"""SparkSubmitOperator for ``spark/stream_ingest.py`` (Kafka -> Delta ``sensor_raw`` /
``satellite_raw``), as ``trigger(availableNow=True)`` batches on a schedule.

Like the COG operator: the S3 endpoint and keys come from the ``aws`` connection and
the Kafka bootstrap servers from a ``kafka`` connection when the task runs; the keys
reach spark-submit only in its environment (not template fields, not ``--conf``, not
the arguments) and are registered with the secrets masker. The checkpoints are in the
lake's bucket (``s3a://<bucket>/checkpoints/streams/<table>``), so a retry, or the next
scheduled run, resumes from the last batch the checkpoint marks done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import task

from canopywatch.airflow.connections import kafka_bootstrap, spark_s3_access
from canopywatch.airflow.ids import KAFKA_PRODUCER_CONN, POSTGIS_CONN, S3_CONN, SPARK_CONN
from canopywatch.cog.submit import spark_jars, submit_environment
from canopywatch.settings import Settings
from canopywatch.streaming.submit import APPLICATION, NAME, stream_arguments, stream_conf


class StreamIngestOperator(SparkSubmitOperator):
    """Drains the sensor and scene topics into their raw Delta tables, then exits."""

    template_fields: Sequence[str] = (*SparkSubmitOperator.template_fields, "tables")
    overwrite_rtif_after_execution = False  # rendered fields never include the run-time env

    def __init__(
        self,
        *,
        tables: Sequence[str] = ("sensor_raw", "satellite_raw"),
        aws_conn_id: str = S3_CONN,
        kafka_conn_id: str = KAFKA_PRODUCER_CONN,
        max_offsets_per_trigger: int | None = 50_000,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("conn_id", SPARK_CONN)
        kwargs.setdefault("application", str(APPLICATION))
        kwargs.setdefault("name", NAME)
        super().__init__(**kwargs)
        self.tables = tables
        self.aws_conn_id = aws_conn_id
        self.kafka_conn_id = kafka_conn_id
        self.max_offsets_per_trigger = max_offsets_per_trigger
        self._runtime_env: dict[str, str] = {}

    def execute(self, context: Any) -> None:
        settings = Settings.from_env()
        endpoint, region, access_key, secret_key = spark_s3_access(self.aws_conn_id)
        tables = (
            [t for t in self.tables if t]
            if not isinstance(self.tables, str)
            else [t.strip() for t in self.tables.split(",") if t.strip()]
        )
        self.jars = self.jars or ",".join(spark_jars(settings))
        self.conf = {**stream_conf(endpoint, region), **(self.conf or {})}
        self.application_args = stream_arguments(
            settings,
            bootstrap=kafka_bootstrap(self.kafka_conn_id),
            tables=tables,
            max_offsets_per_trigger=self.max_offsets_per_trigger,
        )
        self._runtime_env = submit_environment(access_key, secret_key, region)
        self.log.info(
            "streaming %s from %s.* into s3://%s/lake (availableNow)",
            ", ".join(tables),
            settings.topic_prefix,
            settings.bucket,
        )
        super().execute(context)

    def _get_hook(self) -> Any:
        public = self.env_vars
        self.env_vars = {**(public or {}), **self._runtime_env}
        try:
            return super()._get_hook()
        finally:
            self.env_vars = public


@task(task_id="sync_sensors")
def sync_sensors(aws_conn_id: str = S3_CONN, postgres_conn_id: str = POSTGIS_CONN) -> int:
    """Delta ``sensor_raw`` -> PostGIS ``sensor_readings`` (new rows only); returns how many."""
    from canopywatch.airflow import connections
    from canopywatch.catalog.schema import use_schema
    from canopywatch.sensors.catalog import sync_sensor_readings

    settings = Settings.from_env()
    lake = connections.lake(aws_conn_id, settings.bucket)
    with connections.postgis(postgres_conn_id) as conn:
        use_schema(conn, settings.pg_schema)
        return sync_sensor_readings(conn, f"{lake.root}/sensor_raw", lake.options())
