"""Reconcile the object store against the lake instead of trusting the transport.

Every monitoring run ends its download stage with ``reconcile_scenes``: for each scene
the run planned (its area and window), a ``raw.tif`` in the object store without a row
in Delta ``scenes_raw`` is announced again on ``scenes-downloaded``. The lake writer
merges on the scene id, so an announcement that arrives twice (the first one was only
late) still gives one row; a scene announced by this run's own download task (object
metadata ``run-id``) is left to that announcement. So a re-run of any window repairs
an earlier gap, whatever lost the first announcement (a broker that died, a topic
deleted or truncated, a writer that failed for good).

COGs and alerts need no step of their own: ``scene_curation`` converts every raw scene
without a valid ``scenes_cog`` row and announces a COG that is already there again
(``canopywatch.cog.job.pending_scenes``), and the weekly run publishes every active
alert of an area again under its stable id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from canopywatch.download import scene_key, stored_announcement
from canopywatch.lake.rows import partition_values
from canopywatch.lake.tables import SCENES_RAW, Lake, open_table, table_exists
from canopywatch.messages import DownloadRequest, SceneDownloaded
from canopywatch.storage.objects import ObjectStore
from canopywatch.transport import ReportingProducer, UndeliveredError

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SceneReconciliation:
    planned: int  # distinct scenes the run planned
    not_stored: int  # planned scenes with no raw.tif (the summary reports them)
    in_lake: int  # stored and already in scenes_raw
    this_run: int  # stored by this run: announced by its download task
    announced: tuple[str, ...]  # raw keys announced again

    def describe(self) -> str:
        return (
            f"{self.planned} planned scene(s): {self.in_lake} in the lake, {self.this_run} "
            f"announced by this run, {self.not_stored} not stored, "
            f"{len(self.announced)} stored but missing from the lake and announced again"
        )


def recorded_scene_ids(lake: Lake, scenes: Iterable[SceneDownloaded]) -> set[str]:
    """Which of ``scenes`` Delta ``scenes_raw`` holds (read only in their partitions)."""
    wanted = list(scenes)
    if not wanted or not table_exists(lake, SCENES_RAW):
        return set()
    parts = [partition_values(s.geohash, s.acquired_at) for s in wanted]
    # partition pruning by delta-rs; the id test in Python (a pyarrow dataset filter fails on
    # the string_view columns of tables read from S3)
    table = open_table(lake, SCENES_RAW, create=False)
    found = table.to_pyarrow_table(
        partitions=[
            ("geohash_prefix", "in", sorted({p["geohash_prefix"] for p in parts})),
            ("month", "in", sorted({p["month"] for p in parts})),
        ],
        columns=["scene_id"],
    )
    ids = {s.scene_id for s in wanted}
    return {str(v) for v in found.column("scene_id").to_pylist()} & ids


def unrecorded_scenes(
    requests: Sequence[DownloadRequest],
    store: ObjectStore,
    lake: Lake,
    *,
    run_id: str | None = None,
    geohash_precision: int = 5,
) -> tuple[list[SceneDownloaded], SceneReconciliation]:
    """The announcements of stored scenes that ``scenes_raw`` lacks, and the counts."""
    by_key: dict[str, DownloadRequest] = {}
    for request in requests:
        by_key.setdefault(scene_key(request, geohash_precision).key, request)
    stored: list[SceneDownloaded] = []
    not_stored = this_run = 0
    for key, request in by_key.items():
        head = store.head(key)
        if head is None or not head.checksum:
            not_stored += 1
            continue
        if run_id is not None and head.metadata.get("run-id") == run_id:
            this_run += 1
            continue
        stored.append(stored_announcement(request, head, store.bucket, geohash_precision))
    recorded = recorded_scene_ids(lake, stored)
    missing = [m for m in stored if m.scene_id not in recorded]
    outcome = SceneReconciliation(
        planned=len(by_key),
        not_stored=not_stored,
        in_lake=len(stored) - len(missing),
        this_run=this_run,
        announced=tuple(m.raw_key for m in missing),
    )
    return missing, outcome


def announce(
    producer: ReportingProducer,
    topic: str,
    messages: Sequence[SceneDownloaded],
    *,
    flush_timeout: float = FLUSH_TIMEOUT_S,
) -> None:
    """Publish ``messages``; raises ``UndeliveredError`` unless the broker took every one."""
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for message in messages:
        producer.produce(topic, message.to_bytes(), key=message.key.encode(), on_delivery=delivered)
    undelivered = producer.flush(flush_timeout) if messages else 0
    if undelivered or failures:
        raise UndeliveredError(
            f"{undelivered} re-announcement(s) still queued after {flush_timeout:g} s and "
            f"{len(failures)} refused ({'; '.join(failures[:3]) or 'flush timed out'})"
        )


def reconcile_scenes(
    requests: Sequence[DownloadRequest],
    store: ObjectStore,
    lake: Lake,
    producer: ReportingProducer,
    topic: str,
    *,
    run_id: str | None = None,
    geohash_precision: int = 5,
    flush_timeout: float = FLUSH_TIMEOUT_S,
) -> SceneReconciliation:
    """Announce again every planned scene that is stored but missing from the lake."""
    missing, outcome = unrecorded_scenes(
        requests, store, lake, run_id=run_id, geohash_precision=geohash_precision
    )
    announce(producer, topic, missing, flush_timeout=flush_timeout)
    for message in missing:
        log.warning(
            "s3://%s/%s is stored but not in the lake: announced again on %s",
            message.bucket,
            message.raw_key,
            topic,
        )
    log.info("reconcile: %s", outcome.describe())
    return outcome
