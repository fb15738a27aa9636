"""User reference labels aligned to a stack grid, as ``ReferenceData``.

* Dated polygons (PRODES/DETER style): any vector file geopandas reads, any CRS, a date
  column (``view_date``, ``date``, ``image_date``, ... or named); where polygons overlap
  the earliest date wins. Each polygon is one reference event.
* A loss-year raster (Hansen Global Forest Change style): value v>0 = loss in year
  ``year_base + v`` (2000 + v by default), any CRS, warped to the grid with nearest
  neighbour; a loss year is dated 1 January of that year (the earliest it can be). Events
  are the 8-connected patches of one year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy import ndimage

from canopywatch.dates import days_since_epoch
from canopywatch.detect.evaluate import ReferenceData, ReferenceEvent
from canopywatch.detect.observations import read_aligned
from canopywatch.geo import Grid

DATE_COLUMNS: tuple[str, ...] = ("view_date", "date", "image_date", "loss_date", "alert_date")


def _date_column(frame: gpd.GeoDataFrame, name: str | None) -> str:
    if name is not None:
        if name not in frame.columns:
            raise ValueError(f"labels have no column {name!r}; columns: {', '.join(frame.columns)}")
        return name
    for candidate in DATE_COLUMNS:
        if candidate in frame.columns:
            return candidate
    raise ValueError(f"labels need a date column (one of {', '.join(DATE_COLUMNS)})")


def reference_from_polygons(
    labels: gpd.GeoDataFrame | Path,
    grid: Grid,
    *,
    date_column: str | None = None,
    kind_column: str | None = None,
) -> ReferenceData:
    frame = gpd.read_file(labels) if isinstance(labels, Path) else labels
    if frame.crs is None:
        raise ValueError("labels have no CRS")
    column = _date_column(frame, date_column)
    frame = frame.to_crs(grid.crs)
    dates = pd.to_datetime(frame[column]).dt.date
    clearing = np.full(grid.shape, -1, dtype=np.int64)
    raster = np.zeros(grid.shape, dtype=np.int32)
    events: list[ReferenceEvent] = []
    order = np.argsort(np.asarray([days_since_epoch(d) for d in dates]), kind="stable")[::-1]
    # later dates first, earlier ones overwrite: the earliest date wins
    for position in order:
        geometry = frame.geometry.iloc[position]
        if geometry is None or geometry.is_empty:
            continue
        mask = rasterio.features.geometry_mask(
            [geometry], out_shape=grid.shape, transform=grid.transform, invert=True
        )
        if not mask.any():
            continue
        day = days_since_epoch(dates.iloc[position])
        number = int(position) + 1
        clearing[mask] = day
        raster[mask] = number
        kind = str(frame[kind_column].iloc[position]) if kind_column else "clearing"
        events.append(ReferenceEvent(number, day, kind))
    events.sort(key=lambda event: event.number)
    return ReferenceData(clearing, raster, tuple(events), grid.transform)


def reference_from_loss_year(
    path: Path, grid: Grid, *, year_base: int = 2000, years: Sequence[int] | None = None
) -> ReferenceData:
    data, nodata = read_aligned(
        path, grid, Window(0, 0, grid.width, grid.height), [1], Resampling.nearest
    )
    loss = data[0].astype(np.int64)
    if nodata is not None:
        loss[data[0] == nodata] = 0
    clearing = np.full(grid.shape, -1, dtype=np.int64)
    raster = np.zeros(grid.shape, dtype=np.int32)
    events: list[ReferenceEvent] = []
    for value in np.unique(loss[loss > 0]):
        year = year_base + int(value)
        if years is not None and year not in years:
            continue
        day = days_since_epoch(dt.date(year, 1, 1))
        patches, count = ndimage.label(loss == value, structure=np.ones((3, 3), dtype=bool))
        clearing[patches > 0] = day
        for patch in range(1, count + 1):
            number = len(events) + 1
            raster[patches == patch] = number
            events.append(ReferenceEvent(number, day, "loss_year"))
    return ReferenceData(clearing, raster, tuple(events), grid.transform)
