"""Alert polygons: minimum mapping unit, stable ids, dates, export, quicklook."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio.crs
from affine import Affine

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import AlertPolicy, polygonize, write_alerts, write_quicklook
from canopywatch.detect.baseline import AlertTracker, PixelAlerts

CRS = rasterio.crs.CRS.from_epsg(32721)
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 8800000.0)
DAY = days_since_epoch(dt.date(2024, 3, 1))


def pixel_alerts(shape: tuple[int, int] = (40, 40)) -> PixelAlerts:
    first = np.full(shape, -1, dtype=np.int64)
    confirmed = np.full(shape, -1, dtype=np.int64)
    first[5:10, 5:10] = DAY  # 25 px = 0.25 ha, confirmed
    confirmed[5:10, 5:10] = DAY + 5
    first[20:23, 20:23] = DAY + 10  # 9 px = 0.09 ha: under the MMU
    first[30:34, 30:33] = DAY + 20  # 12 px, low confidence
    first[30, 30] = DAY - 30  # one early pixel must not back-date the alert
    score = np.where(first >= 0, 0.7, 0.0).astype(np.float32)
    return PixelAlerts(first, confirmed, score, np.ones(shape, dtype=bool))


def test_mmu_dates_and_confidence() -> None:
    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    assert len(alerts) == 2
    assert alerts["area_ha"].min() >= 0.1
    high = alerts[alerts["confidence_level"] == "high"].iloc[0]
    assert high["alert_date"] == dt.date(2024, 3, 1).isoformat()
    assert high["confirmed_date"] == dt.date(2024, 3, 6).isoformat()
    assert high["confidence"] >= 0.8
    low = alerts[alerts["confidence_level"] == "low"].iloc[0]
    assert pd.isna(low["confirmed_date"])
    assert low["alert_date"] == dt.date(2024, 3, 21).isoformat()
    assert set(alerts["aoi"]) == {"a"} and set(alerts["model_version"]) == {"m"}
    assert alerts.geometry.area.sum() == pytest.approx(alerts["area_ha"].sum() * 10000.0)
    big = polygonize(
        pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m", policy=AlertPolicy(mmu_ha=0.2)
    )
    assert len(big) == 1


def test_ids_are_stable_across_reruns_and_growth() -> None:
    first = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    again = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    assert first["id"].tolist() == again["id"].tolist()
    assert first["id"].is_unique
    grown = pixel_alerts()
    grown.first_day[10:12, 5:10] = DAY + 15  # the clearing grows the next week
    later = polygonize(grown, TRANSFORM, CRS, aoi="a", model_version="m")
    assert set(first["id"]) == set(later["id"])
    other_aoi = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="b", model_version="m")
    assert not set(first["id"]) & set(other_aoi["id"])


def test_tracker_withdraws_unconfirmed_and_keeps_confirmed() -> None:
    tracker = AlertTracker(3, confirm_count=2, withdraw_count=1)
    seen = np.ones(3, dtype=bool)
    score = np.full(3, 0.9, dtype=np.float32)
    tracker.update(1, seen, np.array([True, True, False]), score)
    tracker.update(2, seen, np.array([True, False, False]), score)
    tracker.update(3, seen, np.array([False, False, False]), score)
    assert tracker.first_day.tolist() == [1, -1, -1]
    assert tracker.confirmed_day.tolist() == [2, -1, -1]
    assert tracker.withdrawn.tolist() == [0, 1, 0]


def test_exports(tmp_path: Path) -> None:
    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    geojson = write_alerts(alerts, tmp_path / "alerts.geojson")
    gpkg = write_alerts(alerts, tmp_path / "alerts.gpkg")
    back = gpd.read_file(geojson)
    assert back.crs.to_epsg() == 4326 and len(back) == 2
    assert gpd.read_file(gpkg).crs.to_epsg() == 32721
    rgb = np.full((3, 40, 40), 0.05, dtype=np.float32)
    png = write_quicklook(rgb, rgb, alerts, TRANSFORM, tmp_path / "q.png", title="t")
    assert png.read_bytes()[:4] == b"\x89PNG"
