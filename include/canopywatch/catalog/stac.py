"""Scenes as STAC 1.1 Items (pystac), with the eo (v2), projection (v2) and raster (v1.1)
extensions.

Built from catalog rows (``queries.scenes_in``), so any pystac-based tool can read what the
catalog holds: ``pystac.Item.from_dict(scene_item(row))``. Each asset lists its own bands:
the raw GeoTIFF has the evalscript's bands (``s2l2a_bands``: B02 B03 B04 B08 B11 B12, SCL,
dataMask), the COG the same less the mask bands (``dataMask`` became its internal mask), so 7.
``raster:bands`` say the sample type, no-data value and, for reflectance bands, the scale
(harmonized DN / 10000; ``canopywatch.sentinel2``). Given the file's own header
(``RasterFacts``, read with rio-stac) an Item also carries ``proj:transform``, ``proj:bbox``
and the file's band descriptions, data types, no-data, scales and offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pystac
from rio_stac.stac import get_projection_info

from canopywatch.cog.profiles import MASK_BANDS
from canopywatch.sentinel2 import BANDS, MSI_BANDS, NODATA_DN, REFLECTANCE_SCALE

STAC_VERSION = "1.1.0"
EO_EXTENSION = "https://stac-extensions.github.io/eo/v2.0.0/schema.json"
PROJ_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_EXTENSION = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
GEOTIFF = "image/tiff; application=geotiff"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"

_BAND_DESCRIPTIONS = {
    "SCL": "scene classification (Sen2Cor)",
    "dataMask": "1 where data is valid",
    "CLM": "cloud mask",
}


@dataclass(frozen=True)
class RasterFacts:
    """What a GeoTIFF's header says (``raster_facts``)."""

    code: str | None
    shape: tuple[int, int]
    transform: tuple[float, ...]
    bbox: tuple[float, float, float, float]
    names: tuple[str | None, ...]  # the band descriptions (None where a band has none)
    dtypes: tuple[str, ...]
    nodata: float | None
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    resolution: float


def raster_facts(dataset: Any) -> RasterFacts:
    """The facts of an open rasterio dataset (projection from ``rio_stac``)."""
    projection = get_projection_info(dataset)
    epsg = projection.get("epsg")
    return RasterFacts(
        code=f"EPSG:{epsg}" if epsg else None,
        shape=(int(projection["shape"][0]), int(projection["shape"][1])),
        transform=tuple(float(v) for v in projection["transform"][:6]),
        bbox=tuple(float(v) for v in projection["bbox"]),  # type: ignore[arg-type]
        names=tuple(d or None for d in dataset.descriptions),
        dtypes=tuple(str(d) for d in dataset.dtypes),
        nodata=None if dataset.nodata is None else float(dataset.nodata),
        scales=tuple(float(s) for s in dataset.scales),
        offsets=tuple(float(o) for o in dataset.offsets),
        resolution=float(abs(dataset.res[0])),
    )


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


def raster_band(name: str, facts: RasterFacts | None = None, index: int = 0) -> dict[str, Any]:
    """A ``raster:bands`` entry: the file's values where it has them, else the product's."""
    band: dict[str, Any] = {"data_type": "uint16", "nodata": NODATA_DN}
    scale, offset = (1.0 / REFLECTANCE_SCALE, 0.0) if name in BANDS else (None, None)
    if facts is not None:
        band["data_type"] = facts.dtypes[index]
        band["spatial_resolution"] = facts.resolution
        if facts.nodata is not None:
            band["nodata"] = int(facts.nodata) if facts.nodata.is_integer() else facts.nodata
        if (facts.scales[index], facts.offsets[index]) != (1.0, 0.0):
            scale, offset = facts.scales[index], facts.offsets[index]
    if scale is not None:
        band["scale"] = scale
        band["offset"] = offset
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


def cog_band_names(bands: Iterable[str]) -> list[str]:
    """The COG's bands: the raw bands less the mask bands."""
    return [b for b in bands if b not in MASK_BANDS]


def _asset(
    href: str, media_type: str, title: str, names: list[str], facts: RasterFacts | None
) -> pystac.Asset:
    if facts is not None and all(facts.names) and len(facts.names) == len(facts.dtypes):
        names = [str(n) for n in facts.names]  # the file names its bands: trust it
    extra: dict[str, Any] = {
        "bands": [band_object(n) for n in names],
        "raster:bands": [raster_band(n, facts, i) for i, n in enumerate(names)],
    }
    if facts is not None:
        extra["proj:shape"] = list(facts.shape)
        extra["proj:transform"] = list(facts.transform)
        extra["proj:bbox"] = list(facts.bbox)
    return pystac.Asset(
        href, title=title, media_type=media_type, roles=["data"], extra_fields=extra
    )


def scene_item(
    scene: Mapping[str, Any],
    *,
    s3_href_base: str | None = None,
    href: Callable[[str, str], str] | None = None,
    facts: Mapping[str, RasterFacts] | None = None,
    collection: str | None = None,
) -> dict[str, Any]:
    """One catalog scene row as a STAC Item dict.

    Asset hrefs are ``href(bucket, key)`` when given (e.g. presigned URLs), else
    ``<s3_href_base>/bucket/key`` (e.g. the MinIO endpoint), else ``s3://bucket/key``.
    ``facts`` (by asset name, ``raw`` / ``cog``) add what the files' headers say.
    """
    facts = facts or {}

    def asset_href(key: str) -> str:
        if href is not None:
            return href(scene["bucket"], key)
        if s3_href_base:
            return f"{s3_href_base.rstrip('/')}/{scene['bucket']}/{key}"
        return f"s3://{scene['bucket']}/{key}"

    properties: dict[str, Any] = {
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
    main = facts.get("cog") or facts.get("raw")
    if main is not None:
        properties["proj:transform"] = list(main.transform)
        properties["proj:bbox"] = list(main.bbox)
        if main.code:
            properties["proj:code"] = main.code
    acquired = scene["acquired_at"]
    item = pystac.Item(
        id=scene["scene_id"],
        geometry=dict(scene["geometry"]),
        bbox=_bounds(scene["geometry"]),
        datetime=acquired.astimezone(UTC),
        properties=properties,
        stac_extensions=[EO_EXTENSION, PROJ_EXTENSION, RASTER_EXTENSION],
        collection=collection,
    )
    raw_names = list(scene["bands"])
    item.add_asset(
        "raw",
        _asset(
            asset_href(scene["raw_key"]),
            GEOTIFF,
            f"{scene['function']} GeoTIFF as downloaded",
            raw_names,
            facts.get("raw"),
        ),
    )
    if scene.get("cog_key"):
        item.add_asset(
            "cog",
            _asset(
                asset_href(scene["cog_key"]),
                COG,
                "Cloud-Optimized GeoTIFF",
                cog_band_names(raw_names),
                facts.get("cog"),
            ),
        )
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    data["properties"]["datetime"] = _iso(acquired)
    if collection is None:
        data.pop("collection", None)
    return data


def item_collection(
    scenes: Iterable[Mapping[str, Any]],
    *,
    s3_href_base: str | None = None,
    href: Callable[[str, str], str] | None = None,
) -> dict[str, Any]:
    """A STAC ItemCollection (a GeoJSON FeatureCollection of Items)."""
    return {
        "type": "FeatureCollection",
        "features": [scene_item(s, s3_href_base=s3_href_base, href=href) for s in scenes],
    }
