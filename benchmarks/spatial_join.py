"""The alert-evidence spatial join (chainsaws within 1 km of an alert in the 14 days before
it) in Spark local[2], PostGIS and geopandas, at 10^5 and 10^6 points, as ratios.

    .venv/bin/python benchmarks/spatial_join.py [--points 100000,1000000] [--alerts 500]
                                                [--quick] [--json OUT]

``--quick``: 10^4 and 10^5 points, 200 alerts. Points are uniform over a 0.5 degree box in
the Amazon, each a chainsaw (score 0.9) dated in the alerts' year; alerts are squares of
2-40 ha placed uniformly, dated uniformly. The same rules (``canopywatch.sensors.evidence``)
run in all three; each timing covers the join only (PostGIS: points loaded with COPY, GiST
index and ANALYZE before the clock; Spark: the DataFrames cached and counted first, Apache
Sedona is not available for Spark 4.1 here, so the Spark path is the grid equi-join plus a
pandas UDF of ``evidence_spark``). All three must give the same number of pairs.
PostgreSQL needs the platform (`make platform-up`); the schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.table import Table

from canopywatch.catalog.schema import connect, drop_schema
from canopywatch.sensors.catalog import ensure_table
from canopywatch.sensors.evidence import evidence_geopandas, evidence_postgis, evidence_spark
from canopywatch.settings import Settings

BOX = (-55.6, -7.4, -55.1, -6.9)
YEAR = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def make_data(points: int, alerts: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = BOX
    lon = rng.uniform(minx, maxx, points)
    lat = rng.uniform(miny, maxy, points)
    seconds = rng.uniform(0, 365 * 86400, points)
    readings = pd.DataFrame(
        {
            "reading_id": [f"r{i}" for i in range(points)],
            "station_id": [f"ac-{i % 997}" for i in range(points)],
            "kind": "acoustic",
            "event": "chainsaw",
            "score": 0.9,
            "track_id": None,
            "observed_at": pd.to_datetime(YEAR) + pd.to_timedelta(seconds, unit="s"),
            "lon": lon,
            "lat": lat,
        }
    )
    side = np.sqrt(rng.uniform(2, 40, alerts) * 10_000) / 111_320.0  # degrees, roughly
    cx, cy = rng.uniform(minx, maxx, alerts), rng.uniform(miny, maxy, alerts)
    geometries = shapely.box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    alerts_frame = pd.DataFrame(
        {
            "alert_id": [f"a{i}" for i in range(alerts)],
            "alert_date": pd.to_datetime(YEAR)
            + pd.to_timedelta(rng.uniform(14, 365, alerts), unit="D"),
            "geometry": list(geometries),
        }
    )
    return alerts_frame, readings


def run_postgis(
    settings: Settings, alerts: pd.DataFrame, readings: pd.DataFrame
) -> tuple[float, int]:
    schema = f"bench_join_{uuid.uuid4().hex[:8]}"
    local = replace(settings, pg_schema=schema)
    try:
        with connect(local) as conn:
            ensure_table(conn)
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE bench_alerts (alert_id text, alert_date timestamptz,"
                    " geom geometry(Polygon, 4326))"
                )
                with cur.copy("COPY bench_alerts FROM STDIN") as copy:
                    for row in alerts.itertuples():
                        copy.write_row(
                            (row.alert_id, row.alert_date, f"SRID=4326;{row.geometry.wkt}")
                        )
                columns = "reading_id, station_id, kind, event, score, observed_at, lon, lat"
                with cur.copy(
                    f"COPY sensor_readings ({columns}, kafka_partition, kafka_offset, ingested_at)"
                    " FROM STDIN"
                ) as copy:
                    now = dt.datetime.now(dt.UTC)
                    for i, r in enumerate(
                        readings[columns.split(", ")].itertuples(index=False, name=None)
                    ):
                        copy.write_row((*r, 0, i, now))
                cur.execute("CREATE INDEX ON bench_alerts USING gist (geom)")
                cur.execute("CREATE INDEX ON bench_alerts USING gist ((geom::geography))")
                cur.execute("CREATE INDEX ON sensor_readings USING gist ((geom::geography))")
                cur.execute("ANALYZE bench_alerts")
                cur.execute("ANALYZE sensor_readings")
            conn.commit()
            start = time.perf_counter()
            found = evidence_postgis(conn, alerts="bench_alerts")
            return time.perf_counter() - start, len(found)
    finally:
        with connect(settings) as conn:
            drop_schema(conn, schema)


def run_geopandas(alerts: pd.DataFrame, readings: pd.DataFrame) -> tuple[float, int]:
    start = time.perf_counter()
    found = evidence_geopandas(alerts, readings)
    return time.perf_counter() - start, len(found)


def run_spark(spark: Any, alerts: pd.DataFrame, readings: pd.DataFrame) -> tuple[float, int]:
    bounds = shapely.bounds(np.asarray(alerts["geometry"].values))
    spark_alerts = spark.createDataFrame(
        pd.DataFrame(
            {
                "alert_id": alerts["alert_id"],
                "alert_date": alerts["alert_date"],
                "geometry_wkt": [g.wkt for g in alerts["geometry"]],
                "min_lon": bounds[:, 0],
                "min_lat": bounds[:, 1],
                "max_lon": bounds[:, 2],
                "max_lat": bounds[:, 3],
            }
        )
    ).cache()
    schema = (
        "reading_id string, station_id string, kind string, event string, score double,"
        " track_id string, observed_at timestamp, lon double, lat double"
    )
    spark_readings = spark.createDataFrame(readings[[c.split()[0] for c in schema.split(",")]],
                                           schema=schema).repartition(2).cache()  # fmt: skip
    spark_alerts.count()
    spark_readings.count()
    start = time.perf_counter()
    found = evidence_spark(spark, spark_alerts, spark_readings).count()
    elapsed = time.perf_counter() - start
    spark_alerts.unpersist()
    spark_readings.unpersist()
    return elapsed, int(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="100000,1000000")
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 points, 200 alerts")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [int(p) for p in args.points.split(",")]
    n_alerts = 200 if args.quick else args.alerts
    settings = Settings.from_env()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need canopywatch
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "3g")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    try:
        for size in sizes:
            alerts, readings = make_data(size, n_alerts)
            pg_s, pg_n = run_postgis(settings, alerts, readings)
            gp_s, gp_n = run_geopandas(alerts, readings)
            sp_s, sp_n = run_spark(spark, alerts, readings)
            # geodesic (PostGIS) and local-frame (the others) distances differ by < 1 m, so a
            # point right at the 1 km edge may fall either side: allow 1 in 10^4 pairs
            if max(abs(pg_n - gp_n), abs(pg_n - sp_n)) > max(1, pg_n // 10_000):
                raise SystemExit(
                    f"pairs differ at {size}: PostGIS {pg_n}, geopandas {gp_n}, Spark {sp_n}"
                )
            results.append(
                {"points": size, "alerts": n_alerts, "pairs": pg_n, "pairs_geopandas": gp_n,
                 "pairs_spark": sp_n, "postgis_s": pg_s,
                 "geopandas_s": gp_s, "spark_local2_s": sp_s}
            )  # fmt: skip
    finally:
        spark.stop()
    table = Table(title="alert evidence join (chainsaws within 1 km, 14 days before)")
    for column in ("points", "alerts", "pairs", "PostGIS s", "geopandas s", "Spark local[2] s",
                   "geopandas / PostGIS", "Spark / PostGIS"):  # fmt: skip
        table.add_column(column)
    for r in results:
        table.add_row(
            f"{r['points']:,}", str(r["alerts"]), f"{r['pairs']:,}", f"{r['postgis_s']:.2f}",
            f"{r['geopandas_s']:.2f}", f"{r['spark_local2_s']:.2f}",
            f"{r['geopandas_s'] / r['postgis_s']:.2f}", f"{r['spark_local2_s'] / r['postgis_s']:.2f}",
        )  # fmt: skip
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
