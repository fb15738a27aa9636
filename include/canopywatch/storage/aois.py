"""Registered areas of interest: the ``aois`` table in PostGIS and an optional YAML file.

Scheduled monitoring runs cover every active area from both sources (``merge``: an area
in PostGIS wins over a YAML entry with the same id, so it can also be deactivated there).
An area is kept as its outline (``geom``, a MultiPolygon in EPSG:4326; a bbox is stored
as its rectangle). Registering a name whose id is taken by a different area is refused
unless ``replace=True``; registering the same area again changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from canopywatch.area_geometry import parse_area
from canopywatch.geo import BBox, BBoxError

SCHEMA_SQL = """
CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public;
CREATE TABLE IF NOT EXISTS aois (
    aoi_id      text PRIMARY KEY CHECK (aoi_id ~ '^[a-z0-9][a-z0-9-]{0,47}$'),
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    function    text NOT NULL DEFAULT 's2l2a_bands',
    max_cloud   real NOT NULL DEFAULT 80 CHECK (max_cloud BETWEEN 0 AND 100),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS aois_geom_idx ON aois USING gist (geom);
DO $$
BEGIN  -- tables made when areas were stored as their bbox polygon
    IF EXISTS (SELECT 1 FROM geometry_columns WHERE f_table_schema = current_schema()
               AND f_table_name = 'aois' AND f_geometry_column = 'geom' AND type = 'POLYGON')
    THEN
        ALTER TABLE aois ALTER COLUMN geom TYPE geometry(MultiPolygon, 4326)
            USING ST_Multi(geom);
    END IF;
END $$;
"""
_DDL_LOCK = 0x63_77_61_6F  # "cwao": one DDL run at a time


class AoiExistsError(ValueError):
    """An area with this id exists and differs; the message is meant for users."""


class AoiNotFoundError(ValueError):
    """No registered area has this id."""


@dataclass(frozen=True)
class RegisteredAoi:
    aoi_id: str
    name: str
    bbox: BBox
    function: str = "s2l2a_bands"
    max_cloud: float = 80.0
    outline: Mapping[str, Any] | None = field(default=None, compare=False)  # None: the bbox
    active: bool = True

    def area(self) -> Any:
        """The outline, or the bbox as one (GeoJSON for ``make_aoi``)."""
        return dict(self.outline) if self.outline else list(self.bbox.as_tuple())

    def geojson(self) -> dict[str, Any]:
        return parse_area(self.area()).to_geojson()


def ensure_schema(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        cur.execute(SCHEMA_SQL)
    conn.commit()


_COLUMNS = "aoi_id, name, ST_AsGeoJSON(geom), function, max_cloud, active"


def _row(row: tuple[Any, ...]) -> RegisteredAoi:
    outline = parse_area(json.loads(row[2]))
    return RegisteredAoi(
        aoi_id=row[0],
        name=row[1],
        bbox=outline.bbox,
        function=row[3],
        max_cloud=float(row[4]),
        outline=None if outline.is_box else outline.to_geojson(),
        active=bool(row[5]),
    )


def find(conn: Any, aoi_id: str) -> RegisteredAoi | None:
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM aois WHERE aoi_id = %s", (aoi_id,))
        row = cur.fetchone()
    return None if row is None else _row(row)


def _same(new: RegisteredAoi, existing: RegisteredAoi) -> bool:
    """The same active area (outline to 1e-7 degrees, ~1 cm; max_cloud is stored as real)."""
    outline_equal = parse_area(new.area()).geometry.equals_exact(
        parse_area(existing.area()).geometry, tolerance=1e-7
    )
    return (
        existing.active
        and (new.name, new.function) == (existing.name, existing.function)
        and math.isclose(new.max_cloud, existing.max_cloud, abs_tol=1e-3)
        and bool(outline_equal)
    )


def register(conn: Any, aoi: RegisteredAoi, *, replace: bool = False) -> str:
    """Store an area; returns ``registered``, ``unchanged`` or ``replaced``.

    Raises ``AoiExistsError`` when another area (other name, outline or settings, or a
    deactivated one) has the id, unless ``replace`` (which also reactivates it).
    """
    ensure_schema(conn)
    geojson = json.dumps(aoi.geojson())
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM aois WHERE aoi_id = %s FOR UPDATE", (aoi.aoi_id,))
        row = cur.fetchone()
        if row is not None:
            existing = _row(row)
            if _same(aoi, existing):
                conn.commit()
                return "unchanged"
            if not replace:
                conn.rollback()
                state = "" if existing.active else ", deactivated"
                raise AoiExistsError(
                    f"an area with id {aoi.aoi_id!r} already exists (name {existing.name!r}, "
                    f"bounds {tuple(round(v, 5) for v in existing.bbox.as_tuple())}{state}); "
                    "give another name, or --replace to overwrite it"
                )
        cur.execute(
            """
            INSERT INTO aois (aoi_id, name, geom, function, max_cloud)
            VALUES (%s, %s, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)), %s, %s)
            ON CONFLICT (aoi_id) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
                function = EXCLUDED.function, max_cloud = EXCLUDED.max_cloud, active = true
            """,
            (aoi.aoi_id, aoi.name, geojson, aoi.function, aoi.max_cloud),
        )
    conn.commit()
    return "registered" if row is None else "replaced"


def set_active(conn: Any, aoi_id: str, active: bool) -> None:
    """Deactivate (no longer monitored, kept) or reactivate an area."""
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute("UPDATE aois SET active = %s WHERE aoi_id = %s", (active, aoi_id))
        found = cur.rowcount
    conn.commit()
    if not found:
        raise AoiNotFoundError(f"no registered area has the id {aoi_id!r} (see `aoi list --all`)")


def remove(conn: Any, aoi_id: str) -> None:
    """Delete an area from the registry (its scenes and alerts stay in the lake)."""
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM aois WHERE aoi_id = %s", (aoi_id,))
        found = cur.rowcount
    conn.commit()
    if not found:
        raise AoiNotFoundError(f"no registered area has the id {aoi_id!r} (see `aoi list --all`)")


def list_areas(conn: Any, *, include_inactive: bool = False) -> list[RegisteredAoi]:
    ensure_schema(conn)
    where = "" if include_inactive else "WHERE active"
    with conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM aois {where} ORDER BY aoi_id")
        rows = cur.fetchall()
    return [_row(r) for r in rows]


def list_active(conn: Any) -> list[RegisteredAoi]:
    return list_areas(conn)


def load_file(path: Path) -> list[RegisteredAoi]:
    """Areas from a YAML file: ``aois: [{aoi_id, name, bbox | geometry, function?, max_cloud?}]``
    (``geometry``: a GeoJSON Polygon or MultiPolygon)."""
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text()) or {}
    areas = []
    for index, entry in enumerate(document.get("aois") or []):
        if not isinstance(entry, Mapping) or "aoi_id" not in entry:
            raise BBoxError(f"{path}: aois[{index}] needs an aoi_id")
        given = entry.get("geometry") or entry.get("bbox")
        if given is None:
            raise BBoxError(f"{path}: area {entry['aoi_id']!r} needs a bbox or a geometry")
        outline = parse_area(given)
        areas.append(
            RegisteredAoi(
                aoi_id=str(entry["aoi_id"]),
                name=str(entry.get("name") or entry["aoi_id"]),
                bbox=outline.bbox,
                function=str(entry.get("function") or "s2l2a_bands"),
                max_cloud=float(entry.get("max_cloud", 80.0)),
                outline=None if outline.is_box else outline.to_geojson(),
            )
        )
    return areas


def merge(
    file_areas: Iterable[RegisteredAoi], registered: Iterable[RegisteredAoi]
) -> list[RegisteredAoi]:
    """The areas a scheduled run covers: the YAML file's, then PostGIS's (active or not) by
    id over them; inactive ones dropped; sorted by id."""
    found: dict[str, RegisteredAoi] = {a.aoi_id: a for a in file_areas}
    for area in registered:
        found[area.aoi_id] = area
    return [found[k] for k in sorted(found) if found[k].active]
