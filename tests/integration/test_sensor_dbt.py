"""Sensor readings through PostGIS and dbt: Delta sensor_raw -> sensor_readings (sync) ->
stg_sensors, sensor_health, mart_aoi_daily_weather, each with its tests, on the real PostGIS.

The Delta table is written here as the stream writes it (same columns), from eight days
of simulated readings of the demo stations, with the gateway's resends doubled into the
table on purpose (as a resend later than the stream's watermark would be); one weather
station is stuck for a stretch and has an outage.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from psycopg import sql

from canopywatch.catalog.schema import connect, ensure_schema
from canopywatch.messages import SensorReading
from canopywatch.sensors import drought
from canopywatch.sensors.catalog import COLUMNS, sync_sensor_readings
from canopywatch.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def platform(platform: Settings):  # type: ignore[no-redef]
    """This module's own catalog schema (its hand-made readings and alerts stay out of the
    session schema other tests share); dropped afterwards."""
    from dataclasses import replace

    from canopywatch.catalog.schema import drop_schema

    own = replace(platform, pg_schema=f"{platform.pg_schema}_sensdbt")
    connect(own).close()  # creates the schema
    yield own
    with connect(platform) as conn:
        drop_schema(conn, own.pg_schema)


DBT = Path(sys.executable).with_name("dbt")
SQUARE = "POLYGON((-55.4 -7.1, -55.35 -7.1, -55.35 -7.05, -55.4 -7.05, -55.4 -7.1))"
START = dt.date(2024, 3, 14)
DAYS = 8


ARROW = {
    "text": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "double": pa.float64(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
}
SCHEMA = pa.schema([(name, ARROW[kind.split()[0]]) for name, kind in COLUMNS])


def _delta_rows(readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for offset, raw in enumerate(readings):
        reading = SensorReading.model_validate({k: v for k, v in raw.items() if k[0] != "_"})
        row = {name: getattr(reading, name, None) for name, _ in COLUMNS}
        row.update(
            kafka_partition=0,
            kafka_offset=offset,
            kafka_timestamp=raw["_delivered_at"],
            ingested_at=dt.datetime(2024, 3, 10, tzinfo=dt.UTC)
            + dt.timedelta(seconds=offset // 500),
        )
        rows.append(row)
    return rows


def test_sync_then_dbt_sensor_models(platform: Settings, tmp_path: Path) -> None:
    from canopywatch_dev.platform import postgres
    from canopywatch_dev.sensors import demo_clearings, simulate

    settings = platform
    clearings = demo_clearings()
    world = simulate(clearings, start=START, days=DAYS, seed=7)
    rows = _delta_rows(world.readings)
    # resends later than the watermark: the same readings again, at later offsets
    weather = [r for r in rows if r["kind"] == "weather"][:30]
    late = [{**r, "kafka_offset": len(rows) + i} for i, r in enumerate(weather)]
    table = tmp_path / "sensor_raw"
    write_deltalake(str(table), pa.Table.from_pylist(rows[: len(rows) // 2], schema=SCHEMA))
    write_deltalake(
        str(table),
        pa.Table.from_pylist(rows[len(rows) // 2 :] + late, schema=SCHEMA),
        mode="append",
    )

    with connect(settings) as conn:
        ensure_schema(conn)
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                    acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                    checksum, size_bytes, footprint)
                   VALUES ('s-1', 'r', 'demo', 'simulated', 's2l2a_bands', '6y8xg',
                    '2024-03-05T14:00:00Z', 5, 'EPSG:32721', 10, 10, '{B04}', 'b', 'k', 'c', 1,
                    ST_GeomFromText(%s, 4326)) ON CONFLICT DO NOTHING""",
                (SQUARE,),
            )
            # two alerts: one over a clearing the simulator put a chainsaw station beside
            # (ev-0044, cut on 2024-03-21, the alert dated that day), one far from it
            # the far one in a drought, as canopywatch.sensors.drought stores it; the other
            # checked and not in a dry spell ({})
            target = next(c for c in clearings if c.event_id == "ev-0044")
            dry = drought.encode(drought.drought_anomaly([
                drought.StationAnomaly("wx-00", precip_mm=14.0, normal_mm=96.0, sd_mm=45.6, value=-1.8),
            ]))  # fmt: skip
            for alert_id, geom, day, anomaly in (
                ("a-heard", target.geometry.wkt, START + dt.timedelta(days=DAYS - 1), "{}"),
                ("a-silent", "POLYGON((-55.3999 -7.0999, -55.3995 -7.0999, -55.3995 -7.0995,"
                 " -55.3999 -7.0995, -55.3999 -7.0999))", START + dt.timedelta(days=DAYS - 1), dry),
            ):  # fmt: skip
                cur.execute(
                    """INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence,
                        confidence_level, status, area_ha, method, model_version, geohash, geom,
                        drought_anomaly)
                       VALUES (%s, 'demo', %s, 0.7, 'low', 'low', 1.0, 'harmonic', 'v1',
                        '6y8xg', ST_Multi(ST_GeomFromText(%s, 4326)), %s)""",
                    (alert_id, dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), geom,
                     anomaly),
                )  # fmt: skip
        conn.commit()
        added = sync_sensor_readings(conn, str(table))
        assert added == len(rows) + len(late)
        assert sync_sensor_readings(conn, str(table)) == 0  # idempotent, incremental

    schema = f"{settings.pg_schema}_sdbt"
    env = {
        **os.environ,
        "CANOPYWATCH_PG_HOST": settings.pg_host,
        "CANOPYWATCH_PG_PORT": str(settings.pg_port),
        "CANOPYWATCH_PG_USER": settings.pg_user,
        "CANOPYWATCH_PG_PASSWORD": postgres.password(settings),
        "CANOPYWATCH_PG_DATABASE": settings.pg_database,
        "CANOPYWATCH_PG_SCHEMA": settings.pg_schema,
        "CANOPYWATCH_DBT_SCHEMA": schema,
    }
    project = REPO_ROOT / "dbt"
    try:
        result = subprocess.run(
            [str(DBT), "build", "--select", "tag:sensors", "--project-dir", str(project),
             "--profiles-dir", str(project), "--target-path", str(tmp_path / "target"),
             "--log-path", str(tmp_path / "logs")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:]
        assert "ERROR=0" in result.stdout and "WARN=0" in result.stdout
        with connect(settings) as conn, conn.cursor() as cur:
            staging, marts = sql.Identifier(f"{schema}_staging"), sql.Identifier(f"{schema}_marts")
            cur.execute(
                sql.SQL("SELECT count(*), sum(resends) FROM {}.stg_sensors").format(staging)
            )
            count, resends = cur.fetchone()
            unique = {
                SensorReading.model_validate({k: v for k, v in r.items() if k[0] != "_"}).reading_id
                for r in world.readings
            }
            assert count == len(unique)
            assert resends == len(rows) + len(late) - len(unique)
            cur.execute(
                sql.SQL(
                    "SELECT station_id, kind, gap_share, stuck_share, last_seen FROM {}.sensor_health"
                ).format(marts)
            )
            health = {(s, k): (g, st, last) for s, k, g, st, last in cur.fetchall()}
            weather = {s: v for (s, k), v in health.items() if k == "weather"}
            assert set(weather) == {"wx-00", "wx-01", "wx-02", "wx-03"}
            # each simulated weather station has one outage of 6-72 h and 12-48 stuck hours
            # somewhere in its 90-day plan; over these 8 days some show them
            assert any(g > 0.02 for g, _, _ in weather.values())
            assert any(st > 0.02 for _, st, _ in weather.values())
            assert all(
                last.date() <= START + dt.timedelta(days=DAYS) for _, _, last in weather.values()
            )
            assert ("ac-00", "acoustic") in health and health[("ac-00", "acoustic")][0] is None
            cur.execute(
                sql.SQL(
                    "SELECT observed_date, stations_reporting, precipitation_mm, temperature_mean_c,"
                    " coverage_share FROM {}.mart_aoi_daily_weather WHERE aoi_id = 'demo'"
                    " ORDER BY observed_date"
                ).format(marts)
            )
            days = cur.fetchall()
            assert len(days) >= DAYS
            assert all(1 <= n <= 4 and 20 < t < 35 and 0 < c <= 1 for _, n, _, t, c in days)
            assert sum(p for _, _, p, _, _ in days) >= 0
            cur.execute(
                sql.SQL(
                    "SELECT alert_id, corroborated_by, evidence_ids, corroborated_confidence,"
                    " drought_flag, drought_note FROM {}.mart_alert_corroboration"
                    " ORDER BY alert_id"
                ).format(marts)
            )
            corroboration = {r[0]: r[1:] for r in cur.fetchall()}
            assert set(corroboration) == {"a-heard", "a-silent"}
            silent = corroboration["a-silent"]
            assert silent[0] == [] and silent[2] == pytest.approx(0.7)
            # the product's drought_anomaly, not a rule of the mart's own
            assert silent[3] == "drought"
            assert silent[4] == "drought: 30-day rain 14.0 mm vs normal 96.0 mm (z -1.80)"
            heard = corroboration["a-heard"]
            saws = [
                r
                for r in world.readings
                if r.get("event") == "chainsaw"
                and r["station_id"] in world.evidence_for["ev-0044"]
                and r["score"] >= 0.6
            ]
            assert saws, "the simulator put no chainsaw in these days"
            assert "acoustic" in heard[0] and heard[2] >= 0.8 - 1e-9
            assert heard[3] is None and heard[4] is None  # checked: no dry spell
    finally:
        with connect(settings) as conn, conn.cursor() as cur:
            for suffix in ("", "_staging", "_marts"):
                cur.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        sql.Identifier(schema + suffix)
                    )
                )
            conn.commit()
