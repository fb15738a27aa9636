"""The ground: a land-cover map, per-pixel parameters, disturbance events and, for any days,
the material fractions and the noise-free, cloud-free surface reflectance.

Land cover: natural forest is the high part of a smooth random field (coherent blobs,
evergreen and deciduous parts split by a second field); the open land is cut into
Voronoi cells (straight-edged fields and blocks), each given a class so that the class
areas meet the configured shares; a meandering river is the water.

Per-pixel dynamics (t in days):

* evergreen forest: canopy with a small dry-season share of leaf-off (2-6 %);
* deciduous forest: leaf fraction ``1 - (1 - leaf_min) * off(t)``; ``off`` rises over
  20-40 days from a yearly start (per year shift +-15 d, per pixel shift sd 7 d, per pixel
  and year sd 3 d), stays 20-60 days and falls over 20-40 days;
* irrigated cropland: crop cover ``g(t)``: at each harvest g drops to 0 within the day,
  stays bare 8.5-13 days, then regrows as ``1 - exp(-x / tau)`` (tau 5-7 d): NDVI < 0.5 for
  10-18 days; 1-3 harvests a year on per-field dates;
* plantation blocks: clear-cut on a per-block date (front across the block over <= 10 d),
  slash and soil for 1-3 months, replanted: canopy rises over 8-14 months, weeds between;
* pasture: green/dry grass following the dry season; water; bare soil and settlement.

Natural-forest disturbances, per pixel: a fire scorches ``scorch0`` of the canopy (dry
leaves) and exposes ``char0`` char, both decaying; a clearing removes ``removed`` of
everything over a ramp of ``ramp`` days centred on the pixel's clearing day; the removed
share is slash (drying away), soil, char when the slash is burned, and grass when the
clearing becomes pasture.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage, special
from scipy.spatial import cKDTree

from canopywatch.dates import days_since_epoch
from canopywatch_dev.landscapes.config import EVENT_KINDS, Settings
from canopywatch_dev.landscapes.spectra import (
    BARE_SETTLEMENT,
    DECIDUOUS_FOREST,
    EVERGREEN_FOREST,
    IRRIGATED_CROPLAND,
    MATERIALS,
    NATURAL_FOREST,
    PASTURE,
    PIXEL_BRIGHTNESS_SD,
    PLANTATION,
    SPECTRA,
    WATER,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
M = {name: i for i, name in enumerate(MATERIALS)}
DRY_PEAK_DAY = days_since_epoch(dt.date(2000, 8, 15))  # middle of the dry season (21 S)
YEAR = 365.2425


def gauss_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> F32:
    """A smooth Gaussian random field, zero mean and unit sd."""
    z = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    sd = float(z.std())
    out: F32 = ((z - z.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)
    return out


def uniform_field(
    rng: np.random.Generator, n: int, low: float, high: float, sigma: float = 3.0
) -> F32:
    """Per-pixel values uniform in [low, high], spatially correlated (half smooth, half white)."""
    z = 0.6 * gauss_field(rng, (n, n), sigma) + 0.8 * rng.standard_normal((n, n))
    u = special.ndtr(z.ravel() / 1.0)
    out: F32 = (low + (high - low) * u).astype(np.float32)
    return out


def smoothstep(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    c = np.clip(x, 0.0, 1.0)
    out: npt.NDArray[Any] = c * c * (3.0 - 2.0 * c)
    return out


def dryness(days: npt.NDArray[Any]) -> F64:
    """0 in the wet season (January), 1 at the height of the dry season (mid August)."""
    phase = 2 * np.pi * (np.asarray(days, dtype=np.float64) - DRY_PEAK_DAY) / YEAR
    out: F64 = ((1.0 + np.cos(phase)) / 2.0) ** 1.5
    return out


@dataclass(frozen=True)
class EventInfo:
    number: int  # 0 for a fire never followed by clearing
    kind: str  # clearcut, gradual, subpixel, fire_then_clear, fire_only
    start_day: int  # first clearing day (fire day for fire_only)
    n_px: int  # cleared pixels (burned pixels for fire_only)
    fire_day: int | None = None
    fire_px: int = 0
    duration_days: int = 0


@dataclass
class Ground:
    n: int
    landcover: I32  # (n, n)
    field_id: I32  # (n, n), crop fields and plantation blocks, 0 elsewhere
    spectra: F32  # (materials, bands, P)
    params: dict[str, Any]  # per-pixel parameter arrays (P,) or (K, P)
    events: list[EventInfo]
    clearing_day: I64  # (n, n), -1 never
    event_raster: I32  # (n, n)
    other_change: Bool  # (n, n)
    removed_share: F32  # (n, n)
    fire_day: I64  # (n, n), -1 never
    plantation_cut_day: I64  # (n, n), -1 never
    idx: dict[int | str, I64] = field(default_factory=dict)

    # ----------------------------------------------------------------- dynamics

    def fractions(self, days: npt.NDArray[Any]) -> F32:
        """Material fractions (materials, T, P) on ``days``; they sum to 1 per pixel."""
        p = self.params
        t = np.asarray(days, dtype=np.float64)[:, None]
        n_t, n_p = t.shape[0], self.n * self.n
        frac = np.zeros((len(MATERIALS), n_t, n_p), dtype=np.float32)
        dry = dryness(t)

        def put(material: str, i: I64, values: npt.NDArray[Any]) -> None:
            frac[M[material]][:, i] = values

        i = self.idx[EVERGREEN_FOREST]
        if i.size:
            a = p["season_amp"][i] * dry
            put("canopy", i, 1.0 - a)
            put("leafoff", i, a)
        i = self.idx[DECIDUOUS_FOREST]
        if i.size:
            off = np.zeros((n_t, i.size))
            down, up = p["leaf_down"][i], p["leaf_up"][i]
            plateau = p["leaf_plateau"][i]
            for start in p["leaf_start"][:, i]:
                rise = smoothstep((t - start) / down)
                fall = 1.0 - smoothstep((t - start - down - plateau) / up)
                off = np.maximum(off, np.minimum(rise, fall))
            leaves = 1.0 - (1.0 - p["leaf_min"][i]) * off
            put("canopy", i, leaves)
            put("leafoff", i, 1.0 - leaves)
        i = self.idx[IRRIGATED_CROPLAND]
        if i.size:
            x = t[:, :, None] - p["harvests"][None][:, :, i]  # (T, K, n)
            plateau = p["crop_plateau"][i][None, None]
            tau = p["crop_tau"][i][None, None]
            with np.errstate(invalid="ignore"):
                regrow = np.where(
                    x < 0,
                    1.0,
                    np.where(x < plateau, 0.0, 1.0 - np.exp(-np.maximum(x - plateau, 0) / tau)),
                )
            g = regrow.min(axis=1)
            put("crop", i, g)
            put("slash", i, 0.3 * (1.0 - g))  # stubble
            put("soil", i, 0.7 * (1.0 - g))
        i = self.idx[PLANTATION]
        if i.size:
            x = t - p["cut_day"][i]
            cut = x >= 0
            young = smoothstep((t - p["replant_day"][i]) / p["grow_days"][i])
            canopy = np.where(cut, young, 1.0)
            weeds = np.where(cut, 0.35 * smoothstep((t - p["replant_day"][i]) / 60.0), 0.0)
            weeds = weeds * (1.0 - canopy)
            slash = np.where(cut, 0.6 * np.exp(-np.maximum(x, 0) / 50.0), 0.0)
            slash = slash * (1.0 - canopy - weeds)
            put("plantation", i, canopy)
            put("grass_green", i, weeds)
            put("slash", i, slash)
            put("soil", i, 1.0 - canopy - weeds - slash)
        i = self.idx[PASTURE]
        if i.size:
            trees, soil = p["pasture_trees"][i], p["pasture_soil"][i]
            grass = 1.0 - trees - soil
            gmin, gmax = p["pasture_gmin"][i], p["pasture_gmax"][i]
            green = grass * (gmin + (gmax - gmin) * (1.0 - dry))
            put("canopy", i, np.broadcast_to(trees, (n_t, i.size)))
            put("soil", i, np.broadcast_to(soil, (n_t, i.size)))
            put("grass_green", i, green)
            put("grass_dry", i, grass - green)
        i = self.idx[WATER]
        if i.size:
            turbid = p["water_turbid"][i] * (1.0 - dry)
            put("water", i, 1.0 - turbid)
            put("soil", i, turbid)
        i = self.idx[BARE_SETTLEMENT]
        if i.size:
            urban, grass = p["urban"][i], p["urban_grass"][i]
            put("urban", i, np.broadcast_to(urban, (n_t, i.size)))
            put("grass_green", i, grass * (1.0 - 0.5 * dry))
            put("grass_dry", i, grass * 0.5 * dry)
            put("soil", i, np.broadcast_to(1.0 - urban - grass, (n_t, i.size)))
        i = self.idx["disturbed"]
        if i.size:
            self._disturb(frac, t, dry, i)
        return frac

    def _disturb(self, frac: F32, t: F64, dry: F64, i: I64) -> None:
        p = self.params
        tf = t - p["fire_day"][i]
        on = tf >= 0
        xf = np.maximum(tf, 0.0)
        scorch = np.where(on, p["scorch0"][i] * np.exp(-xf / p["scorch_tau"][i]), 0.0)
        char = np.where(on, p["char0"][i] * np.exp(-xf / p["char_tau"][i]), 0.0)
        x = t - p["clear_day"][i]
        ramp = p["ramp"][i]
        r = p["removed"][i] * np.clip((x + ramp / 2.0) / ramp, 0.0, 1.0)
        xs = np.maximum(x, 0.0)
        grass = p["grass_max"][i] * smoothstep((xs - p["grass_start"][i]) / p["grass_ramp"][i])
        green = grass * (1.0 - 0.6 * dry)
        burn = p["burn_rel"][i]
        burnt = xs >= burn
        post_char = np.where(burnt, 0.7 * np.exp(-np.maximum(xs - burn, 0.0) / 45.0), 0.0)
        post_char = post_char * (1.0 - grass)
        post_slash = np.where(burnt, 0.0, p["slash0"][i] * np.exp(-xs / p["slash_tau"][i]))
        post_slash = post_slash * (1.0 - grass)
        post_soil = 1.0 - grass - post_char - post_slash
        keep = (1.0 - scorch - char) * (1.0 - r)
        for name in ("canopy", "leafoff"):
            frac[M[name]][:, i] *= keep.astype(np.float32)
        frac[M["scorched"]][:, i] = scorch * (1.0 - r)
        frac[M["char"]][:, i] = char * (1.0 - r) + post_char * r
        frac[M["slash"]][:, i] = post_slash * r
        frac[M["soil"]][:, i] = post_soil * r
        frac[M["grass_green"]][:, i] = green * r
        frac[M["grass_dry"]][:, i] = (grass - green) * r

    def surface(self, days: npt.NDArray[Any]) -> F32:
        """Noise-free, cloud-free surface reflectance (bands, T, n, n) on ``days``."""
        days = np.asarray(days)
        n_p = self.n * self.n
        out = np.zeros((self.spectra.shape[1], days.size, n_p), dtype=np.float32)
        chunk = max(1, int(2_000_000 // n_p))
        for lo in range(0, days.size, chunk):
            frac = self.fractions(days[lo : lo + chunk])
            for m in range(frac.shape[0]):
                fm = frac[m]
                if not fm.any():
                    continue
                for b in range(out.shape[0]):
                    out[b, lo : lo + chunk] += fm * self.spectra[m, b][None, :]
        return out.reshape(out.shape[0], days.size, self.n, self.n)


# --------------------------------------------------------------------- building


def _landcover(s: Settings, rng: np.random.Generator, n: int) -> tuple[I32, I32]:
    shares = np.clip(
        np.array(
            [
                s.evergreen_share,
                s.deciduous_share,
                s.crop_share,
                s.plantation_share,
                s.pasture_share,
                s.water_share,
                s.bare_share,
            ],
            dtype=np.float64,
        ),
        0.0,
        None,
    )
    shares = shares / shares.sum()
    lc = np.zeros((n, n), dtype=np.int32)
    water = np.zeros((n, n), dtype=bool)
    if shares[5] > 0:
        width = max(1.6, shares[5] * n)
        x = np.arange(n)
        centre = rng.uniform(0.2, 0.8) * n + rng.uniform(0.05, 0.15) * n * np.sin(
            2 * np.pi * x / (rng.uniform(0.7, 1.6) * n) + rng.uniform(0, 2 * np.pi)
        )
        water = np.abs(np.arange(n)[:, None] + 0.5 - centre[None, :]) < width / 2
        if rng.random() < 0.5:
            water = water.T.copy()
    land = ~water
    land_shares = np.delete(shares, 5)
    land_shares = land_shares / land_shares.sum()
    forest_share = land_shares[0] + land_shares[1]
    z = gauss_field(rng, (n, n), max(3.0, n / 6)) + 0.3 * gauss_field(rng, (n, n), 1.5)
    forest = (
        land & (z >= np.quantile(z[land], 1.0 - forest_share)) if forest_share > 0 else land & False
    )
    lc[forest] = EVERGREEN_FOREST
    if forest_share > 0 and land_shares[1] > 0 and forest.any():
        zd = gauss_field(rng, (n, n), max(2.5, n / 10))
        thr = np.quantile(zd[forest], 1.0 - land_shares[1] / forest_share)
        lc[forest & (zd >= thr)] = DECIDUOUS_FOREST
    open_land = land & ~forest
    n_cells = max(6, round(n * n / s.patch_px**2))
    seeds = rng.uniform(0, n, (n_cells, 2))
    yy, xx = np.mgrid[0:n, 0:n]
    _, nearest = cKDTree(seeds).query(np.column_stack([yy.ravel() + 0.5, xx.ravel() + 0.5]))
    cell = np.asarray(nearest, dtype=np.int32).reshape(n, n)
    classes = np.array([IRRIGATED_CROPLAND, PLANTATION, PASTURE, BARE_SETTLEMENT])
    targets = land_shares[[2, 3, 4, 5]] * n * n
    cell_px = np.bincount(cell[open_land], minlength=n_cells)
    order = [int(c) for c in rng.permutation(n_cells) if cell_px[c] > 0]
    cell_class = np.full(n_cells, PASTURE, dtype=np.int32)
    assigned = np.zeros(4)
    # every class with a share gets at least one cell of a usable size
    for k in np.argsort(-targets):
        if targets[k] <= 0:
            continue
        pick = next((c for c in order if cell_px[c] >= 12), order[0] if order else None)
        if pick is None:
            break
        order.remove(pick)
        cell_class[pick] = classes[k]
        assigned[k] += cell_px[pick]
    for c in order:
        k = int(np.argmax(targets - assigned))
        cell_class[c] = classes[k]
        assigned[k] += cell_px[c]
    lc[open_land] = cell_class[cell[open_land]]
    lc[water] = WATER
    field_id = np.where(np.isin(lc, [IRRIGATED_CROPLAND, PLANTATION]), cell + 1, 0).astype(np.int32)
    return lc, field_id


def _material_spectra(rng: np.random.Generator, n: int) -> F32:
    n_p = n * n
    spectra = np.empty((len(MATERIALS), 6, n_p), dtype=np.float32)
    for m, name in enumerate(MATERIALS):
        sd_b, sd_j = PIXEL_BRIGHTNESS_SD[name]
        bright = np.exp(
            sd_b * (0.5 * gauss_field(rng, (n, n), 4.0).ravel() + 0.85 * rng.standard_normal(n_p))
        )
        jitter = np.exp(sd_j * rng.standard_normal((6, n_p)))
        spectra[m] = SPECTRA[m][:, None] * bright[None, :] * jitter
    # closed green canopy: NIR 0.29-0.37, NDVI 0.815-0.9, red from the two
    white = rng.standard_normal((6, n_p))
    nir = 0.33 * np.exp(0.05 * (0.7 * gauss_field(rng, (n, n), 4.0).ravel() + 0.7 * white[0]))
    nir = np.clip(nir, 0.285, 0.375)
    ndvi = 0.855 + 0.018 * (0.6 * gauss_field(rng, (n, n), 3.0).ravel() + 0.8 * white[1])
    ndvi = np.clip(ndvi, 0.815, 0.9)
    red = nir * (1 - ndvi) / (1 + ndvi)
    swir1 = np.clip(0.155 * np.exp(0.07 * white[2]), 0.13, 0.18)
    swir2 = swir1 * np.clip(0.42 + 0.025 * white[3], 0.37, 0.46)
    canopy = M["canopy"]
    spectra[canopy, 0] = red * np.clip(0.85 + 0.05 * white[4], 0.75, 0.95)
    spectra[canopy, 1] = red * np.clip(1.75 + 0.1 * white[5], 1.5, 2.0)
    spectra[canopy, 2] = red
    spectra[canopy, 3] = nir
    spectra[canopy, 4] = swir1
    spectra[canopy, 5] = swir2
    return spectra


def _front(coords: F64, rng: np.random.Generator) -> F64:
    """0..1 position of pixels (rows of (y, x)) along a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    proj = coords[:, 0] * np.sin(theta) + coords[:, 1] * np.cos(theta)
    span = float(proj.max() - proj.min())
    out: F64 = (proj - proj.min()) / span if span > 0 else np.zeros_like(proj)
    return out


def _blob(rng: np.random.Generator, free: Bool, area: int) -> Bool | None:
    """A compact patch of ``area`` pixels of ``free`` (None when it does not fit)."""
    if int(free.sum()) < area:
        return None
    dist = ndimage.distance_transform_edt(free)
    radius = math.sqrt(area / math.pi)
    good = dist >= min(max(1.0, 0.7 * radius), float(dist.max()))
    rows, cols = np.nonzero(good)
    k = int(rng.integers(rows.size))
    r0, c0 = rows[k], cols[k]
    n = free.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    dy, dx = yy - r0, xx - c0
    angle = np.arctan2(dy, dx)
    wobble = 1.0 + sum(
        rng.uniform(0.05, 0.2) * np.cos(h * angle + rng.uniform(0, 2 * np.pi)) for h in (1, 2, 3)
    )
    noisy = np.hypot(dy, dx) * wobble + 0.7 * rng.random((n, n))
    noisy = np.where(free, noisy, np.inf)
    flat = np.argsort(noisy, axis=None)[:area]
    if not np.isfinite(noisy.ravel()[flat]).all():
        return None
    mask = np.zeros(n * n, dtype=bool)
    mask[flat] = True
    return mask.reshape(n, n)


def _stratified_days(rng: np.random.Generator, count: int, low: float, high: float) -> F64:
    """``count`` days spread over [low, high]: one uniform draw in each of count strata."""
    strata = rng.permutation(count)
    out: F64 = low + (strata + rng.random(count)) / max(count, 1) * (high - low)
    return out


def build_ground(
    s: Settings, rng: np.random.Generator, n: int, start_day: int, end_day: int, pixel_m: float
) -> Ground:
    lc, field_id = _landcover(s, rng, n)
    n_p = n * n
    flat_lc = lc.ravel()
    idx: dict[int | str, I64] = {c: np.flatnonzero(flat_lc == c) for c in range(1, 8)}
    spectra = _material_spectra(rng, n)
    p: dict[str, Any] = {}
    inf = np.full(n_p, np.inf)
    start_year = (dt.date(1970, 1, 1) + dt.timedelta(days=start_day)).year
    end_year = (dt.date(1970, 1, 1) + dt.timedelta(days=end_day)).year

    # evergreen and deciduous phenology
    p["season_amp"] = uniform_field(rng, n, 0.02, 0.06)
    lo, hi = s.leafoff_fraction
    p["leaf_min"] = uniform_field(rng, n, lo, hi)
    years = list(range(start_year - 1, end_year + 2))
    jitter = s.leafoff_year_jitter_days
    shifts = [float(rng.uniform(-jitter, jitter))]
    for _ in years[1:]:
        shift = float(rng.uniform(-jitter, jitter))
        while abs(shift - shifts[-1]) < 0.4 * jitter:
            shift = float(rng.uniform(-jitter, jitter))
        shifts.append(shift)
    base_doy = 172.0 + rng.uniform(-10, 10)
    sd = s.leafoff_jitter_days
    pixel_shift = sd * np.clip(
        0.6 * gauss_field(rng, (n, n), 3.0).ravel() + 0.8 * rng.standard_normal(n_p), -2.5, 2.5
    )
    p["leaf_start"] = np.stack(
        [
            days_since_epoch(dt.date(y, 1, 1))
            + base_doy
            + shift
            + pixel_shift
            + 0.4 * sd * rng.standard_normal(n_p)
            for y, shift in zip(years, shifts, strict=True)
        ]
    )
    tlo, thi = s.leafoff_transition_days
    p["leaf_down"] = uniform_field(rng, n, tlo, thi)
    p["leaf_up"] = uniform_field(rng, n, tlo, thi)
    p["leaf_plateau"] = uniform_field(rng, n, 20.0, 60.0)

    # crop fields: harvest calendars
    yy, xx = np.mgrid[0:n, 0:n]
    coords = np.column_stack([yy.ravel(), xx.ravel()]).astype(np.float64)
    crop_fields = np.unique(field_id.ravel()[idx[IRRIGATED_CROPLAND]])
    per_field: list[tuple[I64, list[float]]] = []
    for fid in crop_fields:
        pix = np.flatnonzero((field_id.ravel() == fid) & (flat_lc == IRRIGATED_CROPLAND))
        per_year = int(rng.integers(s.crop_harvests[0], s.crop_harvests[1] + 1))
        period = YEAR / per_year
        day = start_day - rng.uniform(0, period)
        dates: list[float] = []
        while day < end_day + 30:
            dates.append(day)
            day += max(60.0, period + rng.normal(0, 10))
        per_field.append((pix, dates))
    k_max = max((len(d) for _, d in per_field), default=1)
    harvests = np.full((k_max, n_p), np.inf)
    p["crop_plateau"] = np.full(n_p, 10.0)
    p["crop_tau"] = np.full(n_p, 6.0)
    for pix, dates in per_field:
        front = _front(coords[pix], rng) * rng.uniform(0, 3)
        harvests[: len(dates), pix] = np.asarray(dates)[:, None] + front[None, :]
        p["crop_plateau"][pix] = rng.uniform(8.5, 13.0) + rng.uniform(-0.3, 0.3, pix.size)
        p["crop_tau"][pix] = rng.uniform(5.0, 7.0)
    p["harvests"] = harvests

    # plantation blocks: rotation clear-cuts
    p["cut_day"], p["replant_day"] = inf.copy(), inf.copy()
    p["grow_days"] = np.full(n_p, 300.0)
    blocks = [int(b) for b in rng.permutation(np.unique(field_id.ravel()[idx[PLANTATION]]))]
    n_cut = round(s.plantation_cut_share * len(blocks))
    if s.plantation_cut_share > 0 and blocks:
        n_cut = max(1, n_cut)
    for k, block in enumerate(blocks[:n_cut]):
        pix = np.flatnonzero((field_id.ravel() == block) & (flat_lc == PLANTATION))
        year_lo = start_day + 365 * (k % 2) + 15
        year_hi = min(start_day + 365 * (k % 2 + 1) - 15, end_day - 45)
        cut = rng.uniform(year_lo, max(year_lo + 1, year_hi))
        cut_px = np.round(cut + _front(coords[pix], rng) * rng.uniform(0, 10))
        p["cut_day"][pix] = cut_px
        p["replant_day"][pix] = cut_px + rng.uniform(*s.plantation_bare_days)
        p["grow_days"][pix] = rng.uniform(240.0, 420.0)

    # pasture, water, settlement
    p["pasture_trees"] = uniform_field(rng, n, 0.0, 0.1)
    p["pasture_soil"] = uniform_field(rng, n, 0.03, 0.15)
    p["pasture_gmin"] = uniform_field(rng, n, 0.1, 0.3)
    p["pasture_gmax"] = uniform_field(rng, n, 0.7, 0.92)
    p["water_turbid"] = uniform_field(rng, n, 0.0, 0.06)
    p["urban"] = uniform_field(rng, n, 0.25, 0.8)
    p["urban_grass"] = uniform_field(rng, n, 0.0, 0.2)

    # disturbances of natural forest
    for name in ("fire_day", "clear_day", "burn_rel", "grass_start"):
        p[name] = inf.copy()
    for name, value in (
        ("scorch0", 0.0),
        ("char0", 0.0),
        ("scorch_tau", 60.0),
        ("char_tau", 100.0),
        ("removed", 0.0),
        ("ramp", 0.5),
        ("slash0", 0.6),
        ("slash_tau", 100.0),
        ("grass_ramp", 100.0),
        ("grass_max", 0.0),
    ):
        p[name] = np.full(n_p, value)
    natural = np.isin(lc, NATURAL_FOREST)
    used = np.zeros((n, n), dtype=bool)
    px_ha = pixel_m * pixel_m / 10000.0
    min_px = max(1, math.ceil(s.event_ha[0] / px_ha - 1e-9))
    cap = max(min_px + 2, int(0.035 * n * n))
    clearing_day = np.full(n_p, -1, dtype=np.int64)
    event_raster = np.zeros(n_p, dtype=np.int32)
    fire_mask = np.zeros(n_p, dtype=bool)
    events: list[EventInfo] = []
    n_events = int(rng.integers(s.n_events[0], s.n_events[1] + 1))
    mix = np.asarray(s.event_mix, dtype=np.float64)
    kinds = rng.choice(len(EVENT_KINDS), size=n_events, p=mix / mix.sum())
    first, last = start_day + max(s.event_after_days, 0.0), end_day - 15.0
    starts = _stratified_days(rng, n_events, 0.0, 1.0)

    def area_px(low_ha: float, high_ha: float) -> int:
        ha = math.exp(rng.uniform(math.log(low_ha), math.log(high_ha)))
        return int(np.clip(round(ha / px_ha), min_px, cap))

    def set_fire(pix: I64, day: float) -> None:
        p["fire_day"][pix] = np.round(day + rng.uniform(0, 3, pix.size))
        p["scorch0"][pix] = rng.uniform(0.1, 0.22) * rng.uniform(0.8, 1.2, pix.size)
        p["char0"][pix] = rng.uniform(0.1, 0.22) * rng.uniform(0.8, 1.2, pix.size)
        p["scorch_tau"][pix] = rng.uniform(40.0, 90.0)
        p["char_tau"][pix] = rng.uniform(60.0, 150.0)
        fire_mask[pix] = True

    number = 0
    for kind_index, u in zip(kinds, starts, strict=True):
        kind = EVENT_KINDS[int(kind_index)]
        free = natural & ~ndimage.binary_dilation(used, iterations=2)
        footprint = _blob(rng, free, area_px(*s.event_ha))
        if footprint is None:
            continue
        number += 1
        pix = np.flatnonzero(footprint)
        duration = 0.0
        lead = 0.0
        if kind == "gradual":
            duration = rng.uniform(*s.gradual_days)
        if kind == "fire_then_clear":
            lead = rng.uniform(*s.fire_lead_days)
        lo_day = first + lead
        hi_day = max(lo_day + 1, last - duration)
        d0 = round(lo_day + u * (hi_day - lo_day))
        if kind == "gradual":
            pos = _front(coords[pix], rng) + rng.normal(0, 0.08, pix.size)
            rank = np.argsort(np.argsort(pos))
            days = d0 + np.round(rank / max(pix.size - 1, 1) * duration)
            removed = rng.uniform(0.8, 1.0, pix.size)
            ramp = rng.uniform(0.5, 10.0, pix.size)
        elif kind == "subpixel":
            days = d0 + np.round(rng.uniform(0, 10, pix.size))
            days -= days.min() - d0
            removed = rng.uniform(*s.subpixel_removed, pix.size)
            ramp = rng.uniform(0.5, 6.0, pix.size)
        else:
            days = np.full(pix.size, float(d0))
            edge = footprint & ~ndimage.binary_erosion(footprint)
            removed = np.where(
                edge.ravel()[pix],
                rng.uniform(0.5, 0.95, pix.size),
                rng.uniform(0.93, 1.0, pix.size),
            )
            ramp = np.full(pix.size, 0.5)
        p["clear_day"][pix] = days
        p["removed"][pix] = removed
        p["ramp"][pix] = ramp
        p["slash0"][pix] = rng.uniform(0.45, 0.85)
        p["slash_tau"][pix] = rng.uniform(60.0, 200.0)
        if rng.random() < (0.1 if kind == "subpixel" else 0.45):
            p["burn_rel"][pix] = rng.uniform(15.0, 90.0)
        if kind == "subpixel":  # the understorey regrows in the gaps
            p["grass_start"][pix] = rng.uniform(30.0, 90.0)
            p["grass_max"][pix] = rng.uniform(0.4, 0.8)
            p["grass_ramp"][pix] = rng.uniform(60.0, 150.0)
        elif rng.random() < s.regrowth_share:
            p["grass_start"][pix] = rng.uniform(90.0, 240.0)
            p["grass_max"][pix] = rng.uniform(0.5, 0.9)
            p["grass_ramp"][pix] = rng.uniform(60.0, 150.0)
        clearing_day[pix] = days.astype(np.int64)
        event_raster[pix] = number
        used |= footprint
        fire_px = 0
        fire_day: int | None = None
        if kind == "fire_then_clear":
            burned = ndimage.binary_dilation(footprint, iterations=int(rng.integers(1, 4)))
            burned &= natural & ~ndimage.binary_dilation(used & ~footprint, iterations=1)
            burned_pix = np.flatnonzero(burned)
            fire_day = int(d0 - round(lead))
            set_fire(burned_pix, fire_day)
            used |= burned
            fire_px = burned_pix.size
        events.append(
            EventInfo(
                number=number,
                kind=kind,
                start_day=int(days.min()),
                n_px=int(pix.size),
                fire_day=fire_day,
                fire_px=fire_px,
                duration_days=int(days.max() - days.min()),
            )
        )

    n_fires = int(rng.integers(s.n_fires_only[0], s.n_fires_only[1] + 1))
    for u in _stratified_days(rng, n_fires, 0.0, 1.0):
        free = natural & ~ndimage.binary_dilation(used, iterations=2)
        footprint = _blob(rng, free, area_px(0.3, 4.0))
        if footprint is None:
            continue
        pix = np.flatnonzero(footprint)
        day = round(first + u * (last - 20 - first))
        set_fire(pix, day)
        used |= footprint
        events.append(EventInfo(0, "fire_only", day, int(pix.size), day, int(pix.size)))

    disturbed = np.flatnonzero(np.isfinite(p["fire_day"]) | np.isfinite(p["clear_day"]))
    idx["disturbed"] = disturbed
    crop_px = flat_lc == IRRIGATED_CROPLAND
    cut_px = np.isfinite(p["cut_day"])
    other = crop_px | cut_px | (fire_mask & (clearing_day < 0))
    fire_day_raster = np.where(np.isfinite(p["fire_day"]), p["fire_day"], -1).astype(np.int64)
    cut_raster = np.where(cut_px, p["cut_day"], -1).astype(np.int64)
    return Ground(
        n=n,
        landcover=lc,
        field_id=field_id,
        spectra=spectra,
        params=p,
        events=events,
        clearing_day=clearing_day.reshape(n, n),
        event_raster=event_raster.reshape(n, n),
        other_change=other.reshape(n, n),
        removed_share=p["removed"].astype(np.float32).reshape(n, n),
        fire_day=fire_day_raster.reshape(n, n),
        plantation_cut_day=cut_raster.reshape(n, n),
        idx=idx,
    )
