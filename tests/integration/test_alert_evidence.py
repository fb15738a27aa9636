"""Sensor evidence for alerts in Spark (local[1], written to Delta ``alert_evidence``) and
geopandas, against the PostGIS reference on the same data.

Alerts are the demo area's simulated clearings dated a few days after the cut; readings
are 90 days of the demo stations (chainsaws before some clearings, hotspots inside the
burned ones, patrols, and the noise: vehicles, gunshots, far chainsaws).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely
from deltalake import DeltaTable

from canopywatch.catalog.schema import connect
from canopywatch.sensors.catalog import COLUMNS, ensure_table
from canopywatch.sensors.evidence import (
    EVIDENCE_COLUMNS,
    evidence_geopandas,
    evidence_postgis,
    evidence_spark,
)
from canopywatch.settings import Settings

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def platform(platform: Settings):  # type: ignore[no-redef]
    """This module's own catalog schema (its hand-made readings and alerts stay out of the
    session schema other tests share); dropped afterwards."""
    from dataclasses import replace

    from canopywatch.catalog.schema import drop_schema

    own = replace(platform, pg_schema=f"{platform.pg_schema}_evid")
    connect(own).close()  # creates the schema
    yield own
    with connect(platform) as conn:
        drop_schema(conn, own.pg_schema)


def _key(frame: pd.DataFrame) -> set[tuple[str, str, str]]:
    return set(zip(frame["alert_id"], frame["kind"], frame["evidence_id"], strict=True))


def test_spark_and_geopandas_evidence_match_postgis(
    platform: Settings, tmp_path: Path, spark: Any
) -> None:
    from canopywatch_dev.sensors import demo_clearings, readings_frame, simulate

    settings = platform
    clearings = demo_clearings()
    world = simulate(clearings, start=dt.date(2024, 3, 1), days=90, seed=7)
    readings = readings_frame(world)
    alerts = pd.DataFrame(
        {
            "alert_id": [c.event_id for c in clearings],
            "alert_date": pd.to_datetime(
                [dt.datetime.combine(c.day + dt.timedelta(days=4), dt.time(14)) for c in clearings],
                utc=True,
            ),
            "geometry": [c.geometry for c in clearings],
        }
    )

    with connect(settings) as conn:
        ensure_table(conn)
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE it_alerts (alert_id text PRIMARY KEY, alert_date timestamptz,"
                " geom geometry(Geometry, 4326))"
            )
            for row in alerts.itertuples():
                cur.execute(
                    "INSERT INTO it_alerts VALUES (%s, %s, ST_GeomFromText(%s, 4326))",
                    (row.alert_id, row.alert_date.to_pydatetime(), row.geometry.wkt),
                )
            names = [n for n, _ in COLUMNS[:20]]
            with cur.copy(
                f"COPY sensor_readings ({', '.join(names)}, kafka_partition, kafka_offset,"
                " ingested_at) FROM STDIN"
            ) as copy:
                for i, r in enumerate(readings[names].itertuples(index=False)):
                    copy.write_row(
                        [*(None if pd.isna(v) else v for v in r), 0, i, dt.datetime.now(dt.UTC)]
                    )
        conn.commit()
        reference = evidence_postgis(conn, alerts="it_alerts")
    kinds = set(reference["kind"])
    assert kinds == {"acoustic", "fire", "patrol"}, kinds
    # the evidence the simulator placed is found: chainsaws and hotspots where it put them
    placed = {cid for cid, sources in world.evidence_for.items() for s in sources if s == "firms"}
    assert placed <= set(reference.loc[reference["kind"] == "fire", "alert_id"])

    geopandas = evidence_geopandas(alerts, readings)
    assert _key(geopandas) == _key(reference)
    merged = geopandas.merge(reference, on=["alert_id", "kind", "evidence_id"])
    assert (merged["distance_m_x"] - merged["distance_m_y"]).abs().max() < 1.0  # metres

    try:
        bounds = shapely.bounds(alerts["geometry"].values)
        spark_alerts = spark.createDataFrame(
            pd.DataFrame(
                {
                    "alert_id": alerts["alert_id"],
                    "alert_date": alerts["alert_date"],
                    "geometry_wkt": [g.wkt for g in alerts["geometry"]],
                    "min_lon": bounds[:, 0], "min_lat": bounds[:, 1],
                    "max_lon": bounds[:, 2], "max_lat": bounds[:, 3],
                }
            )
        )  # fmt: skip
        used = ["reading_id", "station_id", "kind", "event", "score", "track_id", "observed_at",
                "lon", "lat"]  # fmt: skip
        spark_readings = spark.createDataFrame(readings[used])
        out = str(tmp_path / "alert_evidence")
        evidence_spark(spark, spark_alerts, spark_readings).write.format("delta").save(out)
    finally:
        spark.catalog.clearCache()
    written = DeltaTable(out).to_pandas()
    assert list(written.columns) == list(EVIDENCE_COLUMNS)
    assert _key(written) == _key(reference)
    assert len(written) == len(reference)
