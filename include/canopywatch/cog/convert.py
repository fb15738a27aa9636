"""Raw GeoTIFF -> Cloud-Optimized GeoTIFF (GDAL's COG driver), and COG validation. Pure functions.

``convert`` takes the raw scene as bytes or a path and returns the COG as bytes: the
data bands (the ``dataMask``/``alpha`` band turns into the nodata value, not a band),
written with a named profile (``canopywatch.cog.profiles``) and carrying what a reader
needs without the evalscript: band descriptions, the nodata value (DN 0, NaN for floats),
GDAL scale/offset on the MSI reflectance bands (reflectance = DN * 1/10000 + offset, the
offset ``BOA_ADD_OFFSET / 10000`` from the raw file's tags, 0 for Sentinel Hub's harmonized
DN; ``canopywatch.sentinel2``), red/green/blue colour interpretation on B04/B03/B02 (or
red/green/blue bands) and overviews averaged for reflectance but picked (nearest) for the
SCL classes, each band with its own resampling (``canopywatch.cog.overviews``).
``validate`` runs ``rio_cogeo.cogeo.cog_validate`` on bytes or a path.

Everything happens in memory: the raw file is read once, the bands and their overviews are
numpy arrays that GDAL reads in place (MEM datasets joined by a VRT), and the COG driver
writes to ``/vsimem``, compressing with ``GDAL_NUM_THREADS`` threads (all cores unless the
environment says otherwise). No temporary files, so executors on shared machines leave
nothing behind, and no staged copies of the pixels.
"""

from __future__ import annotations

import logging
import math
import os
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
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rio_cogeo.cogeo import cog_validate
from rio_cogeo.utils import get_maximum_overview_level  # type: ignore[attr-defined]

from canopywatch.cog.overviews import build_overviews
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
# Compression threads of the COG writer when the environment does not say
# (GDAL_NUM_THREADS): all cores for a conversion on its own; Spark executors set 1
# (``canopywatch.cog.submit``), their parallelism comes from the executor cores.
DEFAULT_THREADS = "ALL_CPUS"


def write_threads() -> str:
    """GDAL_NUM_THREADS from the environment, else ``DEFAULT_THREADS``."""
    return os.environ.get("GDAL_NUM_THREADS") or DEFAULT_THREADS


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
            stack.enter_context(rasterio.Env(**GDAL_WRITE_ENV, GDAL_NUM_THREADS=write_threads()))
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
    everything = src.read()  # one pass over the file: GDAL decodes each block once
    invalid: np.ndarray | None = None
    if mask_indexes:
        invalid = np.zeros((src.height, src.width), dtype=bool)
        for index in mask_indexes:
            invalid |= everything[index - 1] == 0
    if data_indexes == list(range(1, len(data_indexes) + 1)):  # mask bands last: a view
        data = np.ascontiguousarray(everything[: len(data_indexes)])
    else:
        data = np.ascontiguousarray(everything[[i - 1 for i in data_indexes]])
    del everything
    if invalid is not None:
        np.copyto(data, np.asarray(nodata, dtype=data.dtype), where=invalid[np.newaxis])
    levels_count = overview_levels(src.width, src.height, profile)
    resampling = [profile.band_resampling(name) for name in data_names]
    main = max(set(resampling), key=resampling.count)
    overviews = build_overviews(data, levels_count, resampling, nodata)

    # The bands and their overviews stay numpy arrays: a VRT reads them in place (GDAL's
    # MEM driver over the array's memory) and names each level as each band's overview;
    # GDAL's COG driver writes the VRT keeping them (FORCE_USE_EXISTING): no staged files.
    arrays = [data, *overviews]  # referenced until the copy below is done
    full = _mem_dataset(data)
    level_names = [_mem_dataset(level) for level in overviews]
    metadata = {
        **src.tags(),
        "CANOPYWATCH_COG_PROFILE": profile.name,
        "OVERVIEW_RESAMPLING": _overview_resampling_tag(data_names, resampling, main),
    }
    scales = _scale_offset(data_names, tags)
    bands_xml = "".join(
        _band_xml(index, name, dtype, nodata, scales[index - 1], resampling[index - 1],
                  (full, index), [(level, index) for level in level_names], src)
        for index, name in enumerate(data_names, start=1)
    )  # fmt: skip
    vrt = (
        f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
        f"<SRS>{escape(src.crs.to_wkt())}</SRS>"
        f"<GeoTransform>{', '.join(repr(v) for v in src.transform.to_gdal())}</GeoTransform>"
        f"{_metadata_xml(metadata)}{bands_xml}</VRTDataset>"
    )
    output = stack.enter_context(MemoryFile())
    # MEM datasets opened by name (GDAL >= 3.10 asks for it) and never shared: a pooled
    # one would outlive this call's arrays
    with (
        rasterio.Env(GDAL_MEM_ENABLE_OPEN=True, VRT_SHARED_SOURCE=False),
        rasterio.open(vrt) as joined,
    ):
        rasterio.shutil.copy(joined, output.name, **profile.cog_driver_options(dtype))
    del arrays
    cog: bytes = output.read()
    if not cog:
        raise CogConversionError("the COG writer produced no bytes")
    return cog


def _mem_dataset(array: np.ndarray) -> str:
    """A GDAL MEM dataset name over a C-contiguous (bands, rows, columns) array, no copy."""
    bands, height, width = array.shape
    item = array.dtype.itemsize
    return (
        f"MEM:::DATAPOINTER={array.ctypes.data},PIXELS={width},LINES={height},BANDS={bands},"
        f"DATATYPE={_gdal_type(str(array.dtype))},PIXELOFFSET={item},"
        f"LINEOFFSET={item * width},BANDOFFSET={item * width * height}"
    )


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
