"""
### scene_curation

Turns newly recorded raw scenes into validated Cloud-Optimized GeoTIFFs and refreshes
the dbt marts on PostGIS.

**Triggered** by the Asset `canopywatch.lake.scenes_raw` (Delta `scenes_raw`),
which `deforestation_monitor` emits when it has recorded raw scenes in Delta.
**Trigger with params** (Airflow UI): `scene_ids` (convert only these; empty: every
scene without a valid COG) and `profile` (the named COG profile).

Flow: `convert_cogs` (the task reads the pending scenes from Delta `scenes_raw`/`scenes_cog`
with delta-rs and hands them over under `_jobs/` in the bucket; nothing pending: no Spark.
SparkSubmit `spark/cog_convert.py` on `spark_default` converts them on executors with
rio-cogeo, writes `cog.tif` beside `raw.tif`, publishes SceneConverted) -> `record_cogs` (Kafka consumer writing Delta
`scenes_cog` exactly once) -> `sync_catalog` (Delta -> PostGIS) -> `dbt` (Cosmos task
group: staging views and marts, each model followed by its tests).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from canopywatch.airflow.cog import CogConvertOperator
from canopywatch.airflow.dag_config import DEFAULT_PROFILE, PROFILES, SETTINGS, form
from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.dbt import dbt_marts
from canopywatch.airflow.ids import KAFKA_CONN, S3_CONN, SCENES_RAW, SPARK_CONN
from canopywatch.airflow.lake import lake_recorder, sync_catalog

with DAG(
    dag_id="scene_curation",
    description="Raw scenes -> validated COGs (Spark), scenes_cog in Delta, PostGIS, dbt marts",
    doc_md=__doc__,
    schedule=[SCENES_RAW],
    tags=["canopywatch", "cog", "spark", "dbt"],
    **dag_defaults(retries=2),
    params={
        "scene_ids": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[0-9a-f]{16}$"},
            title="Scene ids",
            description="Convert only these scenes: one scene id (16 hex characters, as "
            "`canopywatch scenes --full-ids` shows) per line; empty: every scene without a "
            "valid COG.",
        ),
        "profile": Param(
            DEFAULT_PROFILE,
            **form.choices_schema(
                {name: form.PROFILE_CHOICES[name] for name in sorted(PROFILES)},
                "COG profile",
                "how the Cloud-Optimized GeoTIFFs are compressed:",
            ),
        ),
    },
) as dag:
    convert_cogs = CogConvertOperator(
        task_id="convert_cogs",
        conn_id=SPARK_CONN,
        aws_conn_id=S3_CONN,
        kafka_conn_id=KAFKA_CONN,
        scene_ids="{{ params.scene_ids | join(',') }}",
        profile="{{ params.profile }}",
        execution_timeout=timedelta(hours=2),
    )

    record_cogs = lake_recorder("record_cogs", "scenes-converted", SETTINGS)

    # the scene and alert models; the sensor models (tag:sensors) are sensor_ingest's
    dbt = dbt_marts(SETTINGS, group_id="dbt", exclude=["tag:sensors"])

    convert_cogs >> record_cogs >> sync_catalog() >> dbt
