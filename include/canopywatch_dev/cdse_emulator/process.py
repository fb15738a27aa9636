"""The Process API: request parsing, mosaicking, evalscript rendering, encodings."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from canopywatch.geo import Grid
from canopywatch.sentinel2 import BOA_ADD_OFFSET_DN, SCL_BAND
from canopywatch_dev.cdse_emulator.config import (
    COLLECTION_ID,
    DATA_MASK,
    DEFAULT_OUTPUT_PX,
    MAX_OUTPUT_PX,
    MIN_PROCESSING_UNITS,
    PROCESS_TYPES,
    SERVED_BANDS,
)
from canopywatch_dev.cdse_emulator.errors import BadPayload
from canopywatch_dev.cdse_emulator.items import iso_time
from canopywatch_dev.cdse_emulator.search import (
    Comparison,
    SceneQuery,
    parse_geojson,
    parse_lonlat_bbox,
    parse_time,
)
from canopywatch_dev.cdse_world import (
    Mosaic,
    Scene,
    World,
    footprint_lonlat,
    mosaic_simple,
)
from canopywatch_dev.evalscript import (
    Evalscript,
    OutputSpec,
    band_scales,
    to_sample_type,
)

_OPENGIS_EPSG = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$")
_URN_EPSG = re.compile(r"^urn:ogc:def:crs:EPSG:[\d.]*:(\d+)$", re.IGNORECASE)
_CRS84 = frozenset(
    {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"}
)


# ---------------------------------------------------------------- Process API


@dataclass(frozen=True)
class ResponseSpec:
    identifier: str
    format_type: str


@dataclass(frozen=True)
class ProcessRequest:
    grid: Grid
    inside: npt.NDArray[np.bool_] | None
    start: datetime | None
    end: datetime | None
    max_cloud_cover: float
    mosaicking_order: str
    harmonize: bool
    responses: tuple[ResponseSpec, ...]
    evalscript: str


def parse_crs(value: Any) -> CRS:
    text = str(value or "http://www.opengis.net/def/crs/EPSG/0/4326")
    if text in _CRS84:
        return CRS.from_epsg(4326)
    match = _OPENGIS_EPSG.match(text) or _URN_EPSG.match(text)
    if match is None:
        raise BadPayload(f"Unsupported CRS {text!r}", "input.bounds.properties.crs", text)
    try:
        return CRS.from_epsg(int(match.group(1)))
    except CRSError as exc:
        raise BadPayload(
            f"Unknown EPSG code in {text!r}", "input.bounds.properties.crs", text
        ) from exc


def _request_bounds(
    bounds: Any,
) -> tuple[CRS, tuple[float, float, float, float], BaseGeometry | None]:
    if not isinstance(bounds, dict):
        raise BadPayload("input.bounds is required", "input.bounds", bounds)
    properties = bounds.get("properties") or {}
    crs = parse_crs(properties.get("crs") if isinstance(properties, dict) else None)
    geometry = None
    if bounds.get("geometry") is not None:
        geometry = parse_geojson(bounds["geometry"], "input.bounds.geometry")
    if bounds.get("bbox") is not None:
        area = parse_lonlat_bbox(bounds["bbox"], "input.bounds.bbox")
        minx, miny, maxx, maxy = area.bounds
    elif geometry is not None:
        minx, miny, maxx, maxy = geometry.bounds
    else:
        raise BadPayload("input.bounds needs bbox or geometry", "input.bounds", bounds)
    if minx == maxx or miny == maxy:
        raise BadPayload(
            "input.bounds has zero area", "input.bounds.bbox", [minx, miny, maxx, maxy]
        )
    return crs, (minx, miny, maxx, maxy), geometry


def _output_size(
    output: Mapping[str, Any], bounds: tuple[float, float, float, float]
) -> tuple[int, int]:
    minx, miny, maxx, maxy = bounds
    has_size = "width" in output or "height" in output
    has_resolution = "resx" in output or "resy" in output
    if has_size and has_resolution:
        raise BadPayload(
            "Specify either output width/height or resx/resy, not both", "output", dict(output)
        )
    try:
        if has_resolution:
            resx, resy = float(output["resx"]), float(output["resy"])
            if resx <= 0 or resy <= 0:
                raise BadPayload(
                    "resx and resy must be positive", "output.resx", output.get("resx")
                )
            width, height = round((maxx - minx) / resx), round((maxy - miny) / resy)
        else:
            aspect = (maxx - minx) / (maxy - miny)
            width = int(
                output.get("width")
                or round(int(output.get("height", 0)) * aspect)
                or DEFAULT_OUTPUT_PX
            )
            height = int(output.get("height") or round(width / aspect))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"Invalid output size: {exc}", "output", dict(output)) from exc
    for name, value in (("width", width), ("height", height)):
        if value > MAX_OUTPUT_PX:
            raise BadPayload(
                f"Output {name} {value} px exceeds the maximum of {MAX_OUTPUT_PX} px",
                f"output.{name}",
                value,
            )
        if value < 1:
            raise BadPayload(f"Output {name} must be at least 1 px", f"output.{name}", value)
    return width, height


def parse_process_request(body: Mapping[str, Any]) -> ProcessRequest:
    request_input = body.get("input")
    if not isinstance(request_input, dict):
        raise BadPayload("input is required", "input", request_input)
    crs, bounds, geometry = _request_bounds(request_input.get("bounds"))
    output = body.get("output") or {}
    if not isinstance(output, dict):
        raise BadPayload("output must be an object", "output", output)
    width, height = _output_size(output, bounds)
    transform = from_bounds(*bounds, width, height)
    inside = None
    if geometry is not None:
        inside = geometry_mask(
            [mapping(geometry)], out_shape=(height, width), transform=transform, invert=True
        )
    data = request_input.get("data")
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise BadPayload(
            "input.data must hold exactly one data source (no data fusion here)", "input.data", data
        )
    source = data[0]
    if source.get("type") not in PROCESS_TYPES:
        raise BadPayload(
            f"Unknown or unsupported collection type {source.get('type')!r}; "
            f"served: {COLLECTION_ID!r}",
            "input.data[0].type",
            source.get("type"),
        )
    data_filter = source.get("dataFilter") or {}
    time_range = data_filter.get("timeRange") or {}
    start = parse_time(time_range["from"], "timeRange.from") if time_range.get("from") else None
    end = parse_time(time_range["to"], "timeRange.to") if time_range.get("to") else None
    max_cc = data_filter.get("maxCloudCoverage", 100)
    if not isinstance(max_cc, int | float) or not 0 <= max_cc <= 100:
        raise BadPayload(
            "maxCloudCoverage must be between 0 and 100",
            "input.data[0].dataFilter.maxCloudCoverage",
            max_cc,
        )
    order = data_filter.get("mosaickingOrder", "mostRecent")
    if order not in ("mostRecent", "leastRecent", "leastCC"):
        raise BadPayload(
            "mosaickingOrder must be mostRecent, leastRecent or leastCC",
            "input.data[0].dataFilter.mosaickingOrder",
            order,
        )
    processing = source.get("processing") or {}
    responses = _parse_responses(output.get("responses"))
    evalscript = body.get("evalscript")
    if not isinstance(evalscript, str) or not evalscript.strip():
        raise BadPayload("evalscript is required", "evalscript", None)
    return ProcessRequest(
        grid=Grid(crs, transform, width, height),
        inside=inside,
        start=start,
        end=end,
        max_cloud_cover=float(max_cc),
        mosaicking_order=str(order),
        harmonize=bool(processing.get("harmonizeValues", True)),
        responses=responses,
        evalscript=evalscript,
    )


def _parse_responses(raw: Any) -> tuple[ResponseSpec, ...]:
    if raw is None:
        return (ResponseSpec("default", "image/png"),)
    if not isinstance(raw, list) or not raw:
        raise BadPayload("output.responses must be a non-empty list", "output.responses", raw)
    specs = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadPayload("output.responses entries must be objects", "output.responses", raw)
        format_type = str((item.get("format") or {}).get("type", "image/png"))
        if format_type not in ("image/tiff", "image/png", "image/jpeg", "application/json"):
            raise BadPayload(
                f"Unsupported response format {format_type!r}",
                "output.responses.format.type",
                format_type,
            )
        specs.append(ResponseSpec(str(item.get("identifier", "default")), format_type))
    return tuple(specs)


def order_scenes(scenes: list[Scene], order: str) -> list[Scene]:
    if order == "leastRecent":
        return sorted(scenes, key=lambda s: (s.datetime, s.id))
    if order == "leastCC":
        return sorted(scenes, key=lambda s: (s.cloud_cover, -s.datetime.timestamp()))
    return sorted(scenes, key=lambda s: (s.datetime, s.id), reverse=True)


def sample_values(mosaic: Mosaic, band: str, harmonize: bool) -> npt.NDArray[np.uint16]:
    """Served DN for one input band; harmonized values drop the BOA offset, valid pixels >= 1."""
    if band == DATA_MASK:
        return mosaic.data_mask.astype(np.uint16)
    raw = mosaic.bands[band]
    if band == SCL_BAND or not harmonize:
        return raw
    shifted = np.maximum(raw.astype(np.int32) - BOA_ADD_OFFSET_DN, 1)
    return np.where(raw > 0, shifted, 0).astype(np.uint16)


def processing_units(width: int, height: int, input_bands: int, float_output: bool) -> float:
    """Area in 512x512 units x input bands / 3 (dataMask free), x2 for FLOAT32; at least 0.005."""
    units = width * height / (512 * 512) * max(input_bands, 1) / 3 * (2 if float_output else 1)
    return max(units, MIN_PROCESSING_UNITS)


@dataclass(frozen=True)
class RenderedFile:
    name: str
    content_type: str
    data: bytes


def encode_raster(
    values: npt.NDArray[Any], spec: OutputSpec, response: ResponseSpec, grid: Grid
) -> bytes:
    """(height, width, bands) in the output sample type, as GeoTIFF, PNG or JPEG bytes."""
    if response.format_type == "image/tiff":
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": spec.bands,
            "dtype": values.dtype.name,
            "crs": grid.crs,
            "transform": grid.transform,
            "compress": "deflate",
            "interleave": "pixel",
        }
        with MemoryFile() as memory:
            with memory.open(**profile) as dataset:
                dataset.write(np.moveaxis(values, -1, 0))
            return bytes(memory.read())
    image = values[..., 0] if spec.bands == 1 else values
    if values.dtype != np.uint8 and not (
        values.dtype == np.uint16 and spec.bands == 1 and response.format_type == "image/png"
    ):
        raise BadPayload(
            f"Output {spec.id!r} with sampleType {spec.sample_type} cannot be written "
            f"as {response.format_type}; use image/tiff",
            "output.responses",
            response.identifier,
        )
    if spec.bands not in (1, 3, 4) or (response.format_type == "image/jpeg" and spec.bands == 4):
        raise BadPayload(
            f"Output {spec.id!r} has {spec.bands} bands, which {response.format_type} cannot hold",
            "output.responses",
            response.identifier,
        )
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, format="PNG" if response.format_type == "image/png" else "JPEG"
    )
    return buffer.getvalue()


def tar_files(files: Sequence[RenderedFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for file in files:
            info = tarfile.TarInfo(file.name)
            info.size = len(file.data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


_EXTENSIONS = {
    "image/tiff": "tif",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/json": "json",
}


@dataclass(frozen=True)
class ProcessResult:
    files: tuple[RenderedFile, ...]
    processing_units: float
    scenes_used: int


def scene_metadata(scenes: Sequence[Scene]) -> dict[str, Any]:
    """What an evalscript sees of the mosaicked scenes (``updateOutputMetadata``'s input)."""
    return {
        "scenes": [
            {"date": iso_time(s.datetime), "cloudCoverage": s.cloud_cover, "tileOriginalId": s.id}
            for s in scenes
        ],
        "inputMetadata": {"serviceVersion": "canopywatch-emulator", "normalizationFactor": 0.0001},
    }


def render_process(world: World, request: ProcessRequest) -> ProcessResult:
    with Evalscript(request.evalscript) as script:
        setup = script.setup
        for response in request.responses:
            if response.format_type == "application/json":
                if response.identifier != "userdata":
                    raise BadPayload(
                        "application/json is only available for the 'userdata' response",
                        "output.responses",
                        response.identifier,
                    )
            elif setup.output(response.identifier) is None:
                raise BadPayload(
                    f"Output {response.identifier} requested but missing from function setup()",
                    "output.responses",
                    response.identifier,
                )
        input_names = [band.name for band in setup.inputs]
        unknown = sorted(set(input_names) - set(SERVED_BANDS))
        if unknown:
            raise BadPayload(
                f"Bands {unknown} are not served by this endpoint; it serves {list(SERVED_BANDS)}",
                "evalscript",
                unknown,
            )
        query = SceneQuery(
            area=footprint_lonlat(request.grid.crs, request.grid.bounds),
            start=request.start,
            end=request.end,
            comparisons=(Comparison("eo:cloud_cover", "<=", request.max_cloud_cover),),
        )
        scenes = order_scenes(query.select(world), request.mosaicking_order)
        mosaic = mosaic_simple(
            scenes, request.grid, [n for n in input_names if n != DATA_MASK], request.inside
        )
        samples = {name: sample_values(mosaic, name, request.harmonize) for name in input_names}
        metadata = scene_metadata(mosaic.scenes)
        computed = script.evaluate(samples, band_scales(setup.inputs), metadata)
        files = []
        for response in request.responses:
            if response.format_type == "application/json":
                data = json.dumps(script.user_data(metadata)).encode()
            else:
                spec = cast(OutputSpec, setup.output(response.identifier))
                values = to_sample_type(computed[spec.id], spec.sample_type)
                data = encode_raster(values, spec, response, request.grid)
            name = f"{response.identifier}.{_EXTENSIONS[response.format_type]}"
            files.append(RenderedFile(name, response.format_type, data))
    input_bands = len([n for n in input_names if n != DATA_MASK])
    float_output = any(spec.sample_type == "FLOAT32" for spec in setup.outputs)
    units = processing_units(request.grid.width, request.grid.height, input_bands, float_output)
    return ProcessResult(tuple(files), units, len(mosaic.scenes))
