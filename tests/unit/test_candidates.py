"""The candidate scorer: relative polygon features, confidence bands, the shipped model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio.crs
from affine import Affine

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import polygonize
from canopywatch.detect.baseline import STATUS_HIGH, STATUS_LOW, STATUS_WITHDRAWN, PixelAlerts
from canopywatch.detect.candidates import (
    CANDIDATE_FEATURES,
    MODEL_DIR,
    load_scorer,
    polygon_features,
    rescale,
    score_candidates,
)
from canopywatch.detect.model import save_model, train_model
from canopywatch.detect.observations import S2_BANDS, ArraySource, ObservationStack

CRS = rasterio.crs.CRS.from_epsg(32633)
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5000000.0)
START = days_since_epoch(dt.date(2024, 1, 1))
FOREST = {"B02": 0.03, "B03": 0.05, "B04": 0.03, "B08": 0.35, "B11": 0.15, "B12": 0.07}
SOIL = {"B02": 0.09, "B03": 0.12, "B04": 0.15, "B08": 0.22, "B11": 0.32, "B12": 0.26}
CUT_INDEX = 8  # the clearing shows from the 9th date on


def stack_with_clearing(size: int = 24, dates: int = 14, seed: int = 0) -> ObservationStack:
    """Forest with a 4 x 4 px clearing (rows/cols 8..11) from date CUT_INDEX on."""
    rng = np.random.default_rng(seed)
    days = START + 10 * np.arange(dates, dtype=np.int64)
    cleared = np.zeros((dates, size, size), dtype=bool)
    cleared[CUT_INDEX:, 8:12, 8:12] = True
    bands = {}
    for band in S2_BANDS:
        noise = rng.normal(0, 0.004, (dates, size, size))
        bands[band] = np.where(cleared, SOIL[band], FOREST[band]) + noise
        bands[band] = bands[band].astype(np.float32)
    clear = np.ones((dates, size, size), dtype=bool)
    return ObservationStack(days, bands, clear, TRANSFORM, CRS)


def pixel_alerts_for(stack: ObservationStack, status: int = STATUS_HIGH) -> PixelAlerts:
    first = np.full(stack.shape, -1, dtype=np.int64)
    first[8:12, 8:12] = stack.days[CUT_INDEX]
    confirmed = np.where(first >= 0, stack.days[CUT_INDEX + 1], -1).astype(np.int64)
    score = np.where(first >= 0, 0.9, 0.0).astype(np.float32)
    codes = np.where(first >= 0, status, 0).astype(np.int8)
    return PixelAlerts(first, confirmed, score, np.ones(stack.shape, dtype=bool), codes)


def features_of(stack: ObservationStack, pixel_alerts: PixelAlerts) -> dict[str, float]:
    inside = pixel_alerts.first_day >= 0
    values = polygon_features(
        stack,
        inside,
        inside,
        pixel_alerts.monitored,
        pixel_alerts.first_day,
        int(stack.days[CUT_INDEX]),
        0.9,
    )
    return dict(zip(CANDIDATE_FEATURES, values.tolist(), strict=True))


def test_features_measure_the_clearing_against_its_ring() -> None:
    stack = stack_with_clearing()
    features = features_of(stack, pixel_alerts_for(stack))
    forest_ndvi = (0.35 - 0.03) / (0.35 + 0.03)
    soil_ndvi = (0.22 - 0.15) / (0.22 + 0.15)
    assert features["ndvi_drop"] == pytest.approx(soil_ndvi - forest_ndvi, abs=0.02)
    assert features["ndvi_drop_first"] == pytest.approx(soil_ndvi - forest_ndvi, abs=0.03)
    forest_nbr, soil_nbr = (0.35 - 0.07) / (0.35 + 0.07), (0.22 - 0.26) / (0.22 + 0.26)
    assert features["nbr_drop"] == pytest.approx(soil_nbr - forest_nbr, abs=0.02)
    assert features["ndvi_recov"] == pytest.approx(0.0, abs=0.02)  # no regrowth
    assert (features["n_pre"], features["n_post"]) == (CUT_INDEX, 14 - CUT_INDEX)
    assert features["date_iqr"] == 0.0 and features["area_px"] == pytest.approx(np.log(16))
    assert 0.0 < features["homog"] < 3.0  # same noise inside and around
    assert features["ndvi_pre_sd"] < 0.01


def test_a_change_the_whole_area_shares_is_not_a_drop() -> None:
    """Haze or a season over the polygon and its ring alike cancels out."""
    stack = stack_with_clearing()
    for band in S2_BANDS:
        stack.bands[band][CUT_INDEX:] += np.float32(0.05)  # everything brighter from then on
    pixel_alerts = pixel_alerts_for(stack)
    for band in S2_BANDS:  # and no clearing at all
        stack.bands[band][:, 8:12, 8:12] = stack.bands[band][:, 0:4, 0:4]
    features = features_of(stack, pixel_alerts)
    assert abs(features["ndvi_drop"]) < 0.02 and abs(features["nbr_drop"]) < 0.02


def test_too_few_clear_looks_give_missing_features_not_zeros() -> None:
    stack = stack_with_clearing()
    stack.clear[: CUT_INDEX - 1] = False  # one clear look before the alert
    features = features_of(stack, pixel_alerts_for(stack))
    assert np.isnan(features["ndvi_drop"]) and np.isnan(features["homog"])
    assert features["n_pre"] == 1.0


def test_rescale_keeps_each_status_in_its_band_and_the_ranking() -> None:
    probability = np.array([0.0, 0.3, 1.0, 0.0, 0.6, 1.0], dtype=np.float32)
    high = np.array([True, True, True, False, False, False])
    scaled = rescale(probability, high)
    assert (scaled[:3] >= 0.8).all() and (scaled[:3] <= 0.99).all()
    assert (scaled[3:] >= 0.01).all() and (scaled[3:] <= 0.79).all()
    assert np.all(np.diff(scaled[:3]) > 0) and np.all(np.diff(scaled[3:]) > 0)


def test_the_shipped_model_loads_with_this_releases_features() -> None:
    scorer = load_scorer()
    assert scorer.version.startswith("candidates-")
    assert tuple(scorer.features) == CANDIDATE_FEATURES
    assert (MODEL_DIR / "model.json").stat().st_size > 10_000


def test_a_model_with_other_features_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = train_model(rng.normal(size=(40, 2)).astype(np.float32), rng.integers(0, 2, 40),
                        ["a", "b"], rounds=2)  # fmt: skip
    save_model(model, tmp_path)
    with pytest.raises(ValueError, match="retrain"):
        load_scorer(tmp_path)


def test_score_candidates_sets_active_confidence_and_names_the_scorer() -> None:
    stack = stack_with_clearing()
    pixel_alerts = pixel_alerts_for(stack)
    pixel_alerts.status[12:16, 16:20] = STATUS_WITHDRAWN
    pixel_alerts.first_day[12:16, 16:20] = stack.days[3]
    alerts = polygonize(pixel_alerts, TRANSFORM, CRS, aoi="a", model_version="harmonic-v1")
    assert sorted(alerts["status"]) == ["high", "withdrawn"]
    scorer = load_scorer()
    scored = score_candidates(ArraySource(stack), alerts, pixel_alerts, scorer)
    assert scored is not None
    assert list(scored["status"]) == list(alerts["status"])
    high = scored[scored["status"] == "high"].iloc[0]
    assert 0.8 <= high["confidence"] <= 0.99 and high["confidence_level"] == "high"
    withdrawn = scored[scored["status"] == "withdrawn"].iloc[0]
    assert withdrawn["confidence"] == alerts[alerts["status"] == "withdrawn"].iloc[0]["confidence"]
    assert set(scored["model_version"]) == {f"harmonic-v1+{scorer.version}"}


def test_a_low_alert_stays_low_whatever_the_model_says() -> None:
    stack = stack_with_clearing()
    pixel_alerts = pixel_alerts_for(stack, STATUS_LOW)
    pixel_alerts.confirmed_day[:] = -1
    alerts = polygonize(pixel_alerts, TRANSFORM, CRS, aoi="a", model_version="harmonic-v1")
    scored = score_candidates(ArraySource(stack), alerts, pixel_alerts, load_scorer())
    assert scored is not None and list(scored["status"]) == ["low"]
    assert 0.01 <= scored.iloc[0]["confidence"] <= 0.79


def test_an_index_stack_keeps_its_statistical_confidence() -> None:
    stack = stack_with_clearing()
    ndvi = (stack.bands["B08"] - stack.bands["B04"]) / (stack.bands["B08"] + stack.bands["B04"])
    index_stack = ObservationStack(stack.days, {"ndvi": ndvi}, stack.clear, TRANSFORM, CRS)
    pixel_alerts = pixel_alerts_for(stack)
    alerts = polygonize(pixel_alerts, TRANSFORM, CRS, aoi="a", model_version="harmonic-v1")
    assert score_candidates(ArraySource(index_stack), alerts, pixel_alerts, load_scorer()) is None
