"""Scoring of one benchmark case and pooling of many (``benchmarks/detection.py`` and
``benchmarks/detection_peers.py``): event UA, pixel figures, latency and false-alert area
against every event of the series (an alert on a clearing of the history's last weeks is a
true, late alert; one dated before its clearing is false), PA both over every event and over
those that begin on or after the monitoring start (nothing may be alerted before it)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

from canopywatch.detect.alerts import active_alerts, polygonize
from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.evaluate import (
    Evaluation,
    ReferenceData,
    evaluate_alerts,
    rasterize_alerts,
)
from canopywatch.detect.observations import ObservationStack

# the land covers whose false alerts the "< 5 % of alerted area" target counts:
# forest-like crops, plantation harvests and leaf-off forest
CONFOUNDER_CLASSES = frozenset({"deciduous_forest", "irrigated_cropland", "cropland", "plantation"})


def monitoring_reference(reference: ReferenceData, monitor_start: int) -> ReferenceData:
    """The reference with only the events that begin on or after ``monitor_start``."""
    later = tuple(e for e in reference.events if e.start_day >= monitor_start)
    kept = np.isin(reference.event_raster, [e.number for e in later])
    return replace(
        reference,
        events=later,
        event_raster=np.where(kept, reference.event_raster, 0).astype(np.int32),
        clearing_day=np.where(kept | (reference.event_raster == 0), reference.clearing_day, -1),
    )


def score(
    stack: ObservationStack,
    reference: ReferenceData,
    pixel_alerts: PixelAlerts,
    *,
    monitor_start: int,
    seconds: float,
) -> dict[str, Any]:
    """One method's alerts on one case, as ``pooled`` takes them."""
    alerts = active_alerts(
        polygonize(pixel_alerts, stack.transform, stack.crs, aoi="bench", model_version="x")
    )
    evaluation: Evaluation = evaluate_alerts(
        alerts, reference, as_of_day=int(stack.days[-1]), clear=stack.clear, days=stack.days
    )
    monitoring = evaluate_alerts(
        alerts, monitoring_reference(reference, monitor_start), as_of_day=int(stack.days[-1])
    ).events[">=0.1ha"]
    return {
        "evaluation": evaluation,
        "alerted_ha": evaluation.area["mapped_deforestation_ha"],
        "false_on_changes_ha": _false_on_dated_changes_ha(alerts, reference, int(stack.days[-1])),
        "seconds": seconds,
        "cells": stack.n_dates * stack.shape[0] * stack.shape[1],
        "monitoring_events": (monitoring.n_detected, monitoring.n_events),
    }


# a replanted stand needs more than a year to close its canopy again (1-3 months bare,
# then the canopy grows for most of a year), so its cut cannot be told from a clearing
# by its regrowth before then
RECENT_CHANGE_DAYS = 365


def _false_on_dated_changes_ha(
    alerts: Any, reference: ReferenceData, last_day: int
) -> tuple[float, float]:
    """Alerted hectares on dated non-deforestation changes (a plantation cut, a crop
    harvest): those that began within ``RECENT_CHANGE_DAYS`` of the series' last day, and
    all of them."""
    if reference.other_change_day is None:
        return 0.0, 0.0
    alerted = rasterize_alerts(alerts, reference.clearing_day.shape, reference.transform) > 0
    dated = alerted & (reference.other_change_day >= 0) & (reference.clearing_day < 0)
    recent = dated & (reference.other_change_day > last_day - RECENT_CHANGE_DAYS)
    area = reference.pixel_area_ha
    return float(recent.sum()) * area, float(dated.sum()) * area


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    events = [run["evaluation"].events[">=0.1ha"] for run in runs]
    n_alerts = sum(e.n_alerts for e in events)
    n_true = sum(e.n_true_alerts for e in events)
    n_events = sum(e.n_events for e in events)
    n_detected = sum(e.n_detected for e in events)
    latency = [v for run in runs for v in run["evaluation"].latency_days]
    latency_obs = [v for run in runs for v in run["evaluation"].latency_clear_obs]
    false_ha: dict[str, float] = defaultdict(float)
    for run in runs:
        for name, hectares in run["evaluation"].false_alert_ha_by_class.items():
            false_ha[name] += hectares
    precision = float(np.mean([r["evaluation"].pixel_precision for r in runs]))
    recall = float(np.mean([r["evaluation"].pixel_recall for r in runs]))
    return {
        "pixel_p": precision,
        "pixel_r": recall,
        "pixel_f1": float(np.mean([r["evaluation"].pixel_f1 for r in runs])),
        "event_ua": n_true / n_alerts if n_alerts else 1.0,
        "event_pa": n_detected / n_events if n_events else 1.0,
        "event_pa_monitoring": (
            sum(r["monitoring_events"][0] for r in runs)
            / max(1, sum(r["monitoring_events"][1] for r in runs))
        ),
        "alerts": n_alerts,
        "events": n_events,
        "monitoring_events": sum(r["monitoring_events"][1] for r in runs),
        "early": sum(r["evaluation"].early_alerts for r in runs),
        "latency_days": (
            (float(np.median(latency)), float(np.percentile(latency, 90)))
            if latency
            else (float("nan"),) * 2
        ),
        "latency_obs": (
            (float(np.median(latency_obs)), float(np.percentile(latency_obs, 90)))
            if latency_obs
            else (float("nan"),) * 2
        ),
        "false_ha": dict(sorted(false_ha.items())),
        "confounder_share": (
            sum(v for k, v in false_ha.items() if k in CONFOUNDER_CLASSES)
            / max(1e-9, sum(r["alerted_ha"] for r in runs))
        ),
        "false_on_changes_ha": tuple(
            float(sum(r["false_on_changes_ha"][i] for r in runs)) for i in (0, 1)
        ),
        "mpix_obs_s": sum(r["cells"] for r in runs) / sum(r["seconds"] for r in runs) / 1e6,
    }
