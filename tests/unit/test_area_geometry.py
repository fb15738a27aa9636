"""Area outlines: bbox or GeoJSON, the crs member honoured or refused, polygons kept."""

from __future__ import annotations

import json

import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, shape

from canopywatch.area_geometry import parse_area
from canopywatch.download import Aoi, make_aoi, plan_tiles
from canopywatch.geo import BBoxError
from canopywatch.settings import Settings
from canopywatch.storage.aois import RegisteredAoi, load_file, merge

SETTINGS = Settings.from_env({})
# a triangle near Novo Progresso, lon/lat
TRIANGLE = [[-55.40, -7.10], [-55.30, -7.10], [-55.40, -7.00], [-55.40, -7.10]]


def polygon(ring, **extra):
    return {"type": "Polygon", "coordinates": [ring], **extra}


def test_a_bbox_is_its_rectangle():
    area = parse_area("-55.4,-7.1,-55.3,-7.0")
    assert area.is_box and area.bbox.as_tuple() == (-55.4, -7.1, -55.3, -7.0)
    assert make_aoi([-55.4, -7.1, -55.3, -7.0], "a", SETTINGS).outline is None


def test_a_polygon_is_kept_as_a_polygon():
    aoi = make_aoi(json.dumps(polygon(TRIANGLE)), "Triangle 1", SETTINGS)
    assert aoi.aoi_id == "triangle-1"
    assert aoi.bbox.as_tuple() == (-55.4, -7.1, -55.3, -7.0)
    assert aoi.outline["type"] == "MultiPolygon"
    assert shape(aoi.outline).area == pytest.approx(Polygon(TRIANGLE).area)
    # it survives the XCom round trip
    assert Aoi.from_dict(json.loads(json.dumps(aoi.to_dict()))) == aoi


def test_a_feature_collection_is_merged():
    other = [[-55.2, -7.1], [-55.1, -7.1], [-55.1, -7.0], [-55.2, -7.1]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": polygon(TRIANGLE)},
            {"type": "Feature", "properties": {}, "geometry": polygon(other)},
        ],
    }
    area = parse_area(collection)
    assert len(area.geometry.geoms) == 2 and area.bbox.maxx == -55.1


def test_the_crs_member_is_honoured():
    to_utm = Transformer.from_crs(4326, 32721, always_xy=True)
    utm_ring = [list(to_utm.transform(lon, lat)) for lon, lat in TRIANGLE]
    named = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32721"}}
    area = parse_area(polygon(utm_ring, crs=named))
    assert area.bbox.minx == pytest.approx(-55.40, abs=1e-6)
    assert area.bbox.maxy == pytest.approx(-7.00, abs=1e-6)
    assert area.geometry.area == pytest.approx(Polygon(TRIANGLE).area, rel=1e-4)
    crs84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    assert parse_area(polygon(TRIANGLE, crs=crs84)).bbox.minx == -55.4


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            polygon(TRIANGLE, crs={"type": "link", "properties": {"href": "http://x"}}),
            "only a named crs",
        ),
        (
            polygon(TRIANGLE, crs={"type": "name", "properties": {"name": "EPSG:999999"}}),
            "not a known coordinate reference system",
        ),
        ({"type": "Point", "coordinates": [-55.4, -7.1]}, "must be a Polygon or MultiPolygon"),
        (
            polygon([[-55.4, -7.1], [-55.3, -7.0], [-55.3, -7.1], [-55.4, -7.0], [-55.4, -7.1]]),
            "not valid: Self-intersection",
        ),
        # UTM metres given without their crs: refused, not read as degrees
        (
            polygon([[500000, 9200000], [510000, 9200000], [500000, 9210000], [500000, 9200000]]),
            "longitude",
        ),
        ({"type": "FeatureCollection", "features": []}, "has no features"),
    ],
)
def test_unusable_areas_are_refused_with_the_reason(document, reason):
    with pytest.raises(BBoxError, match=reason):
        parse_area(document)


def test_request_tiles_outside_the_polygon_are_not_planned():
    # an L along the south and west edges of a 0.4 x 0.4 degree box: the NE tile is outside
    ell = [[-55.80, -7.40], [-55.40, -7.40], [-55.40, -7.38], [-55.78, -7.38], [-55.78, -7.00],
           [-55.80, -7.00], [-55.80, -7.40]]  # fmt: skip
    box_tiles = plan_tiles(make_aoi([-55.8, -7.4, -55.4, -7.0], "box", SETTINGS), SETTINGS)
    ell_tiles = plan_tiles(make_aoi(polygon(ell), "ell", SETTINGS), SETTINGS)
    assert len(box_tiles) == 4
    assert {t.tile_id for t in ell_tiles} == {t.tile_id for t in box_tiles} - {"r0c1"}


def test_the_yaml_file_and_the_registry_merge_registry_first(tmp_path):
    path = tmp_path / "aois.yaml"
    path.write_text(
        "aois:\n"
        "  - aoi_id: from-file\n"
        "    bbox: [-55.4, -7.1, -55.35, -7.05]\n"
        "  - aoi_id: both\n"
        "    name: file version\n"
        "    bbox: [-55.4, -7.1, -55.35, -7.05]\n"
        "  - aoi_id: stopped\n"
        "    bbox: [-55.4, -7.1, -55.35, -7.05]\n"
        "  - aoi_id: shaped\n"
        f"    geometry: {json.dumps(polygon(TRIANGLE))}\n"
        "    max_cloud: 30\n"
    )
    from_file = load_file(path)
    assert [a.aoi_id for a in from_file] == ["from-file", "both", "stopped", "shaped"]
    assert from_file[3].outline is not None and from_file[3].max_cloud == 30
    box = parse_area("-55.3,-7.0,-55.2,-6.9").bbox
    registered = [
        RegisteredAoi("both", "registry version", box),
        RegisteredAoi("stopped", "stopped", box, active=False),
        RegisteredAoi("only-db", "only-db", box),
    ]
    merged = merge(from_file, registered)
    assert [a.aoi_id for a in merged] == ["both", "from-file", "only-db", "shaped"]
    assert merged[0].name == "registry version" and merged[0].bbox == box


def test_a_yaml_entry_without_an_area_is_refused(tmp_path):
    path = tmp_path / "aois.yaml"
    path.write_text("aois:\n  - aoi_id: x\n")
    with pytest.raises(BBoxError, match="needs a bbox or a geometry"):
        load_file(path)


def test_alerts_are_clipped_to_the_outline():
    import geopandas as gpd
    from shapely.geometry import box

    from canopywatch.area_geometry import clip_alerts

    to_utm = Transformer.from_crs(4326, 32721, always_xy=True)
    x0, y0 = to_utm.transform(-55.40, -7.10)
    # outline: the western half of a 1 km square; alerts: inside, across the edge, outside
    west = [to_utm.transform(-55.40, -7.10), (x0 + 500, y0), (x0 + 500, y0 + 1000),
            (x0, y0 + 1000), (x0, y0)]  # fmt: skip
    back = Transformer.from_crs(32721, 4326, always_xy=True)
    outline = parse_area(polygon([list(back.transform(x, y)) for x, y in west]))
    frame = gpd.GeoDataFrame(
        {
            "alert_id": ["in", "across", "out"],
            "area_ha": [1.0, 4.0, 1.0],
            "geometry": [
                box(x0 + 100, y0 + 100, x0 + 200, y0 + 200),  # 1 ha, inside
                box(x0 + 400, y0 + 400, x0 + 600, y0 + 600),  # 4 ha, half inside
                box(x0 + 700, y0 + 700, x0 + 800, y0 + 800),  # outside
            ],
        },
        crs=32721,
    )
    clipped = clip_alerts(frame, outline)
    assert list(clipped["alert_id"]) == ["in", "across"]
    assert clipped["area_ha"].tolist() == pytest.approx([1.0, 2.0], abs=0.01)
    assert clipped.geometry.iloc[1].bounds[2] == pytest.approx(x0 + 500, abs=0.5)
    # a bbox area clips nothing
    assert clip_alerts(frame, parse_area("-56,-8,-55,-7")) is frame
