"""Catalog bbox + time query latency at 1 M and 10 M scenes: which PostGIS layout wins.

    .venv/bin/python benchmarks/catalog_query.py [--rows 1000000,10000000] [--queries 300]
                                                 [--layouts gist,gist_cluster,...]
                                                 [--quick] [--json OUT]

Generated scene rows (``canopywatch_dev.synthetic_catalog``: 0.2° footprints over a
25° x 20° region of the Amazon, three years of acquisitions) are loaded with COPY once
per size into a schema of the benchmark's own on the running platform's PostgreSQL, then
copied into one ``scenes`` table per layout, each in a schema of its own:

* ``gist``: the layout before this benchmark: GiST on the footprint, B-tree on the time;
* ``gist_cluster``: the same, the table CLUSTERed by geohash and time;
* ``brin``: GiST on the footprint, BRIN on the time, the table in time order;
* ``partitioned``: range partitions by month, GiST and B-tree per partition;
* ``gist_time``: one GiST over footprint and time (``btree_gist``), the table in
  insertion order;
* ``gist_time_cluster``: ``gist_time`` on a table CLUSTERed by geohash and time;
* ``product``: the product's own DDL as ``canopywatch.catalog.schema.ensure_schema``
  builds it, on the rows in generated (random) order: the worst case of a catalog that
  is never re-clustered.

Every layout answers the same queries (``queries.SCENES_SQL``, the product's statement:
a 0.5° box and a 30-day window at random places and times), taken in turn layout by
layout so load from other work weighs on all of them alike, after a warm-up; p50 / p95
per layout (client side, through psycopg), and for the first 40 queries EXPLAIN (ANALYZE,
BUFFERS): the 8 kB pages a query touches (its work, whatever else loads the machine)
and the server's execution time, run right after the timed query (its pages in shared
buffers by then), and, as cold as a timed query, the same for 40 other random queries: the
pages they read into shared buffers and their execution time. Every layout must return the same rows for every query.

On the ``product`` layout, after each timed query, another random query (never run
before, as cold) is timed through the previous client path (the geometry cast ``::json``
on the server and decoded by psycopg's json loader, rows built by ``dict_row``), then run
untimed through ``queries.scenes_in``: both must return equal rows. The second table gives
the two paths side by side (previous / now). The benchmark's
schemas are dropped at the end, also after a failure. ``--quick``: 1 M rows, 200 queries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from canopywatch.catalog import queries
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.settings import Settings
from canopywatch_dev.platform import stack
from canopywatch_dev.platform.environment import with_credentials
from canopywatch_dev.synthetic_catalog import (
    DAYS,
    FIRST_DAY,
    random_query_box,
    random_query_window,
    synthetic_scenes,
)

LAYOUTS = (
    "gist", "gist_cluster", "brin", "partitioned", "gist_time", "gist_time_cluster", "product",
)  # fmt: skip
WARM_UP = 20
EXPLAINED = 40
COMPARED = "product"  # the layout whose queries also run through the previous client path

# the client path before: the server casts the GeoJSON to json, psycopg's json loader
# parses it and dict_row builds the dicts
PREVIOUS_SCENES_SQL = queries.SCENES_SQL.replace(
    "ST_AsGeoJSON(footprint, 7) AS geometry", "ST_AsGeoJSON(footprint, 7)::json AS geometry"
)
assert PREVIOUS_SCENES_SQL != queries.SCENES_SQL, "queries.SCENES_SQL changed its geometry"


def previous_scenes_in(conn: psycopg.Connection[Any], query: queries.Query) -> list[Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(PREVIOUS_SCENES_SQL, query.params())  # type: ignore[arg-type]
        return cur.fetchall()


# the rows as the product stores them, from the COPY stage
INSERT_SQL = """
INSERT INTO {target} (scene_id, request_id, aoi_id, source, function, geohash, acquired_at,
    cloud_cover, crs, width, height, bands, bucket, raw_key, checksum, size_bytes, footprint)
SELECT scene_id, 'synthetic', 'synthetic', 'simulated', 's2l2a_bands',
    ST_GeoHash(ST_Centroid(ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)), 5),
    acquired_at, cloud_cover, 'EPSG:32721', 2200, 2200, ARRAY['B02','B03','B04'],
    'synthetic', 'simulated/' || scene_id || '/raw.tif', '', 0,
    ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)
FROM {stage} {order}
"""


@dataclass
class LayoutResult:
    layout: str
    rows: int
    build_s: float
    table_mb: float
    timings_ms: list[float] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    # EXPLAIN (ANALYZE, BUFFERS) of the first EXPLAINED queries: the work of a query
    # (8 kB pages touched) and the server's own execution time
    pages: list[int] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    # the same for as many other random queries, not run before (their pages as cold as
    # a timed query's): pages read into shared buffers and execution time
    cold_read: list[int] = field(default_factory=list)
    cold_server_ms: list[float] = field(default_factory=list)
    # the same queries through the previous client path (layout COMPARED only)
    previous_ms: list[float] = field(default_factory=list)
    previous_differed: int = 0

    def quantile(self, q: int) -> float:
        return statistics.quantiles(self.timings_ms, n=100)[q - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p95(self) -> float:
        return self.quantile(95)


def load_stage(conn: psycopg.Connection[Any], rows: int) -> None:
    """``stage``: the generated rows, loaded with COPY."""
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS stage")
        cur.execute(
            """CREATE UNLOGGED TABLE stage (scene_id text, acquired_at timestamptz,
                cloud_cover double precision, minx double precision, miny double precision,
                maxx double precision, maxy double precision)"""
        )
        with cur.copy(
            "COPY stage (scene_id, acquired_at, cloud_cover, minx, miny, maxx, maxy) FROM STDIN"
        ) as copy:
            for row in synthetic_scenes(rows):
                copy.write_row(row)
    conn.commit()


def _exec(conn: psycopg.Connection[Any], *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)  # type: ignore[arg-type]
    conn.commit()


def _insert(conn: psycopg.Connection[Any], stage: str, order: str = "") -> None:
    statement = INSERT_SQL.format(target="scenes", stage=stage, order=order)
    _exec(conn, statement)


def _plain_table(conn: psycopg.Connection[Any]) -> None:
    """The product's tables with only the primary key on ``scenes`` (indexes come after)."""
    ensure_schema(conn)
    _exec(
        conn,
        "DROP INDEX IF EXISTS scenes_footprint_gix",
        "DROP INDEX IF EXISTS scenes_acquired_at_idx",
        "DROP INDEX IF EXISTS scenes_footprint_time_gix",
        "DROP INDEX IF EXISTS scenes_geohash_time_idx",
        "DROP INDEX IF EXISTS scenes_aoi_idx",
    )


def build_gist(conn: psycopg.Connection[Any], stage: str) -> None:
    _plain_table(conn)
    _insert(conn, stage)
    _exec(
        conn,
        "CREATE INDEX scenes_footprint_gix ON scenes USING gist (footprint)",
        "CREATE INDEX scenes_acquired_at_idx ON scenes (acquired_at)",
    )


def build_gist_cluster(conn: psycopg.Connection[Any], stage: str) -> None:
    build_gist(conn, stage)
    _exec(
        conn,
        "CREATE INDEX scenes_geohash_time_idx ON scenes (geohash, acquired_at)",
        "CLUSTER scenes USING scenes_geohash_time_idx",
    )


def build_brin(conn: psycopg.Connection[Any], stage: str) -> None:
    _plain_table(conn)
    _insert(conn, stage, "ORDER BY acquired_at")
    _exec(
        conn,
        "CREATE INDEX scenes_footprint_gix ON scenes USING gist (footprint)",
        "CREATE INDEX scenes_acquired_at_brin ON scenes USING brin (acquired_at) "
        "WITH (pages_per_range = 16)",
    )


def build_partitioned(conn: psycopg.Connection[Any], stage: str) -> None:
    ensure_schema(conn)
    statements = [
        "DROP TABLE scenes CASCADE",
        # the partition key must be in the primary key of a partitioned table
        f"CREATE TABLE scenes (LIKE {stage.split('.')[0]}.scenes INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (acquired_at)",
    ]
    first = FIRST_DAY.replace(day=1)
    months = DAYS // 28 + 2
    for n in range(months):
        start = _add_months(first, n)
        end = _add_months(first, n + 1)
        statements.append(
            f"CREATE TABLE scenes_{start:%Y%m} PARTITION OF scenes "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    statements.append("CREATE TABLE scenes_other PARTITION OF scenes DEFAULT")
    _exec(conn, *statements)
    _insert(conn, stage)
    _exec(
        conn,
        "ALTER TABLE scenes ADD PRIMARY KEY (scene_id, acquired_at)",
        "CREATE INDEX scenes_footprint_gix ON scenes USING gist (footprint)",
        "CREATE INDEX scenes_acquired_at_idx ON scenes (acquired_at)",
    )


def _add_months(day: datetime, months: int) -> datetime:
    year, month = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + year, month=month + 1)


def build_gist_time(conn: psycopg.Connection[Any], stage: str) -> None:
    _plain_table(conn)
    _insert(conn, stage)
    _exec(
        conn,
        "CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public",
        "CREATE INDEX scenes_footprint_time_gix ON scenes USING gist (footprint, acquired_at)",
    )


def build_gist_time_cluster(conn: psycopg.Connection[Any], stage: str) -> None:
    build_gist_time(conn, stage)
    _exec(
        conn,
        "CREATE INDEX scenes_geohash_time_idx ON scenes (geohash, acquired_at)",
        "CLUSTER scenes USING scenes_geohash_time_idx",
    )


def build_product(conn: psycopg.Connection[Any], stage: str) -> None:
    _plain_table(conn)
    _insert(conn, stage)
    ensure_schema(conn)  # the product's indexes, as a catalog gets them


BUILDERS: dict[str, Callable[[psycopg.Connection[Any], str], None]] = {
    "gist": build_gist,
    "gist_cluster": build_gist_cluster,
    "brin": build_brin,
    "partitioned": build_partitioned,
    "gist_time": build_gist_time,
    "gist_time_cluster": build_gist_time_cluster,
    "product": build_product,
}


def build_layout(
    settings: Settings, schema: str, stage: str, layout: str, rows: int
) -> LayoutResult:
    started = time.perf_counter()
    with connect(settings, schema=schema) as conn:
        BUILDERS[layout](conn, stage)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE scenes")
            cur.execute("SELECT pg_total_relation_size('scenes'::regclass)")
            size = cur.fetchone()
            if layout == "partitioned":
                cur.execute(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                    "WHERE inhparent = 'scenes'::regclass"
                )
                size = cur.fetchone()
    table_mb = float(size[0] or 0) / 1e6 if size else 0.0
    return LayoutResult(layout, rows, time.perf_counter() - started, table_mb)


def explain_analyze(conn: psycopg.Connection[Any], query: queries.Query) -> tuple[int, int, float]:
    """Pages (shared buffers hit + read), pages read and execution ms of one run."""
    statement = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + queries.SCENES_SQL
    with conn.cursor() as cur:
        cur.execute(statement, query.params())  # type: ignore[arg-type]
        row = cur.fetchone()
    document = row[0] if row else None
    if isinstance(document, str):
        document = json.loads(document)
    top = document[0] if document else {}
    plan = top.get("Plan", {})
    read = int(plan.get("Shared Read Blocks", 0))
    return int(plan.get("Shared Hit Blocks", 0)) + read, read, float(top.get("Execution Time", 0))


def _timed(
    path: Callable[[psycopg.Connection[Any], queries.Query], list[Any]],
    conn: psycopg.Connection[Any],
    query: queries.Query,
) -> tuple[list[Any], float]:
    t0 = time.perf_counter()
    rows = path(conn, query)
    return rows, (time.perf_counter() - t0) * 1000


def run_queries(
    settings: Settings, schemas: dict[str, str], results: dict[str, LayoutResult], count: int
) -> int:
    """The same queries on every layout, in turn; returns how many disagreed on the rows."""
    rng = random.Random(count)
    cold_rng = random.Random(count + 1)  # the cold EXPLAINs' queries
    previous_rng = random.Random(count + 2)  # the previous client path's queries
    conns = {layout: connect(settings, schema=schema) for layout, schema in schemas.items()}
    disagreements = 0
    try:
        for n in range(count + WARM_UP):
            start, end = random_query_window(rng)
            query = queries.Query.parse(random_query_box(rng), start.isoformat(), end.isoformat())
            cold_start, cold_end = random_query_window(cold_rng)
            cold = queries.Query.parse(
                random_query_box(cold_rng), cold_start.isoformat(), cold_end.isoformat()
            )
            other_start, other_end = random_query_window(previous_rng)
            other = queries.Query.parse(
                random_query_box(previous_rng), other_start.isoformat(), other_end.isoformat()
            )
            found: dict[str, list[str]] = {}
            for layout, conn in conns.items():
                rows, elapsed = _timed(queries.scenes_in, conn, query)
                if layout == COMPARED:  # a query of its own, as cold as the timed one
                    previous, previous_elapsed = _timed(previous_scenes_in, conn, other)
                    differed = previous != queries.scenes_in(conn, other)
                found[layout] = [r["scene_id"] for r in rows]
                if n >= WARM_UP:  # the first ones warm the cache and the prepared statement
                    results[layout].timings_ms.append(elapsed)
                    results[layout].hits.append(len(rows))
                    if layout == COMPARED:
                        results[layout].previous_ms.append(previous_elapsed)
                        results[layout].previous_differed += differed
                if WARM_UP <= n < WARM_UP + EXPLAINED:
                    pages, _, server_ms = explain_analyze(conn, query)
                    results[layout].pages.append(pages)
                    results[layout].server_ms.append(server_ms)
                    _, read, server_ms = explain_analyze(conn, cold)
                    results[layout].cold_read.append(read)
                    results[layout].cold_server_ms.append(server_ms)
            disagreements += len({tuple(ids) for ids in found.values()}) > 1
    finally:
        for conn in conns.values():
            conn.close()
    return disagreements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="scene counts")
    parser.add_argument("--queries", type=int, default=300, help="queries per size and layout")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="1 M rows, 200 queries")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    try:
        sizes = [1_000_000] if args.quick else [int(r) for r in args.rows.split(",") if r]
        layouts = [name for name in args.layouts.split(",") if name]
    except ValueError:
        sizes, layouts = [], []
    count = 200 if args.quick else args.queries
    unknown = sorted(set(layouts) - set(LAYOUTS))
    if not sizes or min(sizes) < 1000 or count < 20 or unknown or not layouts:
        print(
            "catalog_query.py: --rows needs counts >= 1000, --queries >= 20, --layouts of "
            f"{', '.join(LAYOUTS)}" + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    console = Console(width=160)
    load_start = os.getloadavg()
    settings = with_credentials(Settings.from_env())
    stack.up(settings, ["postgres"])
    run = uuid.uuid4().hex[:8]
    base = f"cwq_{run}"
    schemas = {layout: f"{base}_{layout}" for layout in layouts}
    all_results: list[LayoutResult] = []
    disagreements: dict[int, int] = {}
    try:
        with connect(settings, schema=base) as conn:
            ensure_schema(conn)  # the columns the partitioned layout copies
        for rows in sizes:
            console.print(f"{rows:,} scenes: COPY into {base}.stage")
            started = time.perf_counter()
            with connect(settings, schema=base) as conn:
                load_stage(conn, rows)
            console.print(f"  loaded in {time.perf_counter() - started:.1f} s")
            results: dict[str, LayoutResult] = {}
            for layout in layouts:
                with connect(settings) as conn:
                    drop_schema(conn, schemas[layout])
                results[layout] = build_layout(
                    settings, schemas[layout], f"{base}.stage", layout, rows
                )
                console.print(
                    f"  {layout}: built in {results[layout].build_s:.1f} s "
                    f"({results[layout].table_mb:.0f} MB)"
                )
            disagreements[rows] = run_queries(settings, schemas, results, count)
            all_results.extend(results.values())
            for layout in layouts:  # the next size starts from nothing: disk stays small
                with connect(settings) as conn:
                    drop_schema(conn, schemas[layout])
    finally:
        with connect(settings) as conn:
            for schema in [*schemas.values(), base]:
                drop_schema(conn, schema)

    table = Table(title="Catalog bbox (0.5°) + time (30 days) query, queries.SCENES_SQL")
    for column in ("scenes", "layout", "build s", "MB", "p50 ms", "p95 ms", "p99 ms", "rows",
                   "pages/query", "server p95 ms", "cold: read/query", "cold: server p95 ms"):  # fmt: skip
        table.add_column(column, justify="left" if column == "layout" else "right")
    figures = []
    for result in all_results:
        table.add_row(
            f"{result.rows:,}",
            result.layout,
            f"{result.build_s:.1f}",
            f"{result.table_mb:.0f}",
            f"{result.p50:.2f}",
            f"{result.p95:.2f}",
            f"{result.quantile(99):.2f}",
            f"{statistics.mean(result.hits):.1f}",
            f"{statistics.mean(result.pages):.0f}",
            f"{statistics.quantiles(result.server_ms, n=100)[94]:.2f}",
            f"{statistics.mean(result.cold_read):.0f}",
            f"{statistics.quantiles(result.cold_server_ms, n=100)[94]:.2f}",
        )
        figures.append(
            {
                "rows": result.rows,
                "layout": result.layout,
                "build_s": round(result.build_s, 2),
                "table_mb": round(result.table_mb, 1),
                "p50_ms": round(result.p50, 3),
                "p95_ms": round(result.p95, 3),
                "p99_ms": round(result.quantile(99), 3),
                "mean_rows": round(statistics.mean(result.hits), 2),
                "mean_pages": round(statistics.mean(result.pages), 1),
                "server_p50_ms": round(statistics.median(result.server_ms), 3),
                "server_p95_ms": round(statistics.quantiles(result.server_ms, n=100)[94], 3),
                "cold_mean_pages_read": round(statistics.mean(result.cold_read), 1),
                "cold_server_p50_ms": round(statistics.median(result.cold_server_ms), 3),
                "cold_server_p95_ms": round(
                    statistics.quantiles(result.cold_server_ms, n=100)[94], 3
                ),
            }
        )
    console.print(table)
    console.print(f"queries whose rows differed between layouts: {disagreements}")
    compared = [r for r in all_results if r.previous_ms]
    client_paths = []
    if compared:
        paths = Table(title=f"Client path on the {COMPARED} layout, each on cold queries")
        for column in ("scenes", "rows", "previous p50 ms", "previous p95 ms", "now p50 ms",
                       "now p95 ms", "previous / now p50", "previous / now p95",
                       "rows differed"):  # fmt: skip
            paths.add_column(column, justify="right")
        for result in compared:
            previous = LayoutResult(result.layout, result.rows, 0, 0, result.previous_ms)
            paths.add_row(
                f"{result.rows:,}",
                f"{statistics.mean(result.hits):.1f}",
                f"{previous.p50:.2f}",
                f"{previous.p95:.2f}",
                f"{result.p50:.2f}",
                f"{result.p95:.2f}",
                f"{previous.p50 / result.p50:.2f}",
                f"{previous.p95 / result.p95:.2f}",
                str(result.previous_differed),
            )
            client_paths.append(
                {
                    "rows": result.rows,
                    "layout": result.layout,
                    "previous_p50_ms": round(previous.p50, 3),
                    "previous_p95_ms": round(previous.p95, 3),
                    "p50_ms": round(result.p50, 3),
                    "p95_ms": round(result.p95, 3),
                    "ratio_p50": round(previous.p50 / result.p50, 3),
                    "ratio_p95": round(previous.p95 / result.p95, 3),
                    "rows_differed": result.previous_differed,
                }
            )
        console.print(paths)
    console.print(f"load average {load_start} at the start, {os.getloadavg()} at the end")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "catalog_query",
                    "queries": count,
                    "load_average": list(os.getloadavg()),
                    "load_average_start": list(load_start),
                    "disagreements": {str(k): v for k, v in disagreements.items()},
                    "results": figures,
                    "client_path": client_paths,
                },
                indent=2,
            )
            + "\n"
        )
    differed = any(disagreements.values()) or any(r.previous_differed for r in compared)
    return 1 if differed else 0


if __name__ == "__main__":
    raise SystemExit(main())
