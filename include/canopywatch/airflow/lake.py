"""DAG building blocks around the lake, shared by several DAGs: the Kafka -> Delta recorders,
the lake versions before a run, the catalog sync and the run's review export.

The work stays in the library (``canopywatch.lake.consume``, ``canopywatch.catalog.sync``,
``canopywatch.export.gpkg``); these functions resolve the connections and log the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import task

from canopywatch.airflow import connections
from canopywatch.airflow.ids import KAFKA_LAKE_CONN, KAFKA_PRODUCER_CONN, POSTGIS_CONN, S3_CONN
from canopywatch.airflow.kafka_commits import CommitAfterBatchOperator
from canopywatch.settings import Settings

if TYPE_CHECKING:  # the payloads import the library: loaded when a task runs, not at parse time
    from canopywatch.airflow.payloads import CatalogSync, ExportedReview, LakeVersions

log = logging.getLogger(__name__)

RECORDERS = {
    # topic name -> (Delta table, apply_function_batch of its recorder)
    "scenes-downloaded": ("scenes_raw", "consume_scenes_downloaded"),
    "scenes-converted": ("scenes_cog", "consume_scenes_converted"),
    "alerts": ("alerts", "consume_alerts"),
}


# ------------------------------------------------------------------ Kafka -> Delta
def lake_recorder(
    task_id: str, topic: str, settings: Settings, **kwargs: Any
) -> CommitAfterBatchOperator:
    """A Kafka consumer writing a topic into its Delta table exactly once (each batch's offsets
    committed synchronously after its Delta commit)."""
    _table, apply_function = RECORDERS[topic]
    return CommitAfterBatchOperator(
        task_id=task_id,
        kafka_config_id=KAFKA_LAKE_CONN,
        topics=[settings.topic(topic)],
        apply_function_batch=f"{__name__}.{apply_function}",
        apply_function_kwargs={"aws_conn_id": S3_CONN, "kafka_conn_id": KAFKA_PRODUCER_CONN},
        commit_cadence="end_of_batch",
        max_batch_size=500,
        poll_timeout=10,
        **kwargs,
    )


def _record(
    table: str, write: Callable[..., Any], messages: Sequence[Any], aws_conn_id: str,
    kafka_conn_id: str,
) -> None:  # fmt: skip
    settings = Settings.from_env()
    lake = connections.lake(aws_conn_id, settings.bucket)
    producer = connections.kafka_producer(kafka_conn_id)
    outcome = write(messages, lake=lake, dlq=producer)
    log.info(
        "batch of %d message(s) -> %s: %d written (version %s), %d replayed, %d dead-lettered",
        len(messages),
        table,
        outcome.written,
        outcome.commit.version,
        outcome.commit.replayed,
        len(outcome.dead_lettered),
    )


def consume_scenes_downloaded(
    messages: Sequence[Any], *, aws_conn_id: str, kafka_conn_id: str
) -> None:
    """apply_function_batch: ``<prefix>.scenes-downloaded`` -> Delta ``scenes_raw``."""
    from canopywatch.lake.consume import write_scene_batch

    _record("scenes_raw", write_scene_batch, messages, aws_conn_id, kafka_conn_id)


def consume_scenes_converted(
    messages: Sequence[Any], *, aws_conn_id: str, kafka_conn_id: str
) -> None:
    """apply_function_batch: ``<prefix>.scenes-converted`` -> Delta ``scenes_cog``."""
    from canopywatch.lake.consume import write_converted_batch

    _record("scenes_cog", write_converted_batch, messages, aws_conn_id, kafka_conn_id)


def consume_alerts(messages: Sequence[Any], *, aws_conn_id: str, kafka_conn_id: str) -> None:
    """apply_function_batch: ``<prefix>.alerts`` -> Delta ``alerts``."""
    from canopywatch.lake.consume import write_alert_batch

    _record("alerts", write_alert_batch, messages, aws_conn_id, kafka_conn_id)


# ------------------------------------------------------------------ versions, sync, export
def lake_versions(aws_conn_id: str = S3_CONN) -> LakeVersions:
    """The version of every lake table now (-1: not created yet)."""
    from canopywatch.airflow.payloads import LakeVersions
    from canopywatch.lake.tables import current_versions

    lake = connections.lake(aws_conn_id, Settings.from_env().bucket)
    return LakeVersions({table: int(v) for table, v in current_versions(lake).items()})


def sync_from_airflow(
    *, aws_conn_id: str = S3_CONN, postgres_conn_id: str = POSTGIS_CONN, rebuild: bool = False
) -> CatalogSync:
    """Delta -> PostGIS with the lake and the catalog of the Airflow connections."""
    from canopywatch.airflow.payloads import CatalogSync, TableSync
    from canopywatch.catalog.sync import sync_catalog as sync

    settings = Settings.from_env()
    lake = connections.lake(aws_conn_id, settings.bucket)
    with connections.postgis(postgres_conn_id) as conn:
        results = sync(conn, lake, rebuild=rebuild)
    return CatalogSync(
        {
            r.table: TableSync(
                version=r.to_version, upserted=r.upserted, deleted=r.deleted, mode=r.mode
            )
            for r in results
        }
    )


@task(task_id="sync_catalog")
def sync_catalog(rebuild: bool = False) -> str:
    """Delta -> PostGIS, incrementally (or rebuilt from scratch); XCom: a ``CatalogSync``."""
    return sync_from_airflow(rebuild=rebuild).to_json()


def export_review(
    since: LakeVersions,
    *,
    run_id: str,
    aws_conn_id: str = S3_CONN,
    out_dir: str | None = None,
) -> ExportedReview:
    """The run's new scene footprints (and alerts) as a GeoPackage, locally and in the exports
    bucket of the Airflow connection."""
    from canopywatch.airflow.payloads import ExportedReview
    from canopywatch.export.gpkg import export_new_since

    settings = Settings.from_env()
    lake = connections.lake(aws_conn_id, settings.bucket)
    store = connections.object_store(aws_conn_id, settings.exports_bucket)
    folder = Path(out_dir) if out_dir else settings.home / "exports"
    result = export_new_since(lake, since.versions, label=run_id, out_dir=folder, store=store)
    return ExportedReview(
        path=str(result.path),
        uri=f"s3://{result.bucket}/{result.key}",
        scenes=result.scenes,
        alerts=result.alerts,
        versions=dict(result.versions),
    )
