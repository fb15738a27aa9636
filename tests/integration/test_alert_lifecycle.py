"""An alert's lifecycle through the real services: Kafka -> Delta -> PostGIS, one row.

The alert is published active, then withdrawn under the same id (with another alert date
and month partition); the lake consumer writes both from the topic, the sync applies
them, and PostGIS holds one row with the latest status. A catalog made before the status
columns existed is migrated with its rows filled in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.catalog.sync import sync_catalog
from canopywatch.lake.consume import write_alert_batch
from canopywatch.lake.tables import ALERTS, Lake, lake_from_settings, open_table
from canopywatch.messages import AlertPublished
from canopywatch.settings import Settings
from tests.integration.conftest import topics_of_their_own
from tests.unit.test_lake_writer import FakeProducer

pytestmark = pytest.mark.service

RING = [[-55.4, -7.1], [-55.39, -7.1], [-55.39, -7.09], [-55.4, -7.09], [-55.4, -7.1]]


@pytest.fixture(scope="module")
def platform(platform: Settings) -> Iterator[Settings]:
    """The session's services, with Kafka topics of this module's own: its hand-made
    alert messages never reach the consumers of other modules' DAG runs."""
    with topics_of_their_own(platform, "lifecycle") as settings:
        yield settings


@pytest.fixture
def pg_schema(platform: Settings) -> Iterator[str]:
    schema = f"cwtest_{uuid.uuid4().hex[:8]}"
    with connect(platform, schema=schema) as conn:
        ensure_schema(conn)
    yield schema
    with connect(platform) as conn:
        drop_schema(conn, schema)


def _consume(settings: Settings, key: bytes, count: int) -> list[Any]:
    """The first ``count`` messages with ``key`` on the alerts topic (others are skipped)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"it-lifecycle-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topic("alerts")])
    messages: list[Any] = []
    idle = 0
    while len(messages) < count and idle < 10:
        message = consumer.poll(2.0)
        if message is None or message.error():
            idle += 1
        elif message.key() == key:
            messages.append(message)
    consumer.close()
    return messages


def test_a_withdrawal_updates_the_alert_in_delta_and_postgis(
    platform: Settings, pg_schema: str
) -> None:
    alert_id = f"lifecycle-{uuid.uuid4().hex[:8]}"
    active = AlertPublished(
        alert_id=alert_id, aoi_id="it-area", geometry={"type": "MultiPolygon", "coordinates": [[RING]]},
        alert_date=datetime(2024, 5, 30, tzinfo=UTC), confirmed_date=datetime(2024, 6, 4, tzinfo=UTC),
        confidence=0.93, confidence_level="high", status="high", area_ha=1.2,
        method="harmonic", model_version="harmonic-v1",
    )  # fmt: skip
    withdrawn = active.model_copy(
        update={"status": "withdrawn", "confidence": 0.01, "confidence_level": "low",
                "confirmed_date": None, "alert_date": datetime(2024, 6, 3, tzinfo=UTC)}
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": platform.kafka_bootstrap})
    for message in (active, withdrawn):
        producer.produce(platform.topic("alerts"), message.to_bytes(), key=message.key.encode())
    assert producer.flush(30) == 0
    mine = _consume(platform, alert_id.encode(), 2)
    assert [AlertPublished.from_json(m.value()).status for m in mine] == ["high", "withdrawn"]
    lake: Lake = lake_from_settings(platform, prefix=f"lake-lifecycle-{uuid.uuid4().hex[:6]}")
    for message in mine:  # two batches, as two weekly runs would write them
        write_alert_batch([message], lake=lake, dlq=FakeProducer())
    rows = open_table(lake, ALERTS).to_pyarrow_table().to_pylist()
    assert [(r["alert_id"], r["status"], r["month"]) for r in rows] == [
        (alert_id, "withdrawn", "2024-06")
    ]
    with connect(platform, schema=pg_schema) as conn:
        sync_catalog(conn, lake)
        found = conn.execute(
            "SELECT alert_id, status, confidence_level, method, confirmed_date, alert_date, "
            "ST_GeometryType(geom) FROM alerts"
        ).fetchall()
    assert found == [
        (alert_id, "withdrawn", "low", "harmonic", None, datetime(2024, 6, 3, tzinfo=UTC),
         "ST_MultiPolygon")
    ]  # fmt: skip


def test_a_catalog_from_before_the_status_columns_is_migrated(
    platform: Settings, pg_schema: str
) -> None:
    with connect(platform, schema=pg_schema) as conn:
        conn.execute("DROP TABLE alerts")
        conn.execute(
            """CREATE TABLE alerts (alert_id text PRIMARY KEY, aoi_id text NOT NULL,
                alert_date timestamptz NOT NULL, confirmed_date timestamptz,
                confidence double precision NOT NULL, area_ha double precision NOT NULL,
                model_version text NOT NULL, geohash text NOT NULL,
                geom geometry(MultiPolygon, 4326) NOT NULL)"""
        )
        conn.execute(
            """INSERT INTO alerts VALUES
               ('old-1', 'a', '2024-03-01', '2024-03-06', 0.9, 1, 'xgb-0a1b', 'x',
                ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326))),
               ('old-2', 'a', '2024-03-02', NULL, 0.6, 1, 'harmonic-v1', 'x',
                ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)))"""
        )
        conn.commit()
        ensure_schema(conn)
        ensure_schema(conn)  # idempotent
        rows = conn.execute(
            "SELECT alert_id, confidence_level, status, method FROM alerts ORDER BY 1"
        ).fetchall()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE alerts SET status = 'gone'")
        conn.rollback()
    assert rows == [("old-1", "high", "high", "xgboost"), ("old-2", "low", "low", "harmonic")]
