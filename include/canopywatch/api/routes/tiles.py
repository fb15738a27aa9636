"""Vector tiles of the alerts: ``/tiles/alerts/{z}/{x}/{y}.pbf`` (Mapbox Vector Tile, Web
Mercator), built by PostGIS ``ST_AsMVT``; layer ``alerts``, one feature per alert with its
id, area, dates (ISO text), confidence, status, model version. ``start``/``end`` (dates)
keep alerts dated in that range (the map's date slider)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from canopywatch.api.auth import require_read
from canopywatch.api.db import alert_status_sql, columns, connection

router = APIRouter(tags=["tiles"], dependencies=[Depends(require_read)])
MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise HTTPException(400, f"zoom {z} must be between 0 and {MAX_ZOOM}")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise HTTPException(400, f"tile {x}/{y} does not exist at zoom {z}")


@router.get("/tiles/alerts/{z}/{x}/{y}.pbf", response_class=Response)
def alert_tile(
    z: int,
    x: int,
    y: int,
    conn: Annotated[psycopg.Connection[Any], Depends(connection)],
    start: Annotated[dt.date | None, Query(description="first alert date")] = None,
    end: Annotated[dt.date | None, Query(description="last alert date (inclusive)")] = None,
) -> Response:
    check_tile(z, x, y)
    if start and end and start > end:
        raise HTTPException(400, f"start {start} is after end {end}")
    found = columns(conn, "alerts")
    if not found:
        return Response(b"", media_type=MVT)
    extra = ", a.method" if "method" in found else ""
    statement = f"""
        WITH env AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS m),
        rows AS (
            SELECT ST_AsMVTGeom(ST_Transform(a.geom, 3857), env.m, 4096, 64, true) AS geom,
                   a.alert_id, a.aoi_id, a.area_ha, a.confidence, a.model_version{extra},
                   {alert_status_sql(found)} AS status,
                   to_char(a.alert_date AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS alert_date,
                   to_char(a.confirmed_date AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS confirmed_date,
                   (EXTRACT(EPOCH FROM a.alert_date) / 86400)::int AS alert_day
            FROM alerts a, env
            WHERE a.geom && ST_Transform(env.m, 4326)
              AND (%(start)s::date IS NULL OR a.alert_date >= %(start)s::date)
              AND (%(end)s::date IS NULL OR a.alert_date < %(end)s::date + 1)
        )
        SELECT ST_AsMVT(rows, 'alerts', 4096, 'geom') FROM rows WHERE geom IS NOT NULL
    """
    with conn.cursor() as cur:
        cur.execute(statement, {"z": z, "x": x, "y": y, "start": start, "end": end})  # type: ignore[arg-type]
        row = cur.fetchone()
    data = bytes(row[0]) if row and row[0] is not None else b""
    return Response(data, media_type=MVT, headers={"Cache-Control": "no-cache"})
