"""
### deforestation_monitor

Fetch Sentinel-2 L2A scenes for an area and a time range from the Copernicus Data
Space (Sentinel Hub Process API, through `sentinelhub`) into MinIO, with Kafka
between planning and downloading.

**Trigger with params** (Airflow UI, *Trigger DAG*; every field is explained in the form):
`bbox` typed as `min_lon,min_lat,max_lon,max_lat` (or a JSON list, or the four number
fields), `start` and `end` (dates, end inclusive; needed with a bbox), `max_cloud` (%),
`function` (named evalscript), optional `aoi_name`. `estimate_cost` logs the processing
units the run will spend and stops a run over `CANOPYWATCH_PU_BUDGET`.
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

from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG, Param, get_current_context, task

from canopywatch.airflow.dag_config import FUNCTIONS, LOOKBACK, SETTINGS, Settings, form
from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.ids import (
    CDSE_CONN,
    CDSE_POOL,
    KAFKA_CONN,
    KAFKA_PRODUCER_CONN,
    POSTGIS_CONN,
    S3_CONN,
)
from canopywatch.airflow.ids import SCENES_RAW as SCENES_RAW_ASSET
from canopywatch.airflow.kafka_commits import CommitAfterBatchOperator
from canopywatch.airflow.lake import lake_recorder, sync_catalog
from canopywatch.airflow.params import area_name, area_params, optional_date

with DAG(
    dag_id="deforestation_monitor",
    description="Sentinel-2 scenes for an area and a time range, via Kafka, into MinIO",
    doc_md=__doc__,
    schedule="@daily",
    tags=["canopywatch", "sentinel-2", "monitoring"],
    **dag_defaults(
        retries=2, retry_delay=timedelta(seconds=30), max_active_runs=2, notify_subscribers=True
    ),
    params={
        **area_params("every registered area (a scheduled run)"),
        "start": optional_date(
            "Start date",
            "first day to search (UTC). Needed with a bbox; empty for registered areas: the "
            "run's data interval (scheduled daily: the day before the run) with "
            f"{LOOKBACK.days} days of look-back",
        ),
        "end": optional_date(
            "End date (inclusive)",
            "last day to search, included. Needed with a bbox; empty for registered areas: "
            "the end of the run's data interval",
        ),
        "max_cloud": Param(
            80,
            type="number",
            minimum=0,
            maximum=100,
            title="Max cloud cover %",
            description="scenes with more cloud cover (catalog eo:cloud_cover, 0-100) are "
            "not downloaded; registered areas keep their own limit",
        ),
        "function": Param(
            "s2l2a_bands",
            **form.choices_schema(
                {name: form.FUNCTION_CHOICES[name] for name in sorted(FUNCTIONS)},
                "Evalscript function",
                "what each scene holds:",
            ),
        ),
        "aoi_name": area_name(
            "a name for the bbox, used as its id in object keys and tables (lower-case-dashes); "
            "empty: bbox-<geohash>"
        ),
    },
) as dag:

    @task(retries=0)
    def resolve_areas() -> list[str]:
        from canopywatch.airflow import monitor
        from canopywatch.airflow.failures import bad_input_fails_at_once

        context = get_current_context()
        start = context.get("data_interval_start")
        with bad_input_fails_at_once():  # bad user input: fail now, with the reason, no retries
            params = form.run_area(context["params"])  # bbox text, list or four fields
            form.require_dates(params)
            areas = monitor.resolve_areas(
                params,
                start - LOOKBACK if start else None,
                context.get("data_interval_end"),
                postgres_conn_id=POSTGIS_CONN,
                settings=Settings.from_env(),
            )
        return [area.to_json() for area in areas]

    @task
    def plan_tiles(areas: list[str]) -> list[str]:
        from canopywatch.airflow import monitor
        from canopywatch.airflow.payloads import AreaJob

        jobs = monitor.tile_jobs([AreaJob.from_json(a) for a in areas], Settings.from_env())
        return [job.to_json() for job in jobs]

    @task(map_index_template="{{ tile_label }}", pool=CDSE_POOL)
    def search_tile(job: str) -> dict[str, str]:
        from canopywatch.airflow import monitor
        from canopywatch.airflow.failures import refused_credentials_fail_at_once
        from canopywatch.airflow.payloads import TileJob

        tile_job = TileJob.from_json(job)
        context = get_current_context()
        context["tile_label"] = tile_job.label  # type: ignore[typeddict-unknown-key]
        with refused_credentials_fail_at_once():  # retrying cannot help: fail now, with the reason
            found = monitor.search_tile(
                tile_job, cdse_conn_id=CDSE_CONN, run_id=context["run_id"],
                settings=Settings.from_env(),
            )  # fmt: skip
        return found.producer_kwargs()

    @task(retries=0)
    def estimate_cost(searches: list[dict[str, str]]) -> str:
        """Processing units the run will spend; over CANOPYWATCH_PU_BUDGET it stops here."""
        from canopywatch.airflow.budget import estimate_cost
        from canopywatch.airflow.failures import bad_input_fails_at_once
        from canopywatch.airflow.payloads import TileSearch

        # a slice reads the mapped results in one request; iterating asks for one past the end
        # and Airflow's client logs that 404 at ERROR level
        found = [TileSearch.from_json(s["search"]) for s in searches[:]]
        with bad_input_fails_at_once():  # over budget: fail now, with the figures, no retries
            spend = estimate_cost(found, aws_conn_id=S3_CONN, settings=Settings.from_env())
        return spend.describe()

    @task
    def summarize(searches: list[dict[str, str]]) -> str:
        from canopywatch.airflow import monitor
        from canopywatch.airflow.payloads import TileSearch

        found = [TileSearch.from_json(s["search"]) for s in searches[:]]
        return monitor.summarize(found, aws_conn_id=S3_CONN, settings=Settings.from_env()).to_json()

    @task
    def reconcile_lake(searches: list[dict[str, str]]) -> str:
        """Stored scenes of the run's areas and window that the lake lacks: announced again."""
        from canopywatch.airflow.payloads import TileSearch
        from canopywatch.airflow.reconcile import reconcile_lake

        found = [TileSearch.from_json(s["search"]) for s in searches[:]]
        return reconcile_lake(
            found, aws_conn_id=S3_CONN, kafka_conn_id=KAFKA_PRODUCER_CONN,
            run_id=get_current_context()["run_id"], settings=Settings.from_env(),
        ).describe()  # fmt: skip

    @task
    def lake_versions() -> str:
        from canopywatch.airflow import lake

        return lake.lake_versions(S3_CONN).to_json()

    @task
    def export_review(since_versions: str) -> str:
        from canopywatch.airflow import lake
        from canopywatch.airflow.payloads import LakeVersions

        since = LakeVersions.from_json(since_versions)
        return lake.export_review(since, run_id=get_current_context()["run_id"]).to_json()

    searches = search_tile.expand(job=plan_tiles(resolve_areas()))

    publish_requests = ProduceToTopicOperator.partial(
        task_id="publish_requests",
        kafka_config_id=KAFKA_PRODUCER_CONN,
        topic=SETTINGS.topic("download-requests"),
        producer_function="canopywatch.airflow.monitor.request_records",
        delivery_callback="canopywatch.airflow.monitor.delivery_report",
        synchronous=False,
        map_index_template="{{ task.producer_function_kwargs['label'] }}",
    ).expand(producer_function_kwargs=searches)

    download_scenes = CommitAfterBatchOperator(
        task_id="download_scenes",
        kafka_config_id=KAFKA_CONN,
        topics=[SETTINGS.topic("download-requests")],
        apply_function_batch="canopywatch.airflow.monitor.consume_download_batch",
        apply_function_kwargs={
            "cdse_conn_id": CDSE_CONN,
            "aws_conn_id": S3_CONN,
            "kafka_conn_id": KAFKA_PRODUCER_CONN,  # announcements and dead letters
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
        SETTINGS,
        outlets=[SCENES_RAW_ASSET],  # new raw scenes trigger scene_curation (COGs, dbt)
    )

    versions = lake_versions()
    estimate_cost(searches) >> publish_requests  # nothing is spent before the estimate
    publish_requests >> download_scenes >> summarize(searches)
    reconciled = reconcile_lake(searches)  # a re-run repairs scenes an earlier run lost
    download_scenes >> reconciled >> versions >> record_scenes
    record_scenes >> sync_catalog() >> export_review(versions)
