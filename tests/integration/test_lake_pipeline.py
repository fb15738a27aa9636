"""The lake and the catalog on the real services: Kafka -> Delta on MinIO -> PostGIS.

Every test gets its own topics (``<session prefix>.lake-<name>`` and its ``.dlq``),
its own lake prefix in the session bucket, and the session's own PostGIS schema.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from canopywatch.catalog import queries
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.catalog.sync import sync_catalog, sync_table
from canopywatch.lake.consume import write_converted_batch, write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, Lake, lake_from_settings, open_table
from canopywatch.messages import DeadLetter, SceneConverted
from canopywatch.settings import REPO_ROOT, Settings
from tests.unit.test_lake_writer import scene

pytestmark = pytest.mark.service


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="session")
def pg_schema(platform: Settings) -> Iterator[str]:
    schema = f"cwtest_{uuid.uuid4().hex[:8]}"
    with connect(platform, schema=schema) as conn:
        ensure_schema(conn)
    yield schema
    with connect(platform) as conn:
        drop_schema(conn, schema)


@pytest.fixture
def catalog(platform: Settings, pg_schema: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(platform, schema=pg_schema) as conn:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE scenes, scene_cogs, alerts, lake_sync")
        conn.commit()
        yield conn


@dataclass
class Topic:
    name: str
    settings: Settings

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


@pytest.fixture
def topic(platform: Settings, request: pytest.FixtureRequest) -> Iterator[Topic]:
    from confluent_kafka.admin import NewTopic

    from canopywatch_dev.platform import kafka

    name = f"{platform.topic_prefix}.lake-{request.node.name[5:40].replace('_', '-')}"
    admin = kafka.admin_client(platform)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=2, replication_factor=1), NewTopic(f"{name}.dlq", 1, 1)]
    )
    for future in futures.values():
        future.result(30)
    yield Topic(name, platform)
    admin.delete_topics([name, f"{name}.dlq"], operation_timeout=30)


@pytest.fixture
def lake(platform: Settings, request: pytest.FixtureRequest) -> Lake:
    return lake_from_settings(
        platform, prefix=f"lake-{request.node.name[5:40]}-{uuid.uuid4().hex[:6]}"
    )


def producer(settings: Settings) -> Any:
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})


def produce(
    settings: Settings, topic: str, payloads: list[bytes], keys: list[str] | None = None
) -> None:
    out = producer(settings)
    for n, payload in enumerate(payloads):
        key = (keys[n] if keys else str(n)).encode()
        out.produce(topic, payload, key=key)
    assert out.flush(30) == 0


def consumer(settings: Settings, topic: str, group: str) -> Any:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    return c


def consume_into_lake(
    settings: Settings, topic: str, group: str, lake: Lake, *, batch: int = 8, idle_s: float = 6.0
) -> list[Any]:
    """Consume until idle; one exactly-once Delta write then one Kafka commit per batch."""
    c = consumer(settings, topic, group)
    dlq = producer(settings)
    outcomes = []
    try:
        idle_since, seen = time.monotonic(), False
        # up to 60 s for the group to assign partitions, then stop when idle
        while time.monotonic() - idle_since < (idle_s if seen else 60):
            messages = c.consume(num_messages=batch, timeout=1.0)
            if not messages:
                continue
            idle_since, seen = time.monotonic(), True
            outcomes.append(write_scene_batch(messages, lake=lake, dlq=dlq))
            c.commit(asynchronous=False)
    finally:
        c.close()
    return outcomes


def delta_ids(lake: Lake) -> list[str]:
    table = open_table(lake, SCENES_RAW)
    return [str(v) for v in table.to_pyarrow_table(columns=["scene_id"]).column(0).to_pylist()]


def pg_rows(conn: psycopg.Connection[Any], table: str = "scenes") -> list[tuple[Any, ...]]:
    key = "alert_id" if table == "alerts" else "scene_id"
    with conn.cursor() as cur:
        geometry = {"alerts": ", ST_AsText(geom)", "scenes": ", ST_AsText(footprint)"}.get(
            table, ""
        )
        cur.execute(f"SELECT *{geometry} FROM {table} ORDER BY {key}")  # test-only names
        return [tuple(str(v) for v in row) for row in cur.fetchall()]


def scene_payloads(count: int, start: int = 0) -> list[bytes]:
    return [scene(n).to_bytes() for n in range(start, start + count)]


# ------------------------------------------------------------------ the tests
def test_scenes_end_in_delta_and_postgis_exactly_once_and_replay_adds_nothing(
    platform: Settings, topic: Topic, lake: Lake, catalog: psycopg.Connection[Any]
) -> None:
    count = 40
    produce(platform, topic.name, scene_payloads(count))
    outcomes = consume_into_lake(platform, topic.name, "g-main", lake)
    assert sum(o.commit.inserted for o in outcomes) == count
    ids = delta_ids(lake)
    assert len(ids) == len(set(ids)) == count
    first = sync_catalog(catalog, lake)
    assert first[0].upserted == count and first[0].mode == "full"
    assert len(pg_rows(catalog)) == count

    version = open_table(lake, SCENES_RAW).version()
    # a whole re-run: a new consumer group reads the topic again from the start
    replay = consume_into_lake(platform, topic.name, "g-rerun", lake)
    assert sum(o.commit.inserted for o in replay) == 0
    assert sum(o.commit.replayed for o in replay) == count
    assert open_table(lake, SCENES_RAW).version() == version
    assert sync_catalog(catalog, lake)[0].mode == "unchanged"
    assert len(pg_rows(catalog)) == count

    # a re-announced scene at new offsets (a re-run of the download) is stored once
    produce(
        platform, topic.name, scene_payloads(5, start=count - 5) + scene_payloads(3, start=count)
    )
    more = consume_into_lake(platform, topic.name, "g-main", lake)
    assert sum(o.commit.inserted for o in more) == 3
    assert sync_catalog(catalog, lake)[0].mode == "incremental"
    assert len(pg_rows(catalog)) == count + 3
    assert len(delta_ids(lake)) == count + 3


_CONSUMER = """
import json, os, sys, time
from confluent_kafka import Consumer, Producer
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import Lake
root, options = sys.argv[1], json.loads(os.environ["LAKE_OPTIONS"])
lake = Lake(root, options)
c = Consumer({"bootstrap.servers": sys.argv[2], "group.id": sys.argv[4],
              "enable.auto.commit": False, "auto.offset.reset": "earliest",
              "session.timeout.ms": 6000})
c.subscribe([sys.argv[3]])
dlq = Producer({"bootstrap.servers": sys.argv[2]})
pause = sys.argv[5] == "pause"
idle, seen = time.monotonic(), False
# wait up to 60 s for the group to assign partitions, then stop after 6 s without messages
while time.monotonic() - idle < (6 if seen else 60):
    batch = c.consume(num_messages=10, timeout=1.0)
    if not batch:
        continue
    idle, seen = time.monotonic(), True
    outcome = write_scene_batch(batch, lake=lake, dlq=dlq)
    print("DELTA", outcome.commit.inserted, outcome.commit.replayed, flush=True)
    if pause:
        time.sleep(120)  # killed here: after the Delta commit, before the Kafka commit
    c.commit(asynchronous=False)
    print("KAFKA", flush=True)
c.close()
"""


def _start_consumer(lake: Lake, topic: Topic, group: str, mode: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "LAKE_OPTIONS": json.dumps(lake.options()),
        "PYTHONPATH": str(REPO_ROOT / "include"),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CONSUMER,
            lake.root,
            topic.settings.kafka_bootstrap,
            topic.name,
            group,
            mode,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_kill_9_between_delta_and_kafka_commit_then_rerun_adds_no_duplicate(
    platform: Settings, topic: Topic, lake: Lake, catalog: psycopg.Connection[Any]
) -> None:
    count = 30
    produce(platform, topic.name, scene_payloads(count))
    victim = _start_consumer(lake, topic, "g-kill", "pause")
    assert victim.stdout is not None
    line = victim.stdout.readline()
    assert line.startswith("DELTA"), line
    written_before_kill = int(line.split()[1])
    assert written_before_kill > 0
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    assert victim.returncode == -signal.SIGKILL
    assert len(delta_ids(lake)) == written_before_kill

    rerun = _start_consumer(lake, topic, "g-kill", "run")
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    replayed = sum(int(line.split()[2]) for line in out.splitlines() if line.startswith("DELTA"))
    assert replayed == written_before_kill  # redelivered, recognised, skipped
    ids = delta_ids(lake)
    assert len(ids) == len(set(ids)) == count
    sync_catalog(catalog, lake)
    assert len(pg_rows(catalog)) == count


def test_malformed_message_goes_to_the_dlq_and_the_rest_flows(
    platform: Settings, topic: Topic, lake: Lake
) -> None:
    newer = json.loads(scene(2).to_json())
    newer["sun_elevation_deg"] = 58.5  # a new optional field from a newer producer
    payloads = [
        scene(1).to_bytes(),
        b'{"message_type": "SceneDownloaded", "scene_id": 3}',
        json.dumps(newer).encode(),
    ]
    produce(platform, topic.name, payloads, keys=["k", "k", "k"])  # one partition, in order
    outcomes = consume_into_lake(platform, topic.name, "g-dlq", lake)
    assert sorted(delta_ids(lake)) == ["scene-00001", "scene-00002"]
    assert sum(len(o.dead_lettered) for o in outcomes) == 1

    letters = []
    c = consumer(platform, topic.dlq, "g-dlq-reader")
    deadline = time.monotonic() + 20
    while not letters and time.monotonic() < deadline:
        letters = [m for m in c.consume(10, timeout=1.0) if m.error() is None]
    c.close()
    letter = DeadLetter.from_json(letters[0].value())
    assert letter.source_topic == topic.name and letter.offset == 1
    assert "scene_id" in letter.error


def test_sync_from_scratch_equals_incremental_sync(
    platform: Settings, lake: Lake, catalog: psycopg.Connection[Any], pg_schema: str
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(12))], lake=lake, dlq=FakeProducer()
    )
    sync_catalog(catalog, lake)
    write_scene_batch(
        [FakeMessage(p, 12 + n) for n, p in enumerate(scene_payloads(6, 12))],
        lake=lake,
        dlq=FakeProducer(),
    )
    key = "sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/bbox_-55.400000_-7.100000_-55.380000_-7.080000/cog.tif"
    cogs = [
        SceneConverted(scene_id=f"scene-{n:05d}", cog_key=key, valid=n % 2 == 0) for n in range(8)
    ]
    write_converted_batch(
        [FakeMessage(c.to_bytes(), n, "t.cog") for n, c in enumerate(cogs)],
        lake=lake,
        dlq=FakeProducer(),
    )
    sync_catalog(catalog, lake)
    open_table(lake, SCENES_RAW).delete("scene_id = 'scene-00003'")  # a correction in the lake
    fixed = SceneConverted(scene_id="scene-00001", cog_key=key, valid=True)
    write_converted_batch(
        [FakeMessage(fixed.to_bytes(), 8, "t.cog")], lake=lake, dlq=FakeProducer()
    )
    results = sync_catalog(catalog, lake)
    assert [r.mode for r in results[:2]] == ["incremental", "incremental"]
    incremental = pg_rows(catalog), pg_rows(catalog, "scene_cogs")
    assert len(incremental[0]) == 17

    rebuilt = sync_catalog(catalog, lake, rebuild=True)
    assert {r.mode for r in rebuilt[:2]} == {"full"}
    assert (pg_rows(catalog), pg_rows(catalog, "scene_cogs")) == incremental

    # and in a fresh schema, from nothing
    other = f"{pg_schema}_b"
    with connect(platform, schema=other) as fresh:
        sync_catalog(fresh, lake)
        assert (pg_rows(fresh), pg_rows(fresh, "scene_cogs")) == incremental
        drop_schema(fresh, other)


def test_new_delta_column_does_not_break_the_sync(
    lake: Lake, catalog: psycopg.Connection[Any]
) -> None:
    from deltalake.schema import Field, PrimitiveType

    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(3))], lake=lake, dlq=FakeProducer()
    )
    open_table(lake, SCENES_RAW).alter.add_columns(
        [Field("sun_elevation", PrimitiveType("double"), nullable=True)]
    )
    write_scene_batch(
        [FakeMessage(p, 3 + n) for n, p in enumerate(scene_payloads(2, 3))],
        lake=lake,
        dlq=FakeProducer(),
    )
    sync_catalog(catalog, lake)
    assert len(pg_rows(catalog)) == 5


def test_minio_down_during_a_batch_raises_and_the_retry_loses_nothing(
    platform: Settings, lake: Lake
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    batch = [FakeMessage(p, n) for n, p in enumerate(scene_payloads(10))]
    write_scene_batch(batch[:4], lake=lake, dlq=FakeProducer())
    down = Lake(
        lake.root, {**lake.options(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "max_retries": "1"}
    )
    with pytest.raises(OSError):
        write_scene_batch(batch, lake=down, dlq=FakeProducer())
    retry = write_scene_batch(batch, lake=lake, dlq=FakeProducer())  # the task retry: whole batch
    assert (retry.commit.inserted, retry.commit.replayed) == (6, 4)
    assert (
        sorted(delta_ids(lake)) == sorted({s for s in delta_ids(lake)})
        and len(delta_ids(lake)) == 10
    )


def test_postgis_lost_during_a_sync_raises_and_the_next_sync_is_complete(
    platform: Settings, lake: Lake, catalog: psycopg.Connection[Any], pg_schema: str
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(8))], lake=lake, dlq=FakeProducer()
    )
    with (
        connect(platform, schema=pg_schema) as holder,
        connect(platform, schema=pg_schema) as victim,
    ):
        with holder.cursor() as cur:  # hold the sync lock so the victim's sync waits inside
            cur.execute("SELECT pg_advisory_lock(%s)", (0x63_77_73_00,))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                sync_table(victim, lake, SCENES_RAW)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.0)
        with holder.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
            cur.execute("SELECT pg_advisory_unlock(%s)", (0x63_77_73_00,))
        holder.commit()
        worker.join(30)
    assert errors and isinstance(errors[0], psycopg.OperationalError)
    assert pg_rows(catalog) == []
    with pytest.raises(psycopg.OperationalError):
        sync_catalog(psycopg.connect(host="127.0.0.1", port=9, connect_timeout=2), lake)  # down

    sync_catalog(catalog, lake)
    assert len(pg_rows(catalog)) == 8


def test_bbox_time_query_plans_use_the_gist_and_time_indexes(
    platform: Settings, pg_schema: str
) -> None:
    from canopywatch_dev.synthetic_catalog import load_synthetic_scenes

    schema = f"{pg_schema}_q"
    with connect(platform, schema=schema) as conn:
        ensure_schema(conn)
        load_synthetic_scenes(conn, 20_000)
        query = queries.Query.parse("-60,-10,-59.5,-9.5", "2024-03-01", "2024-03-31")
        plan = queries.explain(conn, queries.SCENES_SQL, query)
        assert "scenes_footprint_gix" in plan and "Seq Scan" not in plan, plan
        hits = queries.scenes_in(conn, query)
        assert all(query.window.start <= h["acquired_at"] <= query.window.end for h in hits)
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence, area_ha,
                       model_version, geohash, geom)
                   SELECT 'a' || scene_id, 'syn', acquired_at, cloud_cover / 100, 1, 'm', geohash,
                          ST_Multi(footprint) FROM scenes"""
            )
            cur.execute("ANALYZE alerts")
        conn.commit()
        alert_query = queries.Query.parse(
            "-60,-10,-59.5,-9.5", "2024-03-01", "2024-03-31", min_confidence=0.5
        )
        alert_plan = queries.explain(conn, queries.ALERTS_SQL, alert_query)
        assert "alerts_geom_gix" in alert_plan and "Seq Scan" not in alert_plan, alert_plan
        assert all(a["confidence"] >= 0.5 for a in queries.alerts_in(conn, alert_query))
        drop_schema(conn, schema)


def test_geopackage_export_of_a_run_to_minio_and_disk(
    platform: Settings, lake: Lake, tmp_path: Path
) -> None:
    import pyogrio

    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER, export_new_since
    from canopywatch.lake.tables import current_versions
    from canopywatch.storage.objects import ObjectStore
    from canopywatch_dev.platform import minio
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(3))], lake=lake, dlq=FakeProducer()
    )
    before = current_versions(lake)
    write_scene_batch(
        [FakeMessage(p, 3 + n) for n, p in enumerate(scene_payloads(4, 3))],
        lake=lake,
        dlq=FakeProducer(),
    )
    store = ObjectStore(minio.s3_client(platform), platform.exports_bucket)
    result = export_new_since(
        lake, before, label="manual__2024-05-01T00:00:00+00:00", out_dir=tmp_path, store=store
    )
    assert (result.scenes, result.alerts) == (4, 0)
    layers = {name for name, _ in pyogrio.list_layers(result.path)}
    assert layers == {SCENE_LAYER, ALERT_LAYER}
    frame = pyogrio.read_dataframe(result.path, layer=SCENE_LAYER)
    assert {"scene_id", "acquired_utc", "cloud_cover_pct", "raw_object_key"} <= set(frame.columns)
    assert store.head(result.key or "") is not None
    assert len(frame) == result.scenes
