"""Synthetic Sentinel-2 L2A acquisitions over a tropical forest frontier.

The model, briefly:

* Grid: a north-up UTM grid (``SimulationConfig``); acquisitions every ``revisit_days``
  (Sentinel-2A and -2B alternating) with occasional missing dates.
* Static layers, computed once: land cover from thresholded Gaussian random fields
  (lakes in the lowest terrain, forest blobs, settlement and bare-soil patches, crop
  parcels on a rectangular cadastre, pasture elsewhere), a per-pixel texture multiplier
  and per-pixel pasture productivity.
* Surface at a date: every pixel is a linear mix of two endmember spectra (``a``, ``b``,
  weight ``w``). Pasture and crops pick the mix giving a target NDVI that follows the
  wet/dry season (crops: sowing, growth, senescence, harvest per parcel). Events switch
  pixels to other mixes: deforestation turns forest into slash/bare soil (optionally a
  burn scar for some weeks, optionally regrowth later); pasture drying, flooding and
  harvest are changes that are not deforestation.
* Atmosphere per acquisition: clouds are a window of a static multi-scale random texture
  thresholded to a drawn cover fraction (overcast dates are fully covered); shadows are
  the same cloud field displaced along the anti-solar direction, darkening the surface;
  haze adds path radiance mostly to the visible bands; sensor noise; occasionally a
  swath edge leaves part of the grid without data.
* Encoding: DN = reflectance * 10000 + 1000 (BOA_ADD_OFFSET of processing baseline
  >= 04.00), DN 0 = no data; SCL classes as in the L2A scene classification.

Truth: ``Simulation.clearing_date`` holds, per pixel, the day (since 1970-01-01) from
which the rendered data show the pixel as no longer forest (cleared iff
``clearing_date <= acquisition day``); ``Simulation.events`` holds dated polygons of
every change, deforestation or not.

Every random draw comes from ``numpy.random.default_rng([seed, stream, ...])``, so a
render depends only on the configuration and the acquisition index.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import rasterio.crs
import rasterio.features
from affine import Affine
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from canopywatch.dates import date_from_days, days_since_epoch
from canopywatch.sentinel2 import (
    BANDS,
    BOA_ADD_OFFSET_DN,
    NODATA_DN,
    REFLECTANCE_SCALE,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_NO_DATA,
    SCL_NOT_VEGETATED,
    SCL_THIN_CIRRUS,
    SCL_VEGETATION,
    SCL_WATER,
)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]
UInt16Array = npt.NDArray[np.uint16]

# Land cover codes of ``Simulation.landcover`` (state at the start of the simulation).
LC_FOREST: Final = 1
LC_PASTURE: Final = 2
LC_CROPLAND: Final = 3
LC_WATER: Final = 4
LC_BARE: Final = 5
LC_SETTLEMENT: Final = 6
LANDCOVER_NAMES: dict[int, str] = {
    LC_FOREST: "forest",
    LC_PASTURE: "pasture",
    LC_CROPLAND: "cropland",
    LC_WATER: "water",
    LC_BARE: "bare_soil",
    LC_SETTLEMENT: "settlement",
}

EVENT_KINDS: tuple[str, ...] = (
    "clearing",
    "progressive_clearing",
    "burned_clearing",
    "clearing_regrowth",
    "harvest",
    "pasture_drying",
    "flooding",
)
DEFORESTATION_KINDS: tuple[str, ...] = EVENT_KINDS[:4]

# Endmember surface reflectance, columns in BANDS order (B02, B03, B04, B08, B11, B12).
EM_FOREST: Final = 0
EM_GREEN: Final = 1  # green grass / crop canopy
EM_DRY: Final = 2  # senescent grass
EM_SOIL: Final = 3  # bare soil, fresh clearing slash
EM_WATER: Final = 4
EM_URBAN: Final = 5
EM_BURN: Final = 6  # burned slash: NBR < 0
EM_REGROWTH: Final = 7  # secondary vegetation
ENDMEMBERS: Final[FloatArray] = np.array(
    [
        [0.020, 0.040, 0.022, 0.300, 0.145, 0.065],
        [0.030, 0.070, 0.035, 0.400, 0.200, 0.095],
        [0.070, 0.100, 0.130, 0.240, 0.320, 0.220],
        [0.090, 0.120, 0.160, 0.250, 0.330, 0.210],
        [0.045, 0.055, 0.035, 0.020, 0.008, 0.005],
        [0.100, 0.115, 0.135, 0.200, 0.260, 0.220],
        [0.035, 0.045, 0.055, 0.090, 0.190, 0.170],
        [0.025, 0.055, 0.030, 0.360, 0.180, 0.080],
    ],
    dtype=np.float32,
)
_RED, _NIR = 2, 3

NDVI_VEGETATION_THRESHOLD = 0.40  # surface NDVI above which SCL says vegetation
NDVI_FALLOW = 0.24
NDVI_CROP_PEAK = 0.85
NDVI_CROP_SENESCENT = 0.45
NDVI_DROUGHT = 0.24
CROP_GROWTH_DAYS = (70, 95)
CROP_SEASON_DAYS = (110, 135)
CROP_SENESCENCE_DAYS = 25

# texture amplitude (relative std of the per-pixel multiplier) per land cover code
_TEXTURE_AMPLITUDE: Final[FloatArray] = np.array(
    [0.0, 0.06, 0.06, 0.04, 0.02, 0.08, 0.20], dtype=np.float32
)

CLOUD_SPECTRUM: Final[FloatArray] = np.array([1.0, 0.98, 0.97, 0.95, 0.85, 0.75], dtype=np.float32)
HAZE_SPECTRUM: Final[FloatArray] = np.array([1.0, 0.75, 0.55, 0.25, 0.05, 0.02], dtype=np.float32)
CLOUD_SOFTNESS = 0.5  # texture std units over which a cloud goes from 0 to full opacity
CLOUD_FLAG_MEDIUM = 0.35  # opacity from which SCL says cloud (medium probability)
CLOUD_FLAG_HIGH = 0.65
SHADOW_DEPTH = 0.7  # share of direct light a full shadow removes
HAZE_CIRRUS_FLAG = 0.045  # haze path reflectance (B02) from which SCL says thin cirrus
MAX_SHADOW_DISTANCE_M = 1200.0
NOISE_ABSOLUTE = 0.001
NOISE_RELATIVE = 0.01
NOISE_BANK_MARGIN = 64

_STREAM_LANDSCAPE: Final = 1
_STREAM_EVENTS: Final = 2
_STREAM_ACQUISITIONS: Final = 3
_STREAM_ATMOSPHERE: Final = 4
_STREAM_NOISE: Final = 5
_STREAM_CLOUD_TEXTURE: Final = 6


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 0
    epsg: int = 32721  # UTM EPSG of the grid
    origin_x: float = 500000.0  # upper-left corner x (m)
    origin_y: float = 8800000.0  # upper-left corner y (m)
    width: int = 512
    height: int = 512
    resolution: float = 10.0
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)
    revisit_days: int = 5
    # 0: no clouds at all; 1: typical tropical cloudiness; >1 cloudier
    cloudiness: float = 1.0
    # probability scale of hazy dates; 0: never hazy
    haziness: float = 1.0
    # probability that an acquisition is missing
    gap_probability: float = 0.05
    # probability that a swath edge leaves part of the grid without data
    nodata_edge_probability: float = 0.04
    # shares of the grid area
    forest_share: float = 0.60
    water_share: float = 0.04
    settlement_share: float = 0.02
    bare_share: float = 0.02
    cropland_share: float = 0.12
    # number of deforestation events; None: about one per 100 ha of forest (at least 4)
    n_clearings: int | None = None
    min_clearing_ha: float = 0.05
    max_clearing_ha: float = 40.0
    pasture_drying_per_year: int = 1
    floods_per_year: int = 1
    # sensor noise scale; 0: noise-free
    noise_level: float = 1.0
    # rendered acquisitions kept in memory by Simulation.render
    render_cache_size: int = 16

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"grid must be at least 1x1, got {self.width}x{self.height}")
        if self.resolution <= 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.revisit_days < 1:
            raise ValueError(f"revisit_days must be >= 1, got {self.revisit_days}")
        shares = (
            self.forest_share,
            self.water_share,
            self.settlement_share,
            self.bare_share,
            self.cropland_share,
        )
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError("land cover shares must be >= 0 and sum to at most 1")
        if not 0 < self.min_clearing_ha <= self.max_clearing_ha:
            raise ValueError("need 0 < min_clearing_ha <= max_clearing_ha")
        if self.epsg // 100 not in (326, 327) or not 1 <= self.epsg % 100 <= 60:
            raise ValueError(f"epsg {self.epsg} is not a WGS 84 / UTM zone")


@dataclass(frozen=True)
class Acquisition:
    index: int
    datetime: dt.datetime  # tz-aware UTC
    platform: str  # "sentinel-2a" | "sentinel-2b"
    cloud_cover: float  # percent of the valid pixels flagged SCL 3/8/9/10
    product_id: str
    tile_id: str
    nodata_pixel_percentage: float = 0.0

    @property
    def date(self) -> dt.date:
        return self.datetime.date()


@dataclass(frozen=True)
class Event:
    id: str
    kind: str  # one of EVENT_KINDS
    is_deforestation: bool
    start: dt.date  # first date the change is on the ground (visible from then on)
    end: dt.date  # date the change is complete (== start unless progressive)
    geometry: BaseGeometry  # pixel-exact polygon(s) in the grid's UTM CRS
    area_ha: float
    # date the change starts to revert (regrowth begins, flood recedes, rains return,
    # next sowing); None when it stays
    until: dt.date | None = None


@dataclass(frozen=True)
class AtmosphereParams:
    """What was drawn for one acquisition's atmosphere (exposed for tests and debugging)."""

    sky: str  # "clear" | "partly" | "overcast"
    cloud_fraction: float  # target share of the grid flagged cloud
    cumulus_weight: float  # 0: smooth stratiform field, 1: small cumulus cells
    big_offset: tuple[int, int]
    small_offset: tuple[int, int]
    haze_offset: tuple[int, int]
    noise_offset: tuple[int, int]
    shadow_offset_px: tuple[int, int]  # (rows, cols) from a cloud to its shadow
    haze_level: float  # path reflectance added to B02; 0: no haze
    brightness: float  # per-date illumination / BRDF factor
    nodata_edge: tuple[str, float, float] | None  # (side, share of columns, slope)


@dataclass(frozen=True)
class _AtmosphereLayers:
    cloud_alpha: FloatArray | None
    shadow_alpha: FloatArray | None
    haze: FloatArray | None
    nodata: BoolArray | None
    scl_flags: UInt8Array  # 0 or the SCL class that overrides the surface class


@dataclass(frozen=True)
class _Landscape:
    landcover: UInt8Array
    terrain: FloatArray
    texture: FloatArray
    parcel: Int32Array  # crop parcel number per pixel, -1 outside cropland
    pasture_ndvi_dry: FloatArray  # per pasture pixel (order of pasture_index)
    pasture_ndvi_wet: FloatArray
    pasture_index: IntArray  # flat pixel indices of pasture
    crop_index: IntArray  # flat pixel indices of cropland
    settlement_green: FloatArray  # green share per pixel (used where settlement)


@dataclass(frozen=True)
class _CropCalendar:
    sow_day: IntArray  # (n_parcels, n_seasons) days since epoch
    harvest_day: IntArray
    growth_days: IntArray


@dataclass(frozen=True)
class _TransientEvent:
    """A non-deforestation change applied to a pixel set for a while."""

    kind: str
    pixels: IntArray  # flat indices (pasture positions for drying, flat for floods)
    start_day: int
    full_day: int
    until_day: int


@dataclass(frozen=True)
class _Clearings:
    """Per deforested pixel arrays, concatenated over events."""

    pixels: IntArray
    day: IntArray
    burn_start: IntArray  # huge where never burned
    burn_end: IntArray
    regrowth_start: IntArray  # huge where no regrowth
    regrowth_tau: FloatArray


_NEVER: Final = 2**40
MIX_LEVELS: Final = 256  # quantisation of the endmember mixing weight
BURN_FADE_DAYS = 30


# --------------------------------------------------------------------------- helpers


def clearing_date_to_datetime64(clearing_date: npt.NDArray[np.integer[Any]]) -> npt.NDArray[Any]:
    """Clearing-date raster as ``datetime64[D]``, NaT where never cleared (-1)."""
    days = np.asarray(clearing_date).astype("int64")
    out = days.astype("datetime64[D]")
    out[days < 0] = np.datetime64("NaT")
    return out


def utm_epsg_for_lonlat(lon: float, lat: float) -> int:
    """WGS 84 / UTM EPSG code of the zone holding (lon, lat): 326zz north, 327zz south."""
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def mgrs_tile_id(epsg: int, easting: float, northing: float, lat: float) -> str:
    """MGRS 100 km square (``21LWH``) of a UTM point, as Sentinel-2 tiles are named."""
    zone = epsg % 100
    bands = "CDEFGHJKLMNPQRSTUVWX"
    band = bands[min(len(bands) - 1, max(0, math.floor((lat + 80.0) / 8.0)))]
    column_sets = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")
    column_letters = column_sets[zone % 3]
    column = column_letters[min(7, max(0, int(easting // 100000) - 1))]
    row_letters = "ABCDEFGHJKLMNPQRSTUV"
    row_shift = 5 if zone % 2 == 0 else 0
    row = row_letters[(int(northing // 100000) + row_shift) % 20]
    return f"{zone:02d}{band}{column}{row}"


def _fast_fft_length(minimum: int) -> int:
    length = max(1, minimum)
    while True:
        rest = length
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> FloatArray:
    """Zero-mean, unit-variance periodic Gaussian random field, correlation ~``sigma_px``."""
    if sigma_px > 0.3:
        # FFT on 2-3-5-smooth sizes (fast), cropped to the requested shape
        padded = (_fast_fft_length(shape[0]), _fast_fft_length(shape[1]))
        spectrum = np.fft.rfft2(rng.standard_normal(padded))
        fy = np.fft.fftfreq(padded[0])[:, None]
        fx = np.fft.rfftfreq(padded[1])[None, :]
        spectrum *= np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fx**2 + fy**2))
        noise = np.fft.irfft2(spectrum, s=padded)[: shape[0], : shape[1]]
    else:
        noise = rng.standard_normal(shape)
    std = float(noise.std())
    centred: FloatArray = ((noise - noise.mean()) / (std if std > 1e-12 else 1.0)).astype(
        np.float32
    )
    return centred


def _endmember_ndvi(em: int) -> float:
    red, nir = float(ENDMEMBERS[em, _RED]), float(ENDMEMBERS[em, _NIR])
    return (nir - red) / (nir + red)


def fraction_for_ndvi(ndvi: FloatArray, em_a: int, em_b: int) -> FloatArray:
    """Weight w of ``em_b`` in ``(1-w)*em_a + w*em_b`` whose NDVI is ``ndvi`` (clipped 0-1)."""
    red_a, nir_a = float(ENDMEMBERS[em_a, _RED]), float(ENDMEMBERS[em_a, _NIR])
    d_red = float(ENDMEMBERS[em_b, _RED]) - red_a
    d_nir = float(ENDMEMBERS[em_b, _NIR]) - nir_a
    weight = (ndvi * (nir_a + red_a) - (nir_a - red_a)) / ((d_nir - d_red) - ndvi * (d_nir + d_red))
    return np.clip(weight, 0.0, 1.0).astype(np.float32)


_NDVI_DRY_GRASS = _endmember_ndvi(EM_DRY)


def mix_for_ndvi(ndvi: FloatArray) -> tuple[UInt8Array, UInt8Array, FloatArray]:
    """Endmember pair and weight of a soil - dry grass - green grass continuum at ``ndvi``."""
    low = ndvi < _NDVI_DRY_GRASS
    em_a = np.where(low, EM_SOIL, EM_DRY).astype(np.uint8)
    em_b = np.where(low, EM_DRY, EM_GREEN).astype(np.uint8)
    weight = np.where(
        low, fraction_for_ndvi(ndvi, EM_SOIL, EM_DRY), fraction_for_ndvi(ndvi, EM_DRY, EM_GREEN)
    ).astype(np.float32)
    return em_a, em_b, weight


def wetness(day: int, wet_peak_doy: int) -> float:
    """0 (dry season) .. 1 (wet season), saturating at both ends."""
    doy = date_from_days(day).timetuple().tm_yday
    return min(1.0, max(0.0, 0.5 + 0.8 * math.cos(2.0 * math.pi * (doy - wet_peak_doy) / 365.25)))


def _top_pixels(values: FloatArray, candidates: BoolArray, count: int) -> BoolArray:
    """Mask of the ``count`` candidate pixels with the highest values."""
    flat = np.flatnonzero(candidates)
    chosen = np.zeros(values.size, dtype=bool)
    if count >= flat.size:
        chosen[flat] = True
    elif count > 0:
        order = np.argpartition(values.ravel()[flat], flat.size - count)
        chosen[flat[order[flat.size - count :]]] = True
    return chosen.reshape(values.shape)


def mask_to_geometry(mask: BoolArray, transform: Affine) -> BaseGeometry:
    """Pixel-exact (Multi)Polygon of the True pixels of ``mask``."""
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    window = np.ascontiguousarray(mask[r0:r1, c0:c1]).astype(np.uint8)
    window_transform = transform * Affine.translation(c0, r0)
    polygons = [
        shape(geom)
        for geom, _ in rasterio.features.shapes(
            window, mask=window.astype(bool), connectivity=4, transform=window_transform
        )
    ]
    return unary_union(polygons)


def _disk(shape_hw: tuple[int, int], centre: tuple[int, int], radius_px: float) -> BoolArray:
    rows = np.arange(shape_hw[0])[:, None] - centre[0]
    cols = np.arange(shape_hw[1])[None, :] - centre[1]
    disk: BoolArray = rows**2 + cols**2 <= radius_px**2
    return disk


def _dilate4(mask: BoolArray) -> BoolArray:
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def grow_blob(
    eligible: BoolArray, seed_pixel: tuple[int, int], n_pixels: int, rng: np.random.Generator
) -> list[int]:
    """Flat indices of a 4-connected, irregular, elongated blob grown from ``seed_pixel``.

    Pixels are taken in order of a jittered distance mixing Euclidean and Chebyshev norms
    in a rotated frame, so blobs look like fields cut into the forest; the returned order
    is the growth order (the front of a progressive clearing).
    """
    height, width = eligible.shape
    eligible_flat = eligible.ravel()
    angle = rng.uniform(0.0, math.pi)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    elongation = rng.uniform(1.0, 2.5)
    jitter = rng.random(4 * n_pixels + 8)
    r0, c0 = seed_pixel
    start = r0 * width + c0
    heap: list[tuple[float, int]] = [(0.0, start)]
    seen = {start}
    order: list[int] = []
    pushes = 0
    while heap and len(order) < n_pixels:
        _, pixel = heapq.heappop(heap)
        order.append(pixel)
        row, col = divmod(pixel, width)
        for nrow, ncol in ((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)):
            if not (0 <= nrow < height and 0 <= ncol < width):
                continue
            neighbour = nrow * width + ncol
            if neighbour in seen or not eligible_flat[neighbour]:
                continue
            seen.add(neighbour)
            dx, dy = ncol - c0, nrow - r0
            u = dx * cos_a + dy * sin_a
            v = (dy * cos_a - dx * sin_a) * elongation
            distance = 0.5 * (math.hypot(u, v) + max(abs(u), abs(v)))
            heapq.heappush(heap, (distance * (1.0 + 0.35 * float(jitter[pushes])), neighbour))
            pushes += 1
    return order


# --------------------------------------------------------------------------- landscape


def _build_landscape(config: SimulationConfig) -> _Landscape:
    rng = np.random.default_rng([config.seed, _STREAM_LANDSCAPE])
    shape_hw = (config.height, config.width)
    n_pixels = config.height * config.width
    res = config.resolution

    terrain = smooth_field(rng, shape_hw, 1500.0 / res) + 0.3 * smooth_field(
        rng, shape_hw, 300.0 / res
    )
    forest_field = smooth_field(rng, shape_hw, 400.0 / res) + 0.35 * smooth_field(
        rng, shape_hw, 80.0 / res
    )
    settlement_field = smooth_field(rng, shape_hw, 80.0 / res)
    bare_field = smooth_field(rng, shape_hw, 50.0 / res)
    crop_field = smooth_field(rng, shape_hw, 800.0 / res)
    productivity = smooth_field(rng, shape_hw, 300.0 / res)
    fine = 0.7 * smooth_field(rng, shape_hw, 0.8) + 0.3 * smooth_field(rng, shape_hw, 3.0)
    green_field = smooth_field(rng, shape_hw, 2.0)

    landcover = np.full(shape_hw, LC_PASTURE, dtype=np.uint8)
    everywhere = np.ones(shape_hw, dtype=bool)
    water = _top_pixels(-terrain, everywhere, round(config.water_share * n_pixels))
    landcover[water] = LC_WATER
    forest = _top_pixels(forest_field, ~water, round(config.forest_share * n_pixels))
    landcover[forest] = LC_FOREST
    open_land = ~water & ~forest
    settlement = _top_pixels(settlement_field, open_land, round(config.settlement_share * n_pixels))
    landcover[settlement] = LC_SETTLEMENT
    open_land &= ~settlement
    bare = _top_pixels(bare_field, open_land, round(config.bare_share * n_pixels))
    landcover[bare] = LC_BARE
    open_land &= ~bare

    parcel = _crop_parcels(config, rng, open_land, crop_field)
    landcover[parcel >= 0] = LC_CROPLAND

    texture = np.clip(1.0 + _TEXTURE_AMPLITUDE[landcover] * fine, 0.6, 1.4).astype(np.float32)
    pasture_index = np.flatnonzero(landcover == LC_PASTURE)
    quality = np.clip(0.5 + 0.3 * productivity.ravel()[pasture_index], 0.0, 1.0)
    return _Landscape(
        landcover=landcover,
        terrain=terrain.astype(np.float32),
        texture=texture,
        parcel=parcel,
        pasture_ndvi_dry=(0.32 + 0.16 * quality).astype(np.float32),
        pasture_ndvi_wet=(0.57 + 0.16 * quality).astype(np.float32),
        pasture_index=pasture_index,
        crop_index=np.flatnonzero(landcover == LC_CROPLAND),
        settlement_green=np.clip(0.15 + 0.1 * green_field, 0.0, 0.35).astype(np.float32),
    )


def _crop_parcels(
    config: SimulationConfig, rng: np.random.Generator, open_land: BoolArray, crop_field: FloatArray
) -> Int32Array:
    """Parcel number per pixel (-1 elsewhere): cells of a cadastre grid with most open land."""
    cell = max(4, round(400.0 / config.resolution))
    offset_row, offset_col = (int(v) for v in rng.integers(0, cell, size=2))
    rows = (np.arange(config.height) + offset_row) // cell
    cols = (np.arange(config.width) + offset_col) // cell
    n_cell_cols = int(cols[-1]) + 1
    cell_id = (rows[:, None] * n_cell_cols + cols[None, :]).ravel()
    n_cells = int(cell_id.max()) + 1
    open_flat = open_land.ravel()
    open_count = np.bincount(cell_id, weights=open_flat, minlength=n_cells)
    crop_sum = np.bincount(cell_id, weights=crop_field.ravel() * open_flat, minlength=n_cells)
    suitability = np.where(
        open_count >= 0.5 * cell * cell, crop_sum / np.maximum(open_count, 1), -np.inf
    )
    target = round(config.cropland_share * config.height * config.width)
    parcel_of_cell = np.full(n_cells, -1, dtype=np.int32)
    total = 0
    for number, cell_number in enumerate(np.argsort(-suitability)):
        if total >= target or not np.isfinite(suitability[cell_number]):
            break
        parcel_of_cell[cell_number] = number
        total += int(open_count[cell_number])
    parcel = np.where(open_flat, parcel_of_cell[cell_id], -1).astype(np.int32)
    # renumber the used parcels 0..n-1; lookup[-1] (pixels outside cropland) stays -1
    used = np.unique(parcel[parcel >= 0])
    lookup = np.full(n_cells + 1, -1, dtype=np.int32)
    lookup[used] = np.arange(used.size, dtype=np.int32)
    return lookup[parcel].reshape(config.height, config.width)


# --------------------------------------------------------------------------- the simulation


class Simulation:
    """Static layers, acquisitions, events and truth of one simulated area; renders dates."""

    config: SimulationConfig
    crs: rasterio.crs.CRS
    transform: Affine
    acquisitions: list[Acquisition]
    events: list[Event]
    clearing_date: Int32Array
    landcover: UInt8Array

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.crs = rasterio.crs.CRS.from_epsg(config.epsg)
        self.transform = from_origin(
            config.origin_x, config.origin_y, config.resolution, config.resolution
        )
        self._shape = (config.height, config.width)
        self._bounds_lonlat = self._compute_bounds_lonlat()
        self._start_day = days_since_epoch(config.start)
        self._end_day = days_since_epoch(config.end)
        centre_lon, centre_lat = self._centre_lonlat()
        self._southern = centre_lat < 0
        self._wet_peak_doy = 30 if self._southern else 213

        landscape = _build_landscape(config)
        self._landscape = landscape
        self.landcover = landscape.landcover
        self._texture = landscape.texture

        events_rng = np.random.default_rng([config.seed, _STREAM_EVENTS])
        self.clearing_date = np.full(self._shape, -1, dtype=np.int32)
        clearing_events, self._clearings = self._place_clearings(events_rng)
        harvest_events, self._crop_calendar = self._crop_schedule(events_rng)
        transient_events, self._transients = self._place_transients(events_rng)
        all_events = clearing_events + harvest_events + transient_events
        all_events.sort(key=lambda event: (event.start, EVENT_KINDS.index(event.kind)))
        self.events = [
            Event(
                id=f"ev-{number:04d}",
                kind=event.kind,
                is_deforestation=event.is_deforestation,
                start=event.start,
                end=event.end,
                geometry=event.geometry,
                area_ha=event.area_ha,
                until=event.until,
            )
            for number, event in enumerate(all_events)
        ]

        self._static_a, self._static_b, self._static_w = self._static_mix()
        self._cloud_big, self._cloud_small, self._shadow_margin = self._cloud_textures()
        # drawing 6 x H x W normals per render costs more than the rest of it; windows of
        # one static bank at per-date offsets are as good for a simulator
        self._noise_bank = np.random.default_rng([config.seed, _STREAM_NOISE]).standard_normal(
            (len(BANDS), config.height + NOISE_BANK_MARGIN, config.width + NOISE_BANK_MARGIN),
            dtype=np.float32,
        )
        self.tile_id = mgrs_tile_id(
            config.epsg,
            config.origin_x + config.width * config.resolution / 2,
            config.origin_y - config.height * config.resolution / 2,
            centre_lat,
        )
        self._acq_days, self._atmosphere = self._schedule()
        self.acquisitions = self._describe_acquisitions(centre_lon)

        self._cache: OrderedDict[int, dict[str, npt.NDArray[Any]]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ----------------------------------------------------------------- geometry

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        config = self.config
        return (
            config.origin_x,
            config.origin_y - config.height * config.resolution,
            config.origin_x + config.width * config.resolution,
            config.origin_y,
        )

    @property
    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        return self._bounds_lonlat

    def _compute_bounds_lonlat(self) -> tuple[float, float, float, float]:
        to_lonlat = Transformer.from_crs(self.config.epsg, 4326, always_xy=True)
        west, south, east, north = to_lonlat.transform_bounds(*self.bounds, densify_pts=21)
        return (float(west), float(south), float(east), float(north))

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def dates(self) -> list[dt.date]:
        return [acquisition.date for acquisition in self.acquisitions]

    def _centre_lonlat(self) -> tuple[float, float]:
        config = self.config
        to_lonlat = Transformer.from_crs(config.epsg, 4326, always_xy=True)
        lon, lat = to_lonlat.transform(
            config.origin_x + config.width * config.resolution / 2,
            config.origin_y - config.height * config.resolution / 2,
        )
        return float(lon), float(lat)

    def _pixel_area_ha(self) -> float:
        return self.config.resolution**2 / 10000.0

    def _event(
        self,
        kind: str,
        mask: BoolArray,
        start_day: int,
        end_day: int,
        until_day: int | None = None,
    ) -> Event:
        return Event(
            id="",
            kind=kind,
            is_deforestation=kind in DEFORESTATION_KINDS,
            start=date_from_days(start_day),
            end=date_from_days(end_day),
            geometry=mask_to_geometry(mask, self.transform),
            area_ha=int(mask.sum()) * self._pixel_area_ha(),
            until=None if until_day is None else date_from_days(until_day),
        )

    # ----------------------------------------------------------------- events

    def _place_clearings(self, rng: np.random.Generator) -> tuple[list[Event], _Clearings]:
        config = self.config
        forest = self.landcover == LC_FOREST
        pixel_ha = self._pixel_area_ha()
        forest_ha = int(forest.sum()) * pixel_ha
        count = (
            config.n_clearings
            if config.n_clearings is not None
            else max(len(DEFORESTATION_KINDS), round(forest_ha / 100.0))
        )
        min_pixels = max(1, math.ceil(config.min_clearing_ha / pixel_ha - 1e-9))
        max_ha = min(config.max_clearing_ha, 0.25 * forest_ha)
        no_pixels = np.zeros(0, dtype=np.int64)
        empty = _Clearings(*(no_pixels,) * 5, regrowth_tau=np.zeros(0, np.float32))
        if count <= 0 or max_ha < config.min_clearing_ha:
            return [], empty

        sizes_ha = np.exp(
            rng.uniform(math.log(config.min_clearing_ha), math.log(max_ha), size=count)
        )
        sizes_ha[0] = config.min_clearing_ha
        if count > 1:
            sizes_ha[1] = max_ha
        kinds = list(DEFORESTATION_KINDS) + [
            str(kind)
            for kind in rng.choice(
                DEFORESTATION_KINDS, size=max(0, count - 4), p=[0.4, 0.2, 0.2, 0.2]
            )
        ]
        kinds = [kinds[i] for i in rng.permutation(len(kinds))][:count]

        span_lo, span_hi = self._start_day + 20, self._end_day - 30
        if span_hi < span_lo:
            span_lo, span_hi = self._start_day, self._end_day

        reserved = ~forest
        events: list[Event] = []
        parts: list[tuple[IntArray, IntArray, int, int, int, float, str]] = []
        for size_ha, kind in sorted(zip(sizes_ha.tolist(), kinds, strict=True), reverse=True):
            n_target = max(min_pixels, round(size_ha / pixel_ha))
            pixels = self._grow_clearing(rng, reserved, n_target, min_pixels)
            if pixels is None:
                continue
            duration = int(rng.integers(14, 71)) if kind == "progressive_clearing" else 0
            first_day = int(rng.integers(span_lo, max(span_lo, span_hi - duration) + 1))
            rank = np.arange(pixels.size)
            pixel_days = first_day + (duration * rank) // max(1, pixels.size)
            pixel_days = np.minimum(pixel_days, self._end_day).astype(np.int64)
            burn_delay = int(rng.integers(0, 16)) if kind == "burned_clearing" else _NEVER
            burn_days = int(rng.integers(30, 91))
            regrowth_delay = int(rng.integers(60, 181)) if kind == "clearing_regrowth" else _NEVER
            tau = float(rng.uniform(90.0, 200.0))

            mask = np.zeros(self._shape, dtype=bool)
            mask.ravel()[pixels] = True
            reserved |= _dilate4(mask)
            self.clearing_date.ravel()[pixels] = pixel_days.astype(np.int32)
            until = first_day + regrowth_delay if kind == "clearing_regrowth" else None
            events.append(self._event(kind, mask, first_day, int(pixel_days.max()), until))
            parts.append((pixels, pixel_days, burn_delay, burn_days, regrowth_delay, tau, kind))

        if not parts:
            return events, empty
        all_days = np.concatenate([part[1] for part in parts])
        burn_start = np.concatenate([part[1] + part[2] for part in parts])
        burn_end = np.concatenate([part[1] + part[2] + part[3] for part in parts])
        regrowth_start = np.concatenate([part[1] + part[4] for part in parts])
        tau_per_pixel = np.concatenate(
            [np.full(part[0].size, part[5], dtype=np.float32) for part in parts]
        )
        clearings = _Clearings(
            pixels=np.concatenate([part[0] for part in parts]),
            day=all_days,
            burn_start=burn_start,
            burn_end=burn_end,
            regrowth_start=regrowth_start,
            regrowth_tau=tau_per_pixel,
        )
        return events, clearings

    def _grow_clearing(
        self, rng: np.random.Generator, reserved: BoolArray, n_target: int, min_pixels: int
    ) -> IntArray | None:
        eligible = ~reserved
        candidates = np.flatnonzero(eligible)
        best: list[int] = []
        for _ in range(12):
            if candidates.size == 0:
                break
            seed_flat = int(candidates[rng.integers(0, candidates.size)])
            seed_pixel = divmod(seed_flat, self.config.width)
            grown = grow_blob(eligible, seed_pixel, n_target, rng)
            if len(grown) > len(best):
                best = grown
            if len(best) >= n_target:
                break
        if len(best) < min_pixels:
            return None
        return np.asarray(best, dtype=np.int64)

    def _season_peak_days(self) -> list[int]:
        return [
            days_since_epoch(dt.date(year, 1, 1)) + self._wet_peak_doy - 1
            for year in range(self.config.start.year - 1, self.config.end.year + 2)
        ]

    def _crop_schedule(self, rng: np.random.Generator) -> tuple[list[Event], _CropCalendar]:
        parcel = self._landscape.parcel
        n_parcels = int(parcel.max()) + 1
        peaks = np.asarray(self._season_peak_days(), dtype=np.int64)
        shape_ps = (n_parcels, peaks.size)
        sow = peaks[None, :] - 100 + rng.integers(-15, 16, size=shape_ps)
        harvest = sow + rng.integers(CROP_SEASON_DAYS[0], CROP_SEASON_DAYS[1] + 1, size=shape_ps)
        growth = rng.integers(CROP_GROWTH_DAYS[0], CROP_GROWTH_DAYS[1] + 1, size=shape_ps)
        events: list[Event] = []
        for number in range(n_parcels):
            mask = parcel == number
            for season in range(peaks.size):
                day = int(harvest[number, season])
                if self._start_day <= day <= self._end_day:
                    next_sow = int(sow[number, season + 1]) if season + 1 < peaks.size else None
                    events.append(self._event("harvest", mask, day, day, next_sow))
        return events, _CropCalendar(sow_day=sow, harvest_day=harvest, growth_days=growth)

    def _place_transients(
        self, rng: np.random.Generator
    ) -> tuple[list[Event], list[_TransientEvent]]:
        config = self.config
        landscape = self._landscape
        min_pixels = max(1, math.ceil(config.min_clearing_ha / self._pixel_area_ha() - 1e-9))
        pasture_mask = self.landcover == LC_PASTURE
        position_in_pasture = np.full(self.landcover.size, -1, dtype=np.int64)
        position_in_pasture[landscape.pasture_index] = np.arange(landscape.pasture_index.size)
        water_share = max(config.water_share, 1e-6)
        floodplain = (
            (landscape.terrain <= np.quantile(landscape.terrain, min(1.0, water_share + 0.05)))
            & (self.landcover != LC_WATER)
            & (self.landcover != LC_FOREST)
            & (self.landcover != LC_SETTLEMENT)
        )
        blob_field = smooth_field(rng, self._shape, 100.0 / config.resolution)
        events: list[Event] = []
        transients: list[_TransientEvent] = []
        for peak in self._season_peak_days():
            for _ in range(config.pasture_drying_per_year):
                onset = peak + 182 + int(rng.integers(-30, 11))
                ramp = int(rng.integers(14, 29))
                until = onset + ramp + int(rng.integers(30, 61))
                centre = self._random_pixel(rng, pasture_mask)
                radius = rng.uniform(250.0, 600.0) / config.resolution
                if centre is None or not self._start_day <= onset <= self._end_day - ramp:
                    continue
                mask = pasture_mask & _disk(self._shape, centre, radius) & (blob_field > -0.3)
                if int(mask.sum()) < min_pixels:
                    continue
                pixels = position_in_pasture[np.flatnonzero(mask)]
                transients.append(
                    _TransientEvent("pasture_drying", pixels, onset, onset + ramp, until)
                )
                events.append(self._event("pasture_drying", mask, onset, onset + ramp, until))
            for _ in range(config.floods_per_year):
                onset = peak + int(rng.integers(-20, 21))
                until = onset + int(rng.integers(20, 51))
                centre = self._random_pixel(rng, floodplain)
                radius = rng.uniform(400.0, 1200.0) / config.resolution
                if centre is None or not self._start_day <= onset <= self._end_day:
                    continue
                mask = floodplain & _disk(self._shape, centre, radius)
                if int(mask.sum()) < min_pixels:
                    continue
                transients.append(
                    _TransientEvent("flooding", np.flatnonzero(mask), onset, onset, until)
                )
                events.append(self._event("flooding", mask, onset, onset, until))
        return events, transients

    def _random_pixel(self, rng: np.random.Generator, mask: BoolArray) -> tuple[int, int] | None:
        candidates = np.flatnonzero(mask)
        draw = int(rng.integers(0, max(1, candidates.size)))
        if candidates.size == 0:
            return None
        row, col = divmod(int(candidates[draw]), self.config.width)
        return row, col

    # ----------------------------------------------------------------- acquisitions

    def _schedule(self) -> tuple[list[int], list[AtmosphereParams]]:
        config = self.config
        rng = np.random.default_rng([config.seed, _STREAM_ACQUISITIONS])
        phase = zlib.crc32(self.tile_id.encode()) % config.revisit_days
        first = self._start_day + (phase - self._start_day) % config.revisit_days
        candidates = list(range(first, self._end_day + 1, config.revisit_days))
        missing = rng.random(len(candidates)) < config.gap_probability
        if len(candidates) > 20 and config.gap_probability > 0:
            outage_start = int(rng.integers(0, len(candidates) - 3))
            missing[outage_start : outage_start + int(rng.integers(2, 4))] = True
        days = [day for day, gone in zip(candidates, missing, strict=True) if not gone]
        atmosphere = [self._draw_atmosphere(index, day) for index, day in enumerate(days)]
        return days, atmosphere

    def _draw_atmosphere(self, index: int, day: int) -> AtmosphereParams:
        config = self.config
        rng = np.random.default_rng([config.seed, _STREAM_ATMOSPHERE, index])
        wet = wetness(day, self._wet_peak_doy)
        k = max(0.0, config.cloudiness)
        p_overcast = min(0.9, k * (0.04 + 0.22 * wet))
        p_clear = max(0.0, 1.0 - k * (0.45 + 0.45 * wet))
        draws = rng.random(8)
        if draws[0] < p_overcast:
            sky, fraction = "overcast", 1.0
        elif draws[0] < p_overcast + p_clear:
            sky, fraction = "clear", 0.0
        else:
            fraction = k * (0.02 + 0.8 * float(draws[1]) ** 1.5) * (0.35 + 0.65 * wet)
            sky, fraction = "partly", min(0.95, fraction)
        extra_rows = self._cloud_big.shape[0] - config.height - 2 * self._shadow_margin
        extra_cols = self._cloud_big.shape[1] - config.width - 2 * self._shadow_margin
        offsets = [
            (int(rng.integers(0, extra_rows + 1)), int(rng.integers(0, extra_cols + 1)))
            for _ in range(3)
        ]
        # morning sun in the north-east (southern tropics) or south-east (northern)
        sun_azimuth = (45.0 if self._southern else 135.0) + rng.uniform(-25.0, 25.0)
        shadow_azimuth = math.radians(sun_azimuth + 180.0)
        distance_px = rng.uniform(300.0, MAX_SHADOW_DISTANCE_M) / config.resolution
        margin = self._shadow_margin
        shadow_offset = (
            max(-margin, min(margin, round(-distance_px * math.cos(shadow_azimuth)))),
            max(-margin, min(margin, round(distance_px * math.sin(shadow_azimuth)))),
        )
        hazy = draws[2] < 0.25 * max(0.0, config.haziness)
        haze_level = 0.01 + 0.06 * float(draws[3]) if hazy else 0.0
        nodata_edge = None
        if draws[4] < config.nodata_edge_probability:
            side = "east" if draws[5] < 0.5 else "west"
            nodata_edge = (side, 0.1 + 0.5 * float(draws[6]), 0.4 * (float(draws[7]) - 0.5))
        return AtmosphereParams(
            sky=sky,
            cloud_fraction=fraction,
            cumulus_weight=float(rng.random()),
            big_offset=offsets[0],
            small_offset=offsets[1],
            haze_offset=offsets[2],
            noise_offset=(
                int(rng.integers(0, NOISE_BANK_MARGIN + 1)),
                int(rng.integers(0, NOISE_BANK_MARGIN + 1)),
            ),
            shadow_offset_px=shadow_offset,
            haze_level=haze_level,
            brightness=float(1.0 + 0.02 * rng.standard_normal()),
            nodata_edge=nodata_edge,
        )

    def _describe_acquisitions(self, centre_lon: float) -> list[Acquisition]:
        # local solar time ~10:30, i.e. the descending-node time of Sentinel-2
        seconds = (
            round((10.5 - centre_lon / 15.0) * 3600.0) + zlib.crc32(self.tile_id.encode()) % 120
        )
        relative_orbit = 1 + zlib.crc32(f"orbit{self.tile_id}".encode()) % 143
        acquisitions = []
        for index, day in enumerate(self._acq_days):
            moment = dt.datetime.combine(date_from_days(day), dt.time(), tzinfo=dt.UTC)
            moment += dt.timedelta(seconds=seconds)
            platform = (
                "sentinel-2a" if (day // self.config.revisit_days) % 2 == 0 else "sentinel-2b"
            )
            processed = moment + dt.timedelta(hours=4, minutes=(day * 7) % 50)
            product_id = (
                f"S2{platform[-1].upper()}_MSIL2A_{moment:%Y%m%dT%H%M%S}_N0509"
                f"_R{relative_orbit:03d}_T{self.tile_id}_{processed:%Y%m%dT%H%M%S}"
            )
            layers = self._atmosphere_layers(self._atmosphere[index])
            valid = None if layers.nodata is None else ~layers.nodata
            n_valid = self.landcover.size if valid is None else int(valid.sum())
            flagged = layers.scl_flags > 0 if valid is None else (layers.scl_flags > 0) & valid
            acquisitions.append(
                Acquisition(
                    index=index,
                    datetime=moment,
                    platform=platform,
                    cloud_cover=round(100.0 * int(flagged.sum()) / max(1, n_valid), 2),
                    product_id=product_id,
                    tile_id=self.tile_id,
                    nodata_pixel_percentage=round(100.0 * (1.0 - n_valid / self.landcover.size), 2),
                )
            )
        return acquisitions

    def atmosphere(self, index: int) -> AtmosphereParams:
        return self._atmosphere[index]

    # ----------------------------------------------------------------- static layers

    def _static_mix(self) -> tuple[UInt8Array, UInt8Array, FloatArray]:
        landcover = self.landcover
        em_of_class = np.array(
            [EM_SOIL, EM_FOREST, EM_DRY, EM_SOIL, EM_WATER, EM_SOIL, EM_URBAN], dtype=np.uint8
        )
        em_a = em_of_class[landcover]
        em_b = em_a.copy()
        weight = np.zeros(self._shape, dtype=np.float32)
        settlement = landcover == LC_SETTLEMENT
        em_b[settlement] = EM_GREEN
        weight[settlement] = self._landscape.settlement_green[settlement]
        return em_a, em_b, weight

    def _cloud_textures(self) -> tuple[FloatArray, FloatArray, int]:
        config = self.config
        rng = np.random.default_rng([config.seed, _STREAM_CLOUD_TEXTURE])
        margin = math.ceil(MAX_SHADOW_DISTANCE_M / config.resolution)
        extra = max(128, min(max(config.height, config.width), 512))
        shape_hw = (config.height + extra + 2 * margin, config.width + extra + 2 * margin)
        big = smooth_field(rng, shape_hw, 700.0 / config.resolution)
        small = 0.8 * smooth_field(rng, shape_hw, 150.0 / config.resolution) + 0.45 * smooth_field(
            rng, shape_hw, 50.0 / config.resolution
        )
        small /= max(1e-6, float(small.std()))
        return big, small, margin

    # ----------------------------------------------------------------- per date

    def _cloud_texture_at(self, params: AtmosphereParams, shift: tuple[int, int]) -> FloatArray:
        height, width, margin = self.config.height, self.config.width, self._shadow_margin
        theta = params.cumulus_weight * math.pi / 2
        (br, bc), (sr, sc) = params.big_offset, params.small_offset
        big = self._cloud_big[
            margin + br - shift[0] : margin + br - shift[0] + height,
            margin + bc - shift[1] : margin + bc - shift[1] + width,
        ]
        small = self._cloud_small[
            margin + sr - shift[0] : margin + sr - shift[0] + height,
            margin + sc - shift[1] : margin + sc - shift[1] + width,
        ]
        texture: FloatArray = math.cos(theta) * big + math.sin(theta) * small
        return texture

    def _atmosphere_layers(self, params: AtmosphereParams) -> _AtmosphereLayers:
        flags = np.zeros(self._shape, dtype=np.uint8)
        cloud_alpha: FloatArray | None = None
        shadow_alpha: FloatArray | None = None
        haze: FloatArray | None = None
        if params.sky == "overcast":
            texture = self._cloud_texture_at(params, (0, 0))
            cloud_alpha = np.clip(0.85 + 0.12 * texture, 0.5, 1.0).astype(np.float32)
        elif params.sky == "partly":
            texture = self._cloud_texture_at(params, (0, 0))
            step = max(1, min(self._shape) // 128)
            sample = texture[::step, ::step]
            level = float(np.quantile(sample, 1.0 - params.cloud_fraction))
            threshold = level - CLOUD_FLAG_MEDIUM * CLOUD_SOFTNESS
            cloud_alpha = np.clip((texture - threshold) / CLOUD_SOFTNESS, 0.0, 1.0)
            shadow_texture = self._cloud_texture_at(params, params.shadow_offset_px)
            shadow_alpha = np.clip((shadow_texture - threshold) / CLOUD_SOFTNESS, 0.0, 1.0)
        if params.haze_level > 0:
            row, col = params.haze_offset
            window = self._cloud_big[row : row + self._shape[0], col : col + self._shape[1]]
            haze = (params.haze_level * np.clip(1.0 + 0.6 * window, 0.2, 2.0)).astype(np.float32)
            flags[haze >= HAZE_CIRRUS_FLAG] = SCL_THIN_CIRRUS
        if shadow_alpha is not None:
            flags[shadow_alpha >= CLOUD_FLAG_MEDIUM] = SCL_CLOUD_SHADOW
        if cloud_alpha is not None:
            flags[cloud_alpha >= CLOUD_FLAG_MEDIUM] = SCL_CLOUD_MEDIUM
            flags[cloud_alpha >= CLOUD_FLAG_HIGH] = SCL_CLOUD_HIGH
        nodata: BoolArray | None = None
        if params.nodata_edge is not None:
            side, share, slope = params.nodata_edge
            height, width = self._shape
            rows = np.arange(height)[:, None] - height / 2
            cols = np.arange(width)[None, :]
            if side == "east":
                nodata = cols >= width * (1.0 - share) + slope * rows
            else:
                nodata = cols < width * share + slope * rows
        return _AtmosphereLayers(cloud_alpha, shadow_alpha, haze, nodata, flags)

    def _surface_state(self, day: int) -> tuple[UInt8Array, UInt8Array, FloatArray]:
        """Endmember pair and weight of every pixel on ``day``."""
        landscape = self._landscape
        em_a, em_b, weight = self._static_a.copy(), self._static_b.copy(), self._static_w.copy()
        flat_a, flat_b, flat_w = em_a.ravel(), em_b.ravel(), weight.ravel()

        wet = wetness(day, self._wet_peak_doy)
        pasture_ndvi = landscape.pasture_ndvi_dry + (
            landscape.pasture_ndvi_wet - landscape.pasture_ndvi_dry
        ) * np.float32(wet)
        for transient in self._transients:
            if transient.kind == "pasture_drying":
                severity = _transient_severity(transient, day)
                if severity > 0:
                    current = pasture_ndvi[transient.pixels]
                    pasture_ndvi[transient.pixels] = current + (NDVI_DROUGHT - current) * severity
        if landscape.pasture_index.size:
            a, b, w = mix_for_ndvi(pasture_ndvi)
            flat_a[landscape.pasture_index], flat_b[landscape.pasture_index] = a, b
            flat_w[landscape.pasture_index] = w

        if landscape.crop_index.size:
            parcel_ndvi = self._parcel_ndvi(day)
            crop_ndvi = parcel_ndvi[landscape.parcel.ravel()[landscape.crop_index]]
            a, b, w = mix_for_ndvi(crop_ndvi)
            flat_a[landscape.crop_index], flat_b[landscape.crop_index] = a, b
            flat_w[landscape.crop_index] = w

        for transient in self._transients:
            if transient.kind == "flooding" and transient.start_day <= day < transient.until_day:
                flat_a[transient.pixels] = EM_WATER
                flat_b[transient.pixels] = EM_WATER
                flat_w[transient.pixels] = 0.0

        self._apply_clearings(day, flat_a, flat_b, flat_w)
        return em_a, em_b, weight

    def _parcel_ndvi(self, day: int) -> FloatArray:
        calendar = self._crop_calendar
        in_season = (calendar.sow_day <= day) & (day < calendar.harvest_day)
        progress = np.clip((day - calendar.sow_day) / calendar.growth_days, 0.0, 1.0)
        green = progress * progress * (3.0 - 2.0 * progress)
        ndvi = NDVI_FALLOW + (NDVI_CROP_PEAK - NDVI_FALLOW) * green
        senescence = np.clip(
            (day - (calendar.harvest_day - CROP_SENESCENCE_DAYS)) / CROP_SENESCENCE_DAYS, 0.0, 1.0
        )
        ndvi -= (NDVI_CROP_PEAK - NDVI_CROP_SENESCENT) * senescence * green
        seasonal: FloatArray = (
            np.where(in_season, ndvi, NDVI_FALLOW).max(axis=1, initial=NDVI_FALLOW)
        ).astype(np.float32)
        return seasonal

    def _apply_clearings(
        self, day: int, flat_a: UInt8Array, flat_b: UInt8Array, flat_w: FloatArray
    ) -> None:
        clearings = self._clearings
        cleared = clearings.day <= day
        if not cleared.any():
            return
        pixels = clearings.pixels[cleared]
        flat_a[pixels] = EM_SOIL
        flat_b[pixels] = EM_SOIL
        flat_w[pixels] = 0.0
        burning = (
            cleared & (clearings.burn_start <= day) & (day < clearings.burn_end + BURN_FADE_DAYS)
        )
        if burning.any():
            pixels = clearings.pixels[burning]
            flat_a[pixels] = EM_BURN
            flat_w[pixels] = np.clip((day - clearings.burn_end[burning]) / BURN_FADE_DAYS, 0.0, 1.0)
        regrowing = cleared & (clearings.regrowth_start <= day)
        if regrowing.any():
            pixels = clearings.pixels[regrowing]
            elapsed = (day - clearings.regrowth_start[regrowing]).astype(np.float32)
            flat_b[pixels] = EM_REGROWTH
            flat_w[pixels] = 1.0 - np.exp(-elapsed / clearings.regrowth_tau[regrowing])

    def _band_table(self, day: int, params: AtmosphereParams) -> FloatArray:
        """(band, endmember) reflectance of the date: forest phenology and illumination."""
        table = ENDMEMBERS.copy()
        wet = wetness(day, self._wet_peak_doy)
        table[EM_FOREST, _NIR] *= 1.0 + 0.05 * (wet - 0.5)
        table[EM_FOREST, 4:] *= 1.0 - 0.04 * (wet - 0.5)
        table *= params.brightness
        return np.ascontiguousarray(table.T)

    # ----------------------------------------------------------------- rendering

    def render(self, index: int) -> dict[str, npt.NDArray[Any]]:
        """Bands (uint16 DN with the +1000 offset, 0 = no data) and SCL (uint8) of one date."""
        if not 0 <= index < len(self.acquisitions):
            raise IndexError(
                f"acquisition index {index} out of range 0..{len(self.acquisitions) - 1}"
            )
        with self._cache_lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
        if cached is None:
            cached = self._render_uncached(index)
            with self._cache_lock:
                self._cache[index] = cached
                while len(self._cache) > max(0, self.config.render_cache_size):
                    self._cache.popitem(last=False)
        return {name: array.copy() for name, array in cached.items()}

    def stack(self) -> Iterator[tuple[Acquisition, dict[str, npt.NDArray[Any]]]]:
        for acquisition in self.acquisitions:
            yield acquisition, self.render(acquisition.index)

    def surface_reflectance(self, index: int) -> FloatArray:
        """Noise-free, cloud-free surface reflectance (band, row, col) on acquisition ``index``."""
        day = self._acq_days[index]
        em_a, em_b, weight = self._surface_state(day)
        table = self._band_table(day, self._atmosphere[index])
        # one lookup per band in a (a, b, quantised weight) table is several times faster
        # than gathering both endmembers and mixing
        steps = np.arange(MIX_LEVELS, dtype=np.float32) / np.float32(MIX_LEVELS - 1)
        lut = table[:, :, None, None] + (table[:, None, :, None] - table[:, :, None, None]) * steps
        lut = lut.reshape(len(BANDS), -1)
        code = em_a.astype(np.uint16) * np.uint16(len(ENDMEMBERS)) + em_b
        code *= np.uint16(MIX_LEVELS)
        code += (weight * np.float32(MIX_LEVELS - 1) + np.float32(0.5)).astype(np.uint16)
        reflectance = np.empty((len(BANDS), *self._shape), dtype=np.float32)
        for band in range(len(BANDS)):
            np.take(lut[band], code, out=reflectance[band])
        reflectance *= self._texture
        return reflectance

    def _render_uncached(self, index: int) -> dict[str, npt.NDArray[Any]]:
        params = self._atmosphere[index]
        reflectance = self.surface_reflectance(index)
        red, nir = reflectance[_RED], reflectance[_NIR]
        ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
        scl = np.where(ndvi >= NDVI_VEGETATION_THRESHOLD, SCL_VEGETATION, SCL_NOT_VEGETATED)
        scl = np.where(nir < 0.05, SCL_WATER, scl).astype(np.uint8)

        if self.config.noise_level > 0:
            row, col = params.noise_offset
            noise = self._noise_bank[:, row : row + self._shape[0], col : col + self._shape[1]]
            scale = (NOISE_ABSOLUTE + NOISE_RELATIVE * reflectance) * np.float32(
                self.config.noise_level
            )
            reflectance += noise * scale

        layers = self._atmosphere_layers(params)
        if layers.shadow_alpha is not None:
            reflectance *= 1.0 - SHADOW_DEPTH * layers.shadow_alpha
        if layers.haze is not None:
            reflectance += HAZE_SPECTRUM[:, None, None] * layers.haze
        if layers.cloud_alpha is not None:
            alpha = layers.cloud_alpha
            cloud = (0.38 + 0.4 * alpha) * CLOUD_SPECTRUM[:, None, None]
            reflectance += (cloud - reflectance) * alpha
        scl = np.where(layers.scl_flags > 0, layers.scl_flags, scl).astype(np.uint8)

        np.clip(reflectance, 1.0 / REFLECTANCE_SCALE, 6.0, out=reflectance)
        digital = (reflectance * REFLECTANCE_SCALE + (BOA_ADD_OFFSET_DN + 0.5)).astype(np.uint16)
        if layers.nodata is not None:
            digital[:, layers.nodata] = NODATA_DN
            scl[layers.nodata] = SCL_NO_DATA
        result: dict[str, npt.NDArray[Any]] = {
            band: digital[number] for number, band in enumerate(BANDS)
        }
        result["SCL"] = scl
        return result


def _transient_severity(transient: _TransientEvent, day: int) -> float:
    """0..1 strength of a transient change: ramps in to full_day, fades 20 days from until."""
    if day < transient.start_day or day >= transient.until_day + 20:
        return 0.0
    ramp_in = (day - transient.start_day + 1) / max(1, transient.full_day - transient.start_day + 1)
    fade_out = 1.0 - (day - transient.until_day) / 20.0
    return float(min(1.0, ramp_in, fade_out))


# --------------------------------------------------------------------------- entry points


def simulate(config: SimulationConfig) -> Simulation:
    return Simulation(config)


def simulate_area(
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    *,
    seed: int = 0,
    resolution: float = 10.0,
    **knobs: Any,
) -> Simulation:
    """Grid covering a lon/lat bbox in its UTM zone (north 326xx / south 327xx), snapped to the resolution."""
    west, south, east, north = bbox
    if not (west < east and south < north and south >= -84.0 and north <= 84.0):
        raise ValueError(f"bbox must be (west, south, east, north) in degrees, got {bbox}")
    epsg = utm_epsg_for_lonlat((west + east) / 2, (south + north) / 2)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    minx, miny, maxx, maxy = to_utm.transform_bounds(west, south, east, north, densify_pts=21)
    # one pixel of margin absorbs the curvature of the bbox edges between densified points
    origin_x = math.floor(minx / resolution - 1) * resolution
    origin_y = math.ceil(maxy / resolution + 1) * resolution
    width = math.ceil((maxx - origin_x) / resolution + 1)
    height = math.ceil((origin_y - miny) / resolution + 1)
    config = SimulationConfig(
        seed=seed,
        epsg=epsg,
        origin_x=float(origin_x),
        origin_y=float(origin_y),
        width=width,
        height=height,
        resolution=resolution,
        start=start,
        end=end,
        **knobs,
    )
    return simulate(config)
