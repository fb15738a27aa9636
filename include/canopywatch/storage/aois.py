"""Registered areas of interest: the ``aois`` table in PostGIS and an optional YAML file.

Scheduled monitoring runs cover every active area from both sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canopywatch.geo import BBox, parse_bbox

SCHEMA_SQL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE IF NOT EXISTS aois (
    aoi_id      text PRIMARY KEY CHECK (aoi_id ~ '^[a-z0-9][a-z0-9-]{0,47}$'),
    name        text NOT NULL,
    geom        geometry(Polygon, 4326) NOT NULL,
    function    text NOT NULL DEFAULT 's2l2a_bands',
    max_cloud   real NOT NULL DEFAULT 80 CHECK (max_cloud BETWEEN 0 AND 100),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS aois_geom_idx ON aois USING gist (geom);
"""


@dataclass(frozen=True)
class RegisteredAoi:
    aoi_id: str
    name: str
    bbox: BBox
    function: str = "s2l2a_bands"
    max_cloud: float = 80.0


def ensure_schema(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(SCHEMA_SQL)
    conn.commit()


def register(conn: Any, aoi: RegisteredAoi) -> None:
    """Insert or update an area (idempotent on aoi_id)."""
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO aois (aoi_id, name, geom, function, max_cloud)
            VALUES (%s, %s, ST_MakeEnvelope(%s, %s, %s, %s, 4326), %s, %s)
            ON CONFLICT (aoi_id) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
                function = EXCLUDED.function, max_cloud = EXCLUDED.max_cloud, active = true
            """,
            (aoi.aoi_id, aoi.name, *aoi.bbox.as_tuple(), aoi.function, aoi.max_cloud),
        )
    conn.commit()


def list_active(conn: Any) -> list[RegisteredAoi]:
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT aoi_id, name, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom),
                   function, max_cloud
            FROM aois WHERE active ORDER BY aoi_id
            """
        )
        rows = cur.fetchall()
    return [
        RegisteredAoi(r[0], r[1], BBox(r[2], r[3], r[4], r[5]), r[6], float(r[7])) for r in rows
    ]


def load_file(path: Path) -> list[RegisteredAoi]:
    """Areas from a YAML file: ``aois: [{aoi_id, name, bbox, function?, max_cloud?}]``."""
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text()) or {}
    areas = []
    for entry in document.get("aois") or []:
        areas.append(
            RegisteredAoi(
                aoi_id=str(entry["aoi_id"]),
                name=str(entry.get("name") or entry["aoi_id"]),
                bbox=parse_bbox(entry["bbox"]),
                function=str(entry.get("function") or "s2l2a_bands"),
                max_cloud=float(entry.get("max_cloud", 80.0)),
            )
        )
    return areas
