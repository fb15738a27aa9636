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


def scene(
    shifted: dict[int, tuple[float, float]], n_dates: int = 58, tiles: int = 1
) -> ObservationStack:
    """The 64 px scene, or ``tiles`` x ``tiles`` of its pattern as one larger scene."""
    rng = np.random.default_rng(3)
    field = np.zeros((SIZE, SIZE), dtype=bool)
    field[8:22, 10:30] = True
    field[40:58, 36:60] = True
    field[:, 30:32] = True  # a road
    deciduous = np.zeros((SIZE, SIZE), dtype=bool)
    deciduous[36:60, 4:24] = True
    field, deciduous = (np.tile(mask, (tiles, tiles)) for mask in (field, deciduous))
    side = SIZE * tiles
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
    clear = np.ones((n_dates, side, side), dtype=bool)
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
    from canopywatch.detect.coregister import estimate_area_shifts
    from canopywatch.detect.observations import ArraySource

    area = estimate_area_shifts(ArraySource(index), CoregistrationParams())
    assert area.chip is None and area.estimated.all() and area.n_shifted == 0


def test_the_edge_composite_needs_a_date() -> None:
    with pytest.raises(ValueError, match="composite_dates"):
        CoregistrationParams(composite_dates=0)


def counted_estimates(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The shapes of the stacks whose shifts get estimated, from here on."""
    import canopywatch.detect.coregister as coregister_module

    shapes: list[tuple[int, int]] = []
    estimate = coregister_module.estimate_shifts

    def counted(
        stack: ObservationStack, params: CoregistrationParams | None = None,
        dates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        shapes.append(stack.shape)
        return estimate(stack, params, dates)

    monkeypatch.setattr(coregister_module, "estimate_shifts", counted)
    return shapes


def alerted_px(stack: ObservationStack, detector: HarmonicDetector) -> int:
    from canopywatch.detect.detector import detect_area
    from canopywatch.detect.observations import ArraySource

    result = detect_area(ArraySource(stack), detector, aoi="a", window_size=64)
    return int(result.pixel_alerts.alerted.sum())


def test_an_area_is_estimated_once_and_every_window_moved_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over nine windows of a 192 px area the last date's 0.7 px shift is estimated once,
    on one 128 px square, and each window is resampled by it."""
    stack = scene({57: (0.7, 0.7)}, tiles=3)
    assert alerted_px(stack, HarmonicDetector(coregistration=None)) >= 50
    estimated = counted_estimates(monkeypatch)
    assert alerted_px(stack, HarmonicDetector()) == 0
    assert estimated == [(128, 128)]  # once; no window again


def test_the_square_with_the_strongest_edges_is_chosen() -> None:
    from canopywatch.detect.coregister import edge_strength, estimate_area_shifts
    from canopywatch.detect.observations import ArraySource

    stack = scene({57: (0.7, 0.7)}, tiles=3)
    for name, cube in stack.bands.items():  # the left two thirds: uniform forest
        cube[:, :, :128] = np.where(stack.clear[:, :, :128], FOREST[name], np.nan)
    area = estimate_area_shifts(ArraySource(stack), CoregistrationParams())
    assert area.chip[1] == 64  # the squares start at columns 0, 32 and 64
    assert area.shifts[57] == pytest.approx((0.7, 0.7), abs=0.15)
    uniform = np.full((64, 64), 0.3, dtype=np.float32)
    road = uniform.copy()
    road[:, 30:32] = 0.2  # one direction only
    assert edge_strength(uniform, CoregistrationParams()) < 1e-9
    assert edge_strength(road, CoregistrationParams()) < 1e-3 * edge_strength(
        scene({}).bands["B08"][0], CoregistrationParams()
    )


def test_a_date_the_area_cannot_see_is_estimated_by_each_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = scene({57: (0.7, 0.7)}, tiles=3)
    stack.clear[57, :, 30:] = False  # every candidate square under cloud that date
    for cube in stack.bands.values():
        cube[57][~stack.clear[57]] = np.nan
    assert alerted_px(stack, HarmonicDetector(coregistration=None)) >= 20
    estimated = counted_estimates(monkeypatch)
    assert alerted_px(stack, HarmonicDetector()) == 0
    assert estimated[0] == (128, 128) and len(estimated) == 1 + 9  # the area, then each window


def test_area_shifts_are_looked_up_by_day() -> None:
    from canopywatch.detect.coregister import AreaShifts

    area = AreaShifts(
        np.array([10, 20, 30]),
        np.array([[0, 0], [0.5, -0.3], [0, 0]], np.float32),
        np.array([True, True, False]),
        (0, 0),
    )
    assert area.n_shifted == 1
    shifts, estimated = area.on(np.array([5, 20, 30, 40]))
    np.testing.assert_allclose(shifts, [[0, 0], [0.5, -0.3], [0, 0], [0, 0]], atol=1e-6)
    assert estimated.tolist() == [False, True, False, False]
