from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from canopywatch.airflow.weekly import _readable, alert_messages, scene_keys_by_tile

RAW = "sentinel_hub/s2l2a_bands/6y8xg/{}/bbox_-55.400000_-7.100000_-55.350000_-7.050000/raw.tif"


def test_scenes_are_grouped_by_tile_oldest_first_and_only_band_stacks_count():
    rows = [
        {"raw_key": RAW.format("20240305T141200Z")},
        {"raw_key": RAW.format("20240301T141200Z")},
        {"raw_key": RAW.replace("s2l2a_bands", "true_color").format("20240301T141200Z")},
        {"raw_key": RAW.replace("-55.400000", "-55.450000").format("20240301T141200Z")},
    ]
    tiles = scene_keys_by_tile(rows)
    assert len(tiles) == 2
    first = tiles["bbox_-55.400000_-7.100000_-55.350000_-7.050000"]
    assert [when for when, _ in first] == [
        datetime(2024, 3, 1, 14, 12, tzinfo=UTC),
        datetime(2024, 3, 5, 14, 12, tzinfo=UTC),
    ]


def test_cut_geotiffs_are_not_readable(tmp_path):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=8, dtype="uint16",
                       crs="EPSG:32721", transform=from_origin(0, 0, 10, 10)) as dst:  # fmt: skip
        dst.write(np.random.default_rng(0).integers(0, 9000, (8, 300, 300), dtype=np.uint16))
    assert _readable(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    assert not _readable(cut)


def test_alert_messages_carry_wgs84_geometry_and_dates():
    frame = gpd.GeoDataFrame(
        {
            "alert_id": ["a1"], "aoi_id": ["demo"],
            "alert_date": [datetime(2024, 3, 5, tzinfo=UTC)],
            "confirmed_date": [datetime(2024, 3, 15, tzinfo=UTC)],
            "confidence": [0.91], "confidence_level": ["high"], "status": ["high"],
            "area_ha": [1.25], "method": ["xgboost"], "model_version": ["xgb-1"],
        },
        geometry=[box(455000, 9215000, 455100, 9215100)],
        crs="EPSG:32721",
    )  # fmt: skip
    (message,) = alert_messages(frame, "demo")
    assert message.alert_id == "a1" and message.confidence == 0.91
    assert message.alert_date == datetime(2024, 3, 5, tzinfo=UTC)
    assert message.confirmed_date == datetime(2024, 3, 15, tzinfo=UTC)
    assert (message.status, message.method) == ("high", "xgboost")
    assert message.geometry["type"] == "MultiPolygon"
    lon, lat = message.geometry["coordinates"][0][0][0]
    assert -58 < lon < -57 and -8 < lat < -7  # UTM 21S easting 455 km


class _BucketOfBytes:
    """The two members of ``ObjectStore`` that ``fetch_layers`` uses, over a dict; counts gets."""

    bucket = "canopywatch"

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.gets: list[str] = []

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return self.objects[key]


def test_weekly_layers_come_from_the_bucket_or_a_path(tmp_path):
    import pytest
    from rasterio.crs import CRS

    from canopywatch.airflow.payloads import DetectionOptions
    from canopywatch.airflow.weekly import detector_for, fetch_layers, with_layers
    from canopywatch.detect.detector import HarmonicDetector
    from canopywatch.geo import Grid
    from canopywatch.settings import Settings

    grid = Grid(CRS.from_epsg(32721), from_origin(500000, 8800000, 10, 10), 20, 20)
    next_tile = Grid(CRS.from_epsg(32721), from_origin(500000, 8800100, 10, 10), 20, 20)
    planted = tmp_path / "sdpt.geojson"
    gpd.GeoDataFrame(geometry=[box(500000, 8799900, 500100, 8800000)], crs=grid.crs).to_file(
        planted
    )
    store = _BucketOfBytes({"layers/sdpt.geojson": planted.read_bytes()})
    detector = detector_for(Settings.from_env())
    assert fetch_layers(DetectionOptions(), store, tmp_path) == {}
    assert with_layers(detector, {}, grid) is detector
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    layers = fetch_layers(
        DetectionOptions(plantations="s3://canopywatch/layers/sdpt.geojson"), store, scratch
    )
    # one download per area, read onto every tile's grid
    from_bucket = with_layers(detector, layers, grid)
    on_next_tile = with_layers(detector, layers, next_tile)
    assert store.gets == ["layers/sdpt.geojson"]
    assert isinstance(from_bucket, HarmonicDetector) and from_bucket.forest_mask is None
    assert int(from_bucket.plantations.mask.sum()) == 100  # the 10 x 10 px polygon
    assert from_bucket.plantations.mask[:10, :10].all()
    assert int(on_next_tile.plantations.mask.sum()) == 100  # 100 m north: rows 10-19
    assert on_next_tile.plantations.mask[10:, :10].all()
    from_path = with_layers(
        detector, fetch_layers(DetectionOptions(forest_mask=str(planted)), store, scratch), grid
    )
    assert int(from_path.forest_mask.mask.sum()) == 100 and from_path.plantations is None
    assert len(store.gets) == 1  # a path is read where it is
    with pytest.raises(ValueError, match="layers are read from s3://canopywatch/"):
        fetch_layers(DetectionOptions(plantations="s3://other/x.gpkg"), store, scratch)
    with pytest.raises(ValueError, match=r"forest_mask /nope\.gpkg: no such file"):
        fetch_layers(DetectionOptions(forest_mask="/nope.gpkg"), store, scratch)
    baseline = detector_for(Settings.from_env(), "baseline")
    with pytest.raises(ValueError, match="need method harmonic"):
        with_layers(baseline, layers, grid)
