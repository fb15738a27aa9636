"""Catalog API and STAC items of simulated scenes; fields, sorting."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import mapping

from canopywatch.sentinel2 import SCL_BAND
from canopywatch_dev.cdse_emulator.config import CATALOG_PATH, COLLECTION_ID, STAC_PATH
from canopywatch_dev.cdse_emulator.errors import BadPayload
from canopywatch_dev.cdse_world import (
    Scene,
)

# ---------------------------------------------------------------- STAC items


def iso_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def scene_properties(scene: Scene) -> dict[str, Any]:
    grid = scene.area.grid
    properties: dict[str, Any] = {
        "datetime": iso_time(scene.datetime),
        "platform": scene.acquisition.platform,
        "instruments": ["msi"],
        "constellation": "sentinel-2",
        "gsd": 10,
        "eo:cloud_cover": round(scene.cloud_cover, 2),
        "proj:epsg": grid.crs.to_epsg(),
        "proj:bbox": list(grid.bounds),
        "grid:code": f"MGRS-{scene.mgrs_tile}",
        "processing:version": scene.processing_baseline,
    }
    if scene.relative_orbit is not None:
        properties["sat:relative_orbit"] = scene.relative_orbit
    return properties


def _safe_path(scene: Scene) -> str:
    day = scene.datetime.astimezone(UTC)
    return f"Sentinel-2/MSI/L2A/{day:%Y/%m/%d}/{scene.id}.SAFE"


def catalog_item(scene: Scene, base_url: str) -> dict[str, Any]:
    """A Sentinel Hub Catalog API item."""
    collection_url = f"{base_url}{CATALOG_PATH}/collections/{COLLECTION_ID}"
    return {
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
        ],
        "type": "Feature",
        "id": scene.id,
        "bbox": list(scene.area.footprint.bounds),
        "geometry": mapping(scene.area.footprint),
        "properties": scene_properties(scene),
        "assets": {
            "data": {
                "href": f"s3://EODATA/{_safe_path(scene)}",
                "title": "s3",
                "type": "inode/directory",
            },
        },
        "collection": COLLECTION_ID,
        "links": [
            {
                "href": f"{collection_url}/items/{scene.id}",
                "rel": "self",
                "type": "application/geo+json",
            },
            {"href": collection_url, "rel": "collection", "type": "application/json"},
            {"href": collection_url, "rel": "parent", "type": "application/json"},
            {"href": f"{base_url}{CATALOG_PATH}/", "rel": "root", "type": "application/json"},
        ],
    }


_STAC_ASSETS = (
    ("B02", 10),
    ("B03", 10),
    ("B04", 10),
    ("B08", 10),
    ("B11", 20),
    ("B12", 20),
    ("SCL", 20),
)


def stac_item(scene: Scene, base_url: str) -> dict[str, Any]:
    """A CDSE STAC v1 item with per-band JPEG2000 assets (hrefs are not downloadable here)."""
    grid = scene.area.grid
    assets: dict[str, Any] = {}
    for band, resolution in _STAC_ASSETS:
        key = f"{band}_{resolution}m"
        s3_href = f"s3://eodata/{_safe_path(scene)}/IMG_DATA/R{resolution}m/{key}.jp2"
        factor = resolution / 10
        asset: dict[str, Any] = {
            "href": s3_href,
            "type": "image/jp2",
            "roles": ["data"],
            "title": key,
            "proj:code": f"EPSG:{grid.crs.to_epsg()}",
            "proj:shape": [round(grid.height / factor), round(grid.width / factor)],
            "alternate": {
                "https": {
                    "href": f"https://zipper.dataspace.copernicus.eu/odata/v1/Products({scene.id})"
                    f"/Nodes({scene.id}.SAFE)/Nodes(IMG_DATA)/Nodes(R{resolution}m)/Nodes({key}.jp2)/$value",
                }
            },
        }
        if band != SCL_BAND:
            asset["raster:scale"] = 0.0001
            asset["raster:offset"] = -0.1
        assets[key] = asset
    stac_url = f"{base_url}{STAC_PATH}"
    properties = scene_properties(scene)
    properties["proj:code"] = f"EPSG:{grid.crs.to_epsg()}"
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": scene.id,
        "collection": COLLECTION_ID,
        "bbox": list(scene.area.footprint.bounds),
        "geometry": mapping(scene.area.footprint),
        "properties": properties,
        "assets": assets,
        "links": [
            {
                "rel": "self",
                "type": "application/geo+json",
                "href": f"{stac_url}/collections/{COLLECTION_ID}/items/{scene.id}",
            },
            {
                "rel": "collection",
                "type": "application/json",
                "href": f"{stac_url}/collections/{COLLECTION_ID}",
            },
            {"rel": "root", "type": "application/json", "href": f"{stac_url}/"},
        ],
    }


def apply_fields(item: dict[str, Any], fields: Any) -> dict[str, Any]:
    """The fields extension: dotted paths to include (plus id), then paths to exclude."""
    if not isinstance(fields, dict):
        return item
    include = [str(p) for p in fields.get("include") or []]
    exclude = [str(p) for p in fields.get("exclude") or []]
    result: dict[str, Any] = item
    if include:
        result = {"id": item["id"]}
        for path in include:
            _copy_path(item, result, path.split("."))
    for path in exclude:
        _drop_path(result, path.split("."))
    return result


def _copy_path(
    source: Mapping[str, Any], target: MutableMapping[str, Any], keys: list[str]
) -> None:
    head, rest = keys[0], keys[1:]
    if head not in source:
        return
    if not rest or not isinstance(source[head], dict):
        target[head] = source[head]
        return
    child = target.setdefault(head, {})
    _copy_path(source[head], child, rest)


def _drop_path(target: MutableMapping[str, Any], keys: list[str]) -> None:
    if len(keys) == 1:
        target.pop(keys[0], None)
    elif isinstance(target.get(keys[0]), dict):
        _drop_path(target[keys[0]], keys[1:])


def sort_scenes(scenes: list[Scene], sortby: Any) -> list[Scene]:
    """STAC ``sortby``; the default is newest first, as on the CDSE STAC service."""
    if sortby is None:
        return sorted(scenes, key=lambda s: (s.datetime, s.id), reverse=True)
    if not isinstance(sortby, list):
        raise BadPayload("sortby must be a list", "sortby", sortby)
    ordered = sorted(scenes, key=lambda s: s.id)
    for rule in reversed(sortby):
        if not isinstance(rule, dict):
            raise BadPayload("sortby entries need field and direction", "sortby", sortby)
        name = str(rule.get("field", "")).removeprefix("properties.")
        descending = str(rule.get("direction", "asc")).lower() == "desc"
        if name not in ("id", "datetime", "eo:cloud_cover", "platform", "grid:code"):
            raise BadPayload(f"Cannot sort by {name!r}", "sortby", sortby)
        ordered.sort(key=lambda scene: _sort_key(scene, name), reverse=descending)
    return ordered


def _sort_key(scene: Scene, name: str) -> Any:
    return scene.id if name == "id" else scene_properties(scene)[name]
