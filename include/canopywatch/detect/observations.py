"""Time series of observations of an area, read window by window, with cloud masking.

An ``ObservationStack`` holds, for T dates and an H x W window, surface reflectance per
band (or one vegetation index) as float32 with NaN where there is no usable observation,
and the ``clear`` mask. Sources (raw ``s2l2a_bands`` GeoTIFFs, folders of
per-band files, index stacks) implement ``StackSource``: a grid, the dates, and
``read(window)``, so large areas are processed one window at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.crs
import rasterio.errors
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from scipy import ndimage

from canopywatch.geo import Grid as Grid  # the one raster grid, used here throughout
from canopywatch.sentinel2 import (
    BANDS,
    RAW_BAND_ORDER,
    REFLECTANCE_SCALE,
    SCL_CLOUDY,
    SCL_INVALID,
    SCL_SNOW_ICE,
)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

S2_BANDS: tuple[str, ...] = BANDS  # B02, B03, B04, B08, B11, B12
# SCL: no data, defective, cloud shadow, cloud medium/high, thin cirrus, snow. Snow is not in
# the usual set {0,1,3,8,9,10}; for forest loss a snow-covered canopy is no observation.
DEFAULT_INVALID_SCL: frozenset[int] = SCL_INVALID | {SCL_SNOW_ICE}
CLOUD_SCL: frozenset[int] = SCL_CLOUDY


@dataclass(frozen=True)
class MaskingConfig:
    invalid_scl: frozenset[int] = DEFAULT_INVALID_SCL
    # cloud and shadow masks grow by this many pixels: their soft edges are not flagged
    dilation_px: int = 2
    cloud_scl: frozenset[int] = CLOUD_SCL


@dataclass(frozen=True)
class ObservationStack:
    days: IntArray  # (T,) days since 1970-01-01, increasing, unique
    bands: dict[str, FloatArray]  # name -> (T, H, W); S2 reflectance or one index
    clear: BoolArray  # (T, H, W)
    transform: Affine
    crs: rasterio.crs.CRS
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.clear.shape[1]), int(self.clear.shape[2]))

    @property
    def n_dates(self) -> int:
        return int(self.days.size)

    @property
    def dates(self) -> list[dt.date]:
        return [dt.date(1970, 1, 1) + dt.timedelta(days=int(day)) for day in self.days]

    @property
    def has_reflectance(self) -> bool:
        return all(band in self.bands for band in S2_BANDS)

    def at(self, index: int) -> dict[str, FloatArray]:
        return {name: values[index] for name, values in self.bands.items()}

    def crop(self, rows: slice, cols: slice) -> ObservationStack:
        return ObservationStack(
            days=self.days,
            bands={name: values[:, rows, cols] for name, values in self.bands.items()},
            clear=self.clear[:, rows, cols],
            transform=self.transform * Affine.translation(cols.start or 0, rows.start or 0),
            crs=self.crs,
            meta=self.meta,
        )


class StackSource(Protocol):
    @property
    def grid(self) -> Grid: ...

    @property
    def days(self) -> IntArray: ...

    def read(self, window: Window | None = None) -> ObservationStack: ...


# ----------------------------------------------------------------------------- masking


def dilate(mask: BoolArray, pixels: int) -> BoolArray:
    if pixels <= 0 or not mask.any():
        return mask
    size = 2 * pixels + 1
    grown: BoolArray = ndimage.binary_dilation(mask, structure=np.ones((size, size), dtype=bool))
    return grown


def clear_mask_from_scl(
    scl: npt.NDArray[Any], data_mask: npt.NDArray[Any] | None, masking: MaskingConfig
) -> BoolArray:
    """Clear = valid data, SCL not in the invalid set, not within ``dilation_px`` of cloud/shadow."""
    invalid = np.isin(scl, sorted(masking.invalid_scl))
    if data_mask is not None:
        invalid |= data_mask == 0
    cloudy = np.isin(scl, sorted(masking.cloud_scl & masking.invalid_scl))
    invalid |= dilate(cloudy, masking.dilation_px)
    clear: BoolArray = ~invalid
    return clear


def finalize(
    days: Sequence[int],
    bands: Mapping[str, Sequence[FloatArray]],
    clear: Sequence[BoolArray],
    transform: Affine,
    crs: rasterio.crs.CRS,
    meta: dict[str, Any] | None = None,
) -> ObservationStack:
    """Stack per-date arrays: sort by day, merge same-day dates (first clear value wins)."""
    order = np.argsort(np.asarray(days, dtype=np.int64), kind="stable")
    unique_days: list[int] = []
    merged_bands: dict[str, list[FloatArray]] = {name: [] for name in bands}
    merged_clear: list[BoolArray] = []
    for position in order:
        day = int(days[position])
        clear_now = clear[position].copy()
        values = {name: arrays[position].copy() for name, arrays in bands.items()}
        for array in values.values():
            array[~clear_now] = np.nan
        if unique_days and unique_days[-1] == day:
            fill = ~merged_clear[-1] & clear_now
            for name in bands:
                merged_bands[name][-1][fill] = values[name][fill]
            merged_clear[-1] |= clear_now
            continue
        unique_days.append(day)
        merged_clear.append(clear_now)
        for name in bands:
            merged_bands[name].append(values[name])
    if not unique_days:
        raise ValueError("no observations")
    return ObservationStack(
        days=np.asarray(unique_days, dtype=np.int64),
        bands={name: np.stack(arrays).astype(np.float32) for name, arrays in merged_bands.items()},
        clear=np.stack(merged_clear),
        transform=transform,
        crs=crs,
        meta=meta or {},
    )


def iter_windows(grid: Grid, size: int, halo: int = 0) -> Iterator[tuple[Window, Window]]:
    """(read window with ``halo`` pixels of context, core window) pairs tiling the grid."""
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            core = Window(col, row, min(size, grid.width - col), min(size, grid.height - row))
            r0, c0 = max(0, row - halo), max(0, col - halo)
            r1 = min(grid.height, row + core.height + halo)
            c1 = min(grid.width, col + core.width + halo)
            yield Window(c0, r0, c1 - c0, r1 - r0), core


def window_or_full(grid: Grid, window: Window | None) -> Window:
    return window if window is not None else Window(0, 0, grid.width, grid.height)


# ----------------------------------------------------------------------------- sources


class GriddedSource:
    """What every source shares: its grid and its acquisition days (days since 1970-01-01)."""

    _grid: Grid
    _days: IntArray

    @property
    def grid(self) -> Grid:
        return self._grid

    @property
    def days(self) -> IntArray:
        return self._days


class ArraySource(GriddedSource):
    """A stack already in memory (from xarray, an earlier read, a generator) as a source:
    each window is a crop of it."""

    def __init__(self, stack: ObservationStack) -> None:
        height, width = stack.shape
        self.stack = stack
        self._grid = Grid(stack.crs, stack.transform, width, height)
        self._days = stack.days

    def read(self, window: Window | None = None) -> ObservationStack:
        rows, cols = window_or_full(self._grid, window).toslices()
        return self.stack.crop(rows, cols)


def dated_files_layout(
    files: Sequence[tuple[int, Path]],
) -> tuple[list[tuple[int, Path]], Grid, IntArray]:
    """Files sorted by day, the grid of the first file, and the distinct days."""
    ordered = sorted(files)
    days = np.asarray(sorted({day for day, _ in ordered}), dtype=np.int64)
    return ordered, _grid_of(ordered[0][1]), days


def _grid_of(path: Path) -> Grid:
    with rasterio.open(path) as src:
        if src.crs is None:
            raise ValueError(f"{path} has no CRS")
        return Grid(src.crs, src.transform, src.width, src.height)


def read_aligned(
    path: Path,
    grid: Grid,
    window: Window,
    indexes: Sequence[int] | None = None,
    resampling: Resampling = Resampling.nearest,
) -> tuple[npt.NDArray[Any], float | None]:
    """Bands of ``path`` on ``grid``'s ``window`` (reprojected/resampled when grids differ);
    a file that cannot be read (truncated, corrupt) is named in the error."""
    try:
        with rasterio.open(path) as src:
            nodata = src.nodata
            bands = list(indexes) if indexes is not None else list(range(1, src.count + 1))
            same_grid = (
                src.crs == grid.crs
                and src.transform.almost_equals(grid.transform)
                and (src.width, src.height) == (grid.width, grid.height)
            )
            if same_grid:
                return src.read(bands, window=window), nodata
            with WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=resampling,
                src_nodata=nodata,
                nodata=nodata,
            ) as vrt:
                return vrt.read(bands, window=window), nodata
    except (rasterio.errors.RasterioError, OSError) as exc:
        # GDAL's own reason sits in the exception it chained ("Read failed. See previous
        # exception for details.")
        reason = exc.__cause__ or exc.__context__ or exc
        message = str(reason).splitlines()[0] if str(reason) else type(exc).__name__
        raise ValueError(f"{path}: cannot be read ({message})") from exc


@dataclass(frozen=True)
class SceneEncoding:
    """How one file stores its bands: names in file order, reflectance = (DN + offset) / scale."""

    band_order: tuple[str, ...]
    dn_offset: float
    dn_scale: float


def _tag_number(tags: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        for key, value in tags.items():
            if key.upper() == name:
                try:
                    return float(value)
                except ValueError as exc:
                    raise ValueError(f"tag {key}={value!r} is not a number") from exc
    return None


def scene_encoding(
    path: Path,
    band_order: Sequence[str] | None = None,
    dn_offset: float | None = None,
    dn_scale: float | None = None,
) -> SceneEncoding:
    """The encoding of ``path`` from its metadata, with explicit values taking precedence.

    Band names come from the band descriptions (``B02``... ``SCL``) when every S2 band is
    named there, else the ``s2l2a_bands`` order; the DN offset and scale from the
    ``BOA_ADD_OFFSET`` / ``BOA_QUANTIFICATION_VALUE`` tags (dataset or first band), else 0 and
    10000 (see ``canopywatch.sentinel2`` for the processing-baseline offset).
    """
    with rasterio.open(path) as src:
        descriptions = tuple((d or "").strip() for d in src.descriptions)
        tags = {**src.tags(1), **src.tags()}
    order: tuple[str, ...]
    if band_order is not None:
        order = tuple(band_order)
    elif all(band in descriptions for band in S2_BANDS):
        order = descriptions
    else:
        order = RAW_BAND_ORDER
    offset = dn_offset
    if offset is None:
        offset = _tag_number(tags, "BOA_ADD_OFFSET") or 0.0
    scale = dn_scale
    if scale is None:
        scale = _tag_number(tags, "BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE")
        scale = scale or REFLECTANCE_SCALE
    return SceneEncoding(order, float(offset), float(scale))


class SceneFilesSource(GriddedSource):
    """Multi-band GeoTIFFs, one per date (e.g. raw ``s2l2a_bands`` downloads, L2A exports).

    Each file's band names, DN offset and scale are read from its metadata
    (``scene_encoding``); ``band_order``, ``dn_offset`` and ``dn_scale`` override them.
    Recognised names are the S2 bands, ``SCL``, ``dataMask`` and ``CLM`` (non-zero = cloud);
    other names are ignored. DN ``nodata`` (default 0) is no observation.
    """

    def __init__(
        self,
        files: Sequence[tuple[int, Path]],
        band_order: Sequence[str] | None = None,
        masking: MaskingConfig | None = None,
        dn_scale: float | None = None,
        dn_offset: float | None = None,
        nodata: float | None = 0.0,
    ) -> None:
        if not files:
            raise ValueError("no scene files")
        if band_order is not None:
            missing = [band for band in S2_BANDS if band not in band_order]
            if missing:
                raise ValueError(f"band order {','.join(band_order)} lacks {','.join(missing)}")
        self.files, self._grid, self._days = dated_files_layout(files)
        self.band_order = None if band_order is None else tuple(band_order)
        self.masking = masking or MaskingConfig()
        self.dn_scale, self.dn_offset, self.nodata = dn_scale, dn_offset, nodata
        self.encodings = {
            path: scene_encoding(path, self.band_order, dn_offset, dn_scale)
            for _, path in self.files
        }
        for path, encoding in self.encodings.items():
            missing = [band for band in S2_BANDS if band not in encoding.band_order]
            if missing:
                raise ValueError(f"{path.name}: no band named {','.join(missing)} (--band-order)")

    def read(self, window: Window | None = None) -> ObservationStack:
        win = window_or_full(self._grid, window)
        bands: dict[str, list[FloatArray]] = {band: [] for band in S2_BANDS}
        clear: list[BoolArray] = []
        days: list[int] = []
        for day, path in self.files:
            encoding = self.encodings[path]
            data, file_nodata = read_aligned(path, self._grid, win)
            if data.shape[0] < len(encoding.band_order):
                raise ValueError(
                    f"{path.name} has {data.shape[0]} bands, band order names "
                    f"{len(encoding.band_order)}"
                )
            named = {name: data[i] for i, name in enumerate(encoding.band_order)}
            nodata = self.nodata if self.nodata is not None else file_nodata
            valid = np.ones(data.shape[1:], dtype=bool)
            for band in S2_BANDS:
                if nodata is not None:
                    valid &= named[band] != nodata
                valid &= np.isfinite(named[band])
            if "SCL" in named:
                data_mask = named.get("dataMask")
                ok = clear_mask_from_scl(named["SCL"], data_mask, self.masking) & valid
            else:
                ok = valid
                if "dataMask" in named:
                    ok &= named["dataMask"] != 0
            if "CLM" in named:
                ok &= ~dilate(named["CLM"] != 0, self.masking.dilation_px)
            for band in S2_BANDS:
                raw = named[band].astype(np.float32)
                bands[band].append(
                    (raw + np.float32(encoding.dn_offset)) / np.float32(encoding.dn_scale)
                )
            clear.append(ok)
            days.append(day)
        return finalize(days, bands, clear, self._grid.window_transform(win), self._grid.crs)


def check_reflectance(stack: ObservationStack) -> None:
    """Fail with one clear line when clear observations are not plausible surface reflectance
    (the classic symptoms: the BOA offset left in, applied twice, or the wrong scale)."""
    if not stack.has_reflectance or not stack.clear.any():
        return
    values = {band: stack.bands[band][stack.clear] for band in S2_BANDS}
    dark = {band: float(np.nanpercentile(v, 1)) for band, v in values.items() if v.size}
    bright = {band: float(np.nanpercentile(v, 50)) for band, v in values.items() if v.size}
    if not dark:
        return
    # every real scene has dark targets (water, dense canopy, shadow) in the visible bands
    if min(dark["B02"], dark["B04"]) > 0.08:
        raise ValueError(
            f"implausible surface reflectance: no clear pixel darker than "
            f"{min(dark['B02'], dark['B04']):.3f} in B02/B04, as when the BOA offset (-1000 DN "
            "from processing baseline 04.00) is left in; check --dn-offset / --dn-scale"
        )
    if min(dark.values()) < -0.05 or max(bright.values()) > 0.8:
        raise ValueError(
            "implausible surface reflectance (1st percentile "
            f"{min(dark.values()):.3f}, median up to {max(bright.values()):.3f}); "
            "check --dn-offset / --dn-scale / --band-order"
        )


class BandFilesSource(GriddedSource):
    """Per-date folders of per-band files (THEIA-like), resampled to the finest band grid.

    ``dates`` maps day -> {band name -> path}; an optional ``"CLM"`` entry is a cloud mask
    (non-zero = cloud or shadow). Reflectance = (DN + dn_offset) / dn_scale.
    """

    def __init__(
        self,
        dates: Mapping[int, Mapping[str, Path]],
        masking: MaskingConfig | None = None,
        dn_scale: float = REFLECTANCE_SCALE,
        dn_offset: float = 0.0,
        nodata: float | None = None,
    ) -> None:
        if not dates:
            raise ValueError("no dated band folders")
        self.dates = {day: dict(paths) for day, paths in sorted(dates.items())}
        for day, paths in self.dates.items():
            missing = [band for band in S2_BANDS if band not in paths]
            if missing:
                raise ValueError(f"day {day}: no file for bands {', '.join(missing)}")
        self.masking = masking or MaskingConfig()
        self.dn_scale, self.dn_offset, self.nodata = dn_scale, dn_offset, nodata
        first = next(iter(self.dates.values()))
        grids = [_grid_of(first[band]) for band in S2_BANDS]
        self._grid = min(grids, key=lambda grid: grid.pixel_area_m2)
        self._days = np.asarray(list(self.dates), dtype=np.int64)

    def read(self, window: Window | None = None) -> ObservationStack:
        win = window_or_full(self._grid, window)
        bands: dict[str, list[FloatArray]] = {band: [] for band in S2_BANDS}
        clear: list[BoolArray] = []
        for paths in self.dates.values():
            valid = np.ones((int(win.height), int(win.width)), dtype=bool)
            for band in S2_BANDS:
                data, file_nodata = read_aligned(paths[band], self._grid, win, [1])
                raw = data[0].astype(np.float32)
                nodata = self.nodata if self.nodata is not None else file_nodata
                if nodata is not None:
                    valid &= raw != nodata
                reflectance = (raw + np.float32(self.dn_offset)) / np.float32(self.dn_scale)
                valid &= np.isfinite(reflectance) & (reflectance > 0)
                bands[band].append(reflectance)
            if "CLM" in paths:
                mask, _ = read_aligned(paths["CLM"], self._grid, win, [1])
                valid &= ~dilate(mask[0] != 0, self.masking.dilation_px)
            clear.append(valid)
        return finalize(
            list(self.dates), bands, clear, self._grid.window_transform(win), self._grid.crs
        )
