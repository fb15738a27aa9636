"""Detection peers: the default detector against JRC's ``nrt`` monitors (EWMA, CuSum, MoSum,
CCDC, IQR), on the same pixels and the same periods, side by side.

    python benchmarks/detection_peers.py [--seeds 2] [--size 96] [--sources landscapes,simulator]
                                         [--json out.json]

Every method gets one year of history (the first 365 days of the two-year series; ``nrt``
needs a season to fit its harmonics) and monitors the second year; only events that begin
in the monitoring year count in PA; UA counts an alert on a clearing of the history's last
weeks as true (late, as ``benchmarks/detection.py`` does). ``nrt`` monitors the default detector's own forest baseline
of that run, so the rows compare the monitoring alone (``canopywatch_dev.detection.nrt_peers``
says how each monitor is driven). The default detector also runs on NDVI alone, the one
index the ``nrt`` rows see. Evaluation seeds only, as in ``benchmarks/detection.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from canopywatch.detect.alerts import active_alerts, polygonize
from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.detector import HarmonicDetector
from canopywatch.detect.evaluate import Evaluation, ReferenceData, evaluate_alerts
from canopywatch.detect.harmonic import HarmonicParams
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.detection.cases import landscape_cases, simulator_cases
from canopywatch_dev.detection.nrt_peers import NRT_MONITORS, detect_nrt

HISTORY_DAYS = 365
HARMONIC = "harmonic (default)"
CONFOUNDER_CLASSES = frozenset({"deciduous_forest", "irrigated_cropland", "cropland", "plantation"})
console = Console(width=200)


def monitoring_reference(reference: ReferenceData, monitor_start: int) -> ReferenceData:
    """The reference with only the events that begin in the monitoring period."""
    later = tuple(e for e in reference.events if e.start_day >= monitor_start)
    kept = np.isin(reference.event_raster, [e.number for e in later])
    return replace(
        reference,
        events=later,
        event_raster=np.where(kept, reference.event_raster, 0).astype(np.int32),
        clearing_day=np.where(kept | (reference.event_raster == 0), reference.clearing_day, -1),
    )


def warm_up(stack: ObservationStack) -> None:
    """Run every method once on a 16 px corner, so that no row times numba compiling."""
    corner = stack.crop(slice(0, 16), slice(0, 16))
    monitor_start = int(corner.days[0]) + HISTORY_DAYS
    periods = HarmonicParams().with_periods(None, monitor_start)
    HarmonicDetector(params=periods).detect(corner)
    HarmonicDetector(params=replace(periods, required=("ndvi",))).detect(corner)
    for monitor in NRT_MONITORS:
        detect_nrt(corner, monitor, monitor_start=monitor_start,
                   forest=np.ones(corner.shape, dtype=bool))  # fmt: skip


def score(
    stack: ObservationStack,
    reference: ReferenceData,
    monitor_start: int,
    pixel_alerts: PixelAlerts,
    seconds: float,
) -> dict[str, Any]:
    """UA, pixel figures, latency and false area against every event (an alert on a clearing
    of the history's last weeks is a true, late alert); PA over the monitoring year's."""
    alerts = active_alerts(
        polygonize(pixel_alerts, stack.transform, stack.crs, aoi="peers", model_version="x")
    )
    evaluation: Evaluation = evaluate_alerts(
        alerts, reference, as_of_day=int(stack.days[-1]), clear=stack.clear, days=stack.days
    )
    monitoring = evaluate_alerts(
        alerts, monitoring_reference(reference, monitor_start), as_of_day=int(stack.days[-1])
    ).events[">=0.1ha"]
    return {
        "evaluation": evaluation,
        "monitoring_events": (monitoring.n_detected, monitoring.n_events),
        "alerted_ha": evaluation.area["mapped_deforestation_ha"],
        "seconds": seconds,
        "cells": stack.n_dates * stack.shape[0] * stack.shape[1],
    }


def run_case(stack: ObservationStack, reference: ReferenceData) -> dict[str, dict[str, Any]]:
    monitor_start = int(stack.days[0]) + HISTORY_DAYS
    periods = HarmonicParams().with_periods(None, monitor_start)
    detectors: dict[str, Callable[[ObservationStack], PixelAlerts]] = {
        HARMONIC: HarmonicDetector(params=periods).detect,
        "harmonic, NDVI only": HarmonicDetector(params=replace(periods, required=("ndvi",))).detect,
    }
    rows: dict[str, dict[str, Any]] = {}
    forest: np.ndarray | None = None
    for name, detect in detectors.items():
        began = time.perf_counter()
        pixel_alerts = detect(stack)
        rows[name] = score(stack, reference, monitor_start, pixel_alerts,
                           time.perf_counter() - began)  # fmt: skip
        if name == HARMONIC:
            forest = pixel_alerts.monitored
    assert forest is not None
    for monitor in NRT_MONITORS:
        began = time.perf_counter()
        pixel_alerts = detect_nrt(stack, monitor, monitor_start=monitor_start, forest=forest)
        rows[f"nrt {monitor}"] = score(stack, reference, monitor_start, pixel_alerts,
                                       time.perf_counter() - began)  # fmt: skip
    return rows


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    events = [run["evaluation"].events[">=0.1ha"] for run in runs]
    n_alerts = sum(e.n_alerts for e in events)
    n_events = sum(run["monitoring_events"][1] for run in runs)
    latency = [v for run in runs for v in run["evaluation"].latency_clear_obs]
    false_ha: dict[str, float] = defaultdict(float)
    for run in runs:
        for name, hectares in run["evaluation"].false_alert_ha_by_class.items():
            false_ha[name] += hectares
    return {
        "event_ua": sum(e.n_true_alerts for e in events) / n_alerts if n_alerts else 1.0,
        "event_pa": (
            sum(run["monitoring_events"][0] for run in runs)
            / max(1, sum(run["monitoring_events"][1] for run in runs))
        ),
        "pixel_f1": float(np.mean([run["evaluation"].pixel_f1 for run in runs])),
        "alerts": n_alerts,
        "events": n_events,
        "early": sum(run["evaluation"].early_alerts for run in runs),
        "latency_obs": (
            (float(np.median(latency)), float(np.percentile(latency, 90)))
            if latency
            else (float("nan"),) * 2
        ),
        "false_ha": round(sum(false_ha.values()), 1),
        "confounder_share": (
            sum(v for k, v in false_ha.items() if k in CONFOUNDER_CLASSES)
            / max(1e-9, sum(run["alerted_ha"] for run in runs))
        ),
        "mpix_obs_s": sum(r["cells"] for r in runs) / sum(r["seconds"] for r in runs) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="held-out seeds per type")
    parser.add_argument("--size", type=int, default=96, help="scene size in pixels (10 m)")
    parser.add_argument("--sources", default="landscapes,simulator")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    generators = {"landscapes": landscape_cases, "simulator": simulator_cases}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    warmed = False
    for source in [name for name in args.sources.split(",") if name]:
        for case, stack, reference in generators[source](args.seeds, args.size):
            if not warmed:
                warm_up(stack)
                warmed = True
            for method, row in run_case(stack, reference).items():
                runs[(source, method)].append(row)
            console.log(f"scored {case}")

    table = Table(
        title=f"Detection peers: {HISTORY_DAYS}-day history, the second year monitored, "
        "the default detector's forest baseline for all, events >= 0.1 ha"
    )
    for column in ("source", "method", "event UA", "event PA", "pixel F1", "alerts/events",
                   "early", "latency obs med/p90", "false-alert ha", "alerted area on confounders",
                   "M px-obs/s", "speed vs default"):  # fmt: skip
        table.add_column(column)
    figures: dict[str, Any] = {}
    for source in dict.fromkeys(key[0] for key in runs):
        reference_speed = pooled(runs[(source, HARMONIC)])["mpix_obs_s"]
        for (row_source, method), method_runs in runs.items():
            if row_source != source:
                continue
            row = pooled(method_runs)
            figures[f"{source} | {method}"] = row
            table.add_row(
                source,
                method,
                f"{row['event_ua']:.3f}",
                f"{row['event_pa']:.3f}",
                f"{row['pixel_f1']:.3f}",
                f"{row['alerts']}/{row['events']}",
                str(row["early"]),
                "{:.0f} / {:.0f}".format(*row["latency_obs"]),
                f"{row['false_ha']:.1f}",
                f"{100 * row['confounder_share']:.1f} %",
                f"{row['mpix_obs_s']:.2f}",
                f"{row['mpix_obs_s'] / reference_speed:.2f}x",
            )
    console.print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
