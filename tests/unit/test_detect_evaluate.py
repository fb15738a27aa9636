"""Evaluation: event metrics, pixel metrics and Olofsson et al. (2014) estimates."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.crs
from affine import Affine

from canopywatch.detect.alerts import polygonize
from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.evaluate import (
    ReferenceData,
    ReferenceEvent,
    evaluate_alerts,
    olofsson_estimate,
)

TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 8800000.0)


def test_olofsson_perfect_map() -> None:
    truth = np.zeros(10000, dtype=bool)
    truth[:500] = True
    estimate = olofsson_estimate(truth, truth, (100, 400), 0.01, np.random.default_rng(0))
    assert estimate["users_accuracy"] == pytest.approx(1.0)
    assert estimate["producers_accuracy"] == pytest.approx(1.0)
    assert estimate["estimated_deforestation_ha"] == pytest.approx(5.0)
    assert estimate["estimated_deforestation_ci95_ha"] == pytest.approx(0.0)


def test_olofsson_corrects_omission() -> None:
    truth = np.zeros(10000, dtype=bool)
    truth[:1000] = True
    mapped = np.zeros(10000, dtype=bool)
    mapped[:500] = True
    estimate = olofsson_estimate(mapped, truth, (200, 2000), 0.01, np.random.default_rng(1))
    assert estimate["estimated_deforestation_ha"] == pytest.approx(10.0, rel=0.35)
    assert estimate["producers_accuracy"] < 0.8
    assert estimate["estimated_deforestation_ci95_ha"] > 0


def test_event_and_pixel_metrics() -> None:
    shape = (40, 40)
    clearing = np.full(shape, -1, dtype=np.int64)
    events = np.zeros(shape, dtype=np.int32)
    clearing[5:10, 5:10] = 100
    events[5:10, 5:10] = 1
    clearing[20:30, 20:30] = 100
    events[20:30, 20:30] = 2
    reference = ReferenceData(
        clearing, events, (ReferenceEvent(1, 100), ReferenceEvent(2, 100)), TRANSFORM
    )
    first = np.full(shape, -1, dtype=np.int64)
    first[5:10, 5:10] = 105
    first[35:39, 35:39] = 110  # a false alert
    pixel_alerts = PixelAlerts(
        first, first.copy(), np.full(shape, 0.9, np.float32), np.ones(shape, bool)
    )
    alerts = polygonize(
        pixel_alerts, TRANSFORM, rasterio.crs.CRS.from_epsg(32721), aoi="a", model_version="m"
    )
    evaluation = evaluate_alerts(alerts, reference, as_of_day=200)
    scores = evaluation.events[">=0.1ha"]
    assert (scores.n_alerts, scores.n_true_alerts, scores.n_events, scores.n_detected) == (
        2,
        1,
        2,
        1,
    )
    assert evaluation.latency_days == [5.0]
    assert evaluation.events[">=0.5ha"].n_events == 1
    # pixels: 25 cleared and alerted, 16 alerted only, 100 cleared only -> 2*25 / (2*25 + 16 + 100)
    assert evaluation.pixel_f1 == pytest.approx(50 / 166)
