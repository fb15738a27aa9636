"""What the campaign's runs left behind, counted where it lives.

Scenes: every planned scene (the runs' ``plan`` outputs) as a ``raw.tif`` in MinIO, a row
of Delta ``scenes_raw`` and a row of PostGIS ``scenes``, each exactly once (by object key).
Alerts: every alert a weekly run published, on the Kafka topic, in Delta ``alerts`` and in
PostGIS ``alerts``, each once. On Kafka an alert is published again by design (each weekly
run, each retry); a duplicate there is a second copy from the same task attempt.

The canary scan: none of the instance's planted credentials in any task log, task output
(what XCom would carry), Delta table, Kafka payload or header, stored object or export.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canopywatch.settings import Settings


@dataclass(frozen=True)
class Count:
    lost: int
    duplicated: int

    def __add__(self, other: Count) -> Count:
        return Count(self.lost + other.lost, self.duplicated + other.duplicated)


@dataclass(frozen=True)
class Check:
    scenes: dict[str, Count]  # minio / delta / postgis
    alerts: dict[str, Count]  # kafka / delta / postgis
    expected_scenes: int
    expected_alerts: int

    @property
    def total(self) -> Count:
        out = Count(0, 0)
        for count in (*self.scenes.values(), *self.alerts.values()):
            out = out + count
        return out

    def describe(self) -> str:
        def part(counts: dict[str, Count]) -> str:
            return ", ".join(f"{k} -{c.lost}/+{c.duplicated}" for k, c in counts.items())

        return (
            f"{self.expected_scenes} scenes ({part(self.scenes)}); "
            f"{self.expected_alerts} alerts ({part(self.alerts)})"
        )


def _count(expected: set[str], found: Iterable[str]) -> Count:
    seen = Counter(found)
    return Count(
        lost=len(expected - set(seen)),
        duplicated=sum(n - 1 for n in seen.values() if n > 1),
    )


def expected_scene_keys(state: Path) -> set[str]:
    from canopywatch.download import scene_key
    from canopywatch.messages import DownloadRequest

    keys: set[str] = set()
    for path in state.glob("*/plan.json"):
        for text in json.loads(path.read_text(encoding="utf-8")):
            keys.add(scene_key(DownloadRequest.from_json(text.encode())).key)
    return keys


def expected_alert_ids(state: Path) -> set[str]:
    ids: set[str] = set()
    for path in state.glob("*/detect.json"):
        ids.update(json.loads(path.read_text(encoding="utf-8")))
    return ids


def _objects(settings: Settings, bucket: str) -> list[str]:
    from canopywatch.storage.objects import s3_client

    s3 = s3_client(settings)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _delta_column(settings: Settings, table: Any, column: str) -> list[str]:
    from canopywatch.lake.tables import lake_from_settings, open_table, table_exists

    lake = lake_from_settings(settings)
    if not table_exists(lake, table):
        return []
    values: list[str] = (
        open_table(lake, table).to_pyarrow_table(columns=[column]).column(column).to_pylist()
    )
    return values


def _postgis_column(settings: Settings, table: str, column: str) -> list[str]:
    from psycopg import sql

    from canopywatch.catalog.schema import connect

    with connect(settings, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{settings.pg_schema}.{table}",))
        if exists.fetchone() == (None,):
            return []
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier(column), sql.Identifier(settings.pg_schema, table)
            )
        )
        return [r[0] for r in rows]


def kafka_records(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic`` (a fresh consumer group, from the beginning)."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"faults-check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=20).topics[topic]
        partitions = []
        ends = {}
        for p in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)
            if high > low:
                partitions.append(TopicPartition(topic, p, low))
                ends[p] = high
        consumer.assign(partitions)
        records: list[Any] = []
        while ends and sum(1 for r in records if r.error() is None) < sum(
            ends[p] - tp.offset for tp in partitions for p in [tp.partition]
        ):
            batch = consumer.consume(500, timeout=5)
            if not batch:
                break
            records.extend(batch)
        return [r for r in records if r.error() is None]
    finally:
        consumer.close()


def check(settings: Settings, state: Path) -> Check:
    from canopywatch.lake.tables import ALERTS, SCENES_RAW

    scenes = expected_scene_keys(state)
    alerts = expected_alert_ids(state)
    raw = [k for k in _objects(settings, settings.bucket) if k.endswith("/raw.tif")]
    published = kafka_records(settings, settings.topic("alerts"))
    copies = Counter(
        (r.key().decode(), dict(r.headers() or []).get("attempt", b"").decode()) for r in published
    )
    return Check(
        scenes={
            "minio": _count(scenes, raw),
            "delta": _count(scenes, _delta_column(settings, SCENES_RAW, "raw_key")),
            "postgis": _count(scenes, _postgis_column(settings, "scenes", "raw_key")),
        },
        alerts={
            "kafka": Count(
                lost=len(alerts - {alert for alert, _ in copies}),
                duplicated=sum(n - 1 for n in copies.values() if n > 1),
            ),
            "delta": _count(alerts, _delta_column(settings, ALERTS, "alert_id")),
            "postgis": _count(alerts, _postgis_column(settings, "alerts", "alert_id")),
        },
        expected_scenes=len(scenes),
        expected_alerts=len(alerts),
    )


# ------------------------------------------------------------------ canary scan
def canary_hits(settings: Settings, state: Path, canaries: Iterable[str]) -> list[str]:
    """Where any canary appears: ``["<place>: <canary kind>", ...]`` (the value never)."""
    from canopywatch.lake.tables import (
        ALERTS,
        SCENES_RAW,
        lake_from_settings,
        open_table,
        table_exists,
    )
    from canopywatch.storage.objects import s3_client

    needles = [c.encode() for c in canaries]
    hits: list[str] = []

    def scan(place: str, data: bytes) -> None:
        for needle in needles:
            if needle in data:
                hits.append(f"{place}: {needle[:8].decode()}...")

    for path in sorted(p for p in state.rglob("*") if p.is_file()):
        scan(str(path.relative_to(state)), path.read_bytes())  # task logs and task outputs
    lake = lake_from_settings(settings)
    for spec in (SCENES_RAW, ALERTS):
        if table_exists(lake, spec):
            rows = open_table(lake, spec).to_pyarrow_table().to_pylist()
            scan(f"delta {spec.name}", json.dumps(rows, default=str).encode())
    for name in ("download-requests", "scenes-downloaded", "alerts"):
        for record in kafka_records(settings, settings.topic(name)):
            scan(f"kafka {name}", (record.value() or b"") + repr(record.headers()).encode())
    s3 = s3_client(settings)
    for bucket in (settings.bucket, settings.exports_bucket):
        for key in _objects(settings, bucket):
            obj = s3.get_object(Bucket=bucket, Key=key)
            scan(f"s3://{bucket}/{key}", obj["Body"].read() + repr(obj["Metadata"]).encode())
    return hits


def _scanner(canaries: Iterable[str], hits: list[str]) -> Any:
    needles = [c.encode() for c in canaries]

    def scan(place: str, data: bytes) -> None:
        for needle in needles:
            if needle in data:
                hits.append(f"{place}: {needle[:8].decode()}...")

    return scan


def file_canary_hits(roots: Iterable[Path], canaries: Iterable[str]) -> list[str]:
    """Where any canary appears in the files under ``roots`` (task and service logs):
    ``["<root>/<file>: <canary kind>...", ...]``."""
    hits: list[str] = []
    scan = _scanner(canaries, hits)
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            scan(f"{root.name}/{path.relative_to(root)}", path.read_bytes())
    return hits


CONTROL_KEY = "canary_control"


def metadata_canary_hits(
    settings: Settings, canaries: Iterable[str], *, control: str | None = None
) -> list[str]:
    """Where any canary appears in the Airflow metadata database
    (``settings.pg_airflow_database``): every ``xcom.value`` and every field of
    ``rendered_task_instance_fields.rendered_fields``.

    With ``control`` (a text holding a canary), the scan first plants it, in a transaction
    it rolls back afterwards, as one more XCom (key ``canary_control``, a copy of an existing
    row's ids) and as one more rendered field (``canary_control``) of an existing row: those
    two hits (``... canary_control: ...``) prove the scan reads both columns. It raises when
    there is no row to plant them beside (nothing ran, so nothing could be scanned).
    """
    import psycopg

    from canopywatch_dev.platform import postgres

    hits: list[str] = []
    scan = _scanner(canaries, hits)
    params = postgres.connection_params(settings, settings.pg_airflow_database)
    with psycopg.connect(**params, connect_timeout=10) as conn:
        try:
            if control is not None:
                planted = conn.execute(
                    "INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id,"
                    " value, timestamp)"
                    " SELECT dag_run_id, task_id, map_index, %s, dag_id, run_id,"
                    " to_jsonb(%s::text), timestamp FROM xcom LIMIT 1",
                    (CONTROL_KEY, control),
                ).rowcount
                planted += conn.execute(
                    "UPDATE rendered_task_instance_fields SET rendered_fields ="
                    " (rendered_fields::jsonb || jsonb_build_object(%s::text, %s::text))::json"
                    " WHERE ctid = (SELECT ctid FROM rendered_task_instance_fields LIMIT 1)",
                    (CONTROL_KEY, control),
                ).rowcount
                if planted != 2:
                    raise RuntimeError(
                        "no XCom or no rendered fields to plant the control canary beside"
                    )
            for dag_id, task_id, map_index, key, value in conn.execute(
                "SELECT dag_id, task_id, map_index, key, value::text FROM xcom"
                " ORDER BY dag_id, run_id, task_id, map_index, key"
            ):
                scan(f"xcom {dag_id}.{task_id}[{map_index}] {key}", (value or "").encode())
            for dag_id, task_id, map_index, field, value in conn.execute(
                "SELECT r.dag_id, r.task_id, r.map_index, f.key, f.value::text"
                " FROM rendered_task_instance_fields r,"
                " json_each(r.rendered_fields) AS f"
                " ORDER BY r.dag_id, r.run_id, r.task_id, r.map_index, f.key"
            ):
                scan(
                    f"rendered_fields {dag_id}.{task_id}[{map_index}] {field}",
                    (value or "").encode(),
                )
        finally:
            conn.rollback()
    return hits


def metadata_counts(settings: Settings) -> dict[str, int]:
    """Rows of ``xcom`` and ``rendered_task_instance_fields`` (what the scan read)."""
    import psycopg

    from canopywatch_dev.platform import postgres

    params = postgres.connection_params(settings, settings.pg_airflow_database)
    with psycopg.connect(**params, connect_timeout=10) as conn:
        return {
            table: int(conn.execute(query).fetchone()[0])  # type: ignore[index]
            for table, query in (
                ("xcom", "SELECT count(*) FROM xcom"),
                ("rendered_task_instance_fields",
                 "SELECT count(*) FROM rendered_task_instance_fields"),
            )
        }  # fmt: skip
