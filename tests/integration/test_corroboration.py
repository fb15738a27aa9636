"""``corroborated_by`` through the real services: sensor evidence in PostGIS marks the alerts,
``canopywatch sensors corroborate`` announces the changed ones on Kafka, the lake consumer
writes them to Delta, the sync keeps them in PostGIS and the GeoPackage export carries them.

Alerts are the demo area's simulated clearings (dated a few days after the cut, written
Kafka-less into Delta and synced, as the weekly run would), readings 90 days of the demo
stations; the expected value of each alert is the PostGIS reference join on the same rows.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from confluent_kafka import Consumer
from shapely.geometry import MultiPolygon, mapping

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.catalog.sync import sync_catalog
from canopywatch.export.alerts import from_lake_rows, write_alerts
from canopywatch.lake.consume import write_alert_batch
from canopywatch.lake.tables import ALERTS, lake_from_settings, open_table
from canopywatch.messages import AlertPublished
from canopywatch.sensors.catalog import COLUMNS, ensure_table
from canopywatch.sensors.corroboration import corroboration
from canopywatch.sensors.evidence import evidence_postgis
from canopywatch.settings import Settings
from tests.integration.conftest import topics_of_their_own
from tests.unit.test_lake_writer import FakeProducer

pytestmark = pytest.mark.service

AOI = "it-corroboration"
START = dt.date(2024, 3, 1)


@pytest.fixture(scope="module")
def platform(platform: Settings) -> Iterator[Settings]:
    """Topics and a catalog schema of this module's own (dropped afterwards)."""
    with topics_of_their_own(platform, "corrob") as settings:
        own = replace(settings, pg_schema=f"{platform.pg_schema}_corr")
        with connect(own) as conn:
            ensure_schema(conn)
        yield own
        with connect(platform) as conn:
            drop_schema(conn, own.pg_schema)


def _alerts(clearings: list[Any]) -> list[AlertPublished]:
    out = []
    for c in clearings:
        outline = (
            c.geometry if c.geometry.geom_type == "MultiPolygon" else MultiPolygon([c.geometry])
        )
        out.append(
            AlertPublished(
                alert_id=f"corr-{c.event_id}", aoi_id=AOI, geometry=mapping(outline),
                alert_date=dt.datetime.combine(c.day + dt.timedelta(days=4), dt.time(14), dt.UTC),
                confirmed_date=dt.datetime.combine(c.day + dt.timedelta(days=9), dt.time(14), dt.UTC),
                confidence=0.9, confidence_level="high", status="high", area_ha=1.0,
                method="harmonic", model_version="harmonic-v1",
            )
        )  # fmt: skip
    return out


def _consume_all(settings: Settings) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"it-corr-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topic("alerts")])
    messages: list[Any] = []
    idle = 0
    while idle < 3:
        message = consumer.poll(2.0)
        if message is None or message.error():
            idle += 1
        else:
            messages.append(message)
    consumer.close()
    return messages


def _corroborate(settings: Settings, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CANOPYWATCH_PG_SCHEMA": settings.pg_schema,
        "CANOPYWATCH_TOPIC_PREFIX": settings.topic_prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "canopywatch", "sensors", "corroborate", "--aoi", AOI, *extra],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_corroboration_is_stored_announced_and_carried_to_delta_and_the_export(
    platform: Settings, tmp_path: Path
) -> None:
    from canopywatch_dev.sensors import demo_clearings, readings_frame, simulate

    settings = platform
    clearings = [c for c in demo_clearings() if START <= c.day < START + dt.timedelta(days=90)]
    assert len(clearings) >= 4
    world = simulate(demo_clearings(), start=START, days=90, seed=7)
    readings = readings_frame(world)
    alerts = _alerts(clearings)
    withdrawn = alerts[0].model_copy(
        update={"alert_id": "corr-withdrawn", "status": "withdrawn", "confidence": 0.01,
                "confidence_level": "low", "confirmed_date": None}
    )  # fmt: skip
    lake = lake_from_settings(settings, prefix=f"lake-corr-{uuid.uuid4().hex[:6]}")

    class Record:  # what write_alert_batch reads of a consumed Kafka message
        def __init__(self, message: AlertPublished, offset: int) -> None:
            self._value, self._offset = message.to_bytes(), offset

        def value(self) -> bytes:
            return self._value

        def key(self) -> bytes:
            return b"k"

        def topic(self) -> str:
            return settings.topic("alerts")

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return self._offset

        def error(self) -> None:
            return None

    write_alert_batch(
        [Record(m, i) for i, m in enumerate([*alerts, withdrawn])], lake=lake, dlq=FakeProducer()
    )
    with connect(settings) as conn:
        sync_catalog(conn, lake)
        ensure_table(conn)
        names = [n for n, _ in COLUMNS[:20]]
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY sensor_readings ({', '.join(names)}, kafka_partition, kafka_offset,"
                " ingested_at) FROM STDIN"
            ) as copy,
        ):
            for i, r in enumerate(readings[names].itertuples(index=False)):
                copy.write_row(
                    [*(None if pd.isna(v) else v for v in r), 0, i, dt.datetime.now(dt.UTC)]
                )
        conn.commit()
        reference = evidence_postgis(conn, alerts="(SELECT * FROM alerts WHERE status = 'high')")
        before = dict(conn.execute("SELECT alert_id, corroborated_by FROM alerts").fetchall())
    assert set(before.values()) == {None}  # nothing checked yet
    expected = {
        a.alert_id: corroboration(reference.loc[reference["alert_id"] == a.alert_id, "kind"])
        for a in alerts
    }
    assert {"acoustic", "fire"} <= {k for v in expected.values() for k in v.split(",")}
    assert "" in expected.values() or len(set(expected.values())) > 1  # not all alike

    done = _corroborate(settings)
    assert done.returncode == 0, done.stderr
    corroborated = sum(1 for v in expected.values() if v)
    assert done.stdout.startswith(
        f"{len(alerts)} active alert(s) checked: {corroborated} corroborated"
    ), done.stdout
    assert f"{len(alerts)} changed, announced on {settings.topic('alerts')}" in done.stdout

    with connect(settings) as conn:
        stored = dict(conn.execute("SELECT alert_id, corroborated_by FROM alerts").fetchall())
    assert stored == {**expected, "corr-withdrawn": None}  # only active alerts are checked

    announced = [AlertPublished.from_json(m.value()) for m in _consume_all(settings)]
    assert {m.alert_id: m.corroborated_by for m in announced} == expected

    again = _corroborate(settings)
    assert again.returncode == 0 and again.stdout.rstrip().endswith("0 changed"), again.stdout
    assert len(_consume_all(settings)) == len(announced)  # nothing new announced

    # the announcements through the lake consumer: Delta holds them, the sync keeps them
    write_alert_batch(
        [Record(m, 100 + i) for i, m in enumerate(announced)], lake=lake, dlq=FakeProducer()
    )
    rows = open_table(lake, ALERTS).to_pyarrow_table().to_pylist()
    assert {r["alert_id"]: r["corroborated_by"] for r in rows} == {
        **expected,
        "corr-withdrawn": None,
    }
    # a later weekly run re-sends an alert unchecked (null): the stored check stays
    write_alert_batch([Record(alerts[0], 200)], lake=lake, dlq=FakeProducer())
    with connect(settings) as conn:
        sync_catalog(conn, lake)
        kept = conn.execute(
            "SELECT corroborated_by FROM alerts WHERE alert_id = %s", (alerts[0].alert_id,)
        ).fetchone()
    assert kept == (expected[alerts[0].alert_id],)

    # the GeoPackage export of the lake carries the field as a text column (the lake holds the
    # latest announcement: the re-sent alert is unchecked there)
    rows = open_table(lake, ALERTS).to_pyarrow_table().to_pylist()
    path = write_alerts(from_lake_rows(rows), tmp_path / "alerts.gpkg")
    exported = gpd.read_file(path)
    values = {
        k: None if pd.isna(v) else v
        for k, v in zip(exported["alert_id"], exported["corroborated_by"], strict=True)
    }
    assert values == {**expected, "corr-withdrawn": None, alerts[0].alert_id: None}


def test_a_catalog_from_before_corroboration_gets_the_column(platform: Settings) -> None:
    from canopywatch.sensors.corroboration import corroborate_catalog

    older = replace(platform, pg_schema=f"{platform.pg_schema}_old")
    try:
        with connect(older) as conn:
            ensure_schema(conn)
            conn.execute("ALTER TABLE alerts DROP COLUMN corroborated_by")
            conn.execute(
                "INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence, confidence_level,"
                " status, area_ha, method, model_version, geohash, geom) VALUES ('old-1', %s,"
                " '2024-03-05', 0.9, 'high', 'high', 1, 'harmonic', 'harmonic-v1', 'x',"
                " ST_Multi(ST_MakeEnvelope(-55.4, -7.1, -55.39, -7.09, 4326)))",
                (AOI,),
            )
            conn.commit()
            result = corroborate_catalog(conn, aoi=AOI)
            stored = conn.execute("SELECT alert_id, corroborated_by FROM alerts").fetchall()
        assert result.values == {"old-1": ""} and [m.alert_id for m in result.changed] == ["old-1"]
        assert stored == [("old-1", "")]  # checked, no readings: none found
    finally:
        with connect(platform) as conn:
            drop_schema(conn, older.pg_schema)
