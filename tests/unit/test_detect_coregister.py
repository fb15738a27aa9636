"""Per-date co-registration on tiny generated scenes with known shifts.

The scene is drawn here: forest with fields and a road cut into it (sharp edges, as at
10 m), sensor noise, a few dates moved by a known sub-pixel shift (bilinear, as a
misregistered product is resampled), one date whose deciduous patch is in leaf-off (a
change that is not a shift)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from canopywatch.dates import days_since_epoch
from canopywatch.detect.coregister import CoregistrationParams, coregister
from canopywatch.detect.detector import HarmonicDetector
from canopywatch.detect.observations import S2_BANDS, ObservationStack

SIZE = 64
FOREST = {"B02": 0.025, "B03": 0.045, "B04": 0.025, "B08": 0.33, "B11": 0.15, "B12": 0.06}
FIELD = {"B02": 0.07, "B03": 0.09, "B04": 0.12, "B08": 0.22, "B11": 0.30, "B12": 0.25}
SHIFTED = {30: (0.6, -0.4), 40: (-0.3, 0.8), 57: (0.7, 0.7)}  # date -> (dy, dx) px
LEAF_OFF_DATE = 20


def scene(shifted: dict[int, tuple[float, float]], n_dates: int = 58) -> ObservationStack:
    rng = np.random.default_rng(3)
    field = np.zeros((SIZE, SIZE), dtype=bool)
    field[8:22, 10:30] = True
    field[40:58, 36:60] = True
    field[:, 30:32] = True  # a road
    deciduous = np.zeros((SIZE, SIZE), dtype=bool)
    deciduous[36:60, 4:24] = True
    days = days_since_epoch(dt.date(2023, 1, 1)) + 10 * np.arange(n_dates)
    bands = {}
    for band in S2_BANDS:
        surface = np.where(field, FIELD[band], FOREST[band]).astype(np.float32)
        cube = np.repeat(surface[None], n_dates, axis=0)
        if band == "B08":
            cube[LEAF_OFF_DATE][deciduous] *= 0.75
        for position, shift in shifted.items():
            cube[position] = ndimage.shift(cube[position], shift, order=1, mode="nearest")
        noise = rng.normal(0.0, 0.004, cube.shape).astype(np.float32)
        bands[band] = (cube + noise).astype(np.float32)
    clear = np.ones((n_dates, SIZE, SIZE), dtype=bool)
    clear[5, :, :40] = False  # a cloud over part of one date
    for cube in bands.values():
        cube[~clear] = np.nan
    transform = Affine(10, 0, 500000, 0, -10, 8800000)
    return ObservationStack(days.astype(np.int64), bands, clear, transform, CRS.from_epsg(32721))


def test_shifted_dates_are_found_and_resampled_back_and_others_left_as_read() -> None:
    stack = scene(SHIFTED)
    out, shifts = coregister(stack)
    for position, (dy, dx) in SHIFTED.items():
        assert shifts[position] == pytest.approx((dy, dx), abs=0.15)
    others = [t for t in range(stack.n_dates) if t not in SHIFTED]
    assert not shifts[others].any()  # the leaf-off date and the cloudy one included
    np.testing.assert_array_equal(out.bands["B08"][others], stack.bands["B08"][others])
    # edge pixels the resampling cannot make pure again are no observation that date; the
    # rest of the date is kept and matches the unshifted scene
    truth = scene({})
    kept = out.clear[30]
    assert 0.8 < kept.mean() < 1.0
    edge_error = np.abs(stack.bands["B08"][30] - truth.bands["B08"][30])[~kept].mean()
    error = np.abs(out.bands["B08"][30] - truth.bands["B08"][30])[kept]
    assert float(np.percentile(error, 99)) < 0.02 < edge_error


def test_a_shifted_last_date_raises_no_alerts_along_every_edge() -> None:
    """A whole-scene 0.7 px shift on the last date mixes forest-edge pixels with the fields
    and the road: read as is, the edges break; co-registered, nothing is alerted."""
    stack = scene({57: (0.7, 0.7)})
    as_read = HarmonicDetector(coregistration=None).detect(stack).alerted
    assert int(as_read.sum()) >= 50
    assert int(HarmonicDetector().detect(stack).alerted.sum()) == 0


def test_an_index_stack_is_left_as_read() -> None:
    stack = scene(SHIFTED)
    ndvi = (stack.bands["B08"] - stack.bands["B04"]) / (stack.bands["B08"] + stack.bands["B04"])
    index = ObservationStack(stack.days, {"ndvi": ndvi}, stack.clear, stack.transform, stack.crs)
    out, shifts = coregister(index, CoregistrationParams())
    assert out is index and not shifts.any()


def test_an_area_is_estimated_once_and_every_window_moved_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over four windows the last date's 0.7 px shift is estimated once, on the area's
    centre, and each window is resampled by it: no edge of any window is alerted."""
    import canopywatch.detect.coregister as coregister_module
    from canopywatch.detect.detector import detect_area
    from canopywatch.detect.observations import ArraySource

    estimated: list[tuple[int, int]] = []
    estimate = coregister_module.estimate_shifts

    def counted(stack: ObservationStack, params: CoregistrationParams | None = None) -> np.ndarray:
        estimated.append(stack.shape)
        return estimate(stack, params)

    monkeypatch.setattr(coregister_module, "estimate_shifts", counted)
    stack = scene({57: (0.7, 0.7)})
    as_read = detect_area(ArraySource(stack), HarmonicDetector(coregistration=None), aoi="a",
                          window_size=32)  # fmt: skip
    assert int(as_read.pixel_alerts.alerted.sum()) >= 50 and not estimated
    result = detect_area(ArraySource(stack), HarmonicDetector(), aoi="a", window_size=32)
    assert estimated == [(SIZE, SIZE)]  # once, on the area (smaller than estimation_px)
    assert int(result.pixel_alerts.alerted.sum()) == 0


def test_area_shifts_are_looked_up_by_day() -> None:
    from canopywatch.detect.coregister import AreaShifts

    area = AreaShifts(np.array([10, 20, 30]), np.array([[0, 0], [0.5, -0.3], [0, 0]], np.float32))
    assert area.n_shifted == 1
    np.testing.assert_allclose(
        area.on(np.array([5, 20, 30, 40])), [[0, 0], [0.5, -0.3], [0, 0], [0, 0]], atol=1e-6
    )
