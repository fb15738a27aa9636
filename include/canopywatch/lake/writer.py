"""Exactly-once writes from Kafka into a Delta table (the kafka-delta-ingest design).

One Delta commit per batch holds the batch's rows *and*, as Delta transaction
actions (``txn``, app id per topic-partition), the last Kafka offset handled in each
partition. Before writing, the offsets already in the table
(``DeltaTable.transaction_version``) are skipped, so a batch redelivered after a
crash between the Delta commit and the Kafka commit, a task retry or a re-run adds
nothing. Rows are merged on the table's id (plus its partition columns, so only the
partitions the batch touches are read), so the same record arriving at two offsets
(a re-announced scene) is stored once.

A commit that loses a race with another writer (conditional put on the log) is
retried from the top: offsets are read again, so nothing is written twice.

The merge is the slow part of a batch (a join planned and run over the touched
partitions), and most batches only add rows. So the ids the batch touches are first
looked up in the key column of those partitions alone; rows whose id is not there yet are
appended (one ``write_deltalake`` append, the same commit with the same offsets), and
the merge runs only when an id is already stored and the table has updatable columns;
for a first-write-wins table the stored ids are just left out. A concurrent writer of
the same topic-partition still cannot slip a row in twice: its commit carries the same
transaction app ids, which Delta's conflict check refuses (the loser retries from the
top and skips the offsets), and a record keeps one id per Kafka key, so one partition.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from canopywatch.lake.keys import KEY_CACHE, partition_paths, stored_keys
from canopywatch.lake.tables import Lake, TableSpec, open_table

log = logging.getLogger(__name__)

DEFAULT_APP = "canopywatch"
MAX_COMMIT_ATTEMPTS = 10
COMMIT_BACKOFF_S = 0.25


@dataclass(frozen=True)
class OffsetRow:
    """A consumed record: its Kafka position and its row (None: handled without a row)."""

    topic: str
    partition: int
    offset: int
    row: Mapping[str, Any] | None


def app_id(app: str, topic: str, partition: int) -> str:
    """The Delta transaction app id of one topic-partition, e.g. ``canopywatch:t:0``."""
    return f"{app}:{topic}:{partition}"


@dataclass(frozen=True)
class BatchPlan:
    rows: list[Mapping[str, Any]]
    offsets: dict[str, int]  # app id -> last offset of this batch to record
    replayed: int  # records at or below an offset the table already holds
    duplicates: int  # rows dropped because an earlier record of the batch has the same id


def plan_batch(
    records: Iterable[OffsetRow],
    committed: Mapping[str, int | None],
    *,
    key: str,
    app: str = DEFAULT_APP,
) -> BatchPlan:
    """The rows still to write and the offsets to record, given what the table holds."""
    rows: dict[Any, Mapping[str, Any]] = {}
    offsets: dict[str, int] = {}
    replayed = duplicates = 0
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        ident = app_id(app, record.topic, record.partition)
        done = committed.get(ident)
        if done is not None and record.offset <= done:
            replayed += 1
            continue
        offsets[ident] = max(record.offset, offsets.get(ident, -1))
        if record.row is None:
            continue
        if record.row[key] in rows:
            duplicates += 1  # first offset wins, as it would across batches
            continue
        rows[record.row[key]] = record.row
    return BatchPlan(list(rows.values()), offsets, replayed, duplicates)


@dataclass(frozen=True)
class CommitResult:
    table: str
    version: int | None  # the version this batch committed; None when nothing was new
    inserted: int = 0
    updated: int = 0
    replayed: int = 0
    duplicates: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    attempts: int = 1


def merge_predicate(spec: TableSpec) -> str:
    columns = (spec.key, *spec.partition_by) if spec.merge_in_partition else (spec.key,)
    return " AND ".join(f"t.{c} = s.{c}" for c in columns)


def changed_predicate(spec: TableSpec) -> str:
    return " OR ".join(f"(s.{c} IS DISTINCT FROM t.{c})" for c in spec.updatable)


def to_arrow(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=spec.schema)


def _commit_properties(offsets: Mapping[str, int]) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(ident, offset) for ident, offset in sorted(offsets.items())]
    )


def conform(table: DeltaTable, data: pa.Table) -> pa.Table:
    """``data`` with the table's columns in the table's order: a column the table has and
    the spec does not (added by a newer writer) is null, as the merge would leave it."""
    target = pa.schema(table.schema().to_arrow())
    if data.schema.names == target.names:
        return data
    columns = [
        data.column(f.name) if f.name in data.schema.names else pa.nulls(data.num_rows, f.type)
        for f in target
    ]
    return pa.Table.from_arrays(columns, schema=target)


def _merge(table: DeltaTable, spec: TableSpec, plan: BatchPlan) -> tuple[int, int]:
    merger = table.merge(
        to_arrow(spec, plan.rows),
        merge_predicate(spec),
        source_alias="s",
        target_alias="t",
        commit_properties=_commit_properties(plan.offsets),
    )
    if spec.updatable:
        provenance = ("kafka_topic", "kafka_partition", "kafka_offset", "schema_version")
        merger = merger.when_matched_update(
            {c: f"s.{c}" for c in (*spec.updatable, *provenance, "ingested_at")},
            predicate=changed_predicate(spec),
        )
    metrics = merger.when_not_matched_insert_all().execute()
    return int(metrics.get("num_target_rows_inserted", 0)), int(
        metrics.get("num_target_rows_updated", 0)
    )


def _commit(
    table: DeltaTable,
    spec: TableSpec,
    plan: BatchPlan,
    storage_options: Mapping[str, str] | None = None,
) -> tuple[int, int, int]:
    """Write the plan in one commit; returns (version, inserted, updated)."""
    inserted = updated = 0
    rows = list(plan.rows)
    stored = stored_keys(table, spec, rows, storage_options) if rows else set()
    if stored and spec.updatable:
        # an id already there may carry changed values: the merge decides row by row
        inserted, updated = _merge(table, spec, plan)
        if inserted or updated:
            return table.version(), inserted, updated
        rows = []
    new = [r for r in rows if r[spec.key] not in stored]
    before_version, before_paths = table.version(), set(partition_paths(table))
    # the new rows (or none: a batch of replays and stored ids records its offsets alone)
    write_deltalake(
        table,
        conform(table, to_arrow(spec, new) if new else spec.schema.empty_table()),
        mode="append",
        commit_properties=_commit_properties(plan.offsets),
    )
    if table.version() == before_version + 1:  # no other commit came between: files are ours
        KEY_CACHE.remember(table, spec, before_paths, new)
    return table.version(), len(new), 0


def committed_offsets(
    table: DeltaTable, topic_partitions: Iterable[tuple[str, int]], app: str = DEFAULT_APP
) -> dict[tuple[str, int], int | None]:
    """The last offset of each topic-partition that the table already holds (None: none)."""
    return {
        (topic, partition): table.transaction_version(app_id(app, topic, partition))
        for topic, partition in set(topic_partitions)
    }


def write_exactly_once(
    lake: Lake,
    spec: TableSpec,
    records: Sequence[OffsetRow],
    *,
    app: str = DEFAULT_APP,
    max_attempts: int = MAX_COMMIT_ATTEMPTS,
    table: DeltaTable | None = None,
) -> CommitResult:
    """Write a consumed batch into ``spec``'s table once, whatever was written before
    (``table``: the table already opened, else it is opened here)."""
    table = table if table is not None else open_table(lake, spec)
    idents = {app_id(app, r.topic, r.partition) for r in records}
    for attempt in range(1, max_attempts + 1):
        committed = {ident: table.transaction_version(ident) for ident in idents}
        plan = plan_batch(records, committed, key=spec.key, app=app)
        if not plan.offsets:
            log.info(
                "%s: all %d record(s) were already written (offsets %s); nothing to commit",
                spec.name,
                len(records),
                _describe(committed),
            )
            return CommitResult(spec.name, None, replayed=plan.replayed, attempts=attempt)
        try:
            version, inserted, updated = _commit(table, spec, plan, lake.options())
        except CommitFailedError as exc:
            if attempt == max_attempts:
                raise
            log.warning(
                "%s: commit %d lost a race with another writer (%s); retrying on the new version",
                spec.name,
                attempt,
                str(exc).splitlines()[0],
            )
            # jittered back-off, so writers that collided do not collide again
            time.sleep(random.uniform(0, COMMIT_BACKOFF_S * attempt))
            table.update_incremental()
            continue
        log.info(
            "%s v%d: %d inserted, %d updated, %d already stored, %d replayed offset(s) skipped; "
            "offsets %s",
            spec.name,
            version,
            inserted,
            updated,
            len(plan.rows) - inserted - updated + plan.duplicates,
            plan.replayed,
            _describe(plan.offsets),
        )
        return CommitResult(
            spec.name,
            version,
            inserted,
            updated,
            plan.replayed,
            plan.duplicates,
            plan.offsets,
            attempt,
        )
    raise AssertionError("unreachable")


def _describe(offsets: Mapping[str, int | None]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(offsets.items())) or "none"
