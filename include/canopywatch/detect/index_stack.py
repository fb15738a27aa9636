"""Folders of GeoTIFFs as stacks: any sensor's single-index series, or S2 scenes per date.

* ``IndexStackSource``: one GeoTIFF per date holding one vegetation index (NDVI from
  Landsat, MODIS, ...), nodata honoured, dates parsed from the file names with a
  configurable pattern: a ``strptime`` format (``NDVI_%Y-%m-%d``; matched anywhere in the
  name) or a regular expression with one group (parsed as %Y%m%d, %Y-%m-%d or %Y%j).
  Dates may be sparse and irregular; files on another grid are warped to the first one's.
* ``scene_folder_source``: multi-band S2 GeoTIFFs per date (band order configurable), or
  per-date sub-folders of per-band files (band file patterns configurable, THEIA preset).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from canopywatch.dates import days_since_epoch
from canopywatch.detect.observations import (
    S2_BANDS,
    BandFilesSource,
    BoolArray,
    FloatArray,
    GriddedSource,
    MaskingConfig,
    ObservationStack,
    SceneFilesSource,
    dated_files_layout,
    dilate,
    finalize,
    read_aligned,
    window_or_full,
)

TIFF_SUFFIXES = (".tif", ".tiff")
EDGE_BUFFER_M = 20.0  # how far unflagged cloud edges reach beyond a cloud mask
# below this NDVI a look shows no land surface: bare soil, char and slash stay above ~0.1;
# snow, water and unmasked cloud lie near or below 0. An NDVI-only stack has no second
# index (NBR, NDSI) to tell snow from a clearing, so such looks are not observations
NDVI_LAND_FLOOR = 0.05
THEIA_BAND_PATTERNS: dict[str, str] = {
    "B02": "*_FRE_B2.tif",
    "B03": "*_FRE_B3.tif",
    "B04": "*_FRE_B4.tif",
    "B08": "*_FRE_B8A.tif",  # B8A (20 m) stands in for B08: THEIA sample has no B08 here
    "B11": "*_FRE_B11.tif",
    "B12": "*_FRE_B12.tif",
    "CLM": "MASKS/*_CLM_R2.tif",
}
_STRPTIME_REGEX = {
    "%Y": r"\d{4}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%j": r"\d{3}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%y": r"\d{2}",
}
_FALLBACK_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y_%m_%d", "%Y%j", "%Y.%m.%d")


def parse_date(name: str, pattern: str) -> dt.date:
    """Date in a file name: ``pattern`` is a strptime format or a regex with one group."""
    if "%" in pattern:
        regex = ""
        i = 0
        while i < len(pattern):
            token = pattern[i : i + 2]
            if token in _STRPTIME_REGEX:
                regex += _STRPTIME_REGEX[token]
                i += 2
            else:
                regex += re.escape(pattern[i])
                i += 1
        match = re.search(regex, name)
        if not match:
            raise ValueError(f"file name {name!r} does not match date pattern {pattern!r}")
        return dt.datetime.strptime(match.group(0), pattern).date()
    try:
        match = re.search(pattern, name)
    except re.error as exc:
        raise ValueError(f"bad date pattern {pattern!r}: {exc}") from exc
    if not match:
        raise ValueError(f"file name {name!r} does not match date pattern {pattern!r}")
    text = match.group(1) if match.groups() else match.group(0)
    # strptime reads 2021065 as %Y%m%d (2021-06-05): a 7-digit date is year + day of year
    layouts = ("%Y%j",) if re.fullmatch(r"\d{7}", text) else _FALLBACK_FORMATS
    for layout in layouts:
        try:
            return dt.datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} (from {name!r}) is not a date as %Y%m%d, %Y-%m-%d or %Y%j")


def dated_files(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
    if not files:
        raise ValueError(f"no GeoTIFFs in {folder}")
    return [(days_since_epoch(parse_date(p.name, pattern)), p) for p in files]


def cloud_edges(missing: BoolArray, pixels: int) -> BoolArray:
    """The ring of ``pixels`` around the no-data blobs (clouds) of one date; isolated missing
    pixels (QA specks, stripes a pixel wide) have no edge to grow."""
    if pixels <= 0 or not missing.any():
        return np.zeros_like(missing)
    blobs = ndimage.binary_opening(missing, structure=np.ones((3, 3), dtype=bool))
    grown: BoolArray = dilate(blobs, pixels) & ~missing
    return grown


def land_looks(index: str, values: FloatArray) -> BoolArray:
    """Where a look of ``index`` can show the land surface: NDVI at or above
    ``NDVI_LAND_FLOOR`` (not snow, water or unmasked cloud); any other index everywhere."""
    if index.lower() != "ndvi":
        return np.ones(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(values >= NDVI_LAND_FLOOR)


class IndexStackSource(GriddedSource):
    """Per-date single-index GeoTIFFs; ``scale`` multiplies stored values (e.g. 1e-4)."""

    def __init__(
        self,
        files: Sequence[tuple[int, Path]],
        index: str,
        *,
        nodata: float | None = None,
        scale: float | None = None,
        valid_range: tuple[float, float] = (-1.0, 1.0),
        dilation_px: int | None = None,
    ) -> None:
        if not files:
            raise ValueError("no index files")
        self.files, self._grid, self._days = dated_files_layout(files)
        # an index stack's no-data is its cloud mask: soft cloud edges beside it are not
        # masked, so it grows by about 20 m (1 px at 30 m) unless the caller says otherwise
        pixel_m = abs(self._grid.transform.a)
        auto = max(1, round(EDGE_BUFFER_M / pixel_m)) if pixel_m > 0 else 1
        self.dilation_px = auto if dilation_px is None else dilation_px
        self.index = index.lower()
        self.nodata = nodata
        self.scale = scale
        self.valid_range = valid_range

    def read(self, window: Window | None = None) -> ObservationStack:
        win = window_or_full(self._grid, window)
        values: list[FloatArray] = []
        clear: list[BoolArray] = []
        for _, path in self.files:
            data, file_nodata = read_aligned(path, self._grid, win, [1])
            raw = data[0]
            nodata = self.nodata if self.nodata is not None else file_nodata
            valid = np.isfinite(raw) if raw.dtype.kind == "f" else np.ones(raw.shape, dtype=bool)
            if nodata is not None and not np.isnan(nodata):
                valid &= raw != nodata
            scaled = raw.astype(np.float32)
            scale = self.scale
            if scale is None:  # integer-coded indices (x10000 like MODIS/Landsat products)
                scale = 1e-4 if raw.dtype.kind in "iu" else 1.0
            scaled = scaled * np.float32(scale)
            low, high = self.valid_range
            with np.errstate(invalid="ignore"):
                valid &= (scaled >= low) & (scaled <= high)
            values.append(scaled)
            clear.append(
                valid & ~cloud_edges(~valid, self.dilation_px) & land_looks(self.index, scaled)
            )
        return finalize(
            [day for day, _ in self.files],
            {self.index: values},
            clear,
            self._grid.window_transform(win),
            self._grid.crs,
        )


def band_folders(
    folder: Path, pattern: str, band_patterns: Mapping[str, str]
) -> dict[int, dict[str, Path]]:
    """Per-date sub-folders of per-band files: day -> {band -> path}."""
    dates: dict[int, dict[str, Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        day = days_since_epoch(parse_date(sub.name, pattern))
        files: dict[str, Path] = {}
        for band, glob in band_patterns.items():
            matches = sorted(
                p for p in sub.glob("**/*") if fnmatch(p.relative_to(sub).as_posix(), glob)
            )
            if matches:
                files[band] = matches[0]
        if all(band in files for band in S2_BANDS):
            dates.setdefault(day, files)
    if not dates:
        raise ValueError(f"no per-date folders with files for {', '.join(S2_BANDS)} in {folder}")
    return dates


def scene_folder_source(
    folder: Path,
    *,
    date_pattern: str = r"(\d{8})",
    band_order: Sequence[str] | None = None,
    band_patterns: Mapping[str, str] | None = None,
    masking: MaskingConfig | None = None,
    dn_scale: float | None = None,
    dn_offset: float | None = None,
    nodata: float | None = None,
) -> SceneFilesSource | BandFilesSource:
    """Multi-band files in ``folder``, or (``band_patterns`` given) per-date sub-folders.

    Multi-band files describe themselves (band descriptions, BOA offset tags); explicit
    ``band_order`` / ``dn_offset`` / ``dn_scale`` override that."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if band_patterns is not None:
        return BandFilesSource(
            band_folders(folder, date_pattern, band_patterns),
            masking,
            dn_scale=10000.0 if dn_scale is None else dn_scale,
            dn_offset=0.0 if dn_offset is None else dn_offset,
            nodata=nodata,
        )
    return SceneFilesSource(
        dated_files(folder, date_pattern),
        band_order,
        masking,
        dn_scale=dn_scale,
        dn_offset=dn_offset,
        nodata=0.0 if nodata is None else nodata,
    )
