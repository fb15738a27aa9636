"""Spectral indices of surface reflectance (band arrays in reflectance units, NaN = missing)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def normalized_difference(a: FloatArray, b: FloatArray) -> FloatArray:
    total = np.add(a, b, dtype=np.float32)
    ratio = np.subtract(a, b, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(ratio, total, out=ratio)
    ratio[~(np.abs(total) > 1e-6)] = np.nan  # also where a band is missing (NaN)
    return ratio


def ndvi(bands: Mapping[str, FloatArray]) -> FloatArray:
    return normalized_difference(bands["B08"], bands["B04"])


def nbr(bands: Mapping[str, FloatArray]) -> FloatArray:
    """Normalized burn ratio (NIR vs SWIR2): clearings drop, burn scars go negative."""
    return normalized_difference(bands["B08"], bands["B12"])


def ndmi(bands: Mapping[str, FloatArray]) -> FloatArray:
    """Normalized difference moisture index (NIR vs SWIR1): canopy water content."""
    return normalized_difference(bands["B08"], bands["B11"])


def nbr2(bands: Mapping[str, FloatArray]) -> FloatArray:
    """The SWIR index using both SWIR bands (B11 vs B12): dry slash and char lower it."""
    return normalized_difference(bands["B11"], bands["B12"])


INDEX_FUNCTIONS: dict[str, Callable[[Mapping[str, FloatArray]], FloatArray]] = {
    "ndvi": ndvi,
    "nbr": nbr,
    "ndmi": ndmi,
    "nbr2": nbr2,
}
INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "ndvi": ("B04", "B08"),
    "nbr": ("B08", "B12"),
    "ndmi": ("B08", "B11"),
    "nbr2": ("B11", "B12"),
}


def compute_index(name: str, bands: Mapping[str, FloatArray]) -> FloatArray:
    """The index ``name``; an index already in ``bands`` (an index stack) is returned as is."""
    key = name.lower()
    if key in bands:
        return bands[key]
    if key not in INDEX_FUNCTIONS:
        raise ValueError(f"unknown index {name!r}; known: {', '.join(INDEX_FUNCTIONS)}")
    missing = [band for band in INDEX_BANDS[key] if band not in bands]
    if missing:
        raise ValueError(f"index {key} needs bands {', '.join(missing)}, not in the stack")
    return INDEX_FUNCTIONS[key](bands)
