"""The monitoring run's ``reconcile_lake`` step: stored scenes missing from the lake are
announced again (``canopywatch.reconcile``), with the run's Airflow connections."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from canopywatch.airflow.connections import kafka_producer, lake, object_store
from canopywatch.airflow.payloads import TileSearch
from canopywatch.reconcile import SceneReconciliation, reconcile_scenes
from canopywatch.settings import Settings

log = logging.getLogger(__name__)


def reconcile_lake(
    searches: Sequence[TileSearch],
    *,
    aws_conn_id: str,
    kafka_conn_id: str,
    run_id: str,
    settings: Settings,
) -> SceneReconciliation:
    """Every scene the run planned that MinIO holds and Delta ``scenes_raw`` lacks, announced."""
    planned = [request for search in searches for request in search.download_requests()]
    return reconcile_scenes(
        planned,
        object_store(aws_conn_id, settings.bucket),
        lake(aws_conn_id, settings.bucket),
        kafka_producer(kafka_conn_id),
        settings.topic("scenes-downloaded"),
        run_id=run_id,
        geohash_precision=settings.geohash_precision,
    )
