"""An area's outline: a bbox or a GeoJSON (Multi)Polygon in EPSG:4326, its ``crs`` honoured.

``parse_area`` reads what a user gives for an area: four numbers (a box), or GeoJSON
(a Polygon or MultiPolygon geometry, a Feature or a FeatureCollection of them, merged).
A GeoJSON ``crs`` member (the 2008 GeoJSON form ``{"type": "name", "properties":
{"name": "EPSG:32721"}}`` or an ``urn:ogc:def:crs:...`` name) is honoured: the coordinates
are transformed to lon/lat; a ``crs`` that cannot be read (a ``link``, an unknown name)
is refused, never ignored. Points and lines are refused (an area has a surface), and so
are self-intersecting rings, with the reason.

The outline is kept as a MultiPolygon: stored in PostGIS, used to skip request tiles
that do not touch it, and to clip an area's alerts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.ops import transform, unary_union
from shapely.validation import explain_validity

from canopywatch.geo import BBox, BBoxError, parse_bbox

LONLAT_NAMES = {
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:ogc::crs84",
    "crs84",
    "ogc:crs84",
    "epsg:4326",
    "urn:ogc:def:crs:epsg::4326",
    "urn:ogc:def:crs:epsg:4326",
}
_AREA_TYPES = {"Polygon", "MultiPolygon"}


@dataclass(frozen=True)
class AreaGeometry:
    """An area's outline in lon/lat and its bounds."""

    geometry: MultiPolygon

    @property
    def bbox(self) -> BBox:
        return BBox(*(float(v) for v in self.geometry.bounds))

    @property
    def is_box(self) -> bool:
        """True when the outline is its own bounding box (nothing to clip)."""
        return bool(self.geometry.equals(box(*self.geometry.bounds)))

    def to_geojson(self) -> dict[str, Any]:
        """GeoJSON with lists (JSON-equal after a round trip through XCom or a file)."""
        document: dict[str, Any] = json.loads(json.dumps(mapping(self.geometry)))
        return document

    def intersects(self, bounds: BBox) -> bool:
        return bool(self.geometry.intersects(box(*bounds.as_tuple())))


def from_bbox(bbox: BBox) -> AreaGeometry:
    return AreaGeometry(MultiPolygon([box(*bbox.as_tuple())]))


def parse_area(value: Any) -> AreaGeometry:
    """An area from a bbox (numbers or text) or GeoJSON (text or a mapping)."""
    if isinstance(value, AreaGeometry):
        return value
    if isinstance(value, BBox):
        return from_bbox(value)
    if isinstance(value, str) and value.strip()[:1] == "{":
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise BBoxError(f"area is not valid JSON: {exc.msg}") from exc
    if isinstance(value, Mapping):
        return from_geojson(value)
    return from_bbox(parse_bbox(value))


def _crs_name(document: Mapping[str, Any]) -> str | None:
    crs = document.get("crs")
    if crs is None:
        return None
    if not isinstance(crs, Mapping) or crs.get("type") != "name":
        raise BBoxError(
            f"GeoJSON crs {json.dumps(crs)[:80]} is not readable: only a named crs "
            '({"type": "name", "properties": {"name": "EPSG:32721"}}) is supported; '
            "or give lon/lat coordinates without a crs"
        )
    name = (crs.get("properties") or {}).get("name")
    if not isinstance(name, str) or not name.strip():
        raise BBoxError("GeoJSON crs has no properties.name")
    return name.strip()


def _to_lonlat(name: str) -> Transformer | None:
    """None for lon/lat names, else the transformer of the named CRS to EPSG:4326."""
    if name.lower() in LONLAT_NAMES:
        return None
    try:
        source = CRS.from_user_input(name)
    except CRSError:
        raise BBoxError(
            f"GeoJSON crs {name!r} is not a known coordinate reference system"
        ) from None
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    return Transformer.from_crs(source, 4326, always_xy=True)


def _surfaces(obj: Any) -> list[Any]:
    if not isinstance(obj, Mapping):
        raise BBoxError("GeoJSON input must be an object")
    kind = obj.get("type")
    if kind == "FeatureCollection":
        features = obj.get("features") or []
        if not isinstance(features, Sequence) or not features:
            raise BBoxError("GeoJSON FeatureCollection has no features")
        return [g for feature in features for g in _surfaces(feature)]
    if kind == "Feature":
        if obj.get("geometry") is None:
            raise BBoxError("GeoJSON Feature has no geometry")
        return _surfaces(obj["geometry"])
    if kind == "GeometryCollection":
        return [g for geometry in obj.get("geometries") or [] for g in _surfaces(geometry)]
    if kind not in _AREA_TYPES:
        raise BBoxError(
            f"an area must be a Polygon or MultiPolygon, got {kind!r} (a bbox or an outline)"
        )
    try:
        geometry = shape(obj)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException) as exc:
        raise BBoxError(f"GeoJSON {kind} has unreadable coordinates ({exc})") from None
    return [geometry]


def from_geojson(document: Mapping[str, Any]) -> AreaGeometry:
    """A GeoJSON (Multi)Polygon, Feature or FeatureCollection; its ``crs`` honoured."""
    name = _crs_name(document)
    parts = _surfaces(document)
    if not parts:
        raise BBoxError("GeoJSON input has no Polygon or MultiPolygon")
    for part in parts:
        coords = shapely.get_coordinates(part)
        if coords.size == 0 or not all(math.isfinite(float(v)) for v in coords.ravel()):
            raise BBoxError("GeoJSON coordinates must be finite numbers")
        if not part.is_valid:
            raise BBoxError(f"GeoJSON polygon is not valid: {explain_validity(part)}")
    transformer = _to_lonlat(name) if name else None
    if transformer is not None:
        parts = [transform(transformer.transform, p) for p in parts]
    merged = unary_union(parts)
    if isinstance(merged, Polygon):
        merged = MultiPolygon([merged])
    if not isinstance(merged, MultiPolygon) or merged.is_empty or merged.area == 0:
        raise BBoxError("GeoJSON area has no surface")
    outline = AreaGeometry(merged)
    _ = outline.bbox  # lon/lat ranges checked by BBox: a crs mix-up shows here
    return outline


def _polygonal(geometry: Any) -> Any:
    """The polygon part of an intersection (a GeometryCollection can hold edges and points)."""
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in _AREA_TYPES:
        return geometry
    parts = [g for g in getattr(geometry, "geoms", ()) if g.geom_type in _AREA_TYPES]
    return unary_union(parts) if parts else None


def clip_alerts(frame: Any, outline: AreaGeometry, *, min_ha: float = 0.1) -> Any:
    """Alerts (a GeoDataFrame in any CRS, with ``area_ha``) cut to the area's outline: those
    outside dropped, those across its edge clipped and measured again (then dropped when
    below ``min_ha``, the minimum mapping unit). Ids and every other column are kept."""
    import geopandas as gpd

    if len(frame) == 0 or outline.is_box:
        return frame
    shape_in_crs = gpd.GeoSeries([outline.geometry], crs=4326).to_crs(frame.crs).iloc[0]
    inside = frame[frame.intersects(shape_in_crs)].copy()
    if len(inside) == 0:
        return inside
    inside["geometry"] = [_polygonal(g.intersection(shape_in_crs)) for g in inside.geometry]
    inside = inside[inside.geometry.notna()]
    measured = inside if inside.crs.is_projected else inside.to_crs(inside.estimate_utm_crs())
    inside["area_ha"] = (measured.geometry.area / 10_000.0).round(4).to_numpy()
    return inside[inside["area_ha"] >= min_ha]
