"""The alert schema's ``drought_anomaly``: how dry the weeks before a leaf-off alert were.

A canopy that browns in a dry spell (leaf-off, drought stress) looks to the detector like a
partial clearing. For each alert this module takes the weather stations within
``RADIUS_M`` of its polygon and, per station:

* **window**: the rain of the ``WINDOW_DAYS`` days up to and including the alert's UTC day
  (daily totals are the sum of the day's readings, each reading being the rain since the
  previous one; a window needs ``MIN_COVERAGE`` of its days reported and is scaled up to
  the full window from the days it has);
* **reference**: every other ``WINDOW_DAYS``-day window of the station's own record
  (stepped by a day, same coverage rule), which must span ``MIN_RECORD_DAYS`` (a whole
  annual cycle, so wet and dry seasons are both in it);
* **value**: the standardised anomaly ``z = (window - mean) / sd`` of those window totals,
  an SPI-style index with a normal instead of a gamma fit (a gamma fit needs decades of
  record; stations here hold one or a few years, and a z-score reads on the same scale:
  -1 moderately, -1.5 severely, -2 extremely dry). With a year or two of record the
  reference is the station's whole annual cycle, so the value says how dry the month was
  against a typical month there, which is what the canopy's water stress follows.

The alert's value is the mean over the stations that have one. It is reported (stored on
the alert) only when the alert falls in a dry spell, the rule being: the stations' window
rain is under ``DRY_MM_PER_DAY`` a day on average (60 mm in 30 days, the dry-month
threshold of Koppen's tropical climates: the leaf-off / dry season of a seasonal forest), or
the value is at most ``STRONGLY_NEGATIVE`` (a severe dry spell in a wetter month). The flag
is ``drought`` when the value is at most ``DROUGHT_Z`` (moderately dry or worse), else
``dry_season``. It never changes the alert's status or confidence: it is context for an
analyst.

Stored as compact JSON text: ``{"flag", "normal_mm", "percent_of_normal", "precip_mm",
"station_ids", "value", "window_days"}``; ``{}`` when the alert was checked and is not in a
dry spell (or no station near it has enough record); null when never checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

WINDOW_DAYS = 30
MIN_RECORD_DAYS = 365
MIN_COVERAGE = 0.9  # share of a window's days that must have readings
RADIUS_M = 25_000.0  # 30-day rain totals correlate over tens of km
DRY_MM_PER_DAY = 2.0
STRONGLY_NEGATIVE = -1.5
DROUGHT_Z = -1.0
FLAGS = ("drought", "dry_season")


@dataclass(frozen=True)
class StationAnomaly:
    station_id: str
    precip_mm: float  # the window's rain (scaled to the full window)
    normal_mm: float  # the mean of the reference windows
    sd_mm: float
    value: float  # (precip - normal) / sd


def window_totals(
    daily: pd.Series, window_days: int = WINDOW_DAYS, min_coverage: float = MIN_COVERAGE
) -> pd.Series:
    """Rain of each ``window_days``-day window ending on each day of the record (index: the
    end day), scaled up from the days reported; NaN where under ``min_coverage`` of them are.

    ``daily``: rain per day (mm), indexed by date; missing days are absent or NaN."""
    import pandas as pd

    days = pd.to_datetime(pd.Series(daily.index)).dt.normalize()
    series = pd.Series(daily.to_numpy(dtype=float), index=pd.DatetimeIndex(days)).sort_index()
    full = series.reindex(pd.date_range(series.index.min(), series.index.max(), freq="D"))
    reported = full.notna().astype(float).rolling(window_days, min_periods=window_days).sum()
    rain = full.fillna(0.0).rolling(window_days, min_periods=window_days).sum()
    scaled = rain * window_days / reported
    need = math.ceil(min_coverage * window_days - 1e-9)
    return scaled.where(reported >= need)


def station_anomaly(
    station_id: str,
    daily: pd.Series,
    day: date,
    *,
    window_days: int = WINDOW_DAYS,
    min_record_days: int = MIN_RECORD_DAYS,
    min_coverage: float = MIN_COVERAGE,
) -> StationAnomaly | None:
    """The station's anomaly for the window ending on ``day``; None when its record is
    shorter than ``min_record_days``, the window is not covered, or the reference does not
    vary."""
    import pandas as pd

    values = daily.dropna()
    if values.empty:
        return None
    index = pd.to_datetime(pd.Series(values.index))
    if (index.max() - index.min()).days + 1 < min_record_days:
        return None
    totals = window_totals(values, window_days, min_coverage)
    end = pd.Timestamp(day)
    if end not in totals.index or pd.isna(totals[end]):
        return None
    reference = totals.dropna()
    if len(reference) < 2:
        return None
    mean, sd = float(reference.mean()), float(reference.std(ddof=1))
    if not sd > 0:
        return None
    precip = float(totals[end])
    return StationAnomaly(station_id, precip, mean, sd, (precip - mean) / sd)


def drought_anomaly(
    stations: Iterable[StationAnomaly], window_days: int = WINDOW_DAYS
) -> dict[str, Any]:
    """The alert's ``drought_anomaly`` from its stations' anomalies: the report when the
    alert is in a dry spell (the module's rule), else ``{}``."""
    found = sorted(stations, key=lambda s: s.station_id)
    if not found:
        return {}
    value = sum(s.value for s in found) / len(found)
    precip = sum(s.precip_mm for s in found) / len(found)
    normal = sum(s.normal_mm for s in found) / len(found)
    dry_month = precip < DRY_MM_PER_DAY * window_days
    if not (dry_month or value <= STRONGLY_NEGATIVE):
        return {}
    return {
        "flag": "drought" if value <= DROUGHT_Z else "dry_season",
        "normal_mm": round(normal, 1),
        "percent_of_normal": round(100.0 * precip / normal) if normal > 0 else None,
        "precip_mm": round(precip, 1),
        "station_ids": [s.station_id for s in found],
        "value": round(value, 2),
        "window_days": window_days,
    }


def encode(report: Mapping[str, Any]) -> str:
    """The stored text: compact JSON, keys sorted."""
    return json.dumps(dict(report), sort_keys=True, separators=(",", ":"))


def anomalies_for(
    alerts: Sequence[tuple[str, datetime]],
    nearby: Mapping[str, Sequence[str]],
    daily: pd.DataFrame,
    *,
    window_days: int = WINDOW_DAYS,
    min_record_days: int = MIN_RECORD_DAYS,
) -> dict[str, str]:
    """Each alert's stored value: ``alerts`` (alert id, alert date), ``nearby`` (alert id ->
    station ids), ``daily`` (station_id, day, rain_mm: one row per station and reported
    day)."""
    import pandas as pd

    series: dict[str, pd.Series] = {
        str(station): group.set_index("day")["rain_mm"].astype(float)
        for station, group in daily.groupby("station_id")
    }
    out: dict[str, str] = {}
    for alert_id, alert_date in alerts:
        stamp = pd.Timestamp(alert_date)
        day = (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).date()
        found = []
        for station in nearby.get(alert_id, ()):
            if station not in series:
                continue
            anomaly = station_anomaly(
                station,
                series[station],
                day,
                window_days=window_days,
                min_record_days=min_record_days,
            )
            if anomaly is not None:
                found.append(anomaly)
        out[alert_id] = encode(drought_anomaly(found, window_days))
    return out


NEARBY_SQL = """
WITH stations AS (
    SELECT DISTINCT ON (station_id) station_id, geom
    FROM sensor_readings WHERE kind = 'weather'
    ORDER BY station_id, observed_at DESC
)
SELECT a.alert_id, s.station_id
FROM {alerts} AS a JOIN stations AS s
  ON ST_DWithin(a.geom::geography, s.geom::geography, %(radius_m)s)
ORDER BY a.alert_id, s.station_id
"""
DAILY_SQL = """
SELECT station_id, (observed_at AT TIME ZONE 'UTC')::date AS day, sum(rain_mm) AS rain_mm
FROM (
    SELECT DISTINCT ON (reading_id) station_id, observed_at, rain_mm
    FROM sensor_readings
    WHERE kind = 'weather' AND rain_mm IS NOT NULL AND station_id = ANY(%(stations)s)
    ORDER BY reading_id, kafka_partition, kafka_offset
) AS once
GROUP BY 1, 2 ORDER BY 1, 2
"""


def drought_postgis(
    conn: Any,
    alerts: Sequence[tuple[str, datetime]],
    scope: str = "alerts",
    params: Mapping[str, Any] | None = None,
    *,
    radius_m: float = RADIUS_M,
) -> dict[str, str]:
    """Each alert's ``drought_anomaly`` from the weather readings in PostGIS
    (``sensor_readings``; resends counted once). ``scope``: the alerts table or a
    parenthesised subquery with alert_id and geom, whose placeholders ``params`` fills."""
    import pandas as pd

    with conn.cursor() as cur:
        cur.execute(NEARBY_SQL.format(alerts=scope), {**(params or {}), "radius_m": radius_m})
        pairs = cur.fetchall()
    nearby: dict[str, list[str]] = {}
    for alert_id, station in pairs:
        nearby.setdefault(str(alert_id), []).append(str(station))
    stations = sorted({s for ids in nearby.values() for s in ids})
    rows: list[Any] = []
    if stations:
        with conn.cursor() as cur:
            cur.execute(DAILY_SQL, {"stations": stations})
            rows = cur.fetchall()
    daily = pd.DataFrame(rows, columns=["station_id", "day", "rain_mm"])
    return anomalies_for(alerts, nearby, daily)
