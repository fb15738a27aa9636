"""Simulated sensors in the demo area: weather, soil moisture, acoustic, patrol GPS, FIRMS fires.

    python -m canopywatch_dev.sensors --out DIR [--days 60] [--seed 7] [--stations-only]

writes ``DIR/stations.csv`` (the registry), ``DIR/readings.jsonl`` (the station readings in
*delivery* order) and ``DIR/firms.csv`` (VIIRS hotspots in the public FIRMS CSV format),
then ``canopywatch sensors ingest DIR/readings.jsonl --stations DIR/stations.csv`` and
``canopywatch sensors ingest DIR/firms.csv`` publish them.

What a real network does, on purpose: daily cycles (temperature, humidity; rain showers
in the wet season, soil drying between them), gaps (station outages of hours to days),
stuck values (a sensor repeating one reading), duplicates (a gateway resending), late
data (batches delivered hours to days after observation), clock skew (a station minutes
off). Acoustic stations stand within a few hundred metres of some simulated clearings and
hear chainsaws in the two weeks before the clearing; others hear vehicles, gunshots and
the odd false chainsaw. Burned clearings show VIIRS hotspots inside their polygon after
the cut; patrols walk tracks, some passing the clearings.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from canopywatch.sensors.stations import Station, write_stations

DEMO_BBOX = (-55.40, -7.10, -55.35, -7.05)
DEMO_START = dt.date(2023, 6, 1)
DEMO_END = dt.date(2024, 7, 31)
DEMO_SEED = 7
FIRMS_COLUMNS = [
    "latitude",
    "longitude",
    "bright_ti4",
    "scan",
    "track",
    "acq_date",
    "acq_time",
    "satellite",
    "instrument",
    "confidence",
    "version",
    "bright_ti5",
    "frp",
    "daynight",
]


@dataclass(frozen=True)
class Clearing:
    """A simulated deforestation event as the sensors see it (lon/lat polygon)."""

    event_id: str
    kind: str
    day: dt.date
    geometry: BaseGeometry  # EPSG:4326


@dataclass
class SensorWorld:
    stations: list[Station]
    readings: list[dict[str, Any]]  # in delivery order, with "_delivered_at"
    firms: list[dict[str, str]]
    # truth: which clearing each evidence-bearing station or hotspot was placed for
    evidence_for: dict[str, list[str]] = field(default_factory=dict)


def demo_clearings(
    bbox: Sequence[float] = DEMO_BBOX,
    start: dt.date = DEMO_START,
    end: dt.date = DEMO_END,
    seed: int = DEMO_SEED,
) -> list[Clearing]:
    """The deforestation events of the demo area's Sentinel-2 simulation, in lon/lat."""
    from canopywatch_dev.simulate import simulate_area

    minx, miny, maxx, maxy = bbox
    return clearings_of(simulate_area((minx, miny, maxx, maxy), start, end, seed=seed))


def clearings_of(simulation: Any) -> list[Clearing]:
    """The deforestation events (>= 0.1 ha) of a ``Simulation``, in lon/lat."""
    import shapely

    to_lonlat = Transformer.from_crs(simulation.crs, 4326, always_xy=True)

    def lonlat(xy: Any) -> Any:
        return np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))

    return [
        Clearing(e.id, e.kind, e.start, shapely.transform(e.geometry, lonlat))
        for e in simulation.events
        if e.is_deforestation and e.area_ha >= 0.1
    ]


def readings_frame(world: SensorWorld) -> Any:
    """The world's readings and hotspots as validated ``SensorReading`` rows in the
    ``sensor_readings`` columns (resends dropped), ``observed_at`` as UTC timestamps: what
    ``canopywatch.sensors.evidence`` reads."""
    import pandas as pd

    from canopywatch.messages import SensorReading
    from canopywatch.sensors.catalog import COLUMNS
    from canopywatch.sensors.firms import firms_fields

    names = [name for name, _ in COLUMNS[:20]]
    raws = [{k: v for k, v in r.items() if k[0] != "_"} for r in world.readings]
    raws += [firms_fields(f) for f in world.firms]
    rows = []
    for raw in raws:
        reading = SensorReading.model_validate(raw)
        rows.append({name: getattr(reading, name, None) for name in names})
    frame = pd.DataFrame(rows, columns=names).drop_duplicates("reading_id")
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    return frame.reset_index(drop=True)


def _offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        lon + east_m / (111_320.0 * math.cos(math.radians(lat))),
        lat + north_m / 110_540.0,
    )


def simulate(
    clearings: Sequence[Clearing],
    *,
    bbox: Sequence[float] = DEMO_BBOX,
    start: dt.date,
    days: int = 60,
    seed: int = DEMO_SEED,
    weather_every_min: int = 60,
) -> SensorWorld:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bbox
    end = start + dt.timedelta(days=days)
    t0 = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    in_window = [c for c in clearings if start <= c.day < end]
    stations: list[Station] = []
    evidence: dict[str, list[str]] = {}

    def random_point() -> tuple[float, float]:
        return float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy))

    for i in range(4):
        lon, lat = random_point()
        stations.append(Station(f"wx-{i:02d}", ("weather", "soil_moisture"), lon, lat))
    # acoustic: one near each of the first clearings (within 200-700 m), plus two elsewhere
    near = in_window[: max(1, len(in_window) // 2)]
    for i, clearing in enumerate(near):
        c = clearing.geometry.centroid
        angle = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(100, 500)
        lon, lat = _offset(c.x, c.y, dist * math.cos(angle), dist * math.sin(angle))
        stations.append(Station(f"ac-{i:02d}", ("acoustic",), lon, lat))
        evidence.setdefault(clearing.event_id, []).append(f"ac-{i:02d}")
    for j in range(len(near), len(near) + 2):
        lon, lat = random_point()
        stations.append(Station(f"ac-{j:02d}", ("acoustic",), lon, lat))
    for k in range(2):
        lon, lat = random_point()
        stations.append(Station(f"patrol-{k}", ("patrol_gps",), lon, lat))

    readings: list[dict[str, Any]] = []

    def emit(row: dict[str, Any], observed: dt.datetime, delay_s: float = 30.0) -> None:
        row["observed_at"] = observed.isoformat().replace("+00:00", "Z")
        row["_delivered_at"] = observed + dt.timedelta(seconds=delay_s)
        readings.append(row)

    # weather + soil moisture: hourly, daily cycle, wet-season showers
    steps = days * 24 * 60 // weather_every_min
    for station in stations[:4]:
        skew = dt.timedelta(minutes=float(rng.choice([0, 0, 0, 7, -4])))
        soil = 32.0
        outage_start = int(rng.integers(0, steps))
        outage_len = int(rng.integers(6, 72))
        stuck_start = int(rng.integers(0, steps))
        stuck_len = int(rng.integers(12, 48))
        stuck_value: float | None = None
        late_batch = int(rng.integers(0, steps))
        for step in range(steps):
            observed = t0 + dt.timedelta(minutes=step * weather_every_min)
            hour = observed.hour + observed.minute / 60 - 4  # local solar time ~ UTC-4
            month = observed.month
            wet = month in (11, 12, 1, 2, 3, 4)
            temp = 27 + 4.5 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.normal(0, 0.6)
            humidity = min(
                100.0, 82 - 14 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.normal(0, 3)
            )
            shower = rng.random() < (0.06 if wet else 0.01)
            rain = float(rng.gamma(1.5, 4.0)) if shower else 0.0
            soil = min(48.0, soil + rain * 0.8) * (1 - 0.004)
            if outage_start <= step < outage_start + outage_len:
                continue  # gap
            if stuck_start <= step < stuck_start + stuck_len:
                stuck_value = stuck_value if stuck_value is not None else round(temp, 1)
                temp = stuck_value
            delay = 30.0
            if late_batch <= step < late_batch + 12:
                delay = 2 * 86400.0  # delivered two days late
            base = {"station_id": station.station_id, "lon": station.lon, "lat": station.lat}
            emit(
                {
                    **base,
                    "kind": "weather",
                    "rain_mm": round(rain, 1),
                    "temperature_c": round(temp, 1),
                    "humidity_pct": round(max(0.0, humidity), 1),
                },
                observed + skew,
                delay,
            )
            emit(
                {**base, "kind": "soil_moisture", "soil_moisture_pct": round(soil, 1)},
                observed + skew,
                delay,
            )

    # acoustic events
    for station in stations:
        if "acoustic" not in station.kinds:
            continue
        cleared = [cid for cid, sids in evidence.items() if station.station_id in sids]
        events: list[tuple[dt.datetime, str, float]] = []
        for cid in cleared:
            clearing = next(c for c in in_window if c.event_id == cid)
            for _ in range(int(rng.integers(3, 9))):
                before = dt.timedelta(days=float(rng.uniform(0.2, 13)))
                moment = dt.datetime.combine(clearing.day, dt.time(13), tzinfo=dt.UTC) - before
                events.append((moment, "chainsaw", float(rng.uniform(0.7, 0.99))))
        for _ in range(int(rng.poisson(days / 6))):
            moment = t0 + dt.timedelta(seconds=float(rng.uniform(0, days * 86400)))
            kind = str(rng.choice(["vehicle", "vehicle", "gunshot", "chainsaw"]))
            events.append((moment, kind, float(rng.uniform(0.3, 0.8))))
        for moment, kind, score in events:
            if not t0 <= moment < t0 + dt.timedelta(days=days):
                continue
            row = {
                "station_id": station.station_id,
                "lon": station.lon,
                "lat": station.lat,
                "kind": "acoustic",
                "event": kind,
                "score": round(score, 3),
            }
            emit(row, moment)
            if rng.random() < 0.1:  # the gateway resends
                emit(dict(row), moment, 600.0)

    # patrols: a walk of 3 h every ~4 days, one fix per 5 min; half of them pass a clearing
    for station in stations:
        if "patrol_gps" not in station.kinds:
            continue
        for walk in range(days // 4):
            begin = t0 + dt.timedelta(days=walk * 4 + float(rng.uniform(0, 3)), hours=12)
            lon, lat = station.lon, station.lat
            target = None
            if in_window and rng.random() < 0.5:
                target = in_window[int(rng.integers(0, len(in_window)))].geometry.centroid
            track_id = f"{station.station_id}-{begin:%Y%m%d}"
            for fix in range(36):
                if target is not None:
                    lon += (target.x - lon) * 0.15
                    lat += (target.y - lat) * 0.15
                lon, lat = _offset(lon, lat, rng.normal(0, 40), rng.normal(0, 40))
                lon = min(max(lon, minx), maxx)
                lat = min(max(lat, miny), maxy)
                emit(
                    {
                        "station_id": station.station_id,
                        "kind": "patrol_gps",
                        "track_id": track_id,
                        "lon": round(lon, 6),
                        "lat": round(lat, 6),
                    },
                    begin + dt.timedelta(minutes=5 * fix),
                    3600.0,  # uploaded after the walk
                )

    # FIRMS hotspots inside burned (and some plain) clearings, 1-20 days after the cut
    firms: list[dict[str, str]] = []
    for clearing in in_window:
        if clearing.kind != "burned_clearing" and rng.random() > 0.3:
            continue
        for _ in range(int(rng.integers(1, 5))):
            moment = dt.datetime.combine(
                clearing.day, dt.time(17, 30), tzinfo=dt.UTC
            ) + dt.timedelta(days=int(rng.integers(1, 20)), minutes=int(rng.integers(0, 40)))
            if moment.date() >= end:
                continue
            point = _point_inside(clearing.geometry, rng)
            firms.append(_firms_row(point, moment, rng))
            evidence.setdefault(clearing.event_id, []).append("firms")
    readings.sort(key=lambda r: r["_delivered_at"])
    return SensorWorld(stations, readings, firms, evidence)


def _point_inside(geometry: BaseGeometry, rng: np.random.Generator) -> Point:
    minx, miny, maxx, maxy = geometry.bounds
    for _ in range(200):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geometry.contains(p):
            return p
    return geometry.representative_point()


def _firms_row(point: Point, moment: dt.datetime, rng: np.random.Generator) -> dict[str, str]:
    return {
        "latitude": f"{point.y:.5f}",
        "longitude": f"{point.x:.5f}",
        "bright_ti4": f"{rng.uniform(320, 367):.2f}",
        "scan": f"{rng.uniform(0.36, 0.6):.2f}",
        "track": f"{rng.uniform(0.36, 0.6):.2f}",
        "acq_date": f"{moment:%Y-%m-%d}",
        "acq_time": f"{moment:%H%M}".lstrip("0") or "0",
        "satellite": str(rng.choice(["N", "N20", "N21"])),
        "instrument": "VIIRS",
        "confidence": str(rng.choice(["n", "n", "h", "l"])),
        "version": "2.0NRT",
        "bright_ti5": f"{rng.uniform(290, 305):.2f}",
        "frp": f"{rng.uniform(1.5, 30):.2f}",
        "daynight": "D",
    }


def write_world(world: SensorWorld, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "stations": out / "stations.csv",
        "readings": out / "readings.jsonl",
        "firms": out / "firms.csv",
    }
    write_stations(paths["stations"], world.stations)
    with paths["readings"].open("w", encoding="utf-8") as handle:
        for row in world.readings:
            handle.write(json.dumps({k: v for k, v in row.items() if not k.startswith("_")}) + "\n")
    with paths["firms"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIRMS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(world.firms)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m canopywatch_dev.sensors", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 3, 1))
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    args = parser.parse_args(argv)
    world = simulate(demo_clearings(), start=args.start, days=args.days, seed=args.seed)
    paths = write_world(world, args.out)
    print(
        f"{len(world.stations)} stations, {len(world.readings)} readings, {len(world.firms)} "
        f"FIRMS hotspots -> {', '.join(str(p) for p in paths.values())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
