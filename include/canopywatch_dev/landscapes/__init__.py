"""An independent Sentinel-2 L2A time-series generator with real-world confounders.

Written from scratch, apart from ``canopywatch_dev.simulate`` (it shares no code, spectra
or parameters with it), to *evaluate* change detection on data it was not tuned on. Tune
on it together with other sources, never on it alone.

    from canopywatch_dev.landscapes import LandscapeConfig, generate
    scene = generate(LandscapeConfig(seed=500001, kind="mixed"))
    stack, truth = scene.stack(), scene.reference()
    scene.write_scenes(folder)  # S2B_MSIL2A_20230105.tif ...

* ``LANDSCAPE_TYPES``: named settings (deciduous, irrigated_crops, plantations,
  gradual_subpixel, fire_then_clear, thin_cloud_orbits, misregistration_gaps, mixed);
  ``randomized_config(seed)`` draws every knob; ``scenarios(kinds, seeds)``.
* Seeds: evaluation >= ``EVALUATION_SEED_MIN`` (500000), training below.
* Land cover (``landcover`` codes): 1 evergreen_forest, 2 deciduous_forest,
  3 irrigated_cropland, 4 plantation, 5 pasture, 6 water, 7 bare_settlement.
* Truth (``reference()``): ``clearing_day`` per pixel (-1 never) is the day the pixel lost
  its canopy: for a clear-cut (``clearcut``) and a ``fire_then_clear`` the cutting day
  (the fire weeks-months before is not the start), for ``gradual`` each pixel's own day
  as the clearing spreads over 1-4 months, for ``subpixel`` the day 40-70 % of the
  pixel's canopy went. A canopy removal is a ramp of at most 10 days centred on that day.
  An event's ``start_day`` is the earliest clearing day of its pixels. ``other_change``:
  all irrigated cropland (harvested every year), clear-cut plantation blocks and burned
  forest never cleared (fires without clearing, fire rims around clearings).
  ``stable_forest``: natural (evergreen or deciduous) forest, never cleared, not in
  ``other_change``.

Modules: ``config`` (settings), ``spectra`` (bands, classes, materials), ``ground``
(land cover, events, surface dynamics), ``sky`` (schedule, clouds, haze, orbits,
misregistration, noise), ``landscape`` (``Landscape``, ``generate``, files).
"""

from __future__ import annotations

from canopywatch_dev.landscapes.config import (
    BASE_SETTINGS,
    EVALUATION_SEED_MIN,
    EVENT_KINDS,
    LANDSCAPE_TYPES,
    LandscapeConfig,
    Settings,
    describe,
    randomized_config,
    scenarios,
)
from canopywatch_dev.landscapes.ground import EventInfo
from canopywatch_dev.landscapes.landscape import SCENE_BANDS, Landscape, generate
from canopywatch_dev.landscapes.spectra import (
    BANDS,
    BARE_SETTLEMENT,
    DECIDUOUS_FOREST,
    EVERGREEN_FOREST,
    IRRIGATED_CROPLAND,
    LANDCOVER_NAMES,
    PASTURE,
    PLANTATION,
    WATER,
)

__all__ = [
    "BANDS",
    "BARE_SETTLEMENT",
    "BASE_SETTINGS",
    "DECIDUOUS_FOREST",
    "EVALUATION_SEED_MIN",
    "EVENT_KINDS",
    "EVERGREEN_FOREST",
    "IRRIGATED_CROPLAND",
    "LANDCOVER_NAMES",
    "LANDSCAPE_TYPES",
    "PASTURE",
    "PLANTATION",
    "SCENE_BANDS",
    "WATER",
    "EventInfo",
    "Landscape",
    "LandscapeConfig",
    "Settings",
    "describe",
    "generate",
    "randomized_config",
    "scenarios",
]
