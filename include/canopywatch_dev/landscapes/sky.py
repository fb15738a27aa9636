"""Acquisition: the date schedule, the atmosphere and the sensor over a noise-free surface.

Per date, in this order:

0. the point spread function: a Gaussian of 0.3-0.45 px sd (neighbours mix a little);
1. misregistration: on ``misregistration_prob`` of the dates the whole surface is shifted
   by 0.5-1 px in a random direction (bilinear, so edges mix);
2. the relative orbit: dates alternate between two orbits; each has a multiplicative
   brightness (BRDF) factor ``1 +- orbit_effect * v_band`` (``v`` 0.3-1 per band, some
   bands of opposite sign) and a small across-scene gradient;
3. clouds: cover per date follows the season (``cloud_dry`` / ``cloud_wet``), and each
   year a wet-season gap of ``wet_gap_months`` (centred in February) is overcast on
   almost every date. A cloud is a smooth random field above a threshold; its opacity
   ``alpha = 1 - exp(-k (z - thr))`` mixes the surface with a cloud spectrum. Only
   ``alpha > cloud_flag_alpha`` is flagged (SCL 8, or 9 above 0.7): the soft edges are
   not. Its shadow (the opacity field displaced by 8-40 px along the sun azimuth: cloud
   height times the tangent of the sun zenith) darkens the surface (blue least); the
   darker part is flagged SCL 3, the rim is not;
4. thin cirrus on ``cirrus_prob`` of the dates, flagged SCL 10 where thicker than 0.05;
5. unflagged haze on ``haze_prob`` of the dates over part of the scene: path reflectance
   (blue 0.06, red 0.032, NIR 0.018, SWIR 0.002-0.005 per unit depth) and attenuation;
   SCL keeps the land class;
6. sensor noise (Gaussian, per-band sd drawn from ``noise_sd``), then quantisation to
   1e-4 reflectance, as in L2A products.

SCL land classes come from the (shifted) surface: water 6, vegetation 4 (NDVI >= 0.3),
bare 5.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from canopywatch.dates import days_since_epoch
from canopywatch_dev.landscapes.config import LandscapeConfig, Settings
from canopywatch_dev.landscapes.ground import dryness, gauss_field, smoothstep
from canopywatch_dev.landscapes.spectra import (
    CIRRUS_SPECTRUM,
    CLOUD_SPECTRUM,
    HAZE_ATTENUATION,
    HAZE_PATH,
    NIR,
    RED,
    SHADOW_DARKENING,
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
FLAGGED_SCL: tuple[int, ...] = (3, 8, 9, 10)
RELATIVE_ORBITS: tuple[int, int] = (53, 96)


@dataclass
class Sky:
    reflectance: F32  # (bands, T, H, W), as observed (clouds included)
    scl: npt.NDArray[np.uint8]  # (T, H, W)
    orbit: I64  # (T,) 0 or 1
    cloud_cover: F32  # (T,) share of the scene under cloud (any opacity)
    haze_depth: F32  # (T,) largest haze depth of the date (0: none)
    shift_px: F32  # (T, 2) (dy, dx) misregistration
    in_gap: npt.NDArray[np.bool_]  # (T,) date in a wet-season gap
    orbit_factor: F32  # (2, bands)

    @property
    def clear(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = ~np.isin(self.scl, FLAGGED_SCL)
        return out


def schedule(config: LandscapeConfig, s: Settings, rng: np.random.Generator) -> tuple[I64, I64]:
    """Acquisition days and their index in the nominal revisit schedule."""
    start, end = days_since_epoch(config.start), days_since_epoch(config.end)
    nominal = np.arange(start, end + 1, config.revisit_days, dtype=np.int64)
    keep = rng.random(nominal.size) >= s.missing_date_share
    keep[0] = True
    index = np.flatnonzero(keep).astype(np.int64)
    return nominal[keep], index


def _cloud_cover(days: I64, s: Settings, rng: np.random.Generator) -> tuple[F32, Any]:
    first = (dt.date(1970, 1, 1) + dt.timedelta(days=int(days[0]))).year
    last = (dt.date(1970, 1, 1) + dt.timedelta(days=int(days[-1]))).year
    in_gap = np.zeros(days.size, dtype=bool)
    for year in range(first - 1, last + 2):
        centre = days_since_epoch(dt.date(year, 2, 10)) + rng.uniform(-15, 15)
        length = rng.uniform(*s.wet_gap_months) * 30.44
        in_gap |= np.abs(days - centre) < length / 2
    wet = 1.0 - dryness(days)
    cover = np.zeros(days.size, dtype=np.float32)
    for t in range(days.size):
        if in_gap[t]:
            cover[t] = rng.uniform(0.95, 1.0) if rng.random() < 0.9 else rng.uniform(0.55, 0.9)
            continue
        mean = float(np.clip(s.cloud_dry + (s.cloud_wet - s.cloud_dry) * wet[t], 0.01, 0.95))
        if rng.random() < 0.6 * (1.0 - mean) ** 1.5:
            continue
        cover[t] = rng.beta(2.0, 2.0 * (1.0 - mean) / mean)
    return cover, in_gap


def observe(surface: F32, days: I64, index: I64, s: Settings, rng: np.random.Generator) -> Sky:
    n_b, n_t, h, w = surface.shape
    cover, in_gap = _cloud_cover(days, s, rng)
    orbit = (index % 2).astype(np.int64)
    v = rng.uniform(0.3, 1.0, n_b) * np.where(rng.random(n_b) < 0.2, -1.0, 1.0)
    orbit_factor = np.stack([1.0 + s.orbit_effect * v, 1.0 - s.orbit_effect * v]).astype(np.float32)
    gradient = s.orbit_effect * 0.3 * np.array([1.0, -1.0])
    across = (np.arange(w, dtype=np.float32) / max(w - 1, 1) - 0.5)[None, None, :]
    noise_sd = np.asarray(rng.uniform(s.noise_sd[0], s.noise_sd[1], n_b), dtype=np.float32)
    azimuth = rng.uniform(0, 2 * np.pi)
    out = np.empty_like(surface)
    scl = np.empty((n_t, h, w), dtype=np.uint8)
    haze_depth = np.zeros(n_t, dtype=np.float32)
    shift_px = np.zeros((n_t, 2), dtype=np.float32)
    # the sensor's point spread: a 10 m pixel sees a little of its neighbours
    psf = float(rng.uniform(0.3, 0.45))
    for t in range(n_t):
        ground = ndimage.gaussian_filter(surface[:, t], (0.0, psf, psf), mode="nearest")
        if rng.random() < s.misregistration_prob:
            size = rng.uniform(*s.misregistration_px)
            angle = rng.uniform(0, 2 * np.pi)
            dy, dx = size * np.sin(angle), size * np.cos(angle)
            shift_px[t] = (dy, dx)
            ground = ndimage.shift(ground, (0.0, dy, dx), order=1, mode="nearest")
        red, nir = ground[RED], ground[NIR]
        ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
        land = np.where(ndvi >= 0.3, 4, 5)
        scl_t = np.where((ndvi < 0.0) & (nir < 0.08), 6, land).astype(np.uint8)
        o = int(orbit[t])
        obs = ground * orbit_factor[o][:, None, None] * (1.0 + gradient[o] * across)
        if cover[t] > 0:
            z = gauss_field(rng, (h, w), rng.uniform(3.0, 10.0))
            thr = float(np.quantile(z, 1.0 - cover[t]))
            k = rng.uniform(1.5, 4.0)
            alpha = np.where(z > thr, 1.0 - np.exp(-k * (z - thr)), 0.0).astype(np.float32)
            length = rng.uniform(8.0, 40.0)
            sun = azimuth + rng.normal(0, 0.2)
            shade = ndimage.shift(
                alpha, (length * np.sin(sun), length * np.cos(sun)), order=0, cval=0.0
            )
            shade *= s.shadow_strength
            obs = obs * (1.0 - shade[None] * SHADOW_DARKENING[:, None, None])
            tint = CLOUD_SPECTRUM * rng.uniform(0.85, 1.15)
            obs = obs * (1.0 - alpha[None]) + alpha[None] * tint[:, None, None]
            cloud = alpha > s.cloud_flag_alpha
            scl_t[(shade > 0.3) & ~cloud] = 3
            scl_t[cloud] = 8
            scl_t[alpha > max(0.7, s.cloud_flag_alpha)] = 9
        if rng.random() < s.cirrus_prob:
            field = smoothstep((gauss_field(rng, (h, w), max(h, w) / 5) + 1.5) / 3.0)
            depth = rng.uniform(0.03, 0.12) * field
            obs = obs * (1.0 - depth[None]) + depth[None] * CIRRUS_SPECTRUM[:, None, None]
            scl_t[(depth > 0.05) & ~np.isin(scl_t, (8, 9))] = 10
        if rng.random() < s.haze_prob:
            field = gauss_field(rng, (h, w), max(h, w) / 4)
            depth = (
                s.haze_strength
                * rng.uniform(0.4, 1.0)
                * smoothstep((field - rng.uniform(-1.0, 0.5)) / 1.2)
            ).astype(np.float32)
            obs = obs * (1.0 - depth[None] * HAZE_ATTENUATION[:, None, None])
            obs = obs + depth[None] * HAZE_PATH[:, None, None]
            haze_depth[t] = float(depth.max())
        obs = obs + noise_sd[:, None, None] * rng.standard_normal((n_b, h, w), dtype=np.float32)
        out[:, t] = np.clip(np.round(obs * 10000.0) / 10000.0, -0.05, 1.6)
        scl[t] = scl_t
    return Sky(
        reflectance=out,
        scl=scl,
        orbit=orbit,
        cloud_cover=cover,
        haze_depth=haze_depth,
        shift_px=shift_px,
        in_gap=in_gap,
        orbit_factor=orbit_factor,
    )
