"""Overview levels of a scene computed in numpy, each band with its own resampling.

``build_overviews(data, levels, resampling, nodata)`` returns one array per level (factor
2, 4, 8 ...; sizes rounded up as GDAL's), with the bands in the order given:

* ``average``: the mean of the valid pixels of each 2^k x 2^k window of the full
  resolution (sums and counts are reduced level by level, so every level is the exact
  mean of the full-resolution pixels it covers, not a mean of means); integers rounded
  half up, as GDAL's AVERAGE; nodata where the window holds no valid pixel;
* ``nearest``: the full-resolution pixel at the window's centre (GDAL's NEAREST), so
  class bands such as SCL never get values they do not have.

Valid means not the nodata value (not NaN for a NaN nodata); with no nodata value every
pixel counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RESAMPLINGS = ("average", "nearest")


class UnsupportedResamplingError(ValueError):
    """A resampling other than ``RESAMPLINGS``."""


def level_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    """GDAL's overview size for a factor: rounded up."""
    return -(-height // factor), -(-width // factor)


def build_overviews(
    data: np.ndarray,
    levels: int,
    resampling: Sequence[str],
    nodata: float | None,
) -> list[np.ndarray]:
    """Levels 1..``levels`` of a (bands, rows, columns) array, as C-contiguous arrays."""
    bands, height, width = data.shape
    if len(resampling) != bands:
        raise ValueError(f"{len(resampling)} resamplings for {bands} bands")
    unknown = sorted(set(resampling) - set(RESAMPLINGS))
    if unknown:
        raise UnsupportedResamplingError(
            f"unsupported overview resampling {', '.join(unknown)}; use {' or '.join(RESAMPLINGS)}"
        )
    shapes = [level_shape(height, width, 2**level) for level in range(1, levels + 1)]
    out = [np.empty((bands, h, w), dtype=data.dtype) for h, w in shapes]
    averaged = [b for b, r in enumerate(resampling) if r == "average"]
    picked = [b for b, r in enumerate(resampling) if r == "nearest"]
    if averaged and levels:
        for level, values in enumerate(_averages(data[averaged], levels, nodata)):
            out[level][averaged] = values
    for band in picked:
        for level, (h, w) in enumerate(shapes):
            rows = _centres(height, h)
            columns = _centres(width, w)
            out[level][band] = data[band][np.ix_(rows, columns)]
    return out


def _centres(size: int, out_size: int) -> np.ndarray:
    """Full-resolution index of each overview pixel's centre (GDAL's nearest)."""
    ratio = size / out_size
    return np.minimum(((np.arange(out_size) + 0.5) * ratio).astype(np.intp), size - 1)


def _averages(data: np.ndarray, levels: int, nodata: float | None) -> list[np.ndarray]:
    is_float = data.dtype.kind == "f"
    if nodata is None:
        valid = None
    elif isinstance(nodata, float) and math.isnan(nodata):
        valid = ~np.isnan(data)
    else:
        valid = data != np.asarray(nodata, dtype=data.dtype)
    values = data
    if valid is not None and not (nodata == 0 and not is_float):  # invalid pixels add 0
        values = np.where(valid, data, 0).astype(data.dtype)
    # the first level from the full resolution in a narrow accumulator (memory: a 2500 px
    # tile of 7 bands is 87 MB as uint16), the smaller levels in 64 bits
    narrow = data.dtype.kind == "u" and data.dtype.itemsize <= 2
    first = np.float64 if is_float else (np.uint32 if narrow else np.int64)
    sums = _sum_2x2(values, first)
    if valid is None:  # every pixel counts; an odd edge window holds fewer
        counts = _sum_2x2(np.ones((1, *data.shape[1:]), np.uint8), np.uint8)
    else:
        counts = _sum_2x2(valid.view(np.uint8), np.uint8)
    result = []
    for level in range(levels):
        if level:
            sums = _sum_2x2(sums, np.float64 if is_float else np.int64)
            counts = _sum_2x2(counts, np.int64)
        filled = np.maximum(counts, 1)
        # integers rounded half up, as GDAL's AVERAGE
        mean = sums / filled if is_float else (sums + (counts >> 1)) // filled
        if nodata is None or nodata != 0:  # an empty window sums to 0: nodata 0 as it is
            mean = np.where(counts == 0, 0 if nodata is None else nodata, mean)
        result.append(mean.astype(data.dtype))
    return result


def _sum_2x2(values: np.ndarray, accumulator: type) -> np.ndarray:
    """Sums of 2 x 2 windows of a (bands, rows, columns) array; odd edges padded with 0."""
    _, height, width = values.shape
    if height % 2 or width % 2:
        values = np.pad(values, ((0, 0), (0, height % 2), (0, width % 2)))
    total = np.add(values[:, 0::2, 0::2], values[:, 1::2, 0::2], dtype=accumulator)
    total += values[:, 0::2, 1::2]
    total += values[:, 1::2, 1::2]
    result: np.ndarray = total
    return result
