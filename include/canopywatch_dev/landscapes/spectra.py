"""Bands, land-cover classes and the material spectra surfaces are mixed from.

Every pixel on every day is a linear mixture of materials whose fractions sum to one (the
ground model sets the fractions); each material has a base surface-reflectance spectrum
over B02 B03 B04 B08 B11 B12 that each pixel perturbs. Spectra are typical values of
Sentinel-2 L2A surface reflectance (tropical/subtropical South America):

* ``canopy``: closed green broadleaf canopy; per pixel NIR 0.29-0.37, NDVI 0.81-0.90, red
  0.02-0.035, B11 0.13-0.18, B12 0.05-0.08 (drawn in the ground model, not here);
* ``leafoff``: a deciduous canopy without leaves: branches, litter and understorey
  (NDVI ~0.36, bright SWIR);
* ``scorched``: dry, fire-killed leaves still on the trees (NIR down, SWIR up);
* ``char``: char and ash on the ground (dark in all bands, NBR < 0);
* ``slash``: felled trees and debris drying after a clearing (NDVI ~0.31);
* ``soil``: exposed red tropical soil (NDVI ~0.2, bright SWIR);
* ``grass_green`` / ``grass_dry``: pasture in the wet and the dry season;
* ``crop``: an irrigated full-cover crop (NDVI ~0.85, NIR higher than forest);
* ``plantation``: eucalyptus/pine canopy (forest-like, a little brighter in the visible);
* ``water``: a turbid river; ``urban``: roofs, roads and yards.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

BANDS: Final[tuple[str, ...]] = ("B02", "B03", "B04", "B08", "B11", "B12")
RED, NIR, SWIR2 = 2, 3, 5

EVERGREEN_FOREST: Final = 1
DECIDUOUS_FOREST: Final = 2
IRRIGATED_CROPLAND: Final = 3
PLANTATION: Final = 4
PASTURE: Final = 5
WATER: Final = 6
BARE_SETTLEMENT: Final = 7
LANDCOVER_NAMES: Final[dict[int, str]] = {
    EVERGREEN_FOREST: "evergreen_forest",
    DECIDUOUS_FOREST: "deciduous_forest",
    IRRIGATED_CROPLAND: "irrigated_cropland",
    PLANTATION: "plantation",
    PASTURE: "pasture",
    WATER: "water",
    BARE_SETTLEMENT: "bare_settlement",
}
NATURAL_FOREST: Final = (EVERGREEN_FOREST, DECIDUOUS_FOREST)

MATERIALS: Final[tuple[str, ...]] = (
    "canopy",
    "leafoff",
    "scorched",
    "char",
    "slash",
    "soil",
    "grass_green",
    "grass_dry",
    "crop",
    "plantation",
    "water",
    "urban",
)
_SPECTRA: Final[dict[str, tuple[float, ...]]] = {
    "canopy": (0.024, 0.048, 0.028, 0.33, 0.155, 0.065),  # replaced per pixel
    "leafoff": (0.05, 0.07, 0.095, 0.2, 0.26, 0.17),
    "scorched": (0.05, 0.07, 0.09, 0.24, 0.31, 0.21),
    "char": (0.025, 0.03, 0.035, 0.055, 0.09, 0.08),
    "slash": (0.06, 0.08, 0.105, 0.2, 0.31, 0.22),
    "soil": (0.08, 0.11, 0.15, 0.22, 0.32, 0.26),
    "grass_green": (0.035, 0.075, 0.045, 0.38, 0.24, 0.11),
    "grass_dry": (0.07, 0.10, 0.13, 0.25, 0.34, 0.24),
    "crop": (0.03, 0.07, 0.035, 0.42, 0.21, 0.095),
    "plantation": (0.026, 0.05, 0.03, 0.31, 0.145, 0.062),
    "water": (0.055, 0.05, 0.035, 0.02, 0.008, 0.005),
    "urban": (0.10, 0.11, 0.12, 0.17, 0.22, 0.20),
}
SPECTRA: Final[npt.NDArray[np.float32]] = np.array(
    [_SPECTRA[m] for m in MATERIALS], dtype=np.float32
)  # (materials, bands)
# per-material sd of the per-pixel log brightness and of the per-pixel per-band log jitter
PIXEL_BRIGHTNESS_SD: Final[dict[str, tuple[float, float]]] = {
    "canopy": (0.0, 0.0),
    "leafoff": (0.08, 0.04),
    "scorched": (0.08, 0.04),
    "char": (0.15, 0.05),
    "slash": (0.1, 0.05),
    "soil": (0.12, 0.05),
    "grass_green": (0.08, 0.05),
    "grass_dry": (0.08, 0.05),
    "crop": (0.06, 0.04),
    "plantation": (0.05, 0.03),
    "water": (0.15, 0.1),
    "urban": (0.15, 0.06),
}

# thick cloud, thin cirrus, and haze (path reflectance and attenuation per unit depth)
CLOUD_SPECTRUM: Final = np.array([0.42, 0.41, 0.41, 0.43, 0.33, 0.22], dtype=np.float32)
CIRRUS_SPECTRUM: Final = np.array([0.30, 0.30, 0.30, 0.30, 0.20, 0.12], dtype=np.float32)
HAZE_PATH: Final = np.array([0.060, 0.045, 0.032, 0.018, 0.005, 0.002], dtype=np.float32)
HAZE_ATTENUATION: Final = np.array([0.10, 0.08, 0.06, 0.04, 0.015, 0.01], dtype=np.float32)
# how much of the reflectance a full cloud shadow removes (diffuse sky light is blue-rich)
SHADOW_DARKENING: Final = np.array([0.55, 0.6, 0.65, 0.75, 0.8, 0.8], dtype=np.float32)
