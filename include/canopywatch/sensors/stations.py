"""The station registry: which sensors exist, where they stand and what they report.

A CSV file with the columns ``station_id,kinds,lon,lat`` (``kinds`` separated by ``;``,
e.g. ``weather;soil_moisture``) and optionally ``aoi_id``. Readings from a station that
is not registered, or of a kind the station does not report, are dead-lettered. Fire
hotspots (FIRMS) come from satellites and need no station.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from canopywatch.messages import SENSOR_KINDS
from canopywatch.settings import REPO_ROOT

DEFAULT_STATIONS = REPO_ROOT / "include" / "sensor_stations.csv"
COLUMNS = ("station_id", "kinds", "lon", "lat", "aoi_id")
# kinds that a registered station can report (hotspots come from satellites)
STATION_KINDS = tuple(k for k in SENSOR_KINDS if k != "fire_hotspot")


class StationError(ValueError):
    """The station registry cannot be read."""


@dataclass(frozen=True)
class Station:
    station_id: str
    kinds: tuple[str, ...]
    lon: float
    lat: float
    aoi_id: str = ""


def load_stations(path: Path | str = DEFAULT_STATIONS) -> dict[str, Station]:
    """The registry as ``{station_id: Station}``; a broken file raises StationError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StationError(f"cannot read the station registry {path}: {exc}") from exc
    rows = csv.DictReader(text.splitlines())
    missing = set(COLUMNS[:4]) - set(rows.fieldnames or ())
    if missing:
        raise StationError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    stations: dict[str, Station] = {}
    for line, row in enumerate(rows, start=2):
        try:
            kinds = tuple(k.strip() for k in (row["kinds"] or "").split(";") if k.strip())
            unknown = [k for k in kinds if k not in STATION_KINDS]
            if not kinds or unknown:
                raise ValueError(f"kinds {row['kinds']!r} (known: {', '.join(STATION_KINDS)})")
            lon, lat = float(row["lon"]), float(row["lat"])
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"lon/lat {lon}, {lat} out of range")
        except (TypeError, ValueError) as exc:
            raise StationError(f"{path} line {line}: {exc}") from exc
        station_id = (row["station_id"] or "").strip()
        if not station_id or station_id in stations:
            raise StationError(f"{path} line {line}: empty or repeated station_id {station_id!r}")
        stations[station_id] = Station(station_id, kinds, lon, lat, (row.get("aoi_id") or ""))
    return stations


def write_stations(path: Path, stations: list[Station]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for s in stations:
            writer.writerow(
                [s.station_id, ";".join(s.kinds), f"{s.lon:.6f}", f"{s.lat:.6f}", s.aoi_id]
            )
