"""The HTTP API on the real PostGIS and MinIO, in this session's schema and bucket.

A catalog is seeded here: two scenes (one with a COG converted by the product's converter
from a synthetic raw scene, both files in MinIO), three alerts inside the first scene and a
registered area around them. Most tests use FastAPI's TestClient (the app with its lifespan,
tipg's pool included); ``test_platform_api_service_answers`` checks the platform's own
``api`` service on 127.0.0.1:18600.
"""

from __future__ import annotations

import io
import json
import re
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from canopywatch.settings import Settings

pytestmark = pytest.mark.service

AOI = "api-area"
ADMIN_KEY = "cw_test-admin-key-0123456789"
ALERTS = (  # alert_id, alert_date, confirmed, confidence, status, (dx0, dy0, dx1, dy1) px
    ("api-a1", "2024-03-02", None, 0.55, "low", (40, 40, 60, 60)),
    ("api-a2", "2024-03-20", "2024-04-02", 0.92, "high", (100, 100, 130, 120)),
    ("api-a3", "2024-04-10", "2024-04-24", 0.97, "high", (180, 60, 200, 90)),
)
ORIGIN = (500000.0, 9200000.0)  # synthetic_raw's UTM origin (EPSG:32721), 10 m pixels
SIZE = 256


@dataclass
class Seeded:
    settings: Settings
    scene_id: str
    bare_scene_id: str
    bbox: tuple[float, float, float, float]
    cog_transform: tuple[float, ...]
    read_key: str
    write_key: str


def _lonlat(px: float, py: float) -> tuple[float, float]:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(32721, 4326, always_xy=True)
    lon, lat = to_lonlat.transform(ORIGIN[0] + px * 10.0, ORIGIN[1] - py * 10.0)
    return float(lon), float(lat)


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    corners = [_lonlat(x0, y0), _lonlat(x1, y0), _lonlat(x1, y1), _lonlat(x0, y1)]
    return {"type": "Polygon", "coordinates": [[*corners, corners[0]]]}


def seed_catalog(settings: Settings) -> Seeded:
    """Scenes, COG, alerts, an area and keys in the session's schema and bucket (the rows
    once per session: a second call adds only new keys)."""
    import rasterio

    from canopywatch.api import keys
    from canopywatch.catalog.schema import connect, ensure_schema
    from canopywatch.cog.convert import convert
    from canopywatch.geo import BBox
    from canopywatch.storage import aois
    from canopywatch.storage.aois import RegisteredAoi
    from canopywatch_dev.platform import minio
    from canopywatch_dev.synthetic_raw import S2L2A_BANDS, synthetic_raw

    raw = synthetic_raw(SIZE, SIZE, seed=3, nodata_fraction=0.0)
    cog = convert(raw, band_names=S2L2A_BANDS)
    with rasterio.MemoryFile(cog) as mem, mem.open() as ds:
        cog_transform = tuple(ds.transform)[:6]
    footprint = _box(0, 0, SIZE, SIZE)
    xs = [c[0] for c in footprint["coordinates"][0]]
    ys = [c[1] for c in footprint["coordinates"][0]]
    bbox = (min(xs), min(ys), max(xs), max(ys))
    base_key = "sentinel_hub/s2l2a_bands/6m2bq/{t}/bbox_test"
    s3 = minio.s3_client(settings)
    scenes = []
    for n, (scene_id, when, with_cog) in enumerate(
        (("api-scene-1", "20240302T140000Z", True), ("api-scene-2", "20240420T140000Z", False))
    ):
        raw_key = base_key.format(t=when) + "/raw.tif"
        s3.put_object(Bucket=settings.bucket, Key=raw_key, Body=raw)
        cog_key = None
        if with_cog:
            cog_key = raw_key.replace("raw.tif", "cog.tif")
            s3.put_object(Bucket=settings.bucket, Key=cog_key, Body=cog)
        scenes.append(
            (scene_id, f"req-{n}", AOI, "sentinel_hub", "s2l2a_bands", "6m2bq",
             datetime.strptime(when, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), 10.0 + n,
             "EPSG:32721", SIZE, SIZE, list(S2L2A_BANDS), settings.bucket, raw_key, "0" * 64,
             len(raw), cog_key, bool(cog_key), json.dumps(footprint))
        )  # fmt: skip
    with connect(settings) as conn:
        ensure_schema(conn)
        aois.register(conn, RegisteredAoi(AOI, "API test area", BBox(*bbox)))
        with conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                    acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                    checksum, size_bytes, cog_key, cog_valid, footprint)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))
                ON CONFLICT (scene_id) DO NOTHING
                """,
                scenes,
            )
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'alerts'"
            )
            alert_columns = {r[0] for r in cur.fetchall()}
            for alert_id, day, confirmed, confidence, status, box in ALERTS:
                values: dict[str, Any] = {
                    "alert_id": alert_id,
                    "aoi_id": AOI,
                    "alert_date": f"{day}T14:00:00Z",
                    "confirmed_date": f"{confirmed}T14:00:00Z" if confirmed else None,
                    "confidence": confidence,
                    "model_version": "harmonic-test",
                    "geohash": "6m2bq",
                    "status": status,
                    "method": "harmonic",
                    "confidence_level": "high" if confidence >= 0.8 else "low",
                }
                names = [k for k in values if k in alert_columns]
                cur.execute(
                    f"INSERT INTO alerts ({', '.join(names)}, geom, area_ha) "
                    f"SELECT {', '.join(['%s'] * len(names))}, g, ST_Area(g::geography) / 10000 "
                    "FROM (SELECT ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) AS g) q "
                    "ON CONFLICT (alert_id) DO NOTHING",
                    [values[k] for k in names] + [json.dumps(_box(*box))],
                )
        conn.commit()
        read_key, write_key = keys.new_key(), keys.new_key()
        keys.store(conn, read_key, "test reader", ("read",))
        keys.store(conn, write_key, "test writer", ("read", "write"))
    return Seeded(settings, "api-scene-1", "api-scene-2", bbox, cog_transform, read_key, write_key)


def own_schema(platform: Settings, suffix: str) -> Iterator[Settings]:
    """The session's settings in a schema of this module's own (dropped afterwards), so the
    counts asserted here never meet rows other tests of the session write."""
    from canopywatch.catalog.schema import connect, drop_schema

    settings = replace(platform, pg_schema=f"{platform.pg_schema}_{suffix}", api_key=ADMIN_KEY)
    yield settings
    with connect(platform) as conn:
        drop_schema(conn, settings.pg_schema)


def write_baseline(path: Any, patches: Sequence[tuple[int, int, int, int]]) -> Any:
    """A forest baseline raster as ``canopywatch detect`` writes it (uint8: 1 forest, 0 not,
    255 nodata; METHOD tag), on the seeded scenes' grid: forest in each (row0, row1, col0,
    col1) patch, the last 6 rows nodata."""
    import rasterio
    from rasterio.transform import from_origin

    band = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for r0, r1, c0, c1 in patches:
        band[r0:r1, c0:c1] = 1
    band[SIZE - 6 :, :] = 255
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1, "dtype": "uint8",
               "crs": "EPSG:32721", "transform": from_origin(*ORIGIN, 10, 10), "nodata": 255}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(band, 1)
        dst.update_tags(METHOD="harmonic-v1")
    return path


FOREST_PATCHES = ((0, 100, 0, 256), (150, 200, 50, 100))  # 256 ha and 25 ha


@pytest.fixture(scope="module")
def seeded(platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    folder = tmp_path_factory.mktemp("baseline")
    baseline = write_baseline(folder / "api_forest_baseline.tif", FOREST_PATCHES)
    for settings in own_schema(platform, "api"):
        yield seed_catalog(replace(settings, forest_baseline=str(baseline)))


@pytest.fixture(scope="module")
def client(seeded: Seeded) -> Iterator[TestClient]:
    from canopywatch.api.app import create_app

    with TestClient(create_app(seeded.settings)) as test_client:
        test_client.headers["X-API-Key"] = seeded.read_key
        yield test_client


def _counts(settings: Settings) -> dict[str, int]:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn, conn.cursor() as cur:
        counts = {}
        for table in ("scenes", "alerts", "aois", "api_keys"):
            cur.execute(f"SELECT count(*) FROM {table}")
            row = cur.fetchone()
            counts[table] = int(row[0]) if row else -1
        return counts


def _hectares(settings: Settings) -> dict[str, float]:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT alert_id, area_ha FROM alerts")
        return {str(r[0]): float(r[1]) for r in cur.fetchall()}


# ------------------------------------------------------------------ access
def test_reads_need_a_known_key_and_writes_a_scope(client: TestClient, seeded: Seeded) -> None:
    assert client.get("/health", headers={"X-API-Key": ""}).status_code == 200
    anonymous = client.get("/collections", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401 and "API key" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/collections", headers={"X-API-Key": "cw_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked API key"
    bearer = client.get(
        "/collections", headers={"X-API-Key": "", "Authorization": f"Bearer {seeded.read_key}"}
    )
    assert bearer.status_code == 200
    before = _counts(seeded.settings)
    # POST /keys needs the admin scope: the read and write keys get 403, the admin key 201
    for key in (seeded.read_key, seeded.write_key):
        refused = client.post("/keys", json={"name": "x"}, headers={"X-API-Key": key})
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert _counts(seeded.settings) == before
    made = client.post(
        "/keys", json={"name": "qgis", "scopes": ["read"]}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert made.status_code == 201 and made.json()["key"].startswith("cw_")
    assert client.get("/collections", headers={"X-API-Key": made.json()["key"]}).status_code == 200
    # the key is stored hashed: its digest is in api_keys, the key itself nowhere
    from canopywatch.api.keys import digest
    from canopywatch.catalog.schema import connect

    with connect(seeded.settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT key_hash, name FROM api_keys")
        stored = cur.fetchall()
    assert (digest(made.json()["key"]), "qgis") in stored
    assert all(made.json()["key"] not in str(row) for row in stored)


def test_write_scope_and_public_reads(seeded: Seeded) -> None:
    """``require_write`` (the dependency of E's write routes) and CANOPYWATCH_API_PUBLIC_READ."""
    from canopywatch.api.app import create_app
    from canopywatch.api.auth import require_write

    for public in (False, True):
        app = create_app(replace(seeded.settings, api_public_read=public))

        @app.post("/write-probe", dependencies=[Depends(require_write)])
        def probe() -> dict[str, bool]:
            return {"ok": True}

        with TestClient(app) as test_client:
            assert test_client.get("/collections").status_code == (200 if public else 401)
            assert test_client.post("/write-probe").status_code == 401
            refused = test_client.post("/write-probe", headers={"X-API-Key": seeded.read_key})
            assert refused.status_code == 403 and "'write'" in refused.json()["detail"]
            allowed = test_client.post("/write-probe", headers={"X-API-Key": seeded.write_key})
            assert allowed.status_code == 200


def test_rate_limit_per_key(seeded: Seeded) -> None:
    from canopywatch.api.app import create_app

    with TestClient(create_app(replace(seeded.settings, api_rate_limit=5))) as test_client:
        codes = [
            test_client.get("/aois", headers={"X-API-Key": seeded.read_key}).status_code
            for _ in range(7)
        ]
        # 5 a minute: the bucket refills one request every 12 s, so the 6th and 7th wait
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429], codes
        limited = test_client.get("/aois", headers={"X-API-Key": seeded.read_key})
        assert int(limited.headers["retry-after"]) >= 1
        # another key has its own bucket
        other = test_client.get("/aois", headers={"X-API-Key": seeded.write_key})
        assert other.status_code == 200


# ------------------------------------------------------------------ OGC API Features
def test_ogc_collections_items_bbox_datetime_paging(client: TestClient, seeded: Seeded) -> None:
    listed = client.get("/collections").json()
    assert {c["id"] for c in listed["collections"]} == {
        "alerts", "scenes", "aois", "forest_baseline"
    }  # fmt: skip
    first = client.get(
        "/collections/alerts/items",
        params={"bbox": ",".join(map(str, seeded.bbox)), "limit": 2, "sortby": "alert_date"},
    )
    assert first.status_code == 200
    page = first.json()
    assert page["numberMatched"] == 3 and page["numberReturned"] == 2
    assert [f["id"] for f in page["features"]] == ["api-a1", "api-a2"]
    assert page["features"][0]["geometry"]["type"] == "MultiPolygon"
    next_link = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = client.get(next_link).json()
    assert [f["id"] for f in second["features"]] == ["api-a3"]
    in_march = client.get(
        "/collections/alerts/items",
        params={"datetime": "2024-03-01T00:00:00Z/2024-03-31T23:59:59Z"},
    ).json()
    assert sorted(f["id"] for f in in_march["features"]) == ["api-a1", "api-a2"]
    elsewhere = client.get("/collections/alerts/items", params={"bbox": "10,10,11,11"}).json()
    assert elsewhere["numberReturned"] == 0
    cql = client.get(
        "/collections/alerts/items",
        params={"filter": "confidence > 0.9", "filter-lang": "cql2-text"},
    ).json()
    assert sorted(f["id"] for f in cql["features"]) == ["api-a2", "api-a3"]
    scenes = client.get("/collections/scenes/items", params={"datetime": "2024-04-01T00:00:00Z/.."})
    assert [f["id"] for f in scenes.json()["features"]] == [seeded.bare_scene_id]
    area = client.get(f"/collections/aois/items/{AOI}").json()
    assert area["id"] == AOI and area["geometry"]["type"] in {"Polygon", "MultiPolygon"}


def test_forest_baseline_collection_mirrors_the_baseline_rasters(
    client: TestClient, seeded: Seeded, platform: Settings, tmp_path: Any
) -> None:
    reply = client.get("/collections/forest_baseline/items", params={"limit": 10})
    assert reply.status_code == 200
    features = reply.json()["features"]
    assert sorted(f["properties"]["area_ha"] for f in features) == [25.0, 256.0]
    assert {f["properties"]["source"] for f in features} == {"api_forest_baseline.tif"}
    assert {f["properties"]["method"] for f in features} == {"harmonic-v1"}
    assert {f["geometry"]["type"] for f in features} == {"MultiPolygon"}
    # bbox: only the small patch (rows 150-200, cols 50-100 of the grid)
    x0, y0 = _lonlat(60, 160)
    x1, y1 = _lonlat(90, 190)
    small = client.get(
        "/collections/forest_baseline/items",
        params={"bbox": f"{min(x0, x1)},{min(y0, y1)},{max(x0, x1)},{max(y0, y1)}"},
    ).json()
    assert [f["properties"]["area_ha"] for f in small["features"]] == [25.0]
    # the table follows the files: unchanged -> untouched, changed -> reloaded, gone -> removed
    from canopywatch.api.baseline import sync_baselines
    from canopywatch.catalog.schema import connect

    for settings in own_schema(platform, "fb"):
        path = write_baseline(tmp_path / "b_forest_baseline.tif", FOREST_PATCHES)
        with connect(settings) as conn:
            assert sync_baselines(conn, [path]) == {"b_forest_baseline.tif": 2}
            assert sync_baselines(conn, [path]) == {}
            write_baseline(path, [(0, 10, 0, 10)])
            assert sync_baselines(conn, [path]) == {"b_forest_baseline.tif": 1}
            area = conn.execute("SELECT sum(area_ha) FROM forest_baseline").fetchone()
            assert area == (1.0,)
            assert sync_baselines(conn, []) == {}
            assert conn.execute("SELECT count(*) FROM forest_baseline").fetchone() == (0,)


def test_ogc_bad_input_is_4xx(client: TestClient) -> None:
    unknown = client.get("/collections/deforestation_2019/items")
    assert unknown.status_code == 404 and "deforestation_2019" in unknown.json()["detail"]
    for params in ({"bbox": "1,2,3"}, {"limit": "-1"}, {"datetime": "not-a-date"}):
        reply = client.get("/collections/alerts/items", params=params)
        assert 400 <= reply.status_code < 500, params


def test_landing_conformance_formats_openapi_and_map_files(client: TestClient) -> None:
    landing = client.get("/").json()
    assert any(link["rel"] == "data" for link in landing["links"])
    conforms = client.get("/conformance").json()["conformsTo"]
    assert any("ogcapi-features-1/1.0/conf/geojson" in c for c in conforms)
    assert any("filter" in c for c in conforms)  # CQL2
    queryables = client.get("/collections/alerts/queryables").json()
    assert {"confidence", "status", "alert_date"} <= set(queryables["properties"])
    as_csv = client.get("/collections/alerts/items", params={"f": "csv", "sortby": "alert_id"})
    assert as_csv.status_code == 200 and as_csv.text.splitlines()[1].startswith("alerts,api-a1,")
    as_html = client.get("/collections/alerts/items", params={"f": "html"})
    assert as_html.status_code == 200 and "<html" in as_html.text.lower()
    paths = client.get("/api", headers={"X-API-Key": ""}).json()["paths"]
    for path in ("/stac/search", "/tiles/alerts/{z}/{x}/{y}.pbf", "/aois/{name}/stats", "/stats"):
        assert path in paths, path
    page = client.get("/map", headers={"X-API-Key": ""})
    assert page.status_code == 200 and "/map/vendor/maplibre-gl.js" in page.text
    script = client.get("/map/vendor/maplibre-gl.js", headers={"X-API-Key": ""})
    assert script.status_code == 200 and b"maplibre" in script.content[:2000].lower()
    assert client.get("/map/static/map.js").status_code == 200
    assert client.get("/map/static/../app.py").status_code == 404
    assert client.get("/map/vendor/package.json").status_code == 404


# ------------------------------------------------------------------ vector tiles
def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_alert_vector_tiles(client: TestClient, seeded: Seeded) -> None:
    from canopywatch.catalog.schema import connect

    lon, lat = _lonlat(115, 110)  # inside api-a2
    x, y = _tile_of(lon, lat, 14)
    tile = client.get(f"/tiles/alerts/14/{x}/{y}.pbf")
    assert tile.status_code == 200
    assert tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    # decoded by PostGIS itself: the tile's features are real alert ids
    with connect(seeded.settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM alerts WHERE geom && ST_Transform(ST_TileEnvelope(14, %s, %s), 4326)",
            (x, y),
        )
        row = cur.fetchone()
    expected = int(row[0]) if row else 0
    assert expected >= 1
    assert len(re.findall(rb"api-a\d", tile.content)) == expected
    assert b"alerts" in tile.content and b"high" in tile.content
    # the date filter of the map's slider
    early = client.get(f"/tiles/alerts/14/{x}/{y}.pbf", params={"end": "2024-03-10"})
    assert b"api-a2" not in early.content
    empty = client.get("/tiles/alerts/14/0/0.pbf")
    assert empty.status_code == 200 and empty.content == b""
    assert client.get("/tiles/alerts/3/9/0.pbf").status_code == 400
    assert client.get("/tiles/alerts/30/0/0.pbf").status_code == 400


# ------------------------------------------------------------------ STAC
def test_stac_search_items_and_assets_that_open(client: TestClient, seeded: Seeded) -> None:
    import pystac

    landing = client.get("/stac").json()
    assert any(link["rel"] == "search" for link in landing["links"])
    assert client.get("/stac/collections").json()["collections"][0]["id"] == "sentinel-2-l2a"
    found = client.get(
        "/stac/search",
        params={"bbox": ",".join(map(str, seeded.bbox)), "datetime": "2024-03-01/2024-03-31"},
    ).json()
    assert [f["id"] for f in found["features"]] == [seeded.scene_id]
    item = pystac.Item.from_dict(found["features"][0])
    cog = found["features"][0]["assets"]["cog"]
    raw = found["features"][0]["assets"]["raw"]
    assert [b["name"] for b in cog["bands"]] == ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
    assert len(raw["bands"]) == 8 and raw["bands"][-1]["name"] == "dataMask"
    assert len(cog["raster:bands"]) == 7
    assert cog["raster:bands"][0]["data_type"] == "uint16"
    assert cog["raster:bands"][0]["scale"] == pytest.approx(1e-4)
    assert cog["raster:bands"][0]["nodata"] == 0
    assert "scale" not in cog["raster:bands"][6]  # SCL is a class, not a reflectance
    assert item.properties["proj:code"] == "EPSG:32721"
    assert item.properties["proj:transform"] == pytest.approx(list(seeded.cog_transform))
    assert cog["proj:shape"] == [SIZE, SIZE]
    # the hrefs open without credentials (presigned) and are the stored files
    for asset in (cog, raw):
        with urllib.request.urlopen(asset["href"], timeout=10) as reply:  # noqa: S310
            assert reply.status == 200 and reply.read(4) == b"II*\x00"
    # POST search, ids, paging with next links
    posted = client.post("/stac/search", json={"bbox": list(seeded.bbox), "limit": 1}).json()
    assert posted["numberMatched"] == 2 and len(posted["features"]) == 1
    following = next(link["href"] for link in posted["links"] if link["rel"] == "next")
    assert [f["id"] for f in client.get(following).json()["features"]] == [seeded.bare_scene_id]
    by_id = client.get(f"/stac/collections/sentinel-2-l2a/items/{seeded.bare_scene_id}").json()
    assert "cog" not in by_id["assets"]
    assert client.get("/stac/collections/nope").status_code == 404
    assert client.get("/stac/collections/sentinel-2-l2a/items/nope").status_code == 404
    for params in ({"bbox": "1,2"}, {"datetime": "2024-05-01/2024-04-01"}, {"limit": "0"}):
        assert client.get("/stac/search", params=params).status_code == 400, params


def test_stac_search_intersects_a_geometry(client: TestClient, seeded: Seeded) -> None:
    minx, miny, maxx, maxy = seeded.bbox
    w, h, d = maxx - minx, maxy - miny, 0.002  # d: ~200 m, far more than the grid's rotation
    inside = {"type": "Polygon", "coordinates": [[
        [minx + 0.2 * w, miny + 0.2 * h], [minx + 0.4 * w, miny + 0.2 * h],
        [minx + 0.3 * w, miny + 0.4 * h], [minx + 0.2 * w, miny + 0.2 * h]]]}  # fmt: skip
    both = [seeded.scene_id, seeded.bare_scene_id]
    got = client.get("/stac/search", params={"intersects": json.dumps(inside)}).json()
    assert [f["id"] for f in got["features"]] == both
    posted = client.post("/stac/search", json={"intersects": inside, "limit": 1}).json()
    assert posted["numberMatched"] == 2 and [f["id"] for f in posted["features"]] == both[:1]
    following = next(link["href"] for link in posted["links"] if link["rel"] == "next")
    assert [f["id"] for f in client.get(following).json()["features"]] == both[1:]
    # an L hugging the footprint's north-east corner from outside: its bbox overlaps the
    # scenes, the shape does not, and the shape decides
    corner = {"type": "Polygon", "coordinates": [[
        [maxx - 0.5 * w, maxy + d], [maxx + d, maxy + d], [maxx + d, maxy - 0.5 * h],
        [maxx + 2 * d, maxy - 0.5 * h], [maxx + 2 * d, maxy + 2 * d],
        [maxx - 0.5 * w, maxy + 2 * d], [maxx - 0.5 * w, maxy + d]]]}  # fmt: skip
    outside = client.post("/stac/search", json={"intersects": corner}).json()
    assert outside["numberMatched"] == 0 and outside["features"] == []
    from shapely.geometry import shape

    box = ",".join(str(v) for v in shape(corner).bounds)
    assert client.get("/stac/search", params={"bbox": box}).json()["numberMatched"] == 2
    # bad input: one clear 400 each
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    cases = [
        ({"intersects": inside, "bbox": list(seeded.bbox)}, "not both"),
        ({"intersects": bow_tie}, "not a valid geometry"),
        ({"intersects": {"type": "Feature"}}, "GeoJSON geometry"),
        ({"intersects": {"type": "Point", "coordinates": [500000, 9200000]}}, "lon/lat"),
    ]
    for body, message in cases:
        reply = client.post("/stac/search", json=body)
        assert reply.status_code == 400 and message in reply.json()["detail"], body
    assert client.get("/stac/search", params={"intersects": "{not json"}).status_code == 400


def test_cli_stac_items_have_hrefs_that_open(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``canopywatch scenes --format stac``: the same builder, presigned hrefs (no more 403)."""
    from canopywatch.cli import main

    monkeypatch.setenv("CANOPYWATCH_PG_SCHEMA", seeded.settings.pg_schema)
    monkeypatch.setenv("CANOPYWATCH_BUCKET", seeded.settings.bucket)
    bbox = ",".join(map(str, seeded.bbox))
    argv = ["scenes", "--bbox", bbox, "--start", "2024-03-01", "--end", "2024-03-31"]
    assert main([*argv, "--format", "stac"]) == 0
    items = json.loads(capsys.readouterr().out)["features"]
    assert [i["id"] for i in items] == [seeded.scene_id]
    assert len(items[0]["assets"]["cog"]["bands"]) == 7
    for asset in items[0]["assets"].values():
        with urllib.request.urlopen(asset["href"], timeout=10) as reply:  # noqa: S310
            assert reply.status == 200 and reply.read(4) == b"II*\x00"


# ------------------------------------------------------------------ COG tiles
def test_cog_tiles_true_colour_and_ndvi(client: TestClient, seeded: Seeded) -> None:
    from PIL import Image

    lon, lat = _lonlat(128, 128)
    x, y = _tile_of(lon, lat, 14)
    images = {}
    for style in ("truecolor", "ndvi"):
        reply = client.get(f"/cog/tiles/{seeded.scene_id}/14/{x}/{y}.png", params={"style": style})
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
        image = np.asarray(Image.open(io.BytesIO(reply.content)).convert("RGBA"))
        assert image.shape == (256, 256, 4)
        assert (image[..., 3] > 0).mean() > 0.2  # the scene covers part of the tile
        images[style] = image
    opaque = images["truecolor"][..., 3] > 0
    assert not np.array_equal(images["truecolor"][opaque], images["ndvi"][opaque])
    assert client.get(f"/cog/tiles/{seeded.scene_id}/14/0/0.png").status_code == 404
    assert client.get("/cog/tiles/nope/14/0/0.png").status_code == 404
    no_cog = client.get(f"/cog/tiles/{seeded.bare_scene_id}/14/{x}/{y}.png")
    assert no_cog.status_code == 404 and "no COG" in no_cog.json()["detail"]
    assert client.get(f"/cog/tiles/{seeded.scene_id}/14/{x}/{y}.png?style=x").status_code == 422


# ------------------------------------------------------------------ statistics
def test_area_statistics_json_and_csv(client: TestClient, seeded: Seeded) -> None:
    hectares = _hectares(seeded.settings)
    weekly = client.get(f"/aois/{AOI}/stats", params={"period": "week"}).json()
    assert weekly["aoi"] == AOI and weekly["period"] == "week"
    by_week = {(r["period_start"], r["status"]): r["hectares"] for r in weekly["rows"]}
    assert by_week == {
        ("2024-02-26", "low"): pytest.approx(hectares["api-a1"], abs=1e-3),
        ("2024-03-18", "high"): pytest.approx(hectares["api-a2"], abs=1e-3),
        ("2024-04-08", "high"): pytest.approx(hectares["api-a3"], abs=1e-3),
    }
    monthly = client.get(f"/aois/{AOI}/stats", params={"period": "month"}).json()
    assert monthly["hectares_by_status"]["high"] == pytest.approx(
        hectares["api-a2"] + hectares["api-a3"], abs=1e-3
    )
    text = client.get(f"/aois/{AOI}/stats", params={"period": "month", "format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    lines = text.text.strip().splitlines()
    assert lines[0] == "period_start,status,alerts,hectares"
    assert lines[1].startswith("2024-03-01,high,1,") and lines[2].startswith("2024-03-01,low,1,")
    unknown = client.get("/aois/no-such-area/stats")
    assert unknown.status_code == 404 and "no-such-area" in unknown.json()["detail"]
    assert client.get(f"/aois/{AOI}/stats", params={"period": "day"}).status_code == 422
    areas = client.get("/aois").json()
    assert [f["id"] for f in areas["features"]] == [AOI]
    assert areas["features"][0]["properties"]["alerts"] == 3


def test_posted_geometry_statistics(client: TestClient, seeded: Seeded) -> None:
    hectares = _hectares(seeded.settings)
    around_a2 = _box(90, 90, 140, 125)
    reply = client.post("/stats", params={"period": "month"}, json=around_a2)
    assert reply.status_code == 200
    rows = reply.json()["rows"]
    assert len(rows) == 1 and rows[0]["status"] == "high"
    assert rows[0]["hectares"] == pytest.approx(hectares["api-a2"], rel=1e-3)
    # half of api-a1: the hectares of the part inside
    half = client.post("/stats", json={"type": "Feature", "geometry": _box(50, 30, 70, 70)})
    assert half.json()["rows"][0]["hectares"] == pytest.approx(hectares["api-a1"] / 2, rel=0.02)


def test_bad_input_changes_nothing(client: TestClient, seeded: Seeded) -> None:
    before = _counts(seeded.settings)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    invalid = client.post("/stats", json=bowtie)
    assert invalid.status_code == 400 and "invalid geometry" in invalid.json()["detail"]
    assert "Self-intersection" in invalid.json()["detail"]
    point = client.post("/stats", json={"type": "Point", "coordinates": [0, 0]})
    assert point.status_code == 400
    garbage = client.post(
        "/stats", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422
    outside = {"type": "Polygon", "coordinates": [[[0, 0], [500, 0], [500, 1], [0, 0]]]}
    assert client.post("/stats", json=outside).status_code == 400
    big = b'{"type": "Polygon", "coordinates": [' + b" " * (50 * 1024 * 1024) + b"]}"
    too_large = client.post("/stats", content=big, headers={"content-type": "application/json"})
    assert too_large.status_code == 413 and "MB" in too_large.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b" " * (1024 * 1024)

    streamed = client.post("/keys", content=chunks(), headers={"X-API-Key": ADMIN_KEY})
    assert streamed.status_code == 413
    assert (
        client.post("/keys", json={"name": ""}, headers={"X-API-Key": ADMIN_KEY}).status_code == 400
    )
    assert _counts(seeded.settings) == before


def test_alert_details_name_their_scenes(client: TestClient, seeded: Seeded) -> None:
    detail = client.get("/alerts/api-a2").json()
    properties = detail["properties"]
    assert properties["model_version"] == "harmonic-test" and properties["status"] == "high"
    assert properties["scene_ids"] == []  # no scene on 2024-03-20 or 2024-04-02
    seen = client.get("/alerts/api-a1").json()["properties"]
    assert seen["scene_ids"] == [seeded.scene_id]  # acquired on its alert day, 2024-03-02
    assert seen["alert_date"].startswith("2024-03-02") and seen["confirmed_date"] is None
    assert client.get("/alerts/nope").status_code == 404


# ------------------------------------------------------------------ the platform service
def test_platform_api_service_answers(platform: Settings) -> None:
    """``python -m canopywatch_dev.platform up api`` serves on 127.0.0.1:18600 with the admin
    key from secrets/api_key (or CANOPYWATCH_API_KEY)."""
    from canopywatch_dev.platform import api, stack

    base = Settings.from_env()
    stack.up(base, ["api"])
    assert Settings().api_port == 18600  # the issue's port, unless configured otherwise
    assert api.base_url(base) == f"http://127.0.0.1:{base.api_port}"
    health = api.base_url(base) + "/health"
    with urllib.request.urlopen(health, timeout=10) as reply:  # noqa: S310
        assert json.loads(reply.read()) == {"status": "ok"}
    request = urllib.request.Request(  # noqa: S310
        api.base_url(base) + "/collections", headers={"X-API-Key": api.admin_key(base)}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        ids = {c["id"] for c in json.loads(reply.read())["collections"]}
    assert {"alerts", "scenes", "aois"} <= ids
    refused = urllib.request.Request(api.base_url(base) + "/collections")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(refused, timeout=10)  # noqa: S310
    assert caught.value.code == 401
    key_file = base.home / "secrets" / "api_key"
    if not base.api_key:
        assert key_file.stat().st_mode & 0o777 == 0o600
    log_text = (base.log_dir / "api.log").read_text(encoding="utf-8")
    assert api.admin_key(base) not in log_text
