"""
### deforestation_monitor

Fetch Sentinel-2 L2A scenes for an area and a time range from the Copernicus Data
Space (Sentinel Hub Process API, through `sentinelhub`) into MinIO, with Kafka
between planning and downloading.

**Trigger with params** (Airflow UI, *Trigger DAG*): `bbox` `[min_lon, min_lat,
max_lon, max_lat]`, `start`, `end` (dates, end inclusive), `max_cloud` (%),
`function` (named evalscript), optional `aoi_name`.
**Scheduled runs** (daily) cover every active registered area (PostGIS table
`aois`, `include/aois.yaml`) over the data interval plus a short look-back.

Flow: `resolve_areas` (validate) -> `plan_tiles` (UTM tiles <= 2500 px) ->
`search_tile` (catalog search, mapped per area/tile) -> `publish_requests`
(DownloadRequest messages to Kafka) -> `download_scenes` (Kafka consumer: Process
API, verify, store `sentinel_hub/{function}/{geohash}/{timestamp}/bbox_.../raw.tif`,
announce SceneDownloaded, poison to `.dlq`) -> `summarize` (what is stored where);
and `lake_versions` -> `record_scenes` (Kafka consumer writing SceneDownloaded to the
Delta table `scenes_raw` exactly once) -> `sync_catalog` (Delta -> PostGIS) ->
`export_review` (the run's new scene footprints as a GeoPackage in MinIO). Recording scenes
updates the Asset `canopywatch.lake.scenes_raw`, which triggers `scene_curation`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG, Param, get_current_context, task

from canopywatch.cog.assets import scenes_raw_asset
from canopywatch.dag_steps import lake_recorder, sync_catalog
from canopywatch.evalscripts import FUNCTIONS
from canopywatch.settings import Settings

SETTINGS = Settings.from_env()
KAFKA_CONN = "kafka_default"
S3_CONN = "minio_default"
POSTGIS_CONN = "postgis_default"
CDSE_CONN = "cdse_default"
CDSE_POOL = "cdse_api"
LOOKBACK = timedelta(days=2)  # scenes are published hours after sensing

with DAG(
    dag_id="deforestation_monitor",
    description="Sentinel-2 scenes for an area and a time range, via Kafka, into MinIO",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args={
        "owner": "canopywatch",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
    },
    tags=["canopywatch", "sentinel-2", "monitoring"],
    params={
        "bbox": Param(
            None,
            type=["null", "array"],
            items={"type": "number"},
            minItems=4,
            maxItems=4,
            title="Bounding box",
            description="[min_lon, min_lat, max_lon, max_lat] in degrees (EPSG:4326). "
            "Leave empty to monitor every registered area.",
        ),
        "start": Param(None, type=["null", "string"], format="date", title="Start date"),
        "end": Param(None, type=["null", "string"], format="date", title="End date (inclusive)"),
        "max_cloud": Param(80, type="number", minimum=0, maximum=100, title="Max cloud cover %"),
        "function": Param(
            "s2l2a_bands", type="string", enum=sorted(FUNCTIONS), title="Evalscript function"
        ),
        "aoi_name": Param(None, type=["null", "string"], maxLength=48, title="Area name"),
    },
) as dag:

    @task(retries=0)
    def resolve_areas() -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowFailException

        from canopywatch import monitor

        context = get_current_context()
        start = context.get("data_interval_start")
        try:
            return monitor.resolve_areas(
                context["params"],
                start - LOOKBACK if start else None,
                context.get("data_interval_end"),
                postgres_conn_id=POSTGIS_CONN,
                settings=Settings.from_env(),
            )
        except ValueError as exc:  # bad user input: fail now, with the reason, no retries
            raise AirflowFailException(f"invalid parameters: {exc}") from exc

    @task
    def plan_tiles(areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from canopywatch import monitor

        return monitor.tile_jobs(areas, Settings.from_env())

    @task(map_index_template="{{ tile_label }}", pool=CDSE_POOL)
    def search_tile(job: dict[str, Any]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from canopywatch import monitor
        from canopywatch.sources.copernicus import is_credentials_error

        context = get_current_context()
        context["tile_label"] = job["label"]  # type: ignore[typeddict-unknown-key]
        try:
            return monitor.search_tile(
                job, cdse_conn_id=CDSE_CONN, run_id=context["run_id"], settings=Settings.from_env()
            )
        except Exception as exc:
            if is_credentials_error(exc):  # retrying cannot help: fail now with the reason
                raise AirflowFailException(
                    f"Copernicus Data Space refused the request: {exc}"
                ) from exc
            raise

    @task
    def summarize(searches: list[dict[str, Any]]) -> dict[str, Any]:
        from canopywatch import monitor

        return monitor.summarize(searches, aws_conn_id=S3_CONN, settings=Settings.from_env())

    @task
    def lake_versions() -> dict[str, int]:
        from canopywatch.lake.connections import lake_from_airflow
        from canopywatch.lake.tables import current_versions

        versions = current_versions(lake_from_airflow(S3_CONN, Settings.from_env().bucket))
        return {table: int(version) for table, version in versions.items()}

    @task
    def export_review(since_versions: dict[str, int]) -> dict[str, Any]:
        from canopywatch.dag_steps import export_from_airflow

        context = get_current_context()
        return export_from_airflow(since_versions, run_id=context["run_id"], aws_conn_id=S3_CONN)

    searches = search_tile.expand(job=plan_tiles(resolve_areas()))

    publish_requests = ProduceToTopicOperator.partial(
        task_id="publish_requests",
        kafka_config_id=KAFKA_CONN,
        topic=SETTINGS.topic("download-requests"),
        producer_function="canopywatch.monitor.request_records",
        delivery_callback="canopywatch.monitor.delivery_report",
        synchronous=False,
        map_index_template="{{ task.producer_function_kwargs['label'] }}",
    ).expand(producer_function_kwargs=searches)

    download_scenes = ConsumeFromTopicOperator(
        task_id="download_scenes",
        kafka_config_id=KAFKA_CONN,
        topics=[SETTINGS.topic("download-requests")],
        apply_function_batch="canopywatch.monitor.consume_download_batch",
        apply_function_kwargs={
            "cdse_conn_id": CDSE_CONN,
            "aws_conn_id": S3_CONN,
            "kafka_conn_id": KAFKA_CONN,
        },
        commit_cadence="end_of_batch",
        max_batch_size=16,
        poll_timeout=10,
        pool=CDSE_POOL,
        execution_timeout=timedelta(hours=2),
    )

    record_scenes = lake_recorder(
        "record_scenes",
        "scenes-downloaded",
        "consume_scenes_downloaded",
        SETTINGS,
        outlets=[scenes_raw_asset()],  # new raw scenes trigger scene_curation (COGs, dbt)
    )

    versions = lake_versions()
    publish_requests >> download_scenes >> summarize(searches)
    download_scenes >> versions >> record_scenes >> sync_catalog() >> export_review(versions)
