"""
### sensor_ingest

Sensor readings and scene announcements from Kafka into Delta, then PostGIS and the dbt
sensor models.

**Scheduled** hourly (one run at a time). Flow: `stream_ingest` (SparkSubmit
`spark/stream_ingest.py` on `spark_default` with `trigger(availableNow=True)`: everything
on `<prefix>.sensor-readings` and `<prefix>.scenes-downloaded` since the checkpoints in
MinIO, written to Delta `sensor_raw` and `satellite_raw` exactly once, bad records to the
topics' `.dlq`) -> `sync_sensors` (Delta `sensor_raw` -> PostGIS `sensor_readings`, new rows
only) -> `dbt_sensors` (Cosmos task group: `stg_sensors`, `sensor_health`,
`mart_aoi_daily_weather`, each followed by its tests). See spark/README.md for the same
job running continuously on a cluster.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from canopywatch.airflow.dag_config import SETTINGS
from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.dbt import dbt_marts
from canopywatch.airflow.streaming import StreamIngestOperator, sync_sensors

with DAG(
    dag_id="sensor_ingest",
    description="Kafka sensor readings and scenes -> Delta (Spark Structured Streaming) -> dbt",
    doc_md=__doc__,
    schedule="@hourly",
    tags=["canopywatch", "sensors", "spark", "dbt"],
    **dag_defaults(retries=2),
) as dag:
    stream = StreamIngestOperator(task_id="stream_ingest", execution_timeout=timedelta(hours=1))
    dbt = dbt_marts(SETTINGS, group_id="dbt_sensors", select=["tag:sensors"])
    stream >> sync_sensors() >> dbt
