"""``corroborated_by``, ``evidence_ids`` and ``drought_anomaly`` through the real services:
sensor evidence and weather in PostGIS mark the alerts, ``canopywatch sensors corroborate``
announces the changed ones on Kafka, the lake consumer writes them to Delta, the sync keeps
them in PostGIS, the GeoPackage and GeoJSON exports and the API carry them.

Alerts are the demo area's simulated clearings (dated a few days after the cut, written
Kafka-less into Delta and synced, as the weekly run would) and one more dated in the dry
season; readings 90 days of the demo stations plus the year of weather before them (the
record the drought anomaly needs). The expected evidence of each alert is the PostGIS
reference join on the same rows; the expected drought anomaly is computed in pandas from
the readings frames (daily sums, the four weather stations of the area).
"""

from __future__ import annotations

import datetime as dt
import json
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
from canopywatch.sensors.corroboration import corroboration, ids_of
from canopywatch.sensors.drought import anomalies_for
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
    # the year before, same seed: the same four weather stations (their places are drawn first)
    year = readings_frame(simulate(demo_clearings(), start=START - dt.timedelta(days=365),
                                   days=365, seed=7))  # fmt: skip
    year = year[year["kind"] == "weather"]
    assert set(year["station_id"]) == set(readings.loc[readings["kind"] == "weather", "station_id"])
    assert (year[["station_id", "lon", "lat"]].drop_duplicates().shape[0]) == 4
    readings = pd.concat([readings, year], ignore_index=True)
    alerts = _alerts(clearings)
    # and a clearing seen again late in May, in the dry season (no rain since the end of April)
    alerts.append(
        alerts[-1].model_copy(
            update={"alert_id": "corr-dry-season",
                    "alert_date": dt.datetime(2024, 5, 26, 14, tzinfo=dt.UTC),
                    "confirmed_date": dt.datetime(2024, 5, 28, 14, tzinfo=dt.UTC)}
        )
    )  # fmt: skip
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
        before = conn.execute(
            "SELECT alert_id, corroborated_by, evidence_ids, drought_anomaly, status, confidence"
            " FROM alerts"
        ).fetchall()
    assert {r[1:4] for r in before} == {(None, None, None)}  # nothing checked yet
    expected = {
        a.alert_id: corroboration(reference.loc[reference["alert_id"] == a.alert_id, "kind"])
        for a in alerts
    }
    expected_ids = {
        a.alert_id: json.dumps(
            {kind: sorted(group["evidence_id"]) for kind, group in
             reference[reference["alert_id"] == a.alert_id].groupby("kind")},
            separators=(",", ":"),
        )
        for a in alerts
    }  # fmt: skip
    # the drought anomaly from the readings frame: per station and UTC day, the rain summed
    weather = readings[readings["kind"] == "weather"]
    daily = (
        weather.assign(day=weather["observed_at"].dt.tz_convert("UTC").dt.date)
        .groupby(["station_id", "day"], as_index=False)["rain_mm"]
        .sum()
    )
    stations = sorted(weather["station_id"].unique())  # all within 25 km of the demo area
    expected_drought = anomalies_for(
        [(a.alert_id, a.alert_date) for a in alerts], {a.alert_id: stations for a in alerts}, daily
    )
    reports = {k: json.loads(v) for k, v in expected_drought.items() if v != "{}"}
    assert reports["corr-dry-season"]["station_ids"] == stations
    assert reports["corr-dry-season"]["window_days"] == 30
    assert reports["corr-dry-season"]["precip_mm"] < 60  # a dry month
    assert "{}" in expected_drought.values()  # the wet-season alerts report none
    assert {"acoustic", "fire"} <= {k for v in expected.values() for k in v.split(",")}
    assert "" in expected.values() or len(set(expected.values())) > 1  # not all alike

    done = _corroborate(settings)
    assert done.returncode == 0, done.stderr
    corroborated = sum(1 for v in expected.values() if v)
    assert done.stdout.startswith(
        f"{len(alerts)} active alert(s) checked: {corroborated} corroborated"
    ), done.stdout
    assert f"{len(alerts)} changed, announced on {settings.topic('alerts')}" in done.stdout

    assert f"{len(reports)} in a dry spell (drought_anomaly)" in done.stdout

    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT alert_id, corroborated_by, evidence_ids, drought_anomaly, status, confidence"
            " FROM alerts"
        ).fetchall()
        kinds_of_ids = dict(conn.execute("SELECT reading_id, kind FROM sensor_readings").fetchall())
        tracks = {r[0] for r in conn.execute("SELECT DISTINCT track_id FROM sensor_readings")}
    stored = {r[0]: r[1] for r in rows}
    assert stored == {**expected, "corr-withdrawn": None}  # only active alerts are checked
    assert {r[0]: r[2] for r in rows} == {**expected_ids, "corr-withdrawn": None}
    assert {r[0]: r[3] for r in rows} == {**expected_drought, "corr-withdrawn": None}
    assert {(r[0], r[4], r[5]) for r in rows} == {(r[0], r[4], r[5]) for r in before}  # unchanged
    # the ids are the readings themselves: chainsaws and hotspots by reading id, patrols by track
    for value in expected_ids.values():
        for kind, ids in ids_of(value).items():
            if kind == "patrol":
                assert set(ids) <= tracks
            else:
                assert {kinds_of_ids[i] for i in ids} == {
                    "acoustic" if kind == "acoustic" else "fire_hotspot"
                }
    assert {k for v in expected_ids.values() for k in ids_of(v)} >= {"acoustic", "fire"}

    announced = [AlertPublished.from_json(m.value()) for m in _consume_all(settings)]
    assert {m.alert_id: m.corroborated_by for m in announced} == expected
    assert {m.alert_id: m.evidence_ids for m in announced} == expected_ids
    assert {m.alert_id: m.drought_anomaly for m in announced} == expected_drought

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
    assert {r["alert_id"]: r["evidence_ids"] for r in rows} == {
        **expected_ids,
        "corr-withdrawn": None,
    }
    assert {r["alert_id"]: r["drought_anomaly"] for r in rows} == {
        **expected_drought,
        "corr-withdrawn": None,
    }
    # a later weekly run re-sends an alert unchecked (null): the stored check stays
    write_alert_batch([Record(alerts[0], 200)], lake=lake, dlq=FakeProducer())
    with connect(settings) as conn:
        sync_catalog(conn, lake)
        kept = conn.execute(
            "SELECT corroborated_by, evidence_ids, drought_anomaly FROM alerts WHERE alert_id = %s",
            (alerts[0].alert_id,),
        ).fetchone()
    first = alerts[0].alert_id
    assert kept == (expected[first], expected_ids[first], expected_drought[first])

    # the API: the alert's own route and the OGC features collection
    from fastapi.testclient import TestClient

    from canopywatch.api.app import create_app

    with TestClient(create_app(replace(settings, api_public_read=True))) as client:
        detail = client.get("/alerts/corr-dry-season")
        assert detail.status_code == 200, detail.text
        properties = detail.json()["properties"]
        assert properties["evidence_ids"] == expected_ids["corr-dry-season"]
        assert json.loads(properties["drought_anomaly"]) == reports["corr-dry-season"]
        items = client.get("/collections/alerts/items", params={"limit": 100}).json()
        served = {f["properties"]["alert_id"]: f["properties"] for f in items["features"]}
        assert served[first]["evidence_ids"] == expected_ids[first]
        assert served["corr-dry-season"]["drought_anomaly"] == expected_drought["corr-dry-season"]

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
    # GeoJSON: GDAL writes the JSON text as objects (its AUTODETECT_JSON_STRINGS default)
    geojson = json.loads(
        write_alerts(from_lake_rows(rows), tmp_path / "alerts.geojson").read_text()
    )
    properties = {f["properties"]["alert_id"]: f["properties"] for f in geojson["features"]}
    dry = properties["corr-dry-season"]
    assert dry["evidence_ids"] == json.loads(expected_ids["corr-dry-season"])
    assert dry["drought_anomaly"] == reports["corr-dry-season"]
    assert dry["corroborated_by"] == expected["corr-dry-season"]
    assert properties[alerts[0].alert_id]["evidence_ids"] is None  # re-sent unchecked


def test_a_catalog_from_before_corroboration_gets_the_column(platform: Settings) -> None:
    from canopywatch.sensors.corroboration import corroborate_catalog

    older = replace(platform, pg_schema=f"{platform.pg_schema}_old")
    try:
        with connect(older) as conn:
            ensure_schema(conn)
            for column in ("corroborated_by", "evidence_ids", "drought_anomaly"):
                conn.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
            conn.execute(
                "INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence, confidence_level,"
                " status, area_ha, method, model_version, geohash, geom) VALUES ('old-1', %s,"
                " '2024-03-05', 0.9, 'high', 'high', 1, 'harmonic', 'harmonic-v1', 'x',"
                " ST_Multi(ST_MakeEnvelope(-55.4, -7.1, -55.39, -7.09, 4326)))",
                (AOI,),
            )
            conn.commit()
            result = corroborate_catalog(conn, aoi=AOI)
            stored = conn.execute(
                "SELECT alert_id, corroborated_by, evidence_ids, drought_anomaly FROM alerts"
            ).fetchall()
        assert result.values == {"old-1": ""} and [m.alert_id for m in result.changed] == ["old-1"]
        assert stored == [("old-1", "", "{}", "{}")]  # checked, no readings: none found
    finally:
        with connect(platform) as conn:
            drop_schema(conn, older.pg_schema)
