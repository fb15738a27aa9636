"""Settings of a landscape: the named types, the config a caller passes, and its resolution.

A ``LandscapeConfig`` names a ``kind`` (a key of ``LANDSCAPE_TYPES``) and may set any knob;
knobs left at ``None`` come from the kind's entry, then from ``BASE_SETTINGS``. Ranges are
``(low, high)`` tuples from which each scene, field, event or pixel draws uniformly.

Seeds: evaluation scenes use seeds >= ``EVALUATION_SEED_MIN`` (500000), training scenes
seeds below it, so no evaluation scene is ever generated for training by accident.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

EVALUATION_SEED_MIN = 500_000

Range = tuple[float, float]
EVENT_KINDS: tuple[str, ...] = ("clearcut", "gradual", "subpixel", "fire_then_clear")

# The quiet landscape every kind starts from: mostly evergreen forest, a little of every
# other cover, modest clouds and a short wet-season gap, mild acquisition effects.
BASE_SETTINGS: dict[str, Any] = {
    "evergreen_share": 0.55,
    "deciduous_share": 0.08,
    "crop_share": 0.08,
    "plantation_share": 0.08,
    "pasture_share": 0.13,
    "water_share": 0.03,
    "bare_share": 0.05,
    "patch_px": 14.0,  # typical field / block edge in pixels
    "n_events": (8, 15),
    "event_mix": (0.45, 0.2, 0.15, 0.2),  # clearcut, gradual, subpixel, fire_then_clear
    "n_fires_only": (1, 2),
    "event_ha": (0.1, 5.0),
    "gradual_days": (30.0, 120.0),
    "subpixel_removed": (0.4, 0.7),
    "fire_lead_days": (20.0, 150.0),
    "event_after_days": 10.0,  # no clearing starts in the first days of the series
    "regrowth_share": 0.5,  # share of clearings that turn to grass/pasture afterwards
    "leafoff_fraction": (0.05, 0.2),  # leaf fraction left at the bottom of the leaf-off
    "leafoff_jitter_days": 7.0,  # per-pixel timing sd (clipped at 2.5 sd)
    "leafoff_year_jitter_days": 15.0,  # per-year timing shift, uniform +-
    "leafoff_transition_days": (20.0, 40.0),
    "crop_harvests": (1, 3),  # harvests per year, per field
    "plantation_cut_share": 0.4,  # share of plantation blocks clear-cut in the series
    "plantation_bare_days": (30.0, 90.0),
    "cloud_dry": 0.12,  # mean cloud cover of a dry-season date
    "cloud_wet": 0.5,  # mean cloud cover of a wet-season date outside the gap
    "cloud_flag_alpha": 0.2,  # cloud opacity above which Sen2Cor flags it
    "shadow_strength": 0.7,
    "cirrus_prob": 0.04,
    "haze_prob": 0.0,  # share of dates with unflagged haze
    "haze_strength": 0.6,  # haze optical depth scale (blue path radiance ~0.06 per unit)
    "orbit_effect": 0.01,  # multiplicative brightness difference between relative orbits
    "misregistration_prob": 0.0,
    "misregistration_px": (0.5, 1.0),
    "wet_gap_months": (1.0, 2.0),  # months a year with almost no clear observation
    "noise_sd": (0.003, 0.006),  # per-band sensor noise, reflectance
    "missing_date_share": 0.03,  # acquisitions missing altogether
}

LANDSCAPE_TYPES: dict[str, dict[str, Any]] = {
    "deciduous": {
        "description": "half the forest deciduous: yearly leaf-off with per-pixel and per-year timing",
        "evergreen_share": 0.3,
        "deciduous_share": 0.4,
        "crop_share": 0.05,
        "plantation_share": 0.04,
        "pasture_share": 0.12,
        "leafoff_year_jitter_days": 20.0,
        "leafoff_jitter_days": 8.0,
    },
    "irrigated_crops": {
        "description": "a third of the land is forest-like irrigated cropland with 1-3 harvests a year",
        "evergreen_share": 0.45,
        "deciduous_share": 0.05,
        "crop_share": 0.32,
        "plantation_share": 0.03,
        "pasture_share": 0.08,
        "patch_px": 12.0,
    },
    "plantations": {
        "description": "a third of the land is forest-like plantation, most blocks clear-cut in rotation",
        "evergreen_share": 0.45,
        "deciduous_share": 0.05,
        "crop_share": 0.03,
        "plantation_share": 0.32,
        "pasture_share": 0.08,
        "plantation_cut_share": 0.6,
    },
    "gradual_subpixel": {
        "description": "clearings that spread over 1-4 months and partial (sub-pixel) clearings",
        "event_mix": (0.1, 0.45, 0.45, 0.0),
        "n_fires_only": (0, 1),
    },
    "fire_then_clear": {
        "description": "understorey fires weeks-months before clearings, and fires never cleared",
        "event_mix": (0.25, 0.05, 0.0, 0.7),
        "n_fires_only": (3, 5),
        "fire_lead_days": (20.0, 150.0),
    },
    "thin_cloud_orbits": {
        "description": "unflagged haze on a fifth of the dates, soft cloud edges, two relative orbits",
        "haze_prob": 0.2,
        "haze_strength": 0.8,
        "cloud_flag_alpha": 0.35,
        "cirrus_prob": 0.08,
        "orbit_effect": 0.05,
    },
    "misregistration_gaps": {
        "description": "a quarter of the dates shifted by 0.5-1 px, 3-4 month wet-season gaps",
        "misregistration_prob": 0.25,
        "wet_gap_months": (3.0, 4.0),
        "cloud_wet": 0.7,
        "deciduous_share": 0.1,
    },
    "mixed": {
        "description": "every confounder at once",
        "evergreen_share": 0.38,
        "deciduous_share": 0.14,
        "crop_share": 0.12,
        "plantation_share": 0.12,
        "pasture_share": 0.12,
        "event_mix": (0.3, 0.25, 0.2, 0.25),
        "n_fires_only": (1, 3),
        "haze_prob": 0.12,
        "cloud_flag_alpha": 0.3,
        "cirrus_prob": 0.06,
        "orbit_effect": 0.04,
        "misregistration_prob": 0.15,
        "wet_gap_months": (2.0, 4.0),
        "cloud_wet": 0.6,
        "noise_sd": (0.003, 0.008),
        "plantation_cut_share": 0.5,
    },
}


@dataclass(frozen=True)
class Settings:
    """A config resolved: every knob has its value."""

    evergreen_share: float
    deciduous_share: float
    crop_share: float
    plantation_share: float
    pasture_share: float
    water_share: float
    bare_share: float
    patch_px: float
    n_events: tuple[int, int]
    event_mix: tuple[float, float, float, float]
    n_fires_only: tuple[int, int]
    event_ha: Range
    gradual_days: Range
    subpixel_removed: Range
    fire_lead_days: Range
    event_after_days: float
    regrowth_share: float
    leafoff_fraction: Range
    leafoff_jitter_days: float
    leafoff_year_jitter_days: float
    leafoff_transition_days: Range
    crop_harvests: tuple[int, int]
    plantation_cut_share: float
    plantation_bare_days: Range
    cloud_dry: float
    cloud_wet: float
    cloud_flag_alpha: float
    shadow_strength: float
    cirrus_prob: float
    haze_prob: float
    haze_strength: float
    orbit_effect: float
    misregistration_prob: float
    misregistration_px: Range
    wet_gap_months: Range
    noise_sd: Range
    missing_date_share: float


KNOBS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))


@dataclass(frozen=True)
class LandscapeConfig:
    """One scene: its seed, kind, size and period; any knob set here overrides the kind's."""

    seed: int
    kind: str = "mixed"
    size_px: int = 128
    start: dt.date = dt.date(2023, 1, 1)
    end: dt.date = dt.date(2024, 12, 31)
    revisit_days: int = 5
    pixel_m: float = 10.0
    epsg: int = 32721
    evergreen_share: float | None = None
    deciduous_share: float | None = None
    crop_share: float | None = None
    plantation_share: float | None = None
    pasture_share: float | None = None
    water_share: float | None = None
    bare_share: float | None = None
    patch_px: float | None = None
    n_events: tuple[int, int] | None = None
    event_mix: tuple[float, float, float, float] | None = None
    n_fires_only: tuple[int, int] | None = None
    event_ha: Range | None = None
    gradual_days: Range | None = None
    subpixel_removed: Range | None = None
    fire_lead_days: Range | None = None
    event_after_days: float | None = None
    regrowth_share: float | None = None
    leafoff_fraction: Range | None = None
    leafoff_jitter_days: float | None = None
    leafoff_year_jitter_days: float | None = None
    leafoff_transition_days: Range | None = None
    crop_harvests: tuple[int, int] | None = None
    plantation_cut_share: float | None = None
    plantation_bare_days: Range | None = None
    cloud_dry: float | None = None
    cloud_wet: float | None = None
    cloud_flag_alpha: float | None = None
    shadow_strength: float | None = None
    cirrus_prob: float | None = None
    haze_prob: float | None = None
    haze_strength: float | None = None
    orbit_effect: float | None = None
    misregistration_prob: float | None = None
    misregistration_px: Range | None = None
    wet_gap_months: Range | None = None
    noise_sd: Range | None = None
    missing_date_share: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LANDSCAPE_TYPES and self.kind != "randomized":
            raise ValueError(f"unknown landscape kind {self.kind!r}: {', '.join(LANDSCAPE_TYPES)}")
        if self.size_px < 16:
            raise ValueError("size_px must be at least 16")
        if self.end <= self.start:
            raise ValueError("end must be after start")

    @property
    def is_evaluation(self) -> bool:
        return self.seed >= EVALUATION_SEED_MIN

    def settings(self) -> Settings:
        merged = dict(BASE_SETTINGS)
        merged.update({k: v for k, v in LANDSCAPE_TYPES.get(self.kind, {}).items() if k in KNOBS})
        for name in KNOBS:
            value = getattr(self, name)
            if value is not None:
                merged[name] = value
        return Settings(**{name: merged[name] for name in KNOBS})


def randomized_config(seed: int, size_px: int = 128) -> LandscapeConfig:
    """A config whose every knob is drawn at random from a wide range (kind "randomized")."""
    rng = np.random.default_rng([seed, 0x1A2D5])
    covers = rng.dirichlet([6.0, 2.0, 1.5, 1.5, 1.5, 0.4, 0.6])
    forest = rng.uniform(0.45, 0.75)  # evergreen + deciduous
    deciduous_part = rng.uniform(0.0, 0.6)
    rest = covers[2:] / covers[2:].sum() * (1.0 - forest)
    mix = rng.dirichlet([2.0, 1.5, 1.2, 1.5])
    gap_low = rng.uniform(0.5, 3.5)
    noise_low = rng.uniform(0.002, 0.006)

    def pair(low: float, high: float, min_width: float) -> Range:
        a = float(rng.uniform(low, high - min_width))
        return (round(a, 3), round(float(rng.uniform(a + min_width, high)), 3))

    fires_low = int(rng.integers(0, 4))
    events_low = int(rng.integers(8, 13))
    return LandscapeConfig(
        seed=seed,
        kind="randomized",
        size_px=size_px,
        evergreen_share=round(forest * (1 - deciduous_part), 4),
        deciduous_share=round(forest * deciduous_part, 4),
        crop_share=round(float(rest[0]), 4),
        plantation_share=round(float(rest[1]), 4),
        pasture_share=round(float(rest[2]), 4),
        water_share=round(float(rest[3]), 4),
        bare_share=round(float(rest[4]), 4),
        patch_px=round(float(rng.uniform(8.0, 22.0)), 2),
        n_events=(events_low, int(rng.integers(events_low, 16))),
        event_mix=(float(mix[0]), float(mix[1]), float(mix[2]), float(mix[3])),
        n_fires_only=(fires_low, fires_low + int(rng.integers(0, 3))),
        event_ha=(0.1, round(float(rng.uniform(2.0, 5.0)), 2)),
        gradual_days=pair(25.0, 130.0, 20.0),
        subpixel_removed=pair(0.35, 0.75, 0.15),
        fire_lead_days=pair(15.0, 170.0, 40.0),
        regrowth_share=round(float(rng.uniform(0.1, 0.9)), 3),
        leafoff_fraction=pair(0.03, 0.35, 0.08),
        leafoff_jitter_days=round(float(rng.uniform(4.0, 9.0)), 2),
        leafoff_year_jitter_days=round(float(rng.uniform(8.0, 22.0)), 2),
        leafoff_transition_days=pair(15.0, 45.0, 8.0),
        crop_harvests=(int(rng.integers(1, 3)), 3),
        plantation_cut_share=round(float(rng.uniform(0.2, 0.8)), 3),
        plantation_bare_days=pair(25.0, 100.0, 20.0),
        cloud_dry=round(float(rng.uniform(0.03, 0.3)), 3),
        cloud_wet=round(float(rng.uniform(0.35, 0.8)), 3),
        cloud_flag_alpha=round(float(rng.uniform(0.1, 0.45)), 3),
        shadow_strength=round(float(rng.uniform(0.4, 0.85)), 3),
        cirrus_prob=round(float(rng.uniform(0.0, 0.1)), 3),
        haze_prob=round(float(rng.uniform(0.0, 0.25)), 3),
        haze_strength=round(float(rng.uniform(0.3, 1.0)), 3),
        orbit_effect=round(float(rng.uniform(0.0, 0.06)), 4),
        misregistration_prob=round(float(rng.uniform(0.0, 0.3)), 3),
        misregistration_px=(0.5, round(float(rng.uniform(0.6, 1.2)), 3)),
        wet_gap_months=(round(gap_low, 2), round(float(rng.uniform(gap_low, 4.5)), 2)),
        noise_sd=(round(noise_low, 4), round(float(rng.uniform(noise_low + 0.001, 0.009)), 4)),
        missing_date_share=round(float(rng.uniform(0.0, 0.08)), 3),
    )


def scenarios(
    kinds: Iterable[str], seeds: Iterable[int], size_px: int = 128, **overrides: Any
) -> list[LandscapeConfig]:
    """One config per (kind, seed); kind "randomized" draws every knob from the seed."""
    seed_list = list(seeds)
    out: list[LandscapeConfig] = []
    for kind in kinds:
        for seed in seed_list:
            if kind == "randomized":
                config = randomized_config(seed, size_px)
                out.append(dataclasses.replace(config, **overrides) if overrides else config)
            else:
                out.append(LandscapeConfig(seed=seed, kind=kind, size_px=size_px, **overrides))
    return out


def describe(config: LandscapeConfig) -> Mapping[str, Any]:
    """The resolved settings as a plain dict (for logs and benchmark reports)."""
    return {"seed": config.seed, "kind": config.kind, **dataclasses.asdict(config.settings())}
