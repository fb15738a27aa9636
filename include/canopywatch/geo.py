"""Areas of interest: bounding boxes, GeoJSON input, geohash, UTM zones and request tiles,
and ``Grid``, the one raster-grid type (the detector's, the labels', the local endpoint's).

A user gives a lon/lat bounding box (or a GeoJSON geometry); the Process API takes
at most 2500 px a side, so an area is cut into request tiles on a 10 m grid in the
UTM zone of its centre.

sentinelhub's own helpers were weighed for this (issue 14): ``get_utm_crs`` applies the same
zone rule as ``utm_epsg`` (both from the ``utm`` package; a test checks they agree, Norway and
Svalbard included), but importing sentinelhub here would load it in every DAG parse.
``UtmZoneSplitter`` cuts an area into fixed-size boxes on a grid per UTM zone (an area across
a zone edge gets boxes in both zones, partly outside the area); the tiles here are equal cuts of
the area's own snapped box in one zone, at most ``max_px`` a side, and their bounds are part of
every stored object key (``bbox_...``), so changing the cut would re-download stored scenes.
``bbox_to_dimensions`` gives the pixel size of a lon/lat box; ``split_into_tiles`` computes the
same from the snapped UTM box it already has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from affine import Affine
from pyproj import Geod, Transformer

if TYPE_CHECKING:
    import rasterio.crs
    from rasterio.windows import Window

GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
_GEOD = Geod(ellps="WGS84")


class BBoxError(ValueError):
    """A bounding box or geometry that cannot be used; the message is meant for users."""


@dataclass(frozen=True)
class BBox:
    """A lon/lat (EPSG:4326) bounding box."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    def __post_init__(self) -> None:
        for name, value in zip(("minx", "miny", "maxx", "maxy"), self.as_tuple(), strict=True):
            if not math.isfinite(value):
                raise BBoxError(f"bbox {name} must be a finite number, got {value!r}")
        for name, value in (("minx", self.minx), ("maxx", self.maxx)):
            if not -180.0 <= value <= 180.0:
                raise BBoxError(f"bbox {name}={value} is not a longitude in [-180, 180]")
        for name, value in (("miny", self.miny), ("maxy", self.maxy)):
            if not -90.0 <= value <= 90.0:
                raise BBoxError(f"bbox {name}={value} is not a latitude in [-90, 90]")
        if self.minx >= self.maxx:
            raise BBoxError(
                f"bbox minx ({self.minx}) must be smaller than maxx ({self.maxx}); "
                "the order is [min_lon, min_lat, max_lon, max_lat]"
            )
        if self.miny >= self.maxy:
            raise BBoxError(
                f"bbox miny ({self.miny}) must be smaller than maxy ({self.maxy}); "
                "the order is [min_lon, min_lat, max_lon, max_lat]"
            )

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.minx, self.miny, self.maxx, self.maxy)

    @property
    def centre(self) -> tuple[float, float]:
        """(lon, lat) of the centre."""
        return ((self.minx + self.maxx) / 2.0, (self.miny + self.maxy) / 2.0)

    def area_km2(self) -> float:
        """Geodesic area of the box on the WGS84 ellipsoid."""
        lons = [self.minx, self.maxx, self.maxx, self.minx]
        lats = [self.miny, self.miny, self.maxy, self.maxy]
        area_m2, _ = _GEOD.polygon_area_perimeter(lons, lats)
        return abs(area_m2) / 1e6

    def to_geojson(self) -> dict[str, Any]:
        x0, y0, x1, y1 = self.as_tuple()
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {"type": "Polygon", "coordinates": [ring]}


def parse_bbox(value: Any) -> BBox:
    """A BBox from four numbers, a "minx,miny,maxx,maxy" string, JSON text or GeoJSON.

    GeoJSON (a geometry, Feature or FeatureCollection) gives the bounds of all its
    coordinates.
    """
    if isinstance(value, BBox):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise BBoxError("bbox is empty; give four numbers: min_lon,min_lat,max_lon,max_lat")
        if text[0] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BBoxError(f"bbox is not valid JSON: {exc.msg}") from exc
        else:
            value = [part for part in text.replace(" ", ",").split(",") if part]
    if isinstance(value, Mapping):
        return _bbox_of_geojson(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if len(value) != 4:
            raise BBoxError(
                f"bbox needs exactly 4 numbers [min_lon, min_lat, max_lon, max_lat], got {len(value)}"
            )
        try:
            numbers = [float(v) for v in value]
        except (TypeError, ValueError) as exc:
            raise BBoxError(f"bbox values must be numbers, got {list(value)!r}") from exc
        return BBox(*numbers)
    raise BBoxError(f"cannot read a bbox from {type(value).__name__}")


def _bbox_of_geojson(obj: Mapping[str, Any]) -> BBox:
    coords = list(_geojson_positions(obj))
    if not coords:
        raise BBoxError("GeoJSON input has no coordinates")
    xs = [c[0] for c in coords]
    ys = [c[1] for c in coords]
    return BBox(min(xs), min(ys), max(xs), max(ys))


def _geojson_positions(obj: Any) -> Iterable[tuple[float, float]]:
    if not isinstance(obj, Mapping):
        raise BBoxError("GeoJSON input must be an object")
    kind = obj.get("type")
    if kind == "FeatureCollection":
        for feature in obj.get("features") or []:
            yield from _geojson_positions(feature)
    elif kind == "Feature":
        geometry = obj.get("geometry")
        if geometry is None:
            raise BBoxError("GeoJSON Feature has no geometry")
        yield from _geojson_positions(geometry)
    elif kind == "GeometryCollection":
        for geometry in obj.get("geometries") or []:
            yield from _geojson_positions(geometry)
    elif kind in {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
    }:
        yield from _flatten_positions(obj.get("coordinates"))
    else:
        raise BBoxError(f"unsupported GeoJSON type {kind!r}")


def _flatten_positions(coords: Any) -> Iterable[tuple[float, float]]:
    if isinstance(coords, Sequence) and coords and isinstance(coords[0], int | float):
        try:
            yield (float(coords[0]), float(coords[1]))
        except (IndexError, TypeError, ValueError) as exc:
            raise BBoxError(f"invalid GeoJSON position {coords!r}") from exc
        return
    if not isinstance(coords, Sequence):
        raise BBoxError("GeoJSON geometry has no coordinates array")
    for item in coords:
        yield from _flatten_positions(item)


def check_area(bbox: BBox, max_km2: float) -> float:
    """The bbox area in km², or a BBoxError when it exceeds ``max_km2``."""
    area = bbox.area_km2()
    if area > max_km2:
        raise BBoxError(
            f"bbox covers {area:,.0f} km², more than the limit of {max_km2:,.0f} km² "
            "(CANOPYWATCH_MAX_AOI_KM2); split the area or raise the limit"
        )
    return area


# --------------------------------------------------------------------------- geohash
def geohash(lat: float, lon: float, precision: int = 5) -> str:
    """Standard base-32 geohash of a point (precision 5 is about 4.9 x 4.9 km)."""
    if not 1 <= precision <= 12:
        raise ValueError(f"geohash precision must be 1..12, got {precision}")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    chars: list[str] = []
    bit, value, even = 0, 0, True
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                value = (value << 1) | 1
                lon_lo = mid
            else:
                value <<= 1
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                value = (value << 1) | 1
                lat_lo = mid
            else:
                value <<= 1
                lat_hi = mid
        even = not even
        bit += 1
        if bit == 5:
            chars.append(GEOHASH_ALPHABET[value])
            bit, value = 0, 0
    return "".join(chars)


def bbox_geohash(bbox: BBox, precision: int = 5) -> str:
    lon, lat = bbox.centre
    return geohash(lat, lon, precision)


# --------------------------------------------------------------------------- UTM tiles
def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 / UTM zone containing the point (326xx north, 327xx south).

    The zone rule of the ``utm`` package, the one ``sentinelhub.get_utm_crs`` applies, so the
    request tiles and the Process API agree: 6-degree zones, and the exceptions of the grid
    above 56 N: south-west Norway (56-64 N, 3-12 E) is zone 32 (32V), and Svalbard
    (72-84 N) is 31X (0-9 E), 33X (9-21 E), 35X (21-33 E) and 37X (33-42 E); zones 32X, 34X
    and 36X do not exist. The one UTM-zone function of the project (the simulator uses it too).
    """
    import utm  # the small pure-Python package sentinelhub depends on

    if not -90.0 <= lat <= 90.0:
        raise BBoxError(f"latitude {lat} is not in [-90, 90]")
    # longitude 180 is zone 60's east edge (a bbox's maxx); utm would wrap it to zone 1
    zone = 60 if lon >= 180.0 else int(utm.latlon_to_zone_number(lat, lon))
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True)
class RequestTile:
    """One Process API request footprint: a UTM box of at most max_px a side."""

    tile_id: str
    epsg: int
    minx: float
    miny: float
    maxx: float
    maxy: float
    width: int
    height: int
    bbox: BBox  # lon/lat bounds of the UTM box

    @property
    def utm_bounds(self) -> tuple[float, float, float, float]:
        return (self.minx, self.miny, self.maxx, self.maxy)


def split_into_tiles(bbox: BBox, resolution: float = 10.0, max_px: int = 2500) -> list[RequestTile]:
    """Cover ``bbox`` with UTM tiles of at most ``max_px`` pixels a side at ``resolution``.

    The UTM box is snapped outwards to the resolution grid, then cut into equal
    rows and columns so no tile is a thin sliver.
    """
    if resolution <= 0:
        raise ValueError("resolution must be positive")
    epsg = utm_epsg(*bbox.centre)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    xs, ys = to_utm.transform(
        [bbox.minx, bbox.maxx, bbox.maxx, bbox.minx], [bbox.miny, bbox.miny, bbox.maxy, bbox.maxy]
    )
    minx = math.floor(min(xs) / resolution) * resolution
    miny = math.floor(min(ys) / resolution) * resolution
    maxx = math.ceil(max(xs) / resolution) * resolution
    maxy = math.ceil(max(ys) / resolution) * resolution
    total_w = round((maxx - minx) / resolution)
    total_h = round((maxy - miny) / resolution)
    n_cols = max(1, math.ceil(total_w / max_px))
    n_rows = max(1, math.ceil(total_h / max_px))
    col_edges = _edges(total_w, n_cols)
    row_edges = _edges(total_h, n_rows)
    tiles: list[RequestTile] = []
    for r in range(n_rows):
        # rows count from the north edge, like raster rows
        top = maxy - row_edges[r] * resolution
        bottom = maxy - row_edges[r + 1] * resolution
        for c in range(n_cols):
            left = minx + col_edges[c] * resolution
            right = minx + col_edges[c + 1] * resolution
            lons, lats = to_lonlat.transform([left, right, right, left], [bottom, bottom, top, top])
            tiles.append(
                RequestTile(
                    tile_id=f"r{r}c{c}",
                    epsg=epsg,
                    minx=left,
                    miny=bottom,
                    maxx=right,
                    maxy=top,
                    width=col_edges[c + 1] - col_edges[c],
                    height=row_edges[r + 1] - row_edges[r],
                    bbox=BBox(
                        round(min(lons), 6),
                        round(min(lats), 6),
                        round(max(lons), 6),
                        round(max(lats), 6),
                    ),
                )
            )
    return tiles


def _edges(total: int, parts: int) -> list[int]:
    return [round(i * total / parts) for i in range(parts + 1)]


# --------------------------------------------------------------------------- raster grids
@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (pixel corner -> CRS coordinates) and size."""

    crs: rasterio.crs.CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns), as numpy arrays of the grid are shaped."""
        return (self.height, self.width)

    @property
    def pixel_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        minx, maxy = self.transform * (0, 0)
        maxx, miny = self.transform * (self.width, self.height)
        return (min(minx, maxx), min(miny, maxy), max(minx, maxx), max(miny, maxy))

    def window_transform(self, window: Window) -> Affine:
        """The transform of a window of the grid (its top-left pixel at the origin)."""
        return self.transform * Affine.translation(window.col_off, window.row_off)
