"""The lake and the catalog on the real services: Kafka -> Delta on MinIO -> PostGIS.

Every test here consumes from the real broker: it gets its own topics (``<session
prefix>.lake-<name>`` and its ``.dlq``), its own lake prefix in the session bucket, and the
session's own PostGIS schema. Delta and PostGIS behaviour fed with in-memory messages (no
broker) is in ``test_delta_postgis_without_broker.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.catalog.sync import sync_catalog
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, Lake, lake_from_settings, open_table
from canopywatch.messages import DeadLetter
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
