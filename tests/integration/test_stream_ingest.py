"""The Structured Streaming job on local[2] against the real Kafka and MinIO, killed with -9.

Publishes six days of simulated station readings (with a gateway's resends), a cut
JSON line and a reading dated 2099 to this session's ``sensor-readings`` topic, and two
scene announcements (one of them twice) to ``scenes-downloaded``. The first run of
``spark/stream_ingest.py`` (700 records per micro-batch) is killed with SIGKILL right
after its first Delta commit, while the checkpoint does not yet mark that batch done;
the second run replays the batch (Delta skips it by txnAppId/txnVersion) and finishes.
``sensor_raw`` then holds every good reading once, ``satellite_raw`` each scene event
once, the bad records are on the DLQ, and the checkpoints are in MinIO.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from shapely.geometry import box

from canopywatch.cog.submit import spark_jars, spark_submit_argv, submit_environment
from canopywatch.lake.tables import lake_from_settings
from canopywatch.messages import SceneDownloaded
from canopywatch.sensors.ingest import ingest_rows
from canopywatch.sensors.readings import Row
from canopywatch.settings import Settings
from canopywatch.streaming.submit import (
    APPLICATION,
    NAME,
    checkpoint_uri,
    stream_arguments,
    stream_conf,
)
from tests.integration.conftest import topics_of_their_own

pytestmark = [pytest.mark.service, pytest.mark.slow]

FIRST_COMMIT = "lake/sensor_raw/_delta_log/00000000000000000000.json"


@pytest.fixture(scope="module")
def platform(platform: Settings) -> Iterator[Settings]:
    """The session's services, with Kafka topics of this module's own: its hand-made
    scene and sensor messages never reach the consumers of other modules' DAG runs."""
    with topics_of_their_own(platform, "stream") as settings:
        yield settings


def _submit(settings: Settings, tables: list[str], extra: list[str]) -> subprocess.Popen[str]:
    args = stream_arguments(
        settings, bootstrap=settings.kafka_bootstrap, tables=tables, max_offsets_per_trigger=700
    )
    argv = spark_submit_argv(
        "local[2]",
        spark_jars(settings),
        stream_conf(settings.s3_endpoint, "us-east-1"),
        [*args, *extra],
        application=APPLICATION,
        name=NAME,
    )
    env = {**os.environ, **submit_environment(settings.s3_access_key, settings.s3_secret_key)}
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the driver JVM and its Python child, killed together
    )


def _errors(out: str) -> str:
    """The job's own failure lines (Spark prints whole plans after them)."""
    lines = [line[:600] for line in out.splitlines() if "failed:" in line or "Exception:" in line]
    return "\n".join(lines[:10]) or out[-3000:]


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [obj["Key"] for obj in page.get("Contents", [])]
    return found


def _dlq(settings: Settings, topic: str) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "it-dlq",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in consumer.consume(100, 1.0):
            if message.error() is None:
                letters.append(json.loads(message.value()))
        if len(letters) >= 2:
            break
    consumer.close()
    return letters


def _scene(index: int) -> SceneDownloaded:
    return SceneDownloaded(
        scene_id=f"{index:016x}",
        request_id=f"r{index}",
        aoi_id="it",
        source="simulated",
        function="s2l2a_bands",
        raw_key=f"k/{index}/raw.tif",
        bucket="b",
        bbox=(-55.4, -7.1, -55.35, -7.05),
        footprint={
            "type": "Polygon",
            "coordinates": [[[-55.4, -7.1], [-55.35, -7.1], [-55.35, -7.05], [-55.4, -7.1]]],
        },
        geohash="6xyz",
        acquired_at=dt.datetime(2023, 8, 1 + index, 14, tzinfo=dt.UTC),
        crs="EPSG:32721",
        shape=(500, 500),
        bands=["B04"],
        checksum=f"c{index}",
        size_bytes=10,
    )


def test_kill_9_mid_batch_then_restart_loses_and_duplicates_nothing(
    platform: Settings, tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    from canopywatch_dev.platform import minio
    from canopywatch_dev.sensors import Clearing, simulate

    settings = platform
    clearing = Clearing(
        "ev-1", "clearing", dt.date(2024, 3, 5), box(-55.39, -7.09, -55.385, -7.085)
    )
    world = simulate([clearing], start=dt.date(2024, 3, 1), days=6, seed=5)
    stations = {s.station_id: s for s in world.stations}
    rows = [
        Row(i + 1, "", {k: v for k, v in r.items() if not k.startswith("_")})
        for i, r in enumerate(world.readings)
    ]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    topic = settings.topic("sensor-readings")
    report = ingest_rows(
        rows, stations, producer, topic, now=dt.datetime(2024, 3, 8, tzinfo=dt.UTC)
    )
    assert not report.rejected
    # what a producer other than the CLI might send: a cut line and a reading from 2099
    producer.produce(
        topic, b'{"message_type": "SensorReading", "station_id": "wx-00"', key=b"wx-00"
    )
    future = json.loads(json.dumps(world.readings[0], default=str))
    future.update(
        observed_at="2099-01-01T00:00:00Z", reading_id="future-1", message_type="SensorReading"
    )
    future.pop("_delivered_at")
    producer.produce(topic, json.dumps(future).encode(), key=b"wx-00")
    scenes = settings.topic("scenes-downloaded")
    for scene in (_scene(1), _scene(2), _scene(1)):  # the third: a re-announcement
        producer.produce(scenes, scene.to_bytes(), key=scene.key.encode())
    assert producer.flush(30) == 0
    records = report.total_published + 2  # on the sensor topic

    s3 = minio.s3_client(settings)
    first = _submit(settings, ["sensor_raw"], ["--pause-after-commit", "300"])
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline and first.poll() is None:
        if _keys(s3, settings.bucket, FIRST_COMMIT):
            break
        time.sleep(1)
    assert first.poll() is None, (first.stdout.read() if first.stdout else "")[-3000:]
    assert _keys(s3, settings.bucket, FIRST_COMMIT), "no Delta commit within 8 minutes"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    assert first.returncode == -signal.SIGKILL
    checkpoint = checkpoint_uri(settings).removeprefix(f"s3a://{settings.bucket}/") + "/sensor_raw"
    # killed mid-batch: batch 0 is in Delta and planned in the checkpoint, but not marked done
    assert _keys(s3, settings.bucket, f"{checkpoint}/offsets/0")
    assert not _keys(s3, settings.bucket, f"{checkpoint}/commits/0")

    second = _submit(settings, ["sensor_raw", "satellite_raw"], [])
    out, _ = second.communicate(timeout=900)
    assert second.returncode == 0, _errors(out)
    summary = {s["query"]: s for s in json.loads(out.strip().splitlines()[-1])}

    lake = lake_from_settings(settings)
    table = DeltaTable(f"{lake.root}/sensor_raw", storage_options=lake.options())
    data = table.to_pyarrow_table().to_pylist()
    expected = {_reading_id(row) for row in world.readings}
    got = [r["reading_id"] for r in data]
    assert len(got) == len(set(got)), "a reading was written twice"
    assert set(got) == set(expected), "readings lost or invented"
    offsets = [(r["kafka_partition"], r["kafka_offset"]) for r in data]
    assert len(offsets) == len(set(offsets))
    # every Kafka record is accounted for: the second run re-read batch 0 (never marked
    # done) and the rest; each record is kept, a resend dropped within the watermark, or
    # dead-lettered; the replayed batch 0 was skipped by Delta, not appended again
    resends = len(world.readings) - len(expected)
    assert resends > 0
    assert summary["canopywatch_sensor_raw"]["input_rows"] == records
    assert len(data) + resends + 2 == records
    writes = [h for h in table.history() if h.get("operation") == "WRITE"]
    batch_ids = sorted({r["batch_id"] for r in data})
    assert len(writes) == len(batch_ids) and batch_ids[0] == 0
    letters = _dlq(settings, f"{topic}.dlq")
    assert len({(d["partition"], d["offset"]) for d in letters}) == 2
    errors = sorted(letter["error"] for letter in letters)
    assert errors[0] == "not a JSON message" or errors[0].startswith("observed_at missing")
    assert "ahead of the broker" in errors[1]

    satellite = DeltaTable(f"{lake.root}/satellite_raw", storage_options=lake.options())
    scenes_rows = satellite.to_pyarrow_table().to_pylist()
    assert sorted(r["scene_id"] for r in scenes_rows) == [f"{1:016x}", f"{2:016x}"]
    assert json.loads(scenes_rows[0]["footprint"])["type"] == "Polygon"
    # the checkpoints live in MinIO
    assert _keys(s3, settings.bucket, f"{checkpoint}/commits/")


def _reading_id(row: dict[str, Any]) -> str:
    from canopywatch.messages import SensorReading

    return SensorReading.model_validate({k: v for k, v in row.items() if k[0] != "_"}).reading_id
