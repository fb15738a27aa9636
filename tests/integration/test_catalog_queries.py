"""``queries.scenes_in`` / ``alerts_in`` on the real PostGIS: the rows, types and GeoJSON
geometries they return are those of the plain path (``dict_row``, the geometry cast
``::json`` on the server and parsed by psycopg), whichever JSON parser decodes them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from canopywatch.catalog import queries
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.settings import Settings

pytestmark = [pytest.mark.service]

BBOX = "-60,-10,-59,-9"
START, END = "2024-03-01", "2024-03-31"


@pytest.fixture(scope="module")
def catalog() -> Iterator[psycopg.Connection[Any]]:
    """A schema of this module's own with hand-made scenes and alerts; dropped afterwards."""
    from canopywatch_dev.platform import stack

    settings = Settings.from_env()
    stack.up(settings, ["postgres"])  # raises PlatformError: the test errors, never skips
    schema = f"cwtest_q_{uuid.uuid4().hex[:8]}"
    conn = connect(settings, schema=schema)
    try:
        ensure_schema(conn)
        with conn.cursor() as cur:
            # 40 scenes in the box and window (every 4th with a COG, every 5th outside the
            # window), footprints with fractional coordinates down to 1e-7 and more vertices
            # than a box; one far away
            cur.execute(
                """INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                       acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                       cog_key, cog_valid, checksum, size_bytes, footprint)
                   SELECT 'q-' || n, 'r', 'aoi', 'simulated', 's2l2a_bands', 'dq6', ts,
                          (n * 7.3) % 100, 'EPSG:32721', 512, 512, ARRAY['B02', 'B08', 'SCL'],
                          'bucket', 'k/' || n || '/raw.tif',
                          CASE WHEN n % 4 = 0 THEN 'k/' || n || '/cog.tif' END,
                          CASE WHEN n % 4 = 0 THEN n % 8 = 0 END, md5(n::text),
                          1234567890123 + n,
                          ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[
                              ST_MakePoint(-59.9 + n * 0.0012345678, -9.9),
                              ST_MakePoint(-59.7 + n * 0.001, -9.812345678),
                              ST_MakePoint(-59.7, -9.6 + n * 0.001),
                              ST_MakePoint(-59.85, -9.55),
                              ST_MakePoint(-59.9 + n * 0.0012345678, -9.9)])), 4326)
                   FROM generate_series(1, 40) n,
                        LATERAL (SELECT CASE WHEN n % 5 = 0 THEN timestamptz '2024-05-01'
                                 ELSE timestamptz '2024-03-01 00:00:00.123456+00'
                                      + n * interval '17 hours 3 minutes' END AS ts) t"""
            )
            cur.execute(
                """INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                       acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                       checksum, size_bytes, footprint)
                   VALUES ('far', 'r', 'aoi', 'simulated', 's2l2a_bands', 'x', '2024-03-05',
                           1, 'EPSG:4326', 1, 1, ARRAY['B02'], 'b', 'far/raw.tif', '', 0,
                           ST_MakeEnvelope(10, 10, 11, 11, 4326))"""
            )
            cur.execute(
                """INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence,
                       confidence_level, status, area_ha, method, model_version, geohash, geom)
                   SELECT 'a-' || scene_id, aoi_id, acquired_at, cloud_cover / 100, 'low',
                          'low', 1.25, 'harmonic', 'm', geohash, ST_Multi(footprint)
                   FROM scenes"""
            )
        conn.commit()
        yield conn
    finally:
        conn.rollback()
        drop_schema(conn, schema)
        conn.close()


def plain_rows(conn: psycopg.Connection[Any], statement: str, query: queries.Query) -> list[Any]:
    """The rows as psycopg's dict_row and json loader give them (the previous path)."""
    statement = statement.replace(", 7) AS geometry", ", 7)::json AS geometry")
    assert "::json AS geometry" in statement
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement, query.params())  # type: ignore[arg-type]
        return cur.fetchall()


def test_scenes_in_returns_the_plain_paths_rows_and_types(
    catalog: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = queries.Query.parse(BBOX, START, END)
    found = queries.scenes_in(catalog, query)
    expected = plain_rows(catalog, queries.SCENES_SQL, query)
    assert len(found) == 32  # 40 less the 8 outside the window; not the far one
    assert found == expected
    for got, want in zip(found, expected, strict=True):
        assert list(got) == list(want)  # the same columns in the same order
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
    first = found[0]
    assert isinstance(first["acquired_at"], datetime) and first["acquired_at"].tzinfo
    assert first["geometry"]["type"] == "Polygon" and len(first["geometry"]["coordinates"][0]) == 5
    order = [(r["acquired_at"], r["scene_id"]) for r in found]
    assert order == sorted(order)
    assert {r["cog_valid"] for r in found} == {None, True, False}
    # the standard library's parser gives the same rows as orjson
    monkeypatch.setattr(queries, "loads_geometry", json.loads)
    assert queries.scenes_in(catalog, query) == expected
    # max cloud and limit still apply
    capped = queries.Query.parse(BBOX, START, END, max_cloud=50, limit=5)
    assert queries.scenes_in(catalog, capped) == plain_rows(catalog, queries.SCENES_SQL, capped)
    assert len(queries.scenes_in(catalog, capped)) == 5


def test_alerts_in_returns_the_plain_paths_rows(catalog: psycopg.Connection[Any]) -> None:
    query = queries.Query.parse(BBOX, START, END, min_confidence=0.3)
    found = queries.alerts_in(catalog, query)
    expected = plain_rows(catalog, queries.ALERTS_SQL, query)
    assert found and found == expected
    assert all(a["confidence"] >= 0.3 for a in found)
    assert found[0]["geometry"]["type"] == "MultiPolygon"
    assert queries.alerts_in(catalog, queries.Query.parse("0,0,1,1", START, END)) == []
