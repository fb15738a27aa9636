"""The ``Simulation``: acquisitions, atmosphere, surface per date, rendering; entry points."""

from __future__ import annotations

import datetime as dt
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio.crs
import rasterio.features
from affine import Affine
from pyproj import Transformer
from rasterio.transform import from_origin

from canopywatch.dates import date_from_days, days_since_epoch
from canopywatch.geo import utm_epsg
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
from canopywatch_dev.simulate.events import EventPlacement
from canopywatch_dev.simulate.helpers import (
    mgrs_tile_id,
    mix_for_ndvi,
    smooth_field,
    wetness,
)
from canopywatch_dev.simulate.landscape import _build_landscape
from canopywatch_dev.simulate.model import (
    _STREAM_ACQUISITIONS,
    _STREAM_ATMOSPHERE,
    _STREAM_CLOUD_TEXTURE,
    _STREAM_EVENTS,
    _STREAM_NOISE,
    BURN_FADE_DAYS,
    CLOUD_FLAG_HIGH,
    CLOUD_FLAG_MEDIUM,
    CLOUD_SOFTNESS,
    CLOUD_SPECTRUM,
    CROP_SENESCENCE_DAYS,
    EM_BURN,
    EM_DRY,
    EM_FOREST,
    EM_GREEN,
    EM_LITTER,
    EM_REGROWTH,
    EM_SOIL,
    EM_URBAN,
    EM_WATER,
    ENDMEMBERS,
    EVENT_KINDS,
    HAZE_CIRRUS_FLAG,
    HAZE_SPECTRUM,
    LC_SETTLEMENT,
    MAX_SHADOW_DISTANCE_M,
    MIX_LEVELS,
    NDVI_CROP_PEAK,
    NDVI_CROP_SENESCENT,
    NDVI_DROUGHT,
    NDVI_FALLOW,
    NDVI_VEGETATION_THRESHOLD,
    NIR_INDEX,
    NOISE_ABSOLUTE,
    NOISE_BANK_MARGIN,
    NOISE_RELATIVE,
    RED_INDEX,
    SHADOW_DEPTH,
    Acquisition,
    AtmosphereParams,
    BoolArray,
    Event,
    FloatArray,
    Int32Array,
    SimulationConfig,
    UInt8Array,
    _AtmosphereLayers,
    _PlantationSchedule,
    _TransientEvent,
)
from canopywatch_dev.simulate.plantations import apply_plantations, schedule_plantations

# --------------------------------------------------------------------------- the simulation


class Simulation(EventPlacement):
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
        plantation_events: list[Event] = []
        self._plantation_schedule: _PlantationSchedule | None = None
        if landscape.plantations is not None:
            plantation_events, self._plantation_schedule = schedule_plantations(
                config, landscape.plantations, self._start_day, self._end_day, self._event
            )
        all_events = clearing_events + harvest_events + transient_events + plantation_events
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
            [EM_SOIL, EM_FOREST, EM_DRY, EM_SOIL, EM_WATER, EM_SOIL, EM_URBAN, EM_LITTER],
            dtype=np.uint8,
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

        if landscape.plantations is not None and self._plantation_schedule is not None:
            apply_plantations(
                day,
                self._start_day,
                landscape.plantations,
                self._plantation_schedule,
                flat_a,
                flat_b,
                flat_w,
            )

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
        table[EM_FOREST, NIR_INDEX] *= 1.0 + 0.05 * (wet - 0.5)
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
        red, nir = reflectance[RED_INDEX], reflectance[NIR_INDEX]
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
    epsg = utm_epsg((west + east) / 2, (south + north) / 2)
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
