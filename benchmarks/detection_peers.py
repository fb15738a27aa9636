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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.detector import HarmonicDetector
from canopywatch.detect.evaluate import ReferenceData
from canopywatch.detect.harmonic import HarmonicParams
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.detection.cases import landscape_cases, simulator_cases
from canopywatch_dev.detection.nrt_peers import NRT_MONITORS, detect_nrt
from canopywatch_dev.detection.scoring import pooled, score

HISTORY_DAYS = 365
HARMONIC = "harmonic (default)"
console = Console(width=200)


def detect_all(
    stack: ObservationStack, forest: npt.NDArray[np.bool_] | None = None
) -> tuple[int, dict[str, tuple[PixelAlerts, float]]]:
    """The monitoring start, and every method's alerts with the seconds they took; ``nrt``
    monitors ``forest``, by default the default detector's forest baseline of this run."""
    monitor_start = int(stack.days[0]) + HISTORY_DAYS
    periods = HarmonicParams().with_periods(None, monitor_start)
    timed: dict[str, tuple[PixelAlerts, float]] = {}

    def run(name: str, detect: Callable[[], PixelAlerts]) -> PixelAlerts:
        began = time.perf_counter()
        pixel_alerts = detect()
        timed[name] = (pixel_alerts, time.perf_counter() - began)
        return pixel_alerts

    default = run(HARMONIC, partial(HarmonicDetector(params=periods).detect, stack))
    ndvi_only = HarmonicDetector(params=replace(periods, required=("ndvi",)))
    run("harmonic, NDVI only", partial(ndvi_only.detect, stack))
    monitored = default.monitored if forest is None else forest
    for monitor in NRT_MONITORS:
        run(f"nrt {monitor}", partial(detect_nrt, stack, monitor, monitor_start=monitor_start,
                                      forest=monitored))  # fmt: skip
    return monitor_start, timed


def warm_up(stack: ObservationStack) -> None:
    """Run every method once on a 16 px corner, so that no row times numba compiling."""
    corner = stack.crop(slice(0, 16), slice(0, 16))
    detect_all(corner, forest=np.ones(corner.shape, dtype=bool))


def run_case(stack: ObservationStack, reference: ReferenceData) -> dict[str, dict[str, Any]]:
    monitor_start, results = detect_all(stack)
    return {
        name: score(stack, reference, pixel_alerts, monitor_start=monitor_start, seconds=seconds)
        for name, (pixel_alerts, seconds) in results.items()
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
                f"{row['event_pa_monitoring']:.3f}",
                f"{row['pixel_f1']:.3f}",
                f"{row['alerts']}/{row['monitoring_events']}",
                str(row["early"]),
                "{:.0f} / {:.0f}".format(*row["latency_obs"]),
                f"{sum(row['false_ha'].values()):.1f}",
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
