"""DAG building blocks shared by several DAGs: the Kafka -> Delta recorder and the catalog sync.

Used only from DAG files (it imports Airflow); the work itself stays in the library
(``canopywatch.lake.consume``, ``canopywatch.catalog.sync``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import task

from canopywatch.airflow.kafka_commits import CommitAfterBatchOperator
from canopywatch.settings import Settings

S3_CONN = "minio_default"
POSTGIS_CONN = "postgis_default"
KAFKA_CONN = "kafka_default"
KAFKA_LAKE_CONN = "kafka_lake"  # the lake writers' own consumer group


def lake_recorder(
    task_id: str, topic: str, apply_function: str, settings: Settings, **kwargs: Any
) -> CommitAfterBatchOperator:
    """A Kafka consumer writing a topic into its Delta table exactly once (synchronous commits
    of each batch after its Delta commit)."""
    return CommitAfterBatchOperator(
        task_id=task_id,
        kafka_config_id=KAFKA_LAKE_CONN,
        topics=[settings.topic(topic)],
        apply_function_batch=f"canopywatch.lake.consume.{apply_function}",
        apply_function_kwargs={"aws_conn_id": S3_CONN, "kafka_conn_id": KAFKA_CONN},
        commit_cadence="end_of_batch",
        max_batch_size=500,
        poll_timeout=10,
        **kwargs,
    )


@task(task_id="sync_catalog")
def sync_catalog(rebuild: bool = False) -> dict[str, Any]:
    """Delta -> PostGIS, incrementally (or rebuilt from scratch)."""
    from canopywatch.catalog.sync import sync_from_airflow

    return sync_from_airflow(aws_conn_id=S3_CONN, postgres_conn_id=POSTGIS_CONN, rebuild=rebuild)


def export_from_airflow(
    since_versions: Mapping[str, int], *, run_id: str, aws_conn_id: str, out_dir: str | None = None
) -> dict[str, Any]:
    """The DAG task: export with the lake and exports bucket of the Airflow connection."""
    from canopywatch.export.gpkg import export_new_since
    from canopywatch.lake.connections import lake_from_airflow
    from canopywatch.monitor import object_store

    settings = Settings.from_env()
    lake = lake_from_airflow(aws_conn_id, settings.bucket)
    store = object_store(aws_conn_id, settings.exports_bucket)
    folder = Path(out_dir) if out_dir else settings.home / "exports"
    result = export_new_since(lake, since_versions, label=run_id, out_dir=folder, store=store)
    return {
        "path": str(result.path),
        "uri": f"s3://{result.bucket}/{result.key}",
        "scenes": result.scenes,
        "alerts": result.alerts,
        "versions": result.versions,
    }
