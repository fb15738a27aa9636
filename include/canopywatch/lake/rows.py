"""Kafka messages -> Delta rows: pure conversions, one per table.

A message that parses but cannot become a row (a footprint that is not a valid
polygon, a key off the layout) raises ``RowError``; the consumer dead-letters it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import shape

from canopywatch.alert_schema import ATTRIBUTE_NAMES
from canopywatch.geo import geohash
from canopywatch.lake.tables import ALERT_GEOMETRY_COLUMN, PARTITION_GEOHASH_CHARS
from canopywatch.layout import LayoutError, parse_key
from canopywatch.messages import AlertPublished, SceneConverted, SceneDownloaded


class RowError(ValueError):
    """A valid message whose content cannot be stored (the reason is for people)."""


@dataclass(frozen=True)
class Provenance:
    topic: str | None
    partition: int | None
    offset: int | None
    ingested_at: datetime

    def columns(self, schema_version: int) -> dict[str, Any]:
        return {
            "kafka_topic": self.topic,
            "kafka_partition": self.partition,
            "kafka_offset": self.offset,
            "schema_version": schema_version,
            "ingested_at": self.ingested_at,
        }


def partition_values(ghash: str, moment: datetime) -> dict[str, str]:
    return {
        "geohash_prefix": ghash[:PARTITION_GEOHASH_CHARS],
        "month": moment.astimezone(UTC).strftime("%Y-%m"),
    }


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _checked_geometry(geojson: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> Any:
    try:
        geometry = shape(geojson)
    except Exception as exc:
        raise RowError(f"{what} is not a GeoJSON geometry: {exc}") from exc
    if geometry.geom_type not in allowed:
        raise RowError(f"{what} must be a {' or '.join(allowed)}, got {geometry.geom_type}")
    if geometry.is_empty or not geometry.is_valid:
        raise RowError(f"{what} is empty or self-intersecting")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise RowError(f"{what} is outside lon/lat bounds: {geometry.bounds}")
    return geometry


def scene_raw_row(message: SceneDownloaded, provenance: Provenance) -> dict[str, Any]:
    _checked_geometry(message.footprint, ("Polygon",), "footprint")
    acquired_at = _utc(message.acquired_at)
    height, width = message.shape
    minx, miny, maxx, maxy = message.bbox
    return {
        "scene_id": message.scene_id,
        "request_id": message.request_id,
        "aoi_id": message.aoi_id,
        "source": message.source,
        "function": message.function,
        "bucket": message.bucket,
        "raw_key": message.raw_key,
        "geohash": message.geohash,
        "acquired_at": acquired_at,
        "bbox_min_lon": float(minx),
        "bbox_min_lat": float(miny),
        "bbox_max_lon": float(maxx),
        "bbox_max_lat": float(maxy),
        "footprint_geojson": json.dumps(message.footprint, separators=(",", ":")),
        "crs": message.crs,
        "height": int(height),
        "width": int(width),
        "bands": list(message.bands),
        "cloud_cover": message.cloud_cover,
        "checksum": message.checksum,
        "size_bytes": int(message.size_bytes),
        **provenance.columns(message.schema_version),
        **partition_values(message.geohash, acquired_at),
    }


def scene_cog_row(message: SceneConverted, provenance: Provenance) -> dict[str, Any]:
    try:
        key = parse_key(message.cog_key)  # the key carries the geohash and acquisition time
    except LayoutError as exc:
        raise RowError(f"cog_key: {exc}") from exc
    return {
        "scene_id": message.scene_id,
        "cog_key": message.cog_key,
        "geohash": key.geohash,
        "acquired_at": key.acquired_at,
        "valid": message.valid,
        "validation_errors": list(message.validation_errors),
        "validation_warnings": list(message.validation_warnings),
        **provenance.columns(message.schema_version),
        **partition_values(key.geohash, key.acquired_at),
    }


def alert_row(
    message: AlertPublished, provenance: Provenance, geohash_precision: int = 5
) -> dict[str, Any]:
    geometry = _checked_geometry(message.geometry, ("Polygon", "MultiPolygon"), "alert geometry")
    centre = geometry.representative_point()
    ghash = geohash(centre.y, centre.x, geohash_precision)
    alert_date = _utc(message.alert_date)
    return {
        **{name: getattr(message, name) for name in ATTRIBUTE_NAMES},
        "alert_date": alert_date,
        "confirmed_date": _utc(message.confirmed_date) if message.confirmed_date else None,
        "confidence": float(message.confidence),
        "area_ha": float(message.area_ha),
        ALERT_GEOMETRY_COLUMN: json.dumps(message.geometry, separators=(",", ":")),
        "geohash": ghash,
        **provenance.columns(message.schema_version),
        **partition_values(ghash, alert_date),
    }
