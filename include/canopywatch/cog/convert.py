"""Raw GeoTIFF -> Cloud-Optimized GeoTIFF (GDAL's COG driver), and COG validation. Pure functions.

``convert`` takes the raw scene as bytes or a path and returns the COG as bytes: the
data bands (the ``dataMask``/``alpha`` band turns into the nodata value, not a band),
written with a named profile (``canopywatch.cog.profiles``) and carrying what a reader
needs without the evalscript: band descriptions, the nodata value (DN 0, NaN for floats),
GDAL scale/offset on the MSI reflectance bands (reflectance = DN * 1/10000 + offset, the
offset ``BOA_ADD_OFFSET / 10000`` from the raw file's tags, 0 for Sentinel Hub's harmonized
DN; ``canopywatch.sentinel2``), red/green/blue colour interpretation on B04/B03/B02 (or
red/green/blue bands) and overviews averaged for reflectance but picked (nearest) for the
SCL classes, each band with its own resampling.
``validate`` runs ``rio_cogeo.cogeo.cog_validate`` on bytes or a path.

Everything happens in GDAL's in-memory file system (``/vsimem``): no temporary files,
so executors on shared machines leave nothing behind.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rio_cogeo.cogeo import cog_validate
from rio_cogeo.utils import get_maximum_overview_level  # type: ignore[attr-defined]

from canopywatch.cog.profiles import (
    COLOUR_INTERPRETATION,
    DEFAULT_PROFILE,
    MASK_BANDS,
    CogProfile,
    get_profile,
)
from canopywatch.sentinel2 import MSI_BANDS, REFLECTANCE_SCALE

log = logging.getLogger(__name__)

RasterSource = bytes | str | Path
# GDAL settings for writing: masks inside the TIFF (not .msk side files), no aux.xml
GDAL_WRITE_ENV: dict[str, Any] = {
    "GDAL_TIFF_INTERNAL_MASK": True,
    "GDAL_PAM_ENABLED": False,
    "GDAL_CACHEMAX": 256,
}


class CogConversionError(ValueError):
    """The raw file cannot become a COG (unreadable, no data bands); the reason is for people."""


@dataclass(frozen=True)
class CogValidation:
    valid: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _open(stack: ExitStack, source: RasterSource) -> DatasetReader:
    if isinstance(source, bytes | bytearray):
        if not source:
            raise CogConversionError("the raw file is empty")
        memfile = stack.enter_context(MemoryFile(bytes(source)))
        return stack.enter_context(memfile.open())
    return stack.enter_context(rasterio.open(str(source)))


def band_names_of(dataset: DatasetReader, given: Sequence[str] | None) -> tuple[str, ...]:
    """The band names: as given (from the evalscript), else the file's descriptions."""
    if given is not None:
        if len(given) != dataset.count:
            raise CogConversionError(
                f"{len(given)} band names given ({', '.join(given)}) "
                f"for a file with {dataset.count} bands"
            )
        return tuple(given)
    return tuple(d or f"band_{i}" for i, d in enumerate(dataset.descriptions, start=1))


def overview_levels(width: int, height: int, profile: CogProfile) -> int:
    """Overview levels: until the smallest is under one block, and at least the profile's."""
    automatic = int(get_maximum_overview_level(width, height, minsize=profile.blocksize))
    possible = max(0, min(width, height).bit_length() - 1)  # never below 1 px
    return min(max(automatic, profile.min_overview_levels), possible)


def convert(
    raw: RasterSource,
    *,
    profile: CogProfile | str = DEFAULT_PROFILE,
    band_names: Sequence[str] | None = None,
) -> bytes:
    """The COG of a raw GeoTIFF, as bytes; raises CogConversionError for unusable input."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    try:
        with ExitStack() as stack:
            stack.enter_context(rasterio.Env(**GDAL_WRITE_ENV))
            src = _open(stack, raw)
            return _convert_dataset(stack, src, chosen, band_names)
    except RasterioError as exc:
        raise CogConversionError(f"not a readable GeoTIFF: {_readable(exc)}") from exc


def _convert_dataset(
    stack: ExitStack,
    src: DatasetReader,
    profile: CogProfile,
    given_names: Sequence[str] | None,
) -> bytes:
    if src.crs is None:
        raise CogConversionError("the raw file has no CRS")
    names = band_names_of(src, given_names)
    mask_indexes = [i for i, n in enumerate(names, start=1) if n in MASK_BANDS]
    data_indexes = [i for i in range(1, src.count + 1) if i not in mask_indexes]
    if not data_indexes:
        raise CogConversionError(f"no data bands, only mask bands ({', '.join(names)})")
    data_names = tuple(names[i - 1] for i in data_indexes)
    dtype = src.dtypes[data_indexes[0] - 1]
    tags = {**src.tags(1), **src.tags()}

    # no-data pixels (dataMask = 0) get the nodata value: DN 0 for integers (L2A DN 0 and
    # SCL 0 are "no data" by definition, so it never hides a real sample), NaN for floats
    nodata = _nodata_for(dtype) if mask_indexes else src.nodata
    data = src.read(data_indexes)
    if mask_indexes:
        invalid = np.zeros((src.height, src.width), dtype=bool)
        for index in mask_indexes:
            invalid |= src.read(index) == 0
        data[:, invalid] = nodata
    factors = [2**level for level in range(1, overview_levels(src.width, src.height, profile) + 1)]
    resampling = [profile.band_resampling(name) for name in data_names]
    main = max(set(resampling), key=resampling.count)

    # Per overview resampling (reflectance averaged, SCL classes picked) one staged GeoTIFF
    # of those bands with overviews built, and each overview level copied out as a file of
    # its own; a VRT joins the bands with their metadata and names those files as each
    # band's overviews; GDAL's COG driver writes the VRT keeping them.
    full: dict[int, tuple[str, int]] = {}
    levels: dict[int, list[tuple[str, int]]] = {}
    for method in sorted(set(resampling)):
        positions = [p for p, r in enumerate(resampling) if r == method]
        group = stack.enter_context(MemoryFile())
        with group.open(**_gtiff(src, len(positions), dtype, nodata)) as writer:
            writer.write(data[positions])
            if factors:
                writer.build_overviews(factors, Resampling[method])
        with rasterio.open(group.name) as built:
            level_files = []
            for factor in factors:
                # GDAL overview sizes: rounded up
                height, width = -(-src.height // factor), -(-src.width // factor)
                level = stack.enter_context(MemoryFile())
                values = built.read(out_shape=(len(positions), height, width))
                with level.open(
                    **_gtiff(src, len(positions), dtype, nodata, width=width, height=height)
                ) as writer:
                    writer.write(values)
                level_files.append(level.name)
        for band, position in enumerate(positions, start=1):
            full[position] = (group.name, band)
            levels[position] = [(name, band) for name in level_files]
    del data
    metadata = {
        **src.tags(),
        "CANOPYWATCH_COG_PROFILE": profile.name,
        "OVERVIEW_RESAMPLING": _overview_resampling_tag(data_names, resampling, main),
    }
    scales = _scale_offset(data_names, tags)
    bands_xml = "".join(
        _band_xml(index, name, dtype, nodata, scales[index - 1], resampling[index - 1],
                  full[index - 1], levels[index - 1], src)
        for index, name in enumerate(data_names, start=1)
    )  # fmt: skip
    vrt = (
        f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
        f"<SRS>{escape(src.crs.to_wkt())}</SRS>"
        f"<GeoTransform>{', '.join(repr(v) for v in src.transform.to_gdal())}</GeoTransform>"
        f"{_metadata_xml(metadata)}{bands_xml}</VRTDataset>"
    )
    output = stack.enter_context(MemoryFile())
    with rasterio.open(vrt) as joined:
        rasterio.shutil.copy(joined, output.name, **profile.cog_driver_options(dtype))
    cog: bytes = output.read()
    if not cog:
        raise CogConversionError("the COG writer produced no bytes")
    return cog


def _gtiff(
    src: DatasetReader,
    count: int,
    dtype: str,
    nodata: float | None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> dict[str, Any]:
    return {"driver": "GTiff", "width": width or src.width, "height": height or src.height,
            "count": count, "dtype": dtype, "crs": src.crs, "transform": src.transform,
            "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256}  # fmt: skip


def _metadata_xml(items: dict[str, str]) -> str:
    return (
        "<Metadata>"
        + "".join(f"<MDI key={quoteattr(str(k))}>{escape(str(v))}</MDI>" for k, v in items.items())
        + "</Metadata>"
    )


def _band_xml(
    index: int,
    name: str,
    dtype: str,
    nodata: float | None,
    scale: tuple[float, float] | None,
    resampling: str,
    source: tuple[str, int],
    overviews: Sequence[tuple[str, int]],
    src: DatasetReader,
) -> str:
    rect = f'xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"'
    parts = [
        f'<VRTRasterBand dataType="{_gdal_type(dtype)}" band="{index}">',
        f"<Description>{escape(name)}</Description>",
        "" if nodata is None else f"<NoDataValue>{_nodata_text(nodata)}</NoDataValue>",
        f"<ColorInterp>{_colour(name)}</ColorInterp>",
        "" if scale is None else f"<Offset>{scale[1]!r}</Offset><Scale>{scale[0]!r}</Scale>",
        _metadata_xml({"OVERVIEW_RESAMPLING": resampling.upper()}),
        f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(source[0])}</SourceFilename>'
        f"<SourceBand>{source[1]}</SourceBand><SrcRect {rect}/><DstRect {rect}/></SimpleSource>",
        *(
            f'<Overview><SourceFilename relativeToVRT="0">{escape(path)}</SourceFilename>'
            f"<SourceBand>{band}</SourceBand></Overview>"
            for path, band in overviews
        ),
        "</VRTRasterBand>",
    ]
    return "".join(parts)


def _gdal_type(dtype: str) -> str:
    types = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16",
             "uint32": "UInt32", "int32": "Int32", "float32": "Float32", "float64": "Float64"}  # fmt: skip
    try:
        return types[dtype]
    except KeyError:
        raise CogConversionError(f"sample type {dtype} is not supported") from None


def _nodata_text(nodata: float) -> str:
    return "nan" if math.isnan(nodata) else repr(nodata)


def _overview_resampling_tag(names: Sequence[str], resampling: Sequence[str], main: str) -> str:
    """``AVERAGE``, or ``AVERAGE (SCL: NEAREST)`` when class bands are picked instead."""
    others = [f"{n}: {r.upper()}" for n, r in zip(names, resampling, strict=True) if r != main]
    return main.upper() + (f" ({', '.join(others)})" if others else "")


def _tag_number(tags: dict[str, str], name: str) -> float | None:
    for key, value in tags.items():
        if key.upper().endswith(name):
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _scale_offset(names: Sequence[str], tags: dict[str, str]) -> list[tuple[float, float] | None]:
    """GDAL scale/offset per band: reflectance = DN * scale + offset for the MSI bands
    (scale 1/QUANTIFICATION_VALUE, offset BOA_ADD_OFFSET/QUANTIFICATION_VALUE from the
    file's tags, else the harmonized 1/10000 and 0); None for the other bands."""
    quantification = _tag_number(tags, "QUANTIFICATION_VALUE") or REFLECTANCE_SCALE
    boa_offset = _tag_number(tags, "BOA_ADD_OFFSET") or 0.0
    return [
        (1.0 / quantification, boa_offset / quantification) if name in MSI_BANDS else None
        for name in names
    ]


def _colour(name: str) -> str:
    return COLOUR_INTERPRETATION.get(name, "Undefined")


def _nodata_for(dtype: str) -> float:
    """0 for integer samples (L2A DN 0 is no data), NaN for floating point ones."""
    return float("nan") if np.dtype(dtype).kind == "f" else 0


def validate(cog: RasterSource, *, strict: bool = False) -> CogValidation:
    """rio-cogeo's COG validation of bytes or a path; unreadable input is reported, not raised."""
    try:
        with ExitStack() as stack:
            if isinstance(cog, bytes | bytearray):
                if not cog:
                    return CogValidation(False, ["the file is empty"])
                memfile = stack.enter_context(MemoryFile(bytes(cog)))
                path = memfile.name
            else:
                path = str(cog)
            valid, errors, warnings = cog_validate(path, strict=strict, quiet=True)
    except RasterioError as exc:
        return CogValidation(False, [f"not a readable GeoTIFF: {_readable(exc)}"])
    return CogValidation(bool(valid), list(errors), list(warnings))


_VSIMEM_PATH = re.compile(r"'?/vsimem/\S+?'?(?=\s|$)")


def _readable(exc: BaseException) -> str:
    """GDAL's message without the in-memory file name it quotes."""
    return " ".join(_VSIMEM_PATH.sub("", str(exc)).split()).rstrip(".")
