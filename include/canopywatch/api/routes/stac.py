"""STAC API over the scene catalog: ``/stac`` (landing), ``/stac/conformance``,
``/stac/collections[/{id}[/items[/{item_id}]]]`` and ``/stac/search`` (GET and POST) with
``bbox`` or ``intersects`` (a GeoJSON geometry, lon/lat; in GET as JSON text; not both),
``datetime`` (an instant, ``a/b``, ``../b``, ``a/..``; dates mean whole days), ``ids``, ``collections``, ``limit`` (1..1000) and ``offset`` paging (``next`` links).

One collection, ``sentinel-2-l2a``: every catalogued scene. Items come from
``canopywatch.catalog.stac`` with presigned asset hrefs and the files' header facts
(``proj:transform``, ``raster:bands``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from psycopg.rows import dict_row

from canopywatch.api.auth import require_read
from canopywatch.api.db import columns, connection
from canopywatch.api.objects import SceneFiles
from canopywatch.catalog.stac import STAC_VERSION, RasterFacts, scene_item

log = logging.getLogger(__name__)
router = APIRouter(prefix="/stac", tags=["stac"], dependencies=[Depends(require_read)])
COLLECTION = "sentinel-2-l2a"
MAX_LIMIT = 1000
HEADER_READERS = 8
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
Conn = Annotated[psycopg.Connection[Any], Depends(connection)]

SCENES_SQL = """
SELECT scene_id, aoi_id, source, function, geohash, acquired_at, cloud_cover, crs, width,
       height, bands, bucket, raw_key, cog_key, cog_valid, ST_AsGeoJSON(footprint, 7)::json AS geometry,
       count(*) OVER () AS matched
FROM scenes
WHERE ST_Intersects(footprint, ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))
  AND (%(start)s::timestamptz IS NULL OR acquired_at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR acquired_at <= %(end)s)
  AND (%(ids)s::text[] IS NULL OR scene_id = ANY(%(ids)s))
  AND (%(intersects)s::text IS NULL
       OR ST_Intersects(footprint, ST_SetSRID(ST_GeomFromGeoJSON(%(intersects)s), 4326)))
ORDER BY acquired_at, scene_id
LIMIT %(limit)s OFFSET %(offset)s
"""


def _files(request: Request) -> SceneFiles:
    files: SceneFiles = request.app.state.scene_files
    return files


def parse_bbox(raw: Any) -> tuple[float, float, float, float]:
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, f"bbox {raw!r} must be 4 numbers") from exc
    if len(numbers) != 4:
        raise HTTPException(400, f"bbox {raw!r} must be 4 numbers: minx,miny,maxx,maxy")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise HTTPException(400, f"bbox {raw!r} must be lon/lat with min < max")
    return minx, miny, maxx, maxy


def parse_intersects(raw: Any) -> tuple[str, tuple[float, float, float, float]] | None:
    """``intersects``: a GeoJSON geometry (a mapping, or its JSON text) -> (GeoJSON text,
    its lon/lat bounds); 400 for anything else, an invalid or an out-of-range geometry."""
    if raw in (None, ""):
        return None
    import shapely
    from shapely.geometry import shape

    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict) or (
            "coordinates" not in value and "geometries" not in value
        ):
            raise ValueError("not a GeoJSON geometry object")
        geometry = shape(value)
    except Exception as exc:  # json, shapely and GEOS errors alike
        raise HTTPException(400, f"intersects must be a GeoJSON geometry: {exc}") from None
    if geometry.is_empty or not geometry.is_valid:
        reason = "empty" if geometry.is_empty else shapely.is_valid_reason(geometry)
        raise HTTPException(400, f"intersects is not a valid geometry ({reason})")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise HTTPException(400, "intersects must be in lon/lat degrees (EPSG:4326)")
    return json.dumps(shapely.geometry.mapping(geometry)), (minx, miny, maxx, maxy)


def _instant(text: str, *, end: bool) -> dt.datetime | None:
    if text in {"", ".."}:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise HTTPException(400, f"datetime {text!r} is not RFC 3339 (or a date)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_datetime(raw: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not raw:
        return None, None
    if "/" in raw:
        first, _, last = raw.partition("/")
        start, end = _instant(first, end=False), _instant(last, end=True)
    else:
        start, end = _instant(raw, end=False), _instant(raw, end=True)
    if start and end and start > end:
        raise HTTPException(400, f"datetime {raw!r}: the start is after the end")
    return start, end


def _check_limit(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise HTTPException(400, f"limit {limit} must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise HTTPException(400, f"offset {offset} must be >= 0")


def _facts(files: SceneFiles, row: dict[str, Any]) -> dict[str, RasterFacts]:
    found: dict[str, RasterFacts] = {}
    for asset, key in (("raw", row["raw_key"]), ("cog", row.get("cog_key"))):
        if not key:
            continue
        try:
            found[asset] = files.facts(row["bucket"], key)
        except Exception as exc:
            log.warning("cannot read the header of s3://%s/%s: %s", row["bucket"], key, exc)
    return found


def _item(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    files = _files(request)
    item = scene_item(row, href=files.presigned, facts=_facts(files, row), collection=COLLECTION)
    base = str(request.base_url).rstrip("/")
    item["links"] = [
        {"rel": "self", "href": f"{base}/stac/collections/{COLLECTION}/items/{row['scene_id']}",
         "type": "application/geo+json"},
        {"rel": "collection", "href": f"{base}/stac/collections/{COLLECTION}",
         "type": "application/json"},
        {"rel": "root", "href": f"{base}/stac", "type": "application/json"},
    ]  # fmt: skip
    if row.get("cog_key"):
        item["links"].append(
            {
                "rel": "preview",
                "href": f"{base}/cog/tiles/{row['scene_id']}/{{z}}/{{x}}/{{y}}.png?style=truecolor",
                "type": "image/png",
                "title": "true-colour XYZ tiles",
            }
        )
    return item


def search_items(
    request: Request,
    conn: psycopg.Connection[Any],
    *,
    bbox: Any = None,
    intersects: Any = None,
    datetime: str | None = None,
    ids: list[str] | None = None,
    collections: list[str] | None = None,
    limit: int = 10,
    offset: int = 0,
    next_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    _check_limit(limit, offset)
    area = parse_intersects(intersects)
    if area is not None and bbox not in (None, "", []):
        raise HTTPException(400, "give bbox or intersects, not both")
    box = parse_bbox(bbox) if bbox not in (None, "", []) else (-180.0, -90.0, 180.0, 90.0)
    shape_text = None
    if area is not None:
        shape_text, box = area  # its bounds serve the index, the shape decides
    start, end = parse_datetime(datetime)
    rows: list[dict[str, Any]] = []
    if (collections is None or COLLECTION in collections) and columns(conn, "scenes"):
        params = {
            "minx": box[0], "miny": box[1], "maxx": box[2], "maxy": box[3],
            "start": start, "end": end, "ids": ids or None, "limit": limit, "offset": offset,
            "intersects": shape_text,
        }  # fmt: skip
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(SCENES_SQL, params)
            rows = list(cur.fetchall())
    matched = int(rows[0]["matched"]) if rows else 0
    if not rows and offset:
        matched = _count(conn, box, start, end, ids, shape_text)
    # the files' headers (first read of each, then remembered) are fetched side by side
    with ThreadPoolExecutor(max_workers=HEADER_READERS) as pool:
        features = list(pool.map(lambda row: _item(request, row), rows))
    links: list[dict[str, Any]] = []
    if offset + len(rows) < matched:
        query = {k: v for k, v in (next_params or {}).items() if v not in (None, "", [])}
        query.update(limit=limit, offset=offset + limit)
        base = str(request.url).split("?")[0]
        links.append(
            {"rel": "next", "href": f"{base}?{urlencode(query, doseq=True)}",
             "type": "application/geo+json", "method": "GET"}
        )  # fmt: skip
    return {
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberMatched": matched,
        "numberReturned": len(features),
    }


def _count(
    conn: psycopg.Connection[Any], box: Any, start: Any, end: Any, ids: Any, shape_text: Any
) -> int:
    statement = SCENES_SQL.replace("LIMIT %(limit)s OFFSET %(offset)s", "LIMIT 1")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            statement,
            {"minx": box[0], "miny": box[1], "maxx": box[2], "maxy": box[3],
             "start": start, "end": end, "ids": ids or None, "intersects": shape_text},
        )  # fmt: skip
        row = cur.fetchone()
    return int(row["matched"]) if row else 0


def _collection(request: Request, conn: psycopg.Connection[Any]) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    extent_box: list[float] = [-180.0, -90.0, 180.0, 90.0]
    interval: list[str | None] = [None, None]
    if columns(conn, "scenes"):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM ("
                "SELECT ST_Extent(footprint) AS e, min(acquired_at) AS t0, max(acquired_at) AS t1 "
                "FROM scenes) s"
            )
            row = cur.fetchone()
        if row and row[0] is not None:
            extent_box = [float(v) for v in row[:4]]
            interval = [row[4].isoformat(), row[5].isoformat()]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": COLLECTION,
        "title": "Sentinel-2 L2A scenes in the canopywatch catalog",
        "description": "Scenes fetched from the Copernicus Data Space, stored as raw GeoTIFFs "
        "and Cloud-Optimized GeoTIFFs. Contains modified Copernicus Sentinel data.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [extent_box]}, "temporal": {"interval": [interval]}},
        "links": [
            {"rel": "self", "href": f"{base}/stac/collections/{COLLECTION}", "type": "application/json"},
            {"rel": "items", "href": f"{base}/stac/collections/{COLLECTION}/items",
             "type": "application/geo+json"},
            {"rel": "root", "href": f"{base}/stac", "type": "application/json"},
        ],
    }  # fmt: skip


def _known(collection_id: str) -> None:
    if collection_id != COLLECTION:
        raise HTTPException(404, f"no collection {collection_id!r}; there is {COLLECTION!r}")


@router.get("")
def landing(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "canopywatch",
        "title": "canopywatch STAC API",
        "description": "Sentinel-2 scenes of the canopywatch catalog",
        "conformsTo": CONFORMANCE,
        "links": [
            {"rel": "self", "href": f"{base}/stac", "type": "application/json"},
            {"rel": "root", "href": f"{base}/stac", "type": "application/json"},
            {"rel": "conformance", "href": f"{base}/stac/conformance", "type": "application/json"},
            {"rel": "data", "href": f"{base}/stac/collections", "type": "application/json"},
            {"rel": "search", "href": f"{base}/stac/search", "type": "application/geo+json",
             "method": "GET"},
            {"rel": "search", "href": f"{base}/stac/search", "type": "application/geo+json",
             "method": "POST"},
            {"rel": "child", "href": f"{base}/stac/collections/{COLLECTION}",
             "type": "application/json"},
        ],
    }  # fmt: skip


@router.get("/conformance")
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections")
def collections_(request: Request, conn: Conn) -> dict[str, Any]:
    return {"collections": [_collection(request, conn)], "links": []}


@router.get("/collections/{collection_id}")
def collection(collection_id: str, request: Request, conn: Conn) -> dict[str, Any]:
    _known(collection_id)
    return _collection(request, conn)


@router.get("/collections/{collection_id}/items")
def collection_items(
    collection_id: str,
    request: Request,
    conn: Conn,
    bbox: Annotated[str | None, Query()] = None,
    datetime: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = 10,
    offset: Annotated[int, Query()] = 0,
) -> dict[str, Any]:
    _known(collection_id)
    return search_items(
        request, conn, bbox=bbox, datetime=datetime, limit=limit, offset=offset,
        next_params={"bbox": bbox, "datetime": datetime},
    )  # fmt: skip


@router.get("/collections/{collection_id}/items/{item_id}")
def collection_item(
    collection_id: str, item_id: str, request: Request, conn: Conn
) -> dict[str, Any]:
    _known(collection_id)
    found = search_items(request, conn, ids=[item_id], limit=1)
    if not found["features"]:
        raise HTTPException(404, f"no item {item_id!r} in {collection_id!r}")
    item: dict[str, Any] = found["features"][0]
    return item


@router.get("/search")
def search_get(
    request: Request,
    conn: Conn,
    bbox: Annotated[str | None, Query()] = None,
    intersects: Annotated[str | None, Query(description="a GeoJSON geometry as JSON")] = None,
    datetime: Annotated[str | None, Query()] = None,
    ids: Annotated[str | None, Query(description="comma-separated item ids")] = None,
    collections: Annotated[str | None, Query(description="comma-separated")] = None,
    limit: Annotated[int, Query()] = 10,
    offset: Annotated[int, Query()] = 0,
) -> dict[str, Any]:
    return search_items(
        request, conn, bbox=bbox, intersects=intersects, datetime=datetime,
        ids=ids.split(",") if ids else None,
        collections=collections.split(",") if collections else None,
        limit=limit, offset=offset,
        next_params={"bbox": bbox, "intersects": intersects, "datetime": datetime, "ids": ids,
                     "collections": collections},
    )  # fmt: skip


@router.post("/search")
def search_post(
    request: Request, conn: Conn, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    def as_list(name: str) -> list[str] | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HTTPException(400, f"{name} must be a list of strings")
        return value

    limit, offset = body.get("limit", 10), body.get("offset", 0)
    if not isinstance(limit, int) or not isinstance(offset, int):
        raise HTTPException(400, "limit and offset must be integers")
    dt_value = body.get("datetime")
    if dt_value is not None and not isinstance(dt_value, str):
        raise HTTPException(400, "datetime must be a string")
    return search_items(
        request, conn, bbox=body.get("bbox"), intersects=body.get("intersects"),
        datetime=dt_value, ids=as_list("ids"), collections=as_list("collections"),
        limit=limit, offset=offset,
        next_params={
            "bbox": ",".join(str(v) for v in body["bbox"]) if body.get("bbox") else None,
            "intersects": json.dumps(body["intersects"]) if body.get("intersects") else None,
            "datetime": dt_value,
        },
    )  # fmt: skip
