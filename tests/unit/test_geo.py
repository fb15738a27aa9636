import itertools
import json

import pytest

from canopywatch.geo import (
    BBox,
    BBoxError,
    bbox_geohash,
    check_area,
    geohash,
    parse_bbox,
    split_into_tiles,
    utm_epsg,
)


def test_parse_bbox_accepts_lists_strings_json_and_geojson():
    expected = BBox(-55.2, -10.1, -55.0, -10.0)
    assert parse_bbox([-55.2, -10.1, -55.0, -10.0]) == expected
    assert parse_bbox("-55.2,-10.1,-55.0,-10.0") == expected
    assert parse_bbox("[-55.2, -10.1, -55.0, -10.0]") == expected
    polygon = {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[-55.2, -10.1], [-55.0, -10.1], [-55.0, -10.0], [-55.2, -10.0], [-55.2, -10.1]]
            ],
        },
    }
    assert parse_bbox(polygon) == expected
    assert parse_bbox(json.dumps({"type": "FeatureCollection", "features": [polygon]})) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([-200, 0, 1, 1], "longitude"),
        ([0, -95, 1, 1], "latitude"),
        ([1, 0, 0, 1], "minx"),
        ([0, 1, 1, 0], "miny"),
        ([0, 0, 1], "exactly 4"),
        (["a", 0, 1, 1], "numbers"),
        ("", "empty"),
        ("[1, 2", "JSON"),
        ({"type": "Feature", "geometry": None}, "no geometry"),
        ({"type": "Circle"}, "unsupported"),
        ([0, 0, float("nan"), 1], "finite"),
    ],
)
def test_parse_bbox_rejects_bad_input_with_a_clear_message(value, message):
    with pytest.raises(BBoxError, match=message):
        parse_bbox(value)


def test_area_and_limit():
    box = BBox(0.0, 0.0, 0.1, 0.1)  # ~11.1 km x 11.1 km at the equator
    assert 120 < box.area_km2() < 125
    assert check_area(box, 200) == pytest.approx(box.area_km2())
    with pytest.raises(BBoxError, match="more than the limit"):
        check_area(box, 100)


def test_geohash_matches_reference_values():
    # reference values from the original geohash.org examples
    assert geohash(42.6, -5.6, 5) == "ezs42"
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"
    assert bbox_geohash(BBox(-5.7, 42.5, -5.5, 42.7), 5) == "ezs42"


def test_utm_zone_north_south_and_exceptions():
    assert utm_epsg(-55.1, -10.0) == 32721
    assert utm_epsg(14.5, 46.0) == 32633
    assert utm_epsg(5.0, 60.0) == 32632  # Norway exception
    assert utm_epsg(10.0, 78.0) == 32633  # Svalbard exception


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        # south-west Norway, 56-64 N and 3-12 E: 32V (zone 31 would be the 6-degree rule)
        (3.0, 56.0, 32632),
        (5.32, 60.39, 32632),  # Bergen
        (11.99, 63.99, 32632),
        (2.99, 60.0, 32631),  # west of 3 E: the ordinary zone
        (5.0, 64.0, 32631),  # north of 64 N: the ordinary zone again
        (5.0, 55.99, 32631),
        # Svalbard, 72-84 N: 31X, 33X, 35X, 37X; no 32X, 34X, 36X
        (8.99, 78.0, 32631),
        (9.0, 78.0, 32633),
        (15.6, 78.2, 32633),  # Longyearbyen (zone 33 by the 6-degree rule too)
        (20.99, 80.0, 32633),  # 6-degree rule: 34
        (21.0, 80.0, 32635),
        (32.99, 72.0, 32635),  # 6-degree rule: 36
        (33.0, 72.0, 32637),
        (41.99, 84.0, 32637),
        (42.0, 80.0, 32638),  # east of 42 E: the ordinary zone
        (10.0, 71.99, 32632),  # south of 72 N: the ordinary zone
        # the antimeridian and the south
        (-180.0, 1.0, 32601),
        (180.0, -1.0, 32760),
        (-55.1, -10.0, 32721),
    ],
)
def test_utm_zone_exceptions_of_norway_and_svalbard(lon, lat, epsg):
    assert utm_epsg(lon, lat) == epsg


def test_utm_zone_agrees_with_sentinelhub_everywhere():
    from sentinelhub import get_utm_crs

    points = [
        (lon + 0.5, lat + 0.5)
        for lon in range(-180, 180, 1)
        for lat in (-60, -10, 0, 45, 55, 56, 59, 63, 64, 71, 72, 75, 79, 83)
    ]
    disagree = [(x, y) for x, y in points if utm_epsg(x, y) != get_utm_crs(x, y).epsg]
    assert len(points) == 5040 and disagree == []


def test_request_tiles_in_norway_and_svalbard_use_the_exception_zones():
    (bergen,) = split_into_tiles(BBox(5.30, 60.38, 5.34, 60.40))
    assert bergen.epsg == 32632
    (svalbard,) = split_into_tiles(BBox(20.90, 79.00, 20.98, 79.02))  # centre 20.94 E: 33X
    assert svalbard.epsg == 32633
    assert 0 < svalbard.width <= 2500 and 0 < svalbard.height <= 2500


def test_small_area_is_one_tile_on_the_10m_grid():
    tiles = split_into_tiles(BBox(-55.10, -10.05, -55.05, -10.00))
    assert len(tiles) == 1
    tile = tiles[0]
    assert tile.epsg == 32721
    assert tile.width == round((tile.maxx - tile.minx) / 10)
    assert tile.height == round((tile.maxy - tile.miny) / 10)
    assert tile.minx % 10 == 0 and tile.maxy % 10 == 0
    assert tile.bbox.minx <= -55.10 + 1e-3 and tile.bbox.maxy >= -10.00 - 1e-3


def test_large_area_is_split_into_tiles_of_at_most_2500_px():
    box = BBox(-55.5, -10.5, -55.0, -10.0)  # ~55 km x 55 km -> 5500 px a side
    tiles = split_into_tiles(box, 10.0, 2500)
    assert len(tiles) == 9
    assert all(t.width <= 2500 and t.height <= 2500 for t in tiles)
    # tiles cover the area without gaps or overlaps
    xs = sorted({(t.minx, t.maxx) for t in tiles})
    assert all(a[1] == b[0] for a, b in itertools.pairwise(xs))
    total = sum(t.width * t.height for t in tiles)
    assert total == round((max(t.maxx for t in tiles) - min(t.minx for t in tiles)) / 10) * round(
        (max(t.maxy for t in tiles) - min(t.miny for t in tiles)) / 10
    )
    assert len({t.tile_id for t in tiles}) == 9
