"""``dbt build`` of dbt/ against the real PostGIS, in this session's schema.

The catalog tables are created in the session schema and filled with a few scenes,
COGs and alerts; dbt builds its views and marts into ``<schema>_dbt_staging`` and
``<schema>_dbt_marts`` (dropped afterwards) and runs every test after each model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from psycopg import sql

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.service

DBT = Path(sys.executable).with_name("dbt")
AOI = "it-dbt"
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[-55.4, -7.1], [-55.35, -7.1], [-55.35, -7.05], [-55.4, -7.05], [-55.4, -7.1]]
    ],
}
# (scene_id, acquired_at, cloud_cover, cog valid: True/False/None = no COG)
SCENES = [
    ("s-mar-clear", "2024-03-05T14:12:00Z", 5.0, True),
    ("s-mar-cloudy", "2024-03-15T14:12:00Z", 85.0, True),
    ("s-apr-clear", "2024-04-04T14:12:00Z", 12.0, True),
    ("s-apr-latest", "2024-04-24T14:12:00Z", 30.0, True),
    ("s-apr-bad-cog", "2024-04-29T14:12:00Z", 2.0, False),
    ("s-apr-no-cog", "2024-04-30T14:12:00Z", 1.0, None),
]
# (alert_id, alert_date, confirmed, confidence, area_ha, status); the marts count
# deforestation alerts (low, high), not withdrawn ones
ALERTS = [
    ("a-1", "2024-04-01T00:00:00Z", True, 0.9, 1.5, "high"),
    ("a-2", "2024-04-03T00:00:00Z", False, 0.7, 0.5, "low"),
    ("a-3", "2024-04-10T00:00:00Z", False, 0.8, 2.0, "low"),
    ("a-4", "2024-04-11T00:00:00Z", False, 0.01, 7.0, "withdrawn"),
]


def _fill(conn) -> None:
    footprint = json.dumps(SQUARE)
    with conn.cursor() as cur:
        for scene_id, acquired_at, cloud, valid in SCENES:
            raw_key = f"simulated/s2l2a_bands/6y8xg/{scene_id}/raw.tif"
            cur.execute(
                """INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                    acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                    checksum, size_bytes, footprint)
                   VALUES (%s, 'r', %s, 'simulated', 's2l2a_bands', '6y8xg', %s, %s,
                    'EPSG:32721', 10, 10, ARRAY['B02'], 'b', %s, 'c', 1,
                    ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))""",
                (scene_id, AOI, acquired_at, cloud, raw_key, footprint),
            )
            if valid is not None:
                cur.execute(
                    "INSERT INTO scene_cogs VALUES (%s, %s, %s, %s, ARRAY[]::text[])",
                    (scene_id, raw_key.replace("raw.tif", "cog.tif"), valid,
                     [] if valid else ["not a readable GeoTIFF"]),
                )  # fmt: skip
        for alert_id, alert_date, confirmed, confidence, area_ha, status in ALERTS:
            cur.execute(
                """INSERT INTO alerts (alert_id, aoi_id, alert_date, confirmed_date, confidence,
                    confidence_level, status, area_ha, method, model_version, geohash, geom)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'harmonic', 'harmonic-v1', '6y8xg',
                    ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)))""",
                (alert_id, AOI, alert_date, alert_date if confirmed else None, confidence,
                 "high" if confidence >= 0.8 else "low", status, area_ha, footprint),
            )  # fmt: skip
    conn.commit()


@pytest.fixture(scope="module")
def platform(platform: Settings):  # type: ignore[no-redef]
    """This module's own catalog schema: its hand-made scenes, COGs and alerts (keys outside
    the object layout) never reach the session schema the DAG tests share; dropped after."""
    own = replace(platform, pg_schema=f"{platform.pg_schema}_dbtsrc")
    connect(own).close()  # creates the schema
    yield own
    with connect(platform) as conn:
        drop_schema(conn, own.pg_schema)


@pytest.fixture(scope="module")
def dbt_schema(platform: Settings):
    schema = f"{platform.pg_schema}_dbt"
    with connect(platform) as conn:
        ensure_schema(conn)
        _fill(conn)
    yield schema
    with connect(platform) as conn, conn.cursor() as cur:
        for suffix in ("", "_staging", "_marts"):
            cur.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema + suffix))
            )
        conn.commit()


def dbt_build(settings: Settings, schema: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    from canopywatch_dev.platform import postgres

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
    return subprocess.run(
        [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_dbt_build_passes_and_marts_hold_the_expected_rows(platform, dbt_schema, tmp_path):
    result = dbt_build(platform, dbt_schema, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "ERROR=0" in result.stdout and "WARN=0" in result.stdout
    marts = f"{dbt_schema}_marts"
    with connect(platform) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT acquired_month::text, scenes, clear_observations, mean_cloud_cover::float,"
                " ST_GeometryType(coverage), ST_SRID(coverage) FROM {}.mart_area_observation_coverage"
                " WHERE aoi_id = %s ORDER BY 1"
            ).format(sql.Identifier(marts)),
            (AOI,),
        )
        assert cur.fetchall() == [
            ("2024-03-01", 2, 1, 45.0, "ST_MultiPolygon", 4326),
            ("2024-04-01", 4, 3, 11.25, "ST_MultiPolygon", 4326),
        ]
        cur.execute(
            sql.SQL(
                "SELECT scene_id, cog_key FROM {}.mart_latest_usable_scene WHERE aoi_id = %s"
            ).format(sql.Identifier(marts)),
            (AOI,),
        )
        assert cur.fetchall() == [
            ("s-apr-latest", "simulated/s2l2a_bands/6y8xg/s-apr-latest/cog.tif")
        ]
        cur.execute(
            sql.SQL(
                "SELECT alert_week::text, alerts, confirmed_alerts, area_ha::float,"
                " mean_confidence::float FROM {}.mart_alert_summary_weekly"
                " WHERE aoi_id = %s ORDER BY 1"
            ).format(sql.Identifier(marts)),
            (AOI,),
        )
        assert cur.fetchall() == [("2024-04-01", 2, 1, 2.0, 0.8), ("2024-04-08", 1, 0, 2.0, 0.8)]
        cur.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1", (marts,)
        )
        gist = {table: index for table, index in cur.fetchall() if "USING gist" in index}
        assert set(gist) == {
            "mart_area_observation_coverage",
            "mart_latest_usable_scene",
            "mart_alert_summary_weekly",
        }
        cur.execute(
            "SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns"
            " WHERE f_table_schema = %s ORDER BY 1",
            (marts,),
        )
        assert cur.fetchall() == [
            ("mart_alert_summary_weekly", "geom", "MULTIPOLYGON", 4326),
            ("mart_area_observation_coverage", "coverage", "MULTIPOLYGON", 4326),
            ("mart_latest_usable_scene", "footprint", "POLYGON", 4326),
        ]
    # a second build over the same tables is just as clean (tables replaced, indexes re-made)
    again = dbt_build(platform, dbt_schema, tmp_path)
    assert again.returncode == 0, again.stdout[-6000:]
