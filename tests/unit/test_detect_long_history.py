"""The harmonic detector on a long single-index history (a Landsat-like NDVI stack at 30 m):
isolated unflagged looks do not cost a forest pixel its monitoring, a clearing inside the
history does, a loss in the monitoring year is alerted as whole 30 m pixels, and the
no-data blobs of an index stack (its cloud mask) grow by their soft edges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import active_alerts, mmu_pixels, polygonize
from canopywatch.detect.detector import build_detector
from canopywatch.detect.evaluate import rasterize_alerts
from canopywatch.detect.harmonic import HarmonicParams, run_harmonic
from canopywatch.detect.index_stack import IndexStackSource, cloud_edges, dated_files
from canopywatch.detect.observations import ObservationStack

SIZE = 20
TRANSFORM = Affine(30, 0, 600000, 0, -30, 9000000)
CRS_UTM = CRS.from_epsg(32722)
FIRST = dt.date(2015, 1, 1)
MONITOR = dt.date(2021, 1, 1)
OLD_CLEARING = (slice(2, 6), slice(2, 6))  # cleared in 2018, pasture since
NEW_CLEARING = (slice(12, 15), slice(12, 15))  # cleared in June 2021
SINGLE_PIXEL = (14, 3)  # a one-pixel (0.09 ha) loss in August 2021


def landsat_like_ndvi() -> ObservationStack:
    rng = np.random.default_rng(3)
    days = np.arange(days_since_epoch(FIRST), days_since_epoch(dt.date(2021, 12, 31)), 8)
    t = days.astype(np.float64)
    season = 0.04 * np.cos(2 * np.pi * (t - 200) / 365.25)
    ndvi = 0.84 + season[:, None, None] + 0.015 * rng.standard_normal((days.size, SIZE, SIZE))
    old = days >= days_since_epoch(dt.date(2018, 5, 1))
    ndvi[np.ix_(old, range(2, 6), range(2, 6))] = 0.45
    new = days >= days_since_epoch(dt.date(2021, 6, 10))
    ndvi[np.ix_(new, range(12, 15), range(12, 15))] = 0.3
    single = days >= days_since_epoch(dt.date(2021, 8, 3))
    ndvi[single, SINGLE_PIXEL[0], SINGLE_PIXEL[1]] = 0.3
    clear = rng.random(ndvi.shape) > 0.45  # cloudy: about 55 % of the looks are clear
    # isolated unflagged looks (thin cloud, shadow) on every forest pixel: about 1 % of
    # the looks, at most one in any ten dates (so never two consecutive clear looks)
    speck = np.zeros(ndvi.shape, dtype=bool)
    speck[::10] = rng.random(speck[::10].shape) < 0.1
    ndvi[speck & clear] -= 0.35
    ndvi = np.where(clear, ndvi, np.nan).astype(np.float32)
    return ObservationStack(
        days=days.astype(np.int64),
        bands={"ndvi": ndvi},
        clear=clear,
        transform=TRANSFORM,
        crs=CRS_UTM,
    )


def test_a_long_history_keeps_forest_with_isolated_outliers_and_drops_an_old_clearing() -> None:
    stack = landsat_like_ndvi()
    params = HarmonicParams().for_index("ndvi").with_periods(None, days_since_epoch(MONITOR))
    state = run_harmonic(stack, params)
    monitored = state.monitored.reshape(SIZE, SIZE)
    forest = np.ones((SIZE, SIZE), dtype=bool)
    forest[OLD_CLEARING] = False
    # 6 years x ~25 clear looks: the old rule (at most one break-like look) dropped most
    # forest pixels; isolated ones are now allowed at a share of the clear looks
    assert monitored[forest].mean() >= 0.97
    assert not monitored[OLD_CLEARING].any()


def test_loss_in_the_monitoring_year_is_alerted_as_whole_30m_pixels() -> None:
    stack = landsat_like_ndvi()
    detector = build_detector("harmonic", index="ndvi", monitor_start_day=days_since_epoch(MONITOR))
    pixel_alerts = detector.detect(stack)
    alerts = active_alerts(
        polygonize(pixel_alerts, stack.transform, stack.crs, aoi="t", model_version="x")
    )
    burned = rasterize_alerts(alerts, stack.shape, stack.transform) > 0
    truth = np.zeros((SIZE, SIZE), dtype=bool)
    truth[NEW_CLEARING] = True
    truth[SINGLE_PIXEL] = True
    assert burned[truth].all()  # the 0.09 ha pixel meets the 0.1 ha unit at 30 m
    assert (burned & ~truth).sum() <= 2
    assert not burned[OLD_CLEARING].any()  # lost before the monitoring start
    dates = alerts.geometry.size and {str(d)[:7] for d in alerts["alert_date"]}
    assert dates <= {"2021-06", "2021-07", "2021-08", "2021-09"}


def test_mmu_rounds_to_the_nearest_pixel() -> None:
    assert mmu_pixels(0.1, 900.0) == 1  # 30 m
    assert mmu_pixels(0.1, 100.0) == 10  # 10 m
    assert mmu_pixels(0.5, 400.0) == 12  # 20 m: 12.5 -> 12


def test_cloud_edges_grow_blobs_not_specks() -> None:
    missing = np.zeros((12, 12), dtype=bool)
    missing[3:7, 3:7] = True  # a cloud
    missing[10, 1] = True  # a QA speck
    edges = cloud_edges(missing, 1)
    assert edges.sum() == 6 * 6 - 4 * 4
    assert not edges[9:12, 0:3].any()
    assert not (edges & missing).any()


def test_index_stack_masks_the_edge_of_its_clouds(tmp_path: Path) -> None:
    for offset in range(0, 80, 16):
        ndvi = np.full((1, SIZE, SIZE), 8500, dtype=np.int16)
        if offset == 32:
            ndvi[0, 5:10, 5:10] = -9999  # cloud masked by the provider
        date = FIRST + dt.timedelta(days=offset)
        with rasterio.open(
            tmp_path / f"NDVI_{date:%Y-%m-%d}.tif",
            "w",
            driver="GTiff",
            width=SIZE,
            height=SIZE,
            count=1,
            dtype="int16",
            crs=CRS_UTM,
            transform=TRANSFORM,
            nodata=-9999,
        ) as dst:
            dst.write(ndvi)
    stack = IndexStackSource(dated_files(tmp_path, "NDVI_%Y-%m-%d"), "ndvi").read()
    cloudy = stack.clear[2]
    assert not cloudy[4:11, 4:11].any()  # the cloud and its 30 m edge
    assert cloudy.sum() == SIZE * SIZE - 7 * 7
    unbuffered = IndexStackSource(
        dated_files(tmp_path, "NDVI_%Y-%m-%d"), "ndvi", dilation_px=0
    ).read()
    assert unbuffered.clear[2].sum() == SIZE * SIZE - 5 * 5


SNOW = (slice(6, 9), slice(14, 18))  # forest under snow on the last three dates


def test_an_ndvi_stack_takes_near_zero_looks_for_snow_not_for_a_clearing(tmp_path: Path) -> None:
    """An NDVI-only stack has no NDSI or NBR to tell snow from loss: a look below the land
    floor (bare soil and char stay above ~0.1; snow, water, unmasked cloud near 0) is no
    observation, so a late snowfall is not alerted while a clearing to soil still is."""
    stack = landsat_like_ndvi()
    ndvi = stack.bands["ndvi"].copy()
    ndvi[-3:, SNOW[0], SNOW[1]] = 0.01
    for number, day in enumerate(stack.days):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
        coded = np.where(np.isnan(ndvi[number]), -9999, np.round(ndvi[number] * 10000))
        with rasterio.open(
            tmp_path / f"NDVI_{date:%Y-%m-%d}.tif", "w", driver="GTiff", width=SIZE,
            height=SIZE, count=1, dtype="int16", crs=CRS_UTM, transform=TRANSFORM,
            nodata=-9999,
        ) as dst:  # fmt: skip
            dst.write(coded.astype(np.int16)[None])
    read = IndexStackSource(dated_files(tmp_path, "NDVI_%Y-%m-%d"), "ndvi", dilation_px=0).read()
    assert not read.clear[-3:, SNOW[0], SNOW[1]].any()
    detector = build_detector("harmonic", index="ndvi", monitor_start_day=days_since_epoch(MONITOR))
    alerts = active_alerts(
        polygonize(detector.detect(read), read.transform, read.crs, aoi="t", model_version="x")
    )
    burned = rasterize_alerts(alerts, read.shape, read.transform) > 0
    assert not burned[SNOW].any()
    assert burned[NEW_CLEARING].all()
