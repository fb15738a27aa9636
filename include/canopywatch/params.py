"""The DAGs' trigger forms: param schemas that explain themselves, and reading a run's area.

The DAG files build their ``Param`` s from these JSON-schema pieces (this module does not
import Airflow), so every form says the same thing the same way:

- the area as a ``"min_lon,min_lat,max_lon,max_lat"`` string, a JSON list of four
  numbers, or the four number fields ``min_lon`` ... ``max_lat`` (:func:`bbox_schema`,
  :func:`corner_schemas`); :func:`run_area` turns any of them into one ``bbox`` list and
  refuses half-filled corners, NaN/Infinity and out-of-range values with a readable line;
- every choice explained (``values_display``): :data:`FUNCTION_CHOICES`,
  :data:`METHOD_CHOICES`, :data:`PROFILE_CHOICES`;
- dates: a manual run of ``deforestation_monitor`` with a bbox needs ``start`` and
  ``end`` (:func:`require_dates`); scheduled runs use their data interval, as the form says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from canopywatch.geo import parse_bbox

_NUMBER = r"-?\d+(\.\d+)?"
BBOX_PATTERN = rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*$"
CORNERS: tuple[tuple[str, str, float], ...] = (
    ("min_lon", "West edge (min longitude)", 180.0),
    ("min_lat", "South edge (min latitude)", 90.0),
    ("max_lon", "East edge (max longitude)", 180.0),
    ("max_lat", "North edge (max latitude)", 90.0),
)
CORNER_SECTION = "Area as four numbers (instead of the bbox)"

FUNCTION_CHOICES: dict[str, str] = {
    "s2l2a_bands": "s2l2a_bands: B02 B03 B04 B08 B11 B12 (harmonized DN), SCL, dataMask "
    "(UINT16) - what change detection needs",
    "true_color": "true_color: red, green, blue with 2.5 gain and alpha (UINT8) - for viewing",
    "ndvi": "ndvi: (B08 - B04) / (B08 + B04) and dataMask (FLOAT32, twice the processing units)",
}
METHOD_CHOICES: dict[str, str] = {
    "harmonic": "harmonic (default): season-aware per-pixel history, as `canopywatch detect`",
    "baseline": "baseline: the earlier statistical detector (more false alerts in seasonal forest)",
    "xgboost": "xgboost: the trained model in ml/models/s2 (run deforestation_model_training "
    "first)",
}
PROFILE_CHOICES: dict[str, str] = {
    "canopywatch-deflate": "canopywatch-deflate (default): DEFLATE level 6, read by every GDAL, "
    "QGIS and browser COG reader",
    "canopywatch-zstd": "canopywatch-zstd: ZSTD level 9, smaller and faster; readers need GDAL "
    ">= 2.3 with ZSTD",
}


class ParamsError(ValueError):
    """Trigger params that cannot be used; the message is meant for the person triggering."""


def bbox_schema(empty_means: str) -> dict[str, Any]:
    """``Param`` keywords of a bbox typed as text ``"min_lon,min_lat,max_lon,max_lat"``
    or as a JSON list of four numbers; empty means ``empty_means``."""
    return {
        "type": ["null", "string", "array"],
        "pattern": BBOX_PATTERN,
        "items": {"type": "number", "minimum": -180, "maximum": 180},
        "minItems": 4,
        "maxItems": 4,
        "title": "Bounding box",
        "description": "min_lon,min_lat,max_lon,max_lat in degrees (EPSG:4326), typed as four "
        "numbers, e.g. -55.40,-7.10,-55.35,-7.05 (a JSON list [-55.40, -7.10, -55.35, -7.05] "
        f"works too), or use the four fields below. Empty: {empty_means}.",
    }


def corner_schemas() -> dict[str, dict[str, Any]]:
    """``Param`` keywords of the four number fields that may replace the bbox."""
    return {
        name: {
            "type": ["null", "number"],
            "minimum": -limit,
            "maximum": limit,
            "title": title,
            "description": f"degrees, -{limit:.0f} to {limit:.0f}; fill all four fields or none "
            "(used only when the bbox is empty)",
            "section": CORNER_SECTION,
        }
        for name, title, limit in CORNERS
    }


def choices_schema(choices: Mapping[str, str], title: str, description: str) -> dict[str, Any]:
    """``Param`` keywords of a choice whose every value is explained in the form."""
    return {
        "type": "string",
        "enum": list(choices),
        "values_display": dict(choices),
        "title": title,
        "description": description + " " + "; ".join(choices.values()) + ".",
    }


def run_area(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params with the area as one ``bbox`` list (or None) and the corners removed.

    ``bbox`` may be a "minx,miny,maxx,maxy" string, JSON text or a list; or the four
    corner fields are all given. Half-filled corners, a bbox and different corners,
    and non-finite numbers are refused.
    """
    out = {k: v for k, v in params.items() if k not in {name for name, _, _ in CORNERS}}
    corners = {name: params.get(name) for name, _, _ in CORNERS}
    given = {k: v for k, v in corners.items() if v is not None and v != ""}
    raw = params.get("bbox")
    bbox = None if raw is None or raw == "" or raw == [] else raw
    if given and len(given) < len(CORNERS):
        missing = ", ".join(k for k in corners if k not in given)
        raise ParamsError(f"fill all four area fields or none: {missing} missing")
    from_corners = None
    if given:
        numbers = [_finite(name, given[name]) for name, _, _ in CORNERS]
        from_corners = list(parse_bbox(numbers).as_tuple())
    if bbox is not None:
        if isinstance(bbox, list | tuple):
            for index, value in enumerate(bbox):
                _finite(f"bbox[{index}]", value)
        box = list(parse_bbox(bbox).as_tuple())
        if from_corners is not None and from_corners != box:
            raise ParamsError(
                f"give the area once: bbox {box} and the four fields {from_corners} differ"
            )
        out["bbox"] = box
    else:
        out["bbox"] = from_corners
    return out


def require_dates(params: Mapping[str, Any]) -> None:
    """A run for a given area needs its time range: refuse empty dates with a bbox."""
    if params.get("bbox") is None:
        return
    missing = [name for name in ("start", "end") if not params.get(name)]
    if missing:
        raise ParamsError(
            f"{' and '.join(missing)} missing: a run for a bbox needs start and end dates "
            "(e.g. 2024-01-01 and 2024-03-31); only scheduled runs of registered areas use "
            "their data interval"
        )


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParamsError(f"{name} must be a number of degrees, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParamsError(f"{name} must be a number of degrees, got {value!r}") from None
    if not math.isfinite(number):
        raise ParamsError(f"{name} must be a finite number of degrees, got {value!r}")
    return number
