"""Single-index stacks: nodata, sparse irregular dates, date patterns; S2 scene folders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from canopywatch.detect.baseline import BaselineParams, detect_baseline
from canopywatch.detect.index_stack import (
    IndexStackSource,
    dated_files,
    parse_date,
    scene_folder_source,
)
from canopywatch.detect.observations import RAW_BAND_ORDER

TRANSFORM = Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 5000000.0)


def write_tif(path: Path, data: np.ndarray, nodata: float | None) -> None:
    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bands.shape[2],
        height=bands.shape[1],
        count=bands.shape[0],
        dtype=bands.dtype,
        crs="EPSG:32633",
        transform=TRANSFORM,
        nodata=nodata,
    ) as dst:
        dst.write(bands)


def test_parse_date_patterns() -> None:
    assert parse_date("LC08_NDVI_2021-03-04.tif", "NDVI_%Y-%m-%d") == dt.date(2021, 3, 4)
    assert parse_date("MOD13Q1.A2021065.tif", r"A(\d{7})") == dt.date(2021, 3, 6)
    assert parse_date("x_20210304_y.tif", r"(\d{8})") == dt.date(2021, 3, 4)
    with pytest.raises(ValueError):
        parse_date("nodate.tif", r"(\d{8})")


def test_index_stack_with_nodata_and_irregular_dates(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    start = dt.date(2021, 1, 1)
    offsets = np.cumsum(rng.integers(5, 40, size=30))  # sparse, irregular
    clearing_day = 400
    for offset in offsets:
        ndvi = (0.85 + 0.02 * rng.standard_normal((30, 30))).astype(np.float32)
        if offset >= clearing_day:
            ndvi[10:20, 10:20] = 0.25
        coded = np.round(ndvi * 10000).astype(np.int16)
        gaps = rng.random((30, 30)) < 0.3  # many gaps
        coded[gaps] = -3000
        date = start + dt.timedelta(days=int(offset))
        write_tif(tmp_path / f"NDVI_{date:%Y-%m-%d}.tif", coded, -3000)
    source = IndexStackSource(dated_files(tmp_path, "NDVI_%Y-%m-%d"), "ndvi")
    stack = source.read()
    assert stack.n_dates == len(set(offsets.tolist()))
    assert not np.isnan(stack.bands["ndvi"][stack.clear]).any()
    assert np.isnan(stack.bands["ndvi"][~stack.clear]).all()
    assert 0.6 < stack.clear.mean() < 0.8
    assert stack.bands["ndvi"][stack.clear].max() < 1.0  # int16 x 10000 scaled back
    result = detect_baseline(stack, BaselineParams().for_index("ndvi"))
    inside = result.alerted[10:20, 10:20]
    assert inside.mean() > 0.9
    outside = result.alerted.copy()
    outside[10:20, 10:20] = False
    assert outside.sum() <= 3
    # the first acquisition on or after the clearing, as a day number of the stack
    days = sorted(set(offsets.tolist()))
    after = [d for d in days if d >= clearing_day]
    first_clearing = int(stack.days[0]) + after[0] - days[0]
    # each alerted pixel is dated at its own first clear view of the clearing (gaps delay it)
    cleared = stack.clear[:, 10:20, 10:20] & (stack.days >= first_clearing)[:, None, None]
    first_view = np.asarray(stack.days)[np.argmax(cleared, axis=0)]
    assert (result.first_day[10:20, 10:20][inside] == first_view[inside]).all()


def test_scene_folder_multiband_with_band_order(tmp_path: Path) -> None:
    forest = np.array([200, 400, 220, 3000, 1450, 650], dtype=np.uint16)
    for number in range(6):
        data = np.zeros((8, 12, 12), dtype=np.uint16)
        data[:6] = forest[:, None, None]
        data[6] = 4  # SCL vegetation
        data[7] = 1  # dataMask
        data[6, 0, 0] = 9  # a cloud
        write_tif(tmp_path / f"scene_2024010{number + 1}.tif", data[::-1].copy(), None)
    order = list(reversed(RAW_BAND_ORDER))
    source = scene_folder_source(tmp_path, band_order=order)
    stack = source.read()
    assert stack.n_dates == 6
    assert stack.bands["B08"][stack.clear] == pytest.approx(0.3)
    assert not stack.clear[:, 0, 0].any() and not stack.clear[:, 2, 2].any()
    assert stack.clear[:, 5, 5].all()
