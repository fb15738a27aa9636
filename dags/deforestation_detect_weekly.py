"""
### deforestation_detect_weekly

Turns each monitored area's Sentinel-2 time series into dated, scored deforestation
alerts, every week (and on demand for a bbox).

**Params** (optional): `bbox` (`min_lon,min_lat,max_lon,max_lat`, a JSON list or the four
number fields) and `aoi_name` to
score one area instead of every registered one; `end` (date) to score up to another day;
`method` (harmonic by default, as in `canopywatch detect`; baseline; xgboost), `history_start`
and `monitor_start` (nothing is alerted before it; default: 90 days after the first scene).

Flow: `resolve_areas` -> `detect_area` (mapped per area: scenes from the PostGIS catalog,
read from MinIO, scored by the chosen detector (the task log names it); alert polygons >= 0.1 ha published to `canopywatch.alerts`;
a GeoPackage and a before/after PNG quicklook per tile in the exports bucket) ->
`record_alerts` (Kafka -> Delta `alerts`, exactly once; a re-run replaces, never
duplicates: alert ids are stable) -> `sync_catalog` (Delta -> PostGIS `alerts`) ->
`alert_marts` (Cosmos: dbt rebuilds `mart_alert_summary_weekly` and what it reads, with
their tests) -> `report` (per-area summary).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from canopywatch.airflow.dag_config import SETTINGS, Settings, form
from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.dbt import dbt_marts
from canopywatch.airflow.ids import KAFKA_PRODUCER_CONN, POSTGIS_CONN, S3_CONN
from canopywatch.airflow.lake import lake_recorder, sync_catalog
from canopywatch.airflow.params import area_name, area_params, optional_date, optional_layer

with DAG(
    dag_id="deforestation_detect_weekly",
    description="Weekly change detection (season-aware harmonic model): dated, scored deforestation alerts per area",
    doc_md=__doc__,
    schedule="@weekly",
    tags=["canopywatch", "detection", "alerts"],
    **dag_defaults(retries=1, notify_subscribers=True),
    params={
        **area_params("score every registered area"),
        "aoi_name": area_name(
            "the id of the area the bbox is (as registered or as the monitoring run named it); "
            "empty: bbox-<geohash>"
        ),
        "end": optional_date(
            "Score up to (date)",
            "the last day scored, included; empty: the end of the run's data interval (a "
            "scheduled run: its week), or now for a manual run",
        ),
        "method": Param(
            "harmonic",
            **form.choices_schema(form.METHOD_CHOICES, "Detector", "which detector scores:"),
        ),
        "history_start": optional_date(
            "History start",
            "first date of the stable history the detector learns from (empty: the first "
            "scene, at most 730 days before the end)",
        ),
        "monitor_start": optional_date(
            "Monitoring start",
            "nothing is alerted before this date (empty: 90 days after the first scene, or a "
            "third of a shorter series)",
        ),
        "forest_mask": optional_layer(
            "Forest baseline",
            "a forest map (raster: non-zero = forest, or polygons) as s3://bucket/key or a "
            "path the workers read; only its forest is monitored (empty: from the history)",
        ),
        "plantations": optional_layer(
            "Plantation map",
            "planted forest (raster or polygons, e.g. the Spatial Database of Planted Trees) "
            "as s3://bucket/key or a path: a cut there is a plantation_harvest, not an alert",
        ),
    },
) as dag:

    @task(retries=0)
    def resolve_areas() -> list[str]:
        from canopywatch.airflow import monitor
        from canopywatch.airflow.failures import bad_input_fails_at_once

        context = get_current_context()
        with bad_input_fails_at_once():
            params = form.run_area(context["params"])  # bbox text, list or four fields
            end = params.get("end") or context.get("data_interval_end") or pendulum.now("UTC")
            areas = monitor.resolve_areas(
                {**params, "start": "1970-01-01", "end": end},
                None,
                None,
                postgres_conn_id=POSTGIS_CONN,
                settings=Settings.from_env(),
            )
        return [area.to_json() for area in areas]

    @task(map_index_template="{{ aoi_label }}")
    def detect_area(area: str) -> str:
        from canopywatch.airflow import weekly
        from canopywatch.airflow.payloads import AreaJob, DetectionOptions

        job = AreaJob.from_json(area)
        context = get_current_context()
        context["aoi_label"] = job.aoi.aoi_id  # type: ignore[typeddict-unknown-key]
        params = context["params"]
        options = DetectionOptions(
            method=params.get("method"),
            history_start=params.get("history_start"),
            monitor_start=params.get("monitor_start"),
            forest_mask=params.get("forest_mask") or None,
            plantations=params.get("plantations") or None,
        )
        return weekly.detect_area_alerts(
            job,
            options,
            aws_conn_id=S3_CONN,
            postgres_conn_id=POSTGIS_CONN,
            kafka_conn_id=KAFKA_PRODUCER_CONN,
            run_id=context["run_id"],
            settings=Settings.from_env(),
        ).to_json()

    @task
    def report(results: list[str]) -> str:
        from canopywatch.airflow import weekly
        from canopywatch.airflow.payloads import AreaDetection

        found = [AreaDetection.from_json(r) for r in results[:]]  # a slice: one request, no 404
        return weekly.report(found).to_json()

    record_alerts = lake_recorder("record_alerts", "alerts", SETTINGS)

    # the alert marts follow the alerts just synced, so their counts match the catalog's
    alert_marts = dbt_marts(SETTINGS, group_id="alert_marts", select=["+mart_alert_summary_weekly"])

    detections = detect_area.expand(area=resolve_areas())
    synced = detections >> record_alerts >> sync_catalog()
    synced >> alert_marts >> report(detections)
