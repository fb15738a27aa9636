"""The alert schema (docs/architecture.md, "The alert schema"), defined once.

The fields an alert has everywhere: the Kafka ``AlertPublished`` message, the Delta
``alerts`` table, the PostGIS ``alerts`` table, every GeoPackage export (the per-area files
and the run file) and the ``canopywatch alerts`` listing. Each of those builds its columns
from ``ALERT_FIELDS``; only the storage of the geometry differs (GeoJSON text
``geometry_geojson`` in Delta, ``geom geometry(MultiPolygon, 4326)`` in PostGIS, the
layer geometry in a GeoPackage).

Pure Python and pydantic: no geospatial libraries at import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationInfo, field_validator

ConfidenceLevel = Literal["low", "high"]
Status = Literal["low", "high", "withdrawn", "plantation_harvest"]
FieldKind = Literal["text", "datetime", "float", "geometry"]

CONFIDENCE_LEVELS: tuple[str, ...] = get_args(ConfidenceLevel)
STATUSES: tuple[str, ...] = get_args(Status)
# deforestation alerts; the other statuses are other changes (the series came back, or it
# was cut and regrew like a plantation)
ACTIVE_STATUSES: tuple[str, ...] = ("low", "high")
HIGH_CONFIDENCE = 0.8  # a score at or above this is high confidence
GEOMETRY_TYPE = "MultiPolygon"
CRS = "EPSG:4326"


@dataclass(frozen=True)
class AlertField:
    name: str
    kind: FieldKind
    required: bool
    description: str


ALERT_FIELDS: tuple[AlertField, ...] = (
    AlertField("alert_id", "text", True, "stable id: a re-run or a later week updates, never duplicates"),
    AlertField("aoi_id", "text", True, "the monitored area"),
    AlertField("alert_date", "datetime", True, "first anomalous clear observation (UTC)"),
    AlertField("confirmed_date", "datetime", False, "the observation that confirmed it (UTC)"),
    AlertField("confidence", "float", True, "the detector's score, 0..1 (with --confidence xgboost: the candidate scorer's)"),
    AlertField("confidence_level", "text", True, "low / high (score >= 0.8)"),
    AlertField("status", "text", True, "low / high / withdrawn / plantation_harvest"),
    AlertField("area_ha", "float", True, "polygon area, hectares"),
    AlertField("method", "text", True, "the detector: harmonic, baseline, xgboost"),
    AlertField("model_version", "text", True, "model or parameter version"),
    AlertField("corroborated_by", "text", False, "sensor evidence that backs it: acoustic,fire,patrol (sorted); '': none; null: unchecked"),
    AlertField("evidence_ids", "text", False, 'JSON {kind: [evidence ids]} of corroborated_by\'s kinds (reading ids; patrol: track ids); {}: none; null: unchecked'),
    AlertField("drought_anomaly", "text", False, "JSON: the rain anomaly before a leaf-off / dry-spell alert (value, window_days, station_ids, flag, ...); {}: none; null: unchecked"),
    AlertField("geometry", "geometry", True, "the outline, MultiPolygon EPSG:4326"),
)  # fmt: skip
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in ALERT_FIELDS)
ATTRIBUTES: tuple[AlertField, ...] = tuple(f for f in ALERT_FIELDS if f.kind != "geometry")
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(f.name for f in ATTRIBUTES)
DATETIME_FIELDS: tuple[str, ...] = tuple(f.name for f in ALERT_FIELDS if f.kind == "datetime")

# the versions of the detectors (``canopywatch.detect.detector``) start with these
_METHOD_PREFIXES = {"harmonic": "harmonic", "baseline": "baseline", "xgb": "xgboost"}


class Alert(BaseModel):
    """One alert with every field of the schema (geometry: a GeoJSON mapping, EPSG:4326)."""

    alert_id: str = Field(min_length=1)
    aoi_id: str = Field(min_length=1)
    alert_date: datetime
    confirmed_date: datetime | None = None
    confidence: float = Field(ge=0, le=1)
    confidence_level: ConfidenceLevel
    status: Status
    area_ha: float = Field(ge=0)
    method: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    corroborated_by: str | None = None
    evidence_ids: str | None = None
    drought_anomaly: str | None = None
    geometry: dict[str, Any]

    @field_validator("evidence_ids", "drought_anomaly", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: ValidationInfo) -> Any:
        """A mapping is stored as compact JSON text; text must be a JSON object."""
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
        if not isinstance(value, str):
            return value  # pydantic reports the type
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{info.field_name} is not JSON: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{info.field_name} must be a JSON object")
        if info.field_name == "evidence_ids" and not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            for ids in parsed.values()
        ):
            raise ValueError("evidence_ids must map each kind to a list of id strings")
        return value


def confidence_level(score: float) -> str:
    """``high`` from ``HIGH_CONFIDENCE`` up, else ``low``."""
    return "high" if score >= HIGH_CONFIDENCE else "low"


def method_of(model_version: str) -> str:
    """The detector a model version belongs to (``harmonic-v1`` -> ``harmonic``,
    ``xgb-<hash>`` -> ``xgboost``); an unknown version gives its first word."""
    head = model_version.split("-", 1)[0]
    return _METHOD_PREFIXES.get(head, head or "unknown")
