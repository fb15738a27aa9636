"""Raw GeoTIFF -> Cloud-Optimized GeoTIFF (rio-cogeo), and COG validation. Pure functions.

``convert`` takes the raw scene as bytes or a path and returns the COG as bytes: the
data bands (the ``dataMask``/``alpha`` band becomes the internal mask, not a band),
band descriptions kept, written with a named profile (``canopywatch.cog.profiles``).
``validate`` runs ``rio_cogeo.cogeo.cog_validate`` on bytes or a path.

Everything happens in GDAL's in-memory file system (``/vsimem``): no temporary files,
so executors on shared machines leave nothing behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.utils import get_maximum_overview_level  # type: ignore[attr-defined]

from canopywatch.cog.profiles import DEFAULT_PROFILE, MASK_BANDS, CogProfile, get_profile

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

    # stage the data bands in memory, no-data pixels (dataMask = 0) set to a nodata value;
    # rio-cogeo turns that nodata into the COG's internal mask (add_mask) and drops the
    # nodata tag. (A staged per-dataset mask is lost in rio-cogeo's WarpedVRT on GDAL 3.10.)
    nodata = _nodata_for(dtype) if mask_indexes else src.nodata
    data = src.read(data_indexes)
    if mask_indexes:
        invalid = np.zeros((src.height, src.width), dtype=bool)
        for index in mask_indexes:
            invalid |= src.read(index) == 0
        data[:, invalid] = nodata
    staged_file = stack.enter_context(MemoryFile())
    with staged_file.open(
        driver="GTiff",
        width=src.width,
        height=src.height,
        count=len(data_indexes),
        dtype=dtype,
        crs=src.crs,
        transform=src.transform,
        nodata=nodata,
    ) as writer:
        writer.write(data)
        for position, name in enumerate(data_names, start=1):
            writer.set_band_description(position, name)
        writer.update_tags(**src.tags())
    del data
    staged = stack.enter_context(staged_file.open())

    output = stack.enter_context(MemoryFile())
    cog_translate(
        staged,
        output.name,
        profile.creation_options(dtype),
        add_mask=nodata is not None,
        overview_level=overview_levels(src.width, src.height, profile),
        overview_resampling=profile.overview_resampling(data_names),  # type: ignore[arg-type]
        in_memory=True,
        quiet=True,
        config=GDAL_WRITE_ENV,
        additional_cog_metadata={"CANOPYWATCH_COG_PROFILE": profile.name},
    )
    cog: bytes = output.read()
    if not cog:
        raise CogConversionError("the COG writer produced no bytes")
    return cog


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
