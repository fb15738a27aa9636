"""Kafka message schemas (docs/architecture.md, "Kafka topics"), versioned, in one module.

Every message is JSON with ``schema_version`` and ``message_type``. Readers accept
any minor addition (unknown fields are ignored) and reject a newer major version
with a clear error, so an old consumer never misreads a new payload.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from canopywatch.alert_schema import Alert, confidence_level, method_of

SCHEMA_VERSION = 1

M = TypeVar("M", bound="Message")

Bounds = tuple[float, float, float, float]


class MessageError(ValueError):
    """A payload that is not a valid message of the expected type."""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    topic_name: ClassVar[str] = ""

    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value} is newer than this reader ({SCHEMA_VERSION}); "
                "upgrade canopywatch"
            )
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_bytes(self) -> bytes:
        return self.to_json().encode()

    @classmethod
    def from_json(cls: type[M], payload: str | bytes | None) -> M:
        if payload is None:
            raise MessageError(f"{cls.__name__}: empty message")
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
                for err in exc.errors()
            )
            raise MessageError(f"{cls.__name__}: {problems}") from exc


class DownloadRequest(Message):
    """Fetch one acquisition day over one request tile with a named evalscript."""

    topic_name: ClassVar[str] = "download-requests"
    message_type: Literal["DownloadRequest"] = "DownloadRequest"
    request_id: str
    aoi_id: str
    tile_id: str
    bbox: Bounds = Field(description="lon/lat bounds of the request tile")
    epsg: int
    utm_bounds: Bounds
    width: int = Field(gt=0, le=2500)
    height: int = Field(gt=0, le=2500)
    acquired_at: datetime
    time_from: datetime
    time_to: datetime
    collection: str = "sentinel-2-l2a"
    function: str
    max_cloud: float = Field(ge=0, le=100)
    resolution: float = Field(gt=0)
    cloud_cover: float | None = None
    product_ids: list[str] = Field(default_factory=list)
    run_id: str | None = None

    @property
    def key(self) -> str:
        return self.request_id


class SceneDownloaded(Message):
    topic_name: ClassVar[str] = "scenes-downloaded"
    message_type: Literal["SceneDownloaded"] = "SceneDownloaded"
    scene_id: str
    request_id: str
    aoi_id: str
    source: str
    function: str
    raw_key: str
    bucket: str
    bbox: Bounds
    footprint: dict[str, Any]
    geohash: str
    acquired_at: datetime
    crs: str
    shape: tuple[int, int]
    bands: list[str]
    cloud_cover: float | None = None
    checksum: str
    size_bytes: int
    skipped: bool = False

    @property
    def key(self) -> str:
        return self.scene_id


class SceneConverted(Message):
    topic_name: ClassVar[str] = "scenes-converted"
    message_type: Literal["SceneConverted"] = "SceneConverted"
    scene_id: str
    cog_key: str
    valid: bool
    validation_errors: list[str] = Field(default_factory=list)
    validation_warnings: list[str] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return self.scene_id


class AlertPublished(Message, Alert):
    """One alert with every field of the alert schema (``canopywatch.alert_schema``).

    A payload written before ``confidence_level``, ``status`` and ``method`` existed
    still reads: the level and status follow from the score, the method from the version.
    """

    topic_name: ClassVar[str] = "alerts"
    message_type: Literal["AlertPublished"] = "AlertPublished"

    @model_validator(mode="before")
    @classmethod
    def _earlier_payload(cls, data: Any) -> Any:
        if isinstance(data, dict) and "confidence" in data:
            data = dict(data)
            level = data.get("confidence_level")
            if level is None and isinstance(data["confidence"], int | float):
                level = data["confidence_level"] = confidence_level(float(data["confidence"]))
            data.setdefault("status", level)
            if "method" not in data and isinstance(data.get("model_version"), str):
                data["method"] = method_of(data["model_version"])
        return data

    @property
    def key(self) -> str:
        return self.alert_id


SensorKind = Literal["weather", "soil_moisture", "acoustic", "patrol_gps", "fire_hotspot"]
AcousticEvent = Literal["chainsaw", "gunshot", "vehicle"]
SENSOR_KINDS: tuple[str, ...] = (
    "weather",
    "soil_moisture",
    "acoustic",
    "patrol_gps",
    "fire_hotspot",
)
# the fields each kind must carry (others stay null)
SENSOR_FIELDS: dict[str, tuple[str, ...]] = {
    "weather": ("rain_mm", "temperature_c", "humidity_pct"),
    "soil_moisture": ("soil_moisture_pct",),
    "acoustic": ("event", "score"),
    "patrol_gps": ("track_id",),
    "fire_hotspot": ("frp_mw", "fire_confidence", "instrument", "satellite"),
}


class SensorReading(Message):
    """One reading of a ground sensor, a patrol GPS fix or a satellite fire hotspot.

    Keyed by ``station_id`` (the Kafka key), so one station's readings stay in order on
    one partition. ``reading_id`` is derived from the station, kind, observation time and
    the event, so a duplicate (a resend, a replayed file) carries the same id. Values are
    physically possible ones only (a sensor saying 80 °C or 130 % humidity is rejected);
    plausibility for the region is flagged downstream (dbt ``stg_sensors``). Times are UTC.
    """

    topic_name: ClassVar[str] = "sensor-readings"
    message_type: Literal["SensorReading"] = "SensorReading"
    reading_id: str = ""
    station_id: str = Field(min_length=1, max_length=128)
    kind: SensorKind
    observed_at: datetime
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    source: str = "station"
    # weather
    rain_mm: float | None = Field(default=None, ge=0, le=500)
    temperature_c: float | None = Field(default=None, ge=-90, le=60)
    humidity_pct: float | None = Field(default=None, ge=0, le=100)
    # soil moisture (volumetric water content)
    soil_moisture_pct: float | None = Field(default=None, ge=0, le=100)
    # acoustic detector
    event: AcousticEvent | None = None
    score: float | None = Field(default=None, ge=0, le=1)
    # patrol GPS
    track_id: str | None = None
    # active-fire hotspot (FIRMS): fire radiative power, confidence as published
    # (VIIRS l/n/h, MODIS 0-100), brightness temperature (VIIRS I4 / MODIS 21), sensor
    frp_mw: float | None = Field(default=None, ge=0)
    fire_confidence: str | None = None
    brightness_k: float | None = Field(default=None, ge=0, le=600)
    instrument: str | None = None
    satellite: str | None = None
    daynight: Literal["D", "N"] | None = None

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("observed_at needs a time zone (UTC), e.g. 2024-03-01T10:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _kind_fields(self) -> SensorReading:
        missing = [name for name in SENSOR_FIELDS[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} reading needs {', '.join(missing)}")
        if not self.reading_id:
            ident = stable_id(
                self.station_id,
                self.kind,
                self.observed_at.isoformat(),
                self.event or self.track_id or "",
            )
            object.__setattr__(self, "reading_id", ident)
        return self

    @property
    def key(self) -> str:
        return self.station_id


class DeadLetter(Message):
    """A message that could not be processed, with the reason, for ``<topic>.dlq``."""

    message_type: Literal["DeadLetter"] = "DeadLetter"
    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    error: str
    payload: str
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def stable_id(*parts: object, length: int = 16) -> str:
    """A short deterministic id from its parts, so re-runs produce the same ids."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"
