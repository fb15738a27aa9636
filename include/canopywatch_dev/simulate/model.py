"""Codes, spectra, thresholds, the configuration and the simulation's records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from shapely.geometry.base import BaseGeometry

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
LC_PLANTATION: Final = 7  # planted stands (only where SimulationConfig.plantation_share > 0)
LANDCOVER_NAMES: dict[int, str] = {
    LC_FOREST: "forest",
    LC_PASTURE: "pasture",
    LC_CROPLAND: "cropland",
    LC_WATER: "water",
    LC_BARE: "bare_soil",
    LC_SETTLEMENT: "settlement",
    LC_PLANTATION: "plantation",
}

EVENT_KINDS: tuple[str, ...] = (
    "clearing",
    "progressive_clearing",
    "burned_clearing",
    "clearing_regrowth",
    "harvest",
    "pasture_drying",
    "flooding",
    "plantation_harvest",  # rotation clear-cut of a planted stand: not deforestation
    "plantation_thinning",
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
EM_EUCALYPTUS: Final = 8  # broadleaf plantation canopy: bright NIR, higher SWIR
EM_PINE: Final = 9  # conifer plantation canopy: dark NIR, low SWIR
EM_LITTER: Final = 10  # plantation floor: litter, dry understorey, slash
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
        [0.026, 0.052, 0.030, 0.390, 0.185, 0.085],
        [0.017, 0.033, 0.019, 0.215, 0.095, 0.042],
        [0.055, 0.075, 0.092, 0.225, 0.285, 0.185],
    ],
    dtype=np.float32,
)
RED_INDEX, NIR_INDEX = 2, 3  # positions of B04 and B08 in BANDS

NDVI_VEGETATION_THRESHOLD = 0.40  # surface NDVI above which SCL says vegetation
NDVI_FALLOW = 0.24
NDVI_CROP_PEAK = 0.85
NDVI_CROP_SENESCENT = 0.45
NDVI_DROUGHT = 0.24
CROP_GROWTH_DAYS = (70, 95)
CROP_SEASON_DAYS = (110, 135)
CROP_SENESCENCE_DAYS = 25

# texture amplitude (relative std of the per-pixel multiplier) per land cover code;
# plantation has none: its texture is canopy cover mixed with the floor (``plantations``)
_TEXTURE_AMPLITUDE: Final[FloatArray] = np.array(
    [0.0, 0.06, 0.06, 0.04, 0.02, 0.08, 0.20, 0.0], dtype=np.float32
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
_STREAM_PLANTATION: Final = 7  # drawn from only where plantation_share > 0
_STREAM_PLANTATION_EVENTS: Final = 8


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
    # planted stands (taken from open land before the crop parcels); 0: none, and no
    # draw is made for them, so a configuration without plantations renders as before
    plantation_share: float = 0.0
    # shares of the stands clear-cut (rotation harvest) / thinned during the series
    plantation_cut_share: float = 0.35
    plantation_thin_share: float = 0.2
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
            self.plantation_share,
        )
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError("land cover shares must be >= 0 and sum to at most 1")
        cut_thin = (self.plantation_cut_share, self.plantation_thin_share)
        if min(cut_thin) < 0 or sum(cut_thin) > 1:
            raise ValueError("plantation cut and thin shares must be >= 0 and sum to at most 1")
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
class _PlantationStands:
    """Static layers of the planted stands, per plantation pixel (order of ``pixels``)
    unless named per stand."""

    stand: Int32Array  # (H, W) stand number, -1 outside plantations
    pixels: IntArray  # flat indices of the plantation pixels
    pixel_stand: IntArray  # stand number per plantation pixel
    firebreak: BoolArray  # per pixel: bare firebreak / track on the stand edge, never planted
    cover_max: FloatArray  # per pixel: canopy cover of the mature stand (jitter and gaps)
    row: FloatArray  # per pixel: 0..1 planting-row pattern (1 = between the rows)
    rack: BoolArray  # per pixel: on a thinning / extraction rack
    species: UInt8Array  # per stand: EM_EUCALYPTUS or EM_PINE
    age_at_start: IntArray  # per stand: days since planting on the first day
    grow_days: IntArray  # per stand: days from planting to a closed canopy
    row_amplitude: FloatArray  # per stand: cover lost between rows of a closed canopy


@dataclass(frozen=True)
class _PlantationSchedule:
    """Rotation cuts and thinnings per plantation pixel (``_NEVER`` where none)."""

    cut_day: IntArray
    replant_day: IntArray
    slash: FloatArray  # litter share of the cut pixel (slash) until replanting
    thin_day: IntArray
    thin_fraction: FloatArray
    thin_tau: FloatArray


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
    plantations: _PlantationStands | None = None  # None where plantation_share == 0


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
