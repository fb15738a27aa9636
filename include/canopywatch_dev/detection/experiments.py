"""Scoring detection methods on the same held-out scenarios (``evaluate`` command, the
benchmark and ``ml/evaluate.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from canopywatch.detect.alerts import AlertPolicy, polygonize
from canopywatch.detect.baseline import BaselineParams, PixelAlerts, detect_baseline
from canopywatch.detect.detector import detect_with_model
from canopywatch.detect.evaluate import Evaluation, evaluate_alerts, latency_summary
from canopywatch.detect.indices import compute_index
from canopywatch.detect.model import TrainedModel
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.detection.other_methods import detect_bfast_monitor, detect_ndvi_drop
from canopywatch_dev.detection.reference import SimulationSource, reference_from_simulation
from canopywatch_dev.detection.scenarios import Scenario

Method = Callable[[ObservationStack], PixelAlerts]


def methods(model: TrainedModel | None, params: BaselineParams | None = None) -> dict[str, Method]:
    params = params or BaselineParams()
    table: dict[str, Method] = {
        "NDVI-drop threshold": detect_ndvi_drop,
        "statistical baseline": lambda stack: detect_baseline(stack, params),
        "BFAST-Monitor-style": detect_bfast_monitor,
    }
    if model is not None:
        table["XGBoost"] = lambda stack: detect_with_model(stack, model, params)
    return table


@dataclass
class MethodRun:
    method: str
    scenario: str
    kind: str
    evaluation: Evaluation
    seconds: float
    pixel_observations: int


def numpy_pass_seconds(stack: ObservationStack) -> float:
    """A plain pass that reads the stack once: NDVI of every observation and its running
    minimum over clear observations (the floor any per-pixel time-series method pays)."""
    began = time.perf_counter()
    running = np.full(stack.shape, np.inf, dtype=np.float32)
    for position in range(stack.n_dates):
        bands = stack.at(position)
        ndvi = compute_index("ndvi", bands) if "ndvi" not in bands else bands["ndvi"]
        np.fmin(running, np.where(stack.clear[position], ndvi, np.inf), out=running)
    return time.perf_counter() - began


def run_methods(
    scenarios: Sequence[Scenario],
    table: Mapping[str, Method],
    *,
    policy: AlertPolicy | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[MethodRun], float]:
    """Every method on every scenario; also the seconds of the plain numpy passes."""
    runs: list[MethodRun] = []
    numpy_seconds = 0.0
    for scenario in scenarios:
        simulation = scenario.simulate()
        stack = SimulationSource(simulation).read()
        reference = reference_from_simulation(simulation)
        numpy_seconds += numpy_pass_seconds(stack)
        cells = stack.n_dates * stack.shape[0] * stack.shape[1]
        for name, method in table.items():
            began = time.perf_counter()
            pixel_alerts = method(stack)
            seconds = time.perf_counter() - began
            alerts = polygonize(
                pixel_alerts,
                stack.transform,
                stack.crs,
                aoi=scenario.name,
                model_version=name,
                policy=policy,
            )
            evaluation = evaluate_alerts(
                alerts, reference, as_of_day=int(stack.days[-1]), clear=stack.clear, days=stack.days
            )
            runs.append(MethodRun(name, scenario.name, scenario.kind, evaluation, seconds, cells))
        if progress is not None:
            progress(scenario.name)
    return runs, numpy_seconds


def aggregate(runs: Sequence[MethodRun], key: str = ">=0.1ha") -> dict[str, Any]:
    """Pooled event counts (micro-averaged), mean pixel F1, latencies, throughput."""
    tp = sum(run.evaluation.events[key].n_true_alerts for run in runs)
    n_alerts = sum(run.evaluation.events[key].n_alerts for run in runs)
    detected = sum(run.evaluation.events[key].n_detected for run in runs)
    n_events = sum(run.evaluation.events[key].n_events for run in runs)
    precision = tp / n_alerts if n_alerts else 1.0
    recall = detected / n_events if n_events else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    latency = [value for run in runs for value in run.evaluation.latency_days]
    latency_obs = [value for run in runs for value in run.evaluation.latency_clear_obs]
    seconds = sum(run.seconds for run in runs)
    cells = sum(run.pixel_observations for run in runs)
    kinds: dict[str, list[int]] = {}
    for run in runs:
        for kind, (hit, total) in run.evaluation.per_kind_recall.items():
            tally = kinds.setdefault(kind, [0, 0])
            tally[0] += hit
            tally[1] += total
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "alerts": n_alerts,
        "events": n_events,
        "pixel_f1": float(np.mean([run.evaluation.pixel_f1 for run in runs])) if runs else 0.0,
        "pixel_iou": float(np.mean([run.evaluation.pixel_iou for run in runs])) if runs else 0.0,
        "latency_days": latency_summary(latency),
        "latency_clear_obs": latency_summary(latency_obs),
        "false_stable_forest": sum(run.evaluation.false_alerts_stable_forest for run in runs),
        "false_other_change": sum(run.evaluation.false_alerts_other_change for run in runs),
        "pixel_obs_per_s": cells / seconds if seconds else float("nan"),
        "recall_by_event_kind": {kind: f"{hit}/{total}" for kind, (hit, total) in kinds.items()},
    }


def method_report(runs: Sequence[MethodRun]) -> dict[str, Any]:
    """Per method: all events (>= 0.1 ha and >= 0.5 ha), per scenario type, Olofsson areas."""
    report: dict[str, Any] = {}
    for method in dict.fromkeys(run.method for run in runs):
        mine = [run for run in runs if run.method == method]
        report[method] = {
            "all": aggregate(mine),
            "all_0.5ha": aggregate(mine, ">=0.5ha"),
            "by_scenario_type": {
                kind: aggregate([run for run in mine if run.kind == kind])
                for kind in dict.fromkeys(run.kind for run in mine)
            },
            "olofsson": [run.evaluation.area for run in mine],
        }
    return report
