"""
### scene_curation

Turns newly recorded raw scenes into validated Cloud-Optimized GeoTIFFs and refreshes
the dbt marts on PostGIS.

**Triggered** by the Asset `canopywatch.lake.scenes_raw` (Delta `scenes_raw`),
which `deforestation_monitor` emits when it has recorded raw scenes in Delta.
**Trigger with params** (Airflow UI): `scene_ids` (convert only these; empty: every
scene without a valid COG) and `profile` (the named COG profile).

Flow: `convert_cogs` (SparkSubmit `spark/cog_convert.py` on `spark_default`: reads Delta
`scenes_raw`/`scenes_cog`, converts on executors with rio-cogeo, writes `cog.tif` beside
`raw.tif`, publishes SceneConverted) -> `record_cogs` (Kafka consumer writing Delta
`scenes_cog` exactly once) -> `sync_catalog` (Delta -> PostGIS) -> `dbt` (Cosmos task
group: staging views and marts, each model followed by its tests).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from canopywatch import params as form
from canopywatch.cog.assets import scenes_raw_asset
from canopywatch.cog.operator import CogConvertOperator
from canopywatch.cog.profiles import DEFAULT_PROFILE, PROFILES
from canopywatch.dag_steps import lake_recorder, sync_catalog
from canopywatch.settings import REPO_ROOT, Settings

SETTINGS = Settings.from_env()
SPARK_CONN = "spark_default"
S3_CONN = "minio_default"
KAFKA_CONN = "kafka_default"
POSTGIS_CONN = "postgis_default"

DBT_PROJECT = REPO_ROOT / "dbt"
# written by `dbt parse` (scripts/bootstrap.sh dbt); read at parse time, no dbt needed
DBT_MANIFEST = SETTINGS.home / "dbt" / "target" / "manifest.json"
DBT_SCHEMA = "analytics" if SETTINGS.pg_schema == "public" else f"{SETTINGS.pg_schema}_analytics"


def dbt_load_method(manifest: Path = DBT_MANIFEST) -> LoadMode:
    """The manifest when bootstrap has parsed the project; else Cosmos' own parser (no dbt)."""
    return LoadMode.DBT_MANIFEST if manifest.exists() else LoadMode.CUSTOM


with DAG(
    dag_id="scene_curation",
    description="Raw scenes -> validated COGs (Spark), scenes_cog in Delta, PostGIS, dbt marts",
    doc_md=__doc__,
    schedule=[scenes_raw_asset()],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "canopywatch",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
    },
    tags=["canopywatch", "cog", "spark", "dbt"],
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

    record_cogs = lake_recorder(
        "record_cogs", "scenes-converted", "consume_scenes_converted", SETTINGS
    )

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=DBT_MANIFEST if DBT_MANIFEST.exists() else None,
            project_name="canopywatch",
            env_vars={"CANOPYWATCH_PG_SCHEMA": SETTINGS.pg_schema},
        ),
        profile_config=ProfileConfig(
            profile_name="canopywatch",
            target_name="airflow",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=POSTGIS_CONN, profile_args={"schema": DBT_SCHEMA}
            ),
        ),
        render_config=RenderConfig(
            load_method=dbt_load_method(),
            test_behavior=TestBehavior.AFTER_EACH,
            # a test across two models (relationships) runs once both are built
            should_detach_multiple_parents_tests=True,
        ),
        execution_config=ExecutionConfig(
            dbt_executable_path=str(Path(sys.executable).with_name("dbt"))
        ),
        operator_args={"install_deps": False},
    )

    convert_cogs >> record_cogs >> sync_catalog() >> dbt
