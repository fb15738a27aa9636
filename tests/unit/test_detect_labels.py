"""User labels in another CRS align to the stack grid."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.crs
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from canopywatch.dates import days_since_epoch
from canopywatch.detect.labels import reference_from_loss_year, reference_from_polygons
from canopywatch.geo import Grid

GRID = Grid(
    rasterio.crs.CRS.from_epsg(32721), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 8800000.0), 50, 50
)


def test_polygons_in_lonlat_align_and_earliest_date_wins() -> None:
    to_lonlat = Transformer.from_crs(32721, 4326, always_xy=True)
    # pixels rows 10..19, cols 5..14 in UTM, as a lon/lat polygon
    west, north = to_lonlat.transform(500050.0, 8799900.0)
    east, south = to_lonlat.transform(500150.0, 8799800.0)
    frame = gpd.GeoDataFrame(
        {"view_date": ["2024-02-01", "2024-01-01"]},
        geometry=[box(west, south, east, north), box(west, south, east, north).buffer(-1e-9)],
        crs=4326,
    )
    reference = reference_from_polygons(frame, GRID)
    cleared = reference.clearing_day >= 0
    rows, cols = np.nonzero(cleared)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 5, 14)
    assert cleared.sum() == 100
    assert reference.clearing_day[15, 10] == days_since_epoch(dt.date(2024, 1, 1))
    assert len(reference.events) == 2


def test_loss_year_raster_in_another_crs(tmp_path: Path) -> None:
    # a 0.00025 degree lon/lat raster, loss in 2023 over the UTM pixels rows 20..29, cols 20..29
    to_lonlat = Transformer.from_crs(32721, 4326, always_xy=True)
    west, north = to_lonlat.transform(499900.0, 8800100.0)
    step = 0.00002
    transform = Affine(step, 0, west, 0, -step, north)
    size = 400
    loss = np.zeros((size, size), dtype=np.uint8)
    to_utm = Transformer.from_crs(4326, 32721, always_xy=True)
    rows, cols = np.mgrid[0:size, 0:size]
    lon, lat = transform * (cols + 0.5, rows + 0.5)
    x, y = to_utm.transform(lon, lat)
    inside = (x >= 500200) & (x < 500300) & (y <= 8799800) & (y > 8799700)
    loss[inside] = 23
    path = tmp_path / "lossyear.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=transform,
        nodata=255,
    ) as dst:
        dst.write(loss, 1)
    reference = reference_from_loss_year(path, GRID)
    cleared = reference.clearing_day >= 0
    assert cleared[20:30, 20:30].mean() > 0.95
    assert cleared.sum() <= 110
    assert set(np.unique(reference.clearing_day[cleared])) == {
        days_since_epoch(dt.date(2023, 1, 1))
    }
    assert len(reference.events) == 1
