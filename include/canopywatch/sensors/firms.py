"""Active-fire hotspots in NASA FIRMS' public CSV format (VIIRS 375 m and MODIS 1 km).

VIIRS columns: ``latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,
instrument,confidence,version,bright_ti5,frp,daynight``; MODIS has ``brightness`` and
``bright_t31`` instead of ``bright_ti4``/``bright_ti5`` and a 0-100 confidence (VIIRS:
``l``/``n``/``h``). ``acq_date`` is ``YYYY-MM-DD`` and ``acq_time`` ``HHMM`` in UTC
(leading zeros are often dropped: ``142`` is 01:42). The "station" of a hotspot is its
instrument and satellite, e.g. ``firms-viirs-n20``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

REQUIRED = ("latitude", "longitude", "acq_date", "acq_time", "satellite", "confidence", "frp")
VIIRS_CONFIDENCE = {"l": "low", "n": "nominal", "h": "high"}


def is_firms_header(columns: list[str]) -> bool:
    return set(REQUIRED) <= {c.strip().lower() for c in columns}


def acquisition_time(acq_date: str, acq_time: str) -> datetime:
    hhmm = acq_time.strip()
    if not hhmm.isdigit() or len(hhmm) > 4:
        raise ValueError(f"acq_time {acq_time!r} is not HHMM")
    hhmm = hhmm.zfill(4)
    day = datetime.strptime(acq_date.strip(), "%Y-%m-%d")
    return day.replace(hour=int(hhmm[:2]), minute=int(hhmm[2:]), tzinfo=UTC)


def confidence_label(value: str, instrument: str) -> str:
    """VIIRS ``l/n/h`` or MODIS 0-100, as ``low``/``nominal``/``high`` (MODIS: <30, <80)."""
    text = value.strip().lower()
    if text in VIIRS_CONFIDENCE:
        return VIIRS_CONFIDENCE[text]
    if text in VIIRS_CONFIDENCE.values():
        return text
    try:
        number = float(text)
    except ValueError:
        raise ValueError(
            f"confidence {value!r} is neither l/n/h (VIIRS) nor 0-100 (MODIS)"
        ) from None
    if not 0 <= number <= 100:
        raise ValueError(f"confidence {value!r} outside 0-100")
    return "low" if number < 30 else "nominal" if number < 80 else "high"


def firms_fields(row: dict[str, str]) -> dict[str, Any]:
    """One FIRMS CSV row as SensorReading fields (raises ValueError on a bad row)."""
    row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
    missing = [c for c in REQUIRED if not row.get(c)]
    if missing:
        raise ValueError(f"FIRMS row lacks {', '.join(missing)}")
    instrument = (row.get("instrument") or ("MODIS" if "brightness" in row else "VIIRS")).upper()
    satellite = row["satellite"]
    brightness = row.get("bright_ti4") or row.get("brightness") or ""
    daynight = row.get("daynight") or None
    return {
        "station_id": f"firms-{instrument.lower()}-{satellite.lower()}",
        "kind": "fire_hotspot",
        "source": f"firms-{instrument.lower()}",
        "observed_at": acquisition_time(row["acq_date"], row["acq_time"]),
        "lon": float(row["longitude"]),
        "lat": float(row["latitude"]),
        "frp_mw": float(row["frp"]),
        "fire_confidence": confidence_label(row["confidence"], instrument),
        "brightness_k": float(brightness) if brightness else None,
        "instrument": instrument,
        "satellite": satellite,
        "daynight": daynight,
    }
