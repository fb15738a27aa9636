"""Where and when things change: clearings, crop harvests, transient changes."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from affine import Affine

from canopywatch.dates import date_from_days, days_since_epoch
from canopywatch_dev.simulate.helpers import (
    _dilate4,
    _disk,
    grow_blob,
    mask_to_geometry,
    smooth_field,
)
from canopywatch_dev.simulate.model import (
    _NEVER,
    CROP_GROWTH_DAYS,
    CROP_SEASON_DAYS,
    DEFORESTATION_KINDS,
    LC_FOREST,
    LC_PASTURE,
    LC_SETTLEMENT,
    LC_WATER,
    BoolArray,
    Event,
    Int32Array,
    IntArray,
    SimulationConfig,
    UInt8Array,
    _Clearings,
    _CropCalendar,
    _Landscape,
    _TransientEvent,
)


class EventPlacement:
    """The event-placing part of ``Simulation`` (a base class of it): what changes where
    and when, and the truth (``clearing_date``) that goes with it."""

    config: SimulationConfig
    landcover: UInt8Array
    clearing_date: Int32Array
    transform: Affine
    _shape: tuple[int, int]
    _start_day: int
    _end_day: int
    _wet_peak_doy: int
    _landscape: _Landscape

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
