"""SparkSubmitOperator for ``spark/cog_convert.py``, with credentials kept out of sight.

Everything the job needs is resolved at run time from Airflow connections:
the lake's S3 endpoint and keys from an ``aws`` connection, the Kafka bootstrap
servers from a ``kafka`` connection.

The task works out the pending scenes itself with delta-rs (``canopywatch.cog.handover``)
and hands them to the job as a run-keyed object under ``_jobs/cog_convert/`` in the lake's
bucket, which the driver reads with boto3 (so in client mode on standalone or on
Kubernetes alike): Spark starts without the Delta/S3A jars and reads no Delta, and when
nothing is pending spark-submit is not run at all. The object is deleted when the job
ends. ``hand_over_scenes=False`` keeps the job selecting the scenes with delta-spark over
S3A (the local Delta/S3A jars from ``<home>/lib/spark``). The keys reach the spark-submit process as environment
variables only: they are not template fields (so not in "Rendered Template"), not in
``--conf`` or the arguments (which the hook logs), and they are registered with
Airflow's secrets masker in case anything prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from canopywatch.airflow.connections import kafka_bootstrap, lake, object_store, spark_s3_access
from canopywatch.airflow.ids import KAFKA_CONN, S3_CONN, SPARK_CONN
from canopywatch.cog.profiles import DEFAULT_PROFILE
from canopywatch.cog.submit import (
    APPLICATION,
    job_arguments,
    spark_conf,
    spark_jars,
    submit_environment,
)
from canopywatch.settings import Settings


class CogConvertOperator(SparkSubmitOperator):
    """Converts pending raw scenes (or ``scene_ids``) to COGs and publishes SceneConverted."""

    template_fields: Sequence[str] = (*SparkSubmitOperator.template_fields, "scene_ids", "profile")
    overwrite_rtif_after_execution = False  # rendered fields never include the run-time env

    def __init__(
        self,
        *,
        aws_conn_id: str = S3_CONN,
        kafka_conn_id: str = KAFKA_CONN,
        scene_ids: str | list[str] = "",
        profile: str = DEFAULT_PROFILE,
        partitions: int | None = None,
        hand_over_scenes: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("conn_id", SPARK_CONN)
        kwargs.setdefault("application", str(APPLICATION))
        kwargs.setdefault("name", "canopywatch-cog-convert")
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.kafka_conn_id = kafka_conn_id
        self.scene_ids = scene_ids
        self.profile = profile
        self.partitions = partitions
        self.hand_over_scenes = hand_over_scenes
        self._runtime_env: dict[str, str] = {}

    def execute(self, context: Any) -> None:
        # here, not at the top: parsing the DAG file must not load the COG libraries
        from canopywatch.cog.handover import delete_handover, job_key, pending_rows, write_handover

        settings = Settings.from_env()
        endpoint, region, access_key, secret_key = spark_s3_access(self.aws_conn_id)
        bootstrap = kafka_bootstrap(self.kafka_conn_id)
        ids = _ids(self.scene_ids)
        what = ", ".join(ids) or "every scene without a valid COG"
        handed_over: tuple[Any, str] | None = None
        if self.hand_over_scenes:
            rows = pending_rows(lake(self.aws_conn_id, settings.bucket), ids)
            if not rows:
                self.log.info("no scene to convert (%s): spark-submit not run", what)
                return
            ti = context["ti"]
            store = object_store(self.aws_conn_id, settings.bucket)
            key = job_key(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.map_index)
            handed_over = (store.client, write_handover(store, key, rows))
            what = f"{len(rows)} scene(s) ({what}; handed over in {handed_over[1]})"
            self.conf = {**spark_conf(endpoint, region, delta=False), **(self.conf or {})}
        else:
            self.jars = self.jars or ",".join(spark_jars(settings))
            self.conf = {**spark_conf(endpoint, region), **(self.conf or {})}
        self.application_args = job_arguments(
            lake_root=f"s3://{settings.bucket}/lake",
            s3_endpoint=endpoint,
            region=region,
            topic=settings.topic("scenes-converted"),
            kafka_bootstrap=bootstrap,
            scene_ids=() if handed_over else ids,
            scenes_from=handed_over[1] if handed_over else None,
            profile=self.profile or None,
            partitions=self.partitions,
        )
        self._runtime_env = submit_environment(access_key, secret_key, region)
        self.log.info(
            "converting %s to COGs in s3://%s (profile %s); SceneConverted to %s",
            what,
            settings.bucket,
            self.profile,
            settings.topic("scenes-converted"),
        )
        try:
            super().execute(context)
        finally:
            if handed_over is not None:
                try:
                    delete_handover(*handed_over)
                except Exception as exc:  # a leftover work list is harmless: log, go on
                    self.log.warning("could not delete %s: %s", handed_over[1], exc)

    def _get_hook(self) -> Any:
        # the hook gets the credentials; the operator's env_vars (templated, rendered) do not
        public = self.env_vars
        self.env_vars = {**(public or {}), **self._runtime_env}
        try:
            return super()._get_hook()
        finally:
            self.env_vars = public


def _ids(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]
