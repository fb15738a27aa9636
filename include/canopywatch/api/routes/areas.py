"""Areas and their alert statistics.

* ``GET /aois``: every area as GeoJSON: the registered ones (``aois`` table, their outline)
  and those only seen in the catalog (the extent of their scenes), with alert totals.
* ``GET /aois/{name}/stats?period=week|month&format=json|csv``: alerted hectares per period
  and status for an area (registered: the alerts inside its outline; else the alerts carrying
  its id); an unknown area is 404.
* ``POST /stats``: the same for a posted GeoJSON Polygon/MultiPolygon (a geometry, Feature or
  one-feature FeatureCollection), hectares of the alert parts inside it.
* ``GET /alerts/{alert_id}``: one alert with the ids of the scenes it was seen and confirmed
  on (the catalog scenes over it acquired on its alert and confirmation days).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from psycopg.rows import dict_row
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity

from canopywatch.api.auth import require_read
from canopywatch.api.db import alert_status_sql, columns, connection

router = APIRouter(tags=["areas"], dependencies=[Depends(require_read)])
Period = Literal["week", "month"]
Format = Literal["json", "csv"]
CSV_FIELDS = ("period_start", "status", "alerts", "hectares")
Conn = Annotated[psycopg.Connection[Any], Depends(connection)]


def _stats_rows(
    conn: psycopg.Connection[Any], period: str, *, geometry: str | None, aoi_id: str | None
) -> list[dict[str, Any]]:
    found = columns(conn, "alerts")
    if not found:
        return []
    status = alert_status_sql(found)
    if geometry is not None:
        # an alert inside the area counts whole; only those on its edge are cut
        hectares = (
            "CASE WHEN ST_CoveredBy(a.geom, q.g) THEN a.area_ha "
            "ELSE ST_Area(ST_Intersection(a.geom, q.g)::geography) / 10000.0 END"
        )
        source = (
            "alerts a, (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(g)s), 4326) AS g) q "
            "WHERE ST_Intersects(a.geom, q.g)"
        )
    else:
        hectares = "a.area_ha"
        source = "alerts a WHERE a.aoi_id = %(aoi)s"
    statement = f"""
        SELECT to_char(date_trunc(%(period)s, a.alert_date AT TIME ZONE 'UTC'), 'YYYY-MM-DD')
                   AS period_start,
               {status} AS status, count(*)::int AS alerts,
               round(sum({hectares})::numeric, 4)::float AS hectares
        FROM {source}
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(statement, {"period": period, "g": geometry, "aoi": aoi_id})  # type: ignore[arg-type]
        return list(cur.fetchall())


def _answer(
    rows: list[dict[str, Any]], fmt: str, period: str, about: dict[str, Any]
) -> Response | dict[str, Any]:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["status"]] = round(totals.get(row["status"], 0.0) + row["hectares"], 4)
    return {**about, "period": period, "rows": rows, "hectares_by_status": totals}


def _registered_outline(conn: psycopg.Connection[Any], name: str) -> str | None:
    if not columns(conn, "aois"):
        return None
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ST_AsGeoJSON(geom) FROM aois WHERE aoi_id = %s OR name = %s "
            "ORDER BY aoi_id = %s DESC LIMIT 1",
            (name, name, name),
        )
        row = cur.fetchone()
    return None if row is None else str(row[0])


def _has_alerts_of(conn: psycopg.Connection[Any], aoi_id: str) -> bool:
    if not columns(conn, "alerts"):
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM alerts WHERE aoi_id = %s LIMIT 1", (aoi_id,))
        return cur.fetchone() is not None


def _has_scenes_of(conn: psycopg.Connection[Any], aoi_id: str) -> bool:
    if not columns(conn, "scenes"):
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM scenes WHERE aoi_id = %s LIMIT 1", (aoi_id,))
        return cur.fetchone() is not None


@router.get("/aois/{name}/stats", response_model=None)
def aoi_stats(
    name: str,
    conn: Conn,
    period: Annotated[Period, Query()] = "week",
    format: Annotated[Format, Query()] = "json",
) -> Response | dict[str, Any]:
    outline = _registered_outline(conn, name)
    if outline is not None:
        rows = _stats_rows(conn, period, geometry=outline, aoi_id=None)
    elif _has_alerts_of(conn, name) or _has_scenes_of(conn, name):
        rows = _stats_rows(conn, period, geometry=None, aoi_id=name)
    else:
        raise HTTPException(404, f"no area {name!r} (not registered, no scenes or alerts)")
    return _answer(rows, format, period, {"aoi": name})


def parse_polygon(body: Any) -> dict[str, Any]:
    """A GeoJSON Polygon/MultiPolygon in lon/lat from a geometry, Feature or
    one-feature FeatureCollection; ``HTTPException(400)`` saying what is wrong otherwise."""
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a GeoJSON object")
    if body.get("type") == "FeatureCollection":
        features = body.get("features") or []
        if len(features) != 1:
            raise HTTPException(400, "a FeatureCollection must hold exactly one feature")
        body = features[0]
    if body.get("type") == "Feature":
        body = body.get("geometry") or {}
    if body.get("type") not in {"Polygon", "MultiPolygon"}:
        raise HTTPException(400, f"geometry type {body.get('type')!r} is not Polygon/MultiPolygon")
    try:
        geometry = shape(body)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise HTTPException(400, f"not a readable GeoJSON geometry: {exc}") from exc
    if geometry.is_empty:
        raise HTTPException(400, "the geometry is empty")
    if not geometry.is_valid:
        raise HTTPException(400, f"invalid geometry: {explain_validity(geometry)}")
    minx, miny, maxx, maxy = geometry.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise HTTPException(
            400, "coordinates must be lon/lat (EPSG:4326) within -180..180, -90..90"
        )
    return dict(mapping(geometry))


@router.post("/stats", response_model=None)
def geometry_stats(
    conn: Conn,
    body: Annotated[Any, Body(description="GeoJSON Polygon or MultiPolygon (EPSG:4326)")],
    period: Annotated[Period, Query()] = "week",
    format: Annotated[Format, Query()] = "json",
) -> Response | dict[str, Any]:
    geometry = parse_polygon(body)
    rows = _stats_rows(conn, period, geometry=json.dumps(geometry), aoi_id=None)
    return _answer(rows, format, period, {"geometry": geometry})


@router.get("/aois")
def list_areas(conn: Conn) -> dict[str, Any]:
    features: dict[str, dict[str, Any]] = {}
    if columns(conn, "aois"):
        with conn.cursor() as cur:
            cur.execute("SELECT aoi_id, name, ST_AsGeoJSON(geom, 7) FROM aois ORDER BY aoi_id")
            for aoi_id, name, geometry in cur.fetchall():
                features[aoi_id] = _area(aoi_id, name, json.loads(geometry), registered=True)
    if columns(conn, "scenes"):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT aoi_id, ST_AsGeoJSON(ST_Envelope(ST_Collect(footprint)), 7) "
                "FROM scenes GROUP BY aoi_id ORDER BY aoi_id"
            )
            for aoi_id, geometry in cur.fetchall():
                if aoi_id not in features:
                    features[aoi_id] = _area(aoi_id, aoi_id, json.loads(geometry), registered=False)
    if features and columns(conn, "alerts"):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT aoi_id, count(*)::int, coalesce(sum(area_ha), 0)::float "
                "FROM alerts GROUP BY aoi_id"
            )
            for aoi_id, count, hectares in cur.fetchall():
                if aoi_id in features:
                    features[aoi_id]["properties"].update(alerts=count, alert_hectares=hectares)
    return {"type": "FeatureCollection", "features": list(features.values())}


def _area(aoi_id: str, name: str, geometry: Any, *, registered: bool) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": aoi_id,
        "geometry": geometry,
        "properties": {
            "aoi_id": aoi_id,
            "name": name,
            "registered": registered,
            "alerts": 0,
            "alert_hectares": 0.0,
        },
    }


@router.get("/alerts/{alert_id}")
def alert_detail(alert_id: str, conn: Conn) -> dict[str, Any]:
    found = columns(conn, "alerts")
    if not found:
        raise HTTPException(404, f"no alert {alert_id!r}")
    wanted = [c for c in sorted(found) if c != "geom"]
    select = ", ".join(f"a.{c}" for c in wanted)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {select}, {alert_status_sql(found)} AS status_, "
            "ST_AsGeoJSON(a.geom, 7)::json AS geometry FROM alerts a WHERE a.alert_id = %s",
            (alert_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    row["status"] = row.pop("status_")
    scene_ids: list[str] = []
    if columns(conn, "scenes"):
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT s.scene_id FROM scenes s, alerts a
                WHERE a.alert_id = %s AND s.aoi_id = a.aoi_id AND ST_Intersects(s.footprint, a.geom)
                  AND (s.acquired_at::date = a.alert_date::date
                       OR s.acquired_at::date = a.confirmed_date::date)
                ORDER BY s.acquired_at, s.scene_id
                """,
                (alert_id,),
            )
            scene_ids = [str(r[0]) for r in cur.fetchall()]
    geometry = row.pop("geometry")
    properties = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
    properties["scene_ids"] = scene_ids
    return {"type": "Feature", "id": alert_id, "geometry": geometry, "properties": properties}
