"""Scenes as STAC 1.1 Items with the eo (v2) and projection (v2) extensions.

Built from catalog rows (``queries.scenes_in``), so any pystac-based tool can read
what the catalog holds: ``pystac.Item.from_dict(scene_item(row))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from canopywatch.sentinel2 import MSI_BANDS

STAC_VERSION = "1.1.0"
EO_EXTENSION = "https://stac-extensions.github.io/eo/v2.0.0/schema.json"
PROJ_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
GEOTIFF = "image/tiff; application=geotiff"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"

_BAND_DESCRIPTIONS = {
    "SCL": "scene classification (Sen2Cor)",
    "dataMask": "1 where data is valid",
    "CLM": "cloud mask",
}


def band_object(name: str) -> dict[str, Any]:
    band: dict[str, Any] = {"name": name}
    common, wavelength = MSI_BANDS.get(name, (None, None))
    if common:
        band["eo:common_name"] = common
    if wavelength:
        band["eo:center_wavelength"] = wavelength
    if name in _BAND_DESCRIPTIONS:
        band["description"] = _BAND_DESCRIPTIONS[name]
    return band


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bounds(geometry: Mapping[str, Any]) -> list[float]:
    xs: list[float] = []
    ys: list[float] = []
    for ring in geometry["coordinates"]:
        for x, y in ring:
            xs.append(float(x))
            ys.append(float(y))
    return [min(xs), min(ys), max(xs), max(ys)]


def scene_item(scene: Mapping[str, Any], *, s3_href_base: str | None = None) -> dict[str, Any]:
    """One catalog scene row as a STAC Item dict.

    Asset hrefs are ``s3://bucket/key``, or ``<s3_href_base>/bucket/key`` (e.g. the MinIO
    endpoint) when given.
    """

    def href(key: str) -> str:
        if s3_href_base:
            return f"{s3_href_base.rstrip('/')}/{scene['bucket']}/{key}"
        return f"s3://{scene['bucket']}/{key}"

    bands = [band_object(b) for b in scene["bands"]]
    properties: dict[str, Any] = {
        "datetime": _iso(scene["acquired_at"]),
        "platform": "sentinel-2",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "proj:code": scene["crs"],
        "proj:shape": [int(scene["height"]), int(scene["width"])],
        "canopywatch:aoi_id": scene["aoi_id"],
        "canopywatch:function": scene["function"],
        "canopywatch:source": scene["source"],
        "canopywatch:geohash": scene["geohash"],
    }
    if scene.get("cloud_cover") is not None:
        properties["eo:cloud_cover"] = float(scene["cloud_cover"])
    assets: dict[str, Any] = {
        "raw": {
            "href": href(scene["raw_key"]),
            "type": GEOTIFF,
            "title": f"{scene['function']} GeoTIFF as downloaded",
            "roles": ["data"],
            "bands": bands,
        }
    }
    if scene.get("cog_key"):
        assets["cog"] = {
            "href": href(scene["cog_key"]),
            "type": COG,
            "title": "Cloud-Optimized GeoTIFF",
            "roles": ["data"],
            "bands": bands,
        }
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EO_EXTENSION, PROJ_EXTENSION],
        "id": scene["scene_id"],
        "geometry": scene["geometry"],
        "bbox": _bounds(scene["geometry"]),
        "properties": properties,
        "links": [],
        "assets": assets,
    }


def item_collection(
    scenes: Iterable[Mapping[str, Any]], *, s3_href_base: str | None = None
) -> dict[str, Any]:
    """A STAC ItemCollection (a GeoJSON FeatureCollection of Items)."""
    return {
        "type": "FeatureCollection",
        "features": [scene_item(s, s3_href_base=s3_href_base) for s in scenes],
    }
