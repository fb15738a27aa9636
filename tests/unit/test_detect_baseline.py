"""The statistical baseline on small simulated areas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from canopywatch.detect.alerts import polygonize
from canopywatch.detect.baseline import BaselineParams, detect_baseline, robust_location_scale
from canopywatch.detect.evaluate import evaluate_alerts
from canopywatch.detect.observations import MaskingConfig, clear_mask_from_scl
from canopywatch_dev.detection.reference import SimulationSource, reference_from_simulation
from canopywatch_dev.simulate import SimulationConfig, simulate


def small_simulation(**knobs: object) -> object:
    settings: dict[str, object] = {
        "seed": 7,
        "width": 96,
        "height": 96,
        "start": dt.date(2023, 1, 1),
        "end": dt.date(2023, 12, 31),
        "n_clearings": 4,
        "min_clearing_ha": 0.3,
        "max_clearing_ha": 2.0,
        "cropland_share": 0.0,
        "forest_share": 0.8,
        "pasture_drying_per_year": 0,
        "floods_per_year": 0,
        **knobs,
    }
    return simulate(SimulationConfig(**settings))  # type: ignore[arg-type]


def test_robust_location_scale_ignores_nan() -> None:
    values = np.array([[0.8, 0.82, np.nan, 0.81, 0.1]], dtype=np.float32)
    median, spread = robust_location_scale(values)
    assert median[0] == pytest.approx(0.805, abs=1e-6)
    assert 0 < spread[0] < 0.5


def test_scl_masking_dilates_clouds() -> None:
    scl = np.full((9, 9), 4, dtype=np.uint8)
    scl[4, 4] = 9
    clear = clear_mask_from_scl(scl, None, MaskingConfig(dilation_px=2))
    assert not clear[2:7, 2:7].any()
    assert clear[0, 0] and clear[8, 8]
    snow = np.full((3, 3), 11, dtype=np.uint8)
    assert not clear_mask_from_scl(snow, None, MaskingConfig()).any()
    assert clear_mask_from_scl(snow, None, MaskingConfig(invalid_scl=frozenset({0}))).all()


def test_baseline_finds_clearing_within_one_clear_observation() -> None:
    simulation = small_simulation(cloudiness=0.3, haziness=0.0)
    stack = SimulationSource(simulation).read()  # type: ignore[arg-type]
    pixel_alerts = detect_baseline(stack, BaselineParams())
    alerts = polygonize(pixel_alerts, stack.transform, stack.crs, aoi="t", model_version="b")
    evaluation = evaluate_alerts(
        alerts,
        reference_from_simulation(simulation),  # type: ignore[arg-type]
        as_of_day=int(stack.days[-1]),
        clear=stack.clear,
        days=stack.days,
    )
    scores = evaluation.events[">=0.1ha"]
    assert scores.recall >= 0.75
    assert scores.precision >= 0.75
    assert evaluation.latency_clear_obs
    assert float(np.median(evaluation.latency_clear_obs)) <= 1.0


def test_few_alerts_on_stable_forest() -> None:
    simulation = small_simulation(n_clearings=0, seed=11)
    stack = SimulationSource(simulation).read()  # type: ignore[arg-type]
    pixel_alerts = detect_baseline(stack, BaselineParams())
    alerts = polygonize(pixel_alerts, stack.transform, stack.crs, aoi="t", model_version="b")
    assert len(alerts) <= 1
    assert pixel_alerts.alerted.mean() < 0.005
