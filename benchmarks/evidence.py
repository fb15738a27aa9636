"""Alert user's accuracy with and without the sensor evidence table, side by side.

    .venv/bin/python benchmarks/evidence.py [--seeds 7,8] [--kinds typical,haze,agriculture]
                                            [--size-deg 0.05] [--quick] [--json OUT]

Each seed and scenario type (``canopywatch_dev.detection.scenarios.SCENARIO_TYPES``: haze
and agriculture bring false alerts) simulates an area (``simulate_area``, the demo area's
corner in the Amazon, 2023-06-01..2024-07-31, 10 m), scores it with the default detector (harmonic), and
simulates the ground sensors of that area over the same dates
(``canopywatch_dev.sensors.simulate``: acoustic stations near about half the clearings,
VIIRS hotspots in burned clearings, patrol tracks, plus the noise: vehicles, gunshots,
stray chainsaws). The evidence table is ``canopywatch.sensors.evidence`` (geopandas
engine, the same rules as PostGIS and Spark) and ``corroborated_by`` comes from
``canopywatch.sensors.corroboration``.

Rows, events >= 0.1 ha, date-aware (``detect.evaluate``: an alert dated before its event
is false): every alert and the high-confidence ones without the table; with it, the
corroborated ones (any kind, then each kind, then acoustic or fire: patrols pass most
clearings), the rest, and the high-confidence ones once each corroborating kind has
raised the score by 0.1; then the alerts that ``drought_anomaly``
(``canopywatch.sensors.drought``, from the area's four weather stations simulated hourly)
reports in a dry spell, those it flags ``drought``, and the rest.
UA = true alerts / alerts; PA = detected events / events.
``--quick``: one seed, typical and agriculture, a 0.02 degree box. Needs no service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from canopywatch.alert_schema import HIGH_CONFIDENCE
from canopywatch.detect.alerts import active_alerts, polygonize
from canopywatch.detect.detector import HarmonicDetector
from canopywatch.detect.evaluate import evaluate_alerts
from canopywatch.sensors.corroboration import EVIDENCE_KINDS, corroborated_by, raised_confidence
from canopywatch.sensors.drought import anomalies_for
from canopywatch.sensors.evidence import evidence_geopandas

START, END = dt.date(2023, 6, 1), dt.date(2024, 7, 31)
CORNER = (-55.40, -7.10)  # the demo area's south-west corner
console = Console(width=160)


def one_area(seed: int, size_deg: float, kind: str = "typical") -> dict[str, Any]:
    """Detected alerts (with ``corroborated_by``), the reference and the stack of one area."""
    from canopywatch_dev.detection.reference import SimulationSource, reference_from_simulation
    from canopywatch_dev.detection.scenarios import SCENARIO_TYPES
    from canopywatch_dev.sensors import clearings_of, readings_frame, simulate
    from canopywatch_dev.simulate import simulate_area

    lon, lat = CORNER
    bbox = (lon, lat, lon + size_deg, lat + size_deg)
    simulation = simulate_area(bbox, START, END, seed=seed, **SCENARIO_TYPES[kind])
    stack = SimulationSource(simulation).read()
    reference = reference_from_simulation(simulation)
    pixel_alerts = HarmonicDetector().detect(stack)
    alerts = active_alerts(
        polygonize(pixel_alerts, stack.transform, stack.crs, aoi="bench", model_version="h")
    ).reset_index(drop=True)
    world = simulate(
        clearings_of(simulation),
        bbox=bbox,
        start=START,
        days=(END - START).days,
        seed=seed,
        weather_every_min=24 * 60,  # weather is no evidence: one reading a day is enough
    )
    readings = readings_frame(world)
    lonlat = alerts.to_crs(4326)
    evidence = evidence_geopandas(
        pd.DataFrame(
            {
                "alert_id": lonlat["alert_id"].values,
                "alert_date": lonlat["alert_date"].values,
                "geometry": np.asarray(lonlat.geometry.values),
            }
        ),
        readings,
    )
    values = corroborated_by(alerts["alert_id"], evidence)
    alerts["corroborated_by"] = alerts["alert_id"].map(values)
    alerts["drought_anomaly"] = alerts["alert_id"].map(drought_of(alerts, bbox, seed))
    return {
        "alerts": alerts,
        "reference": reference,
        "stack": stack,
        "readings": len(readings),
        "evidence": len(evidence),
    }


def drought_of(alerts: gpd.GeoDataFrame, bbox: tuple[float, ...], seed: int) -> dict[str, str]:
    """Each alert's ``drought_anomaly`` from the area's weather stations, simulated hourly
    (the simulator's rain is per reading) in a run of its own, so the evidence run above
    keeps its random draws; all four stations stand in the area, well within the radius."""
    from canopywatch_dev.sensors import simulate

    world = simulate([], bbox=bbox, start=START, days=(END - START).days, seed=seed)
    seen: set[tuple[str, str]] = set()
    rows = []
    for r in world.readings:
        if r["kind"] == "weather" and (r["station_id"], r["observed_at"]) not in seen:
            seen.add((r["station_id"], r["observed_at"]))  # a resend counted once
            rows.append(
                (r["station_id"], dt.date.fromisoformat(r["observed_at"][:10]), r["rain_mm"])
            )
    daily = (
        pd.DataFrame(rows, columns=["station_id", "day", "rain_mm"])
        .groupby(["station_id", "day"], as_index=False)["rain_mm"]
        .sum()
    )
    stations = sorted(daily["station_id"].unique())
    dates = [
        (a, pd.Timestamp(d).to_pydatetime())
        for a, d in zip(alerts["alert_id"], alerts["alert_date"], strict=True)
    ]
    return anomalies_for(dates, {a: stations for a, _ in dates}, daily)


def subsets(alerts: gpd.GeoDataFrame) -> dict[str, Any]:
    """Row name -> which alerts it scores (a boolean mask)."""
    value = alerts["corroborated_by"].fillna("")
    corroborated = value != ""

    def by(kind: str) -> Any:
        return value.str.split(",").apply(lambda kinds: kind in kinds).values

    report = alerts["drought_anomaly"].fillna("{}")
    dry = report != "{}"
    drought = report.str.contains('"flag":"drought"', regex=False)
    raised = np.array(
        [
            raised_confidence(c, v)
            for c, v in zip(alerts["confidence"], alerts["corroborated_by"], strict=True)
        ]
    )
    return {
        "all alerts (no evidence table)": np.ones(len(alerts), dtype=bool),
        "high confidence (no evidence table)": (alerts["confidence"] >= HIGH_CONFIDENCE).values,
        "corroborated, any kind (evidence table)": corroborated.values,
        **{f"corroborated by {kind} (evidence table)": by(kind) for kind in EVIDENCE_KINDS},
        "corroborated by acoustic or fire (evidence table)": by("acoustic") | by("fire"),
        "not corroborated (evidence table)": (~corroborated).values,
        "high after +0.1 per kind (evidence table)": raised >= HIGH_CONFIDENCE,
        "in a dry spell (drought_anomaly reported)": dry.values,
        "  of which flagged drought": drought.values,
        "not in a dry spell": (~dry).values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,8", help="simulation seeds, comma-separated")
    parser.add_argument(
        "--kinds", default="typical,haze,agriculture", help="scenario types, comma-separated"
    )
    parser.add_argument("--size-deg", type=float, default=0.05, help="area side in degrees")
    parser.add_argument("--quick", action="store_true", help="one seed, a 0.02 degree box")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"evidence.py: --seeds {args.seeds!r} is not a list of integers", file=sys.stderr)
        return 2
    from canopywatch_dev.detection.scenarios import SCENARIO_TYPES

    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(SCENARIO_TYPES))
    if unknown or not kinds:
        print(f"evidence.py: --kinds: choose from {', '.join(SCENARIO_TYPES)}", file=sys.stderr)
        return 2
    if not seeds or not 0.005 <= args.size_deg <= 0.1:
        print("evidence.py: give at least one seed and --size-deg in 0.005..0.1", file=sys.stderr)
        return 2
    if args.quick:
        seeds, kinds, args.size_deg = seeds[:1], ["typical", "agriculture"], 0.02

    totals: dict[str, dict[str, int]] = {}
    counts = {"readings": 0, "evidence rows": 0}
    began = time.perf_counter()
    for kind, seed in [(k, s) for k in kinds for s in seeds]:
        area = one_area(seed, args.size_deg, kind)
        counts["readings"] += area["readings"]
        counts["evidence rows"] += area["evidence"]
        stack, alerts = area["stack"], area["alerts"]
        for name, mask in subsets(alerts).items():
            scores = evaluate_alerts(
                alerts[mask], area["reference"], as_of_day=int(stack.days[-1])
            ).events[">=0.1ha"]
            row = totals.setdefault(name, {"alerts": 0, "true": 0, "events": 0, "detected": 0})
            row["alerts"] += scores.n_alerts
            row["true"] += scores.n_true_alerts
            row["events"] += scores.n_events
            row["detected"] += scores.n_detected
        console.log(f"{kind} seed {seed}: {len(alerts)} alerts, {area['evidence']} evidence rows")

    base = totals["all alerts (no evidence table)"]
    base_ua = base["true"] / base["alerts"] if base["alerts"] else float("nan")
    table = Table(
        title=f"Alert UA with and without sensor evidence ({len(seeds) * len(kinds)} area(s) "
        f"of {args.size_deg:g} deg: {', '.join(kinds)}; harmonic, events >= 0.1 ha)"
    )
    for column in ("alerts", "n", "true", "UA", "UA / all", "events detected (PA)"):
        table.add_column(column)
    figures: dict[str, Any] = {"seeds": seeds, "kinds": kinds, "size_deg": args.size_deg}
    figures.update(counts)
    for name, row in totals.items():
        ua = row["true"] / row["alerts"] if row["alerts"] else float("nan")
        pa = row["detected"] / row["events"] if row["events"] else float("nan")
        figures[name] = {**row, "ua": ua, "pa": pa, "ua_ratio": ua / base_ua}
        table.add_row(name, str(row["alerts"]), str(row["true"]), f"{ua:.3f}",
                      f"{ua / base_ua:.2f}", f"{row['detected']}/{row['events']} ({pa:.3f})")  # fmt: skip
    console.print(table)
    console.print(
        f"{counts['readings']} sensor readings, {counts['evidence rows']} evidence rows, "
        f"{time.perf_counter() - began:.0f} s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
