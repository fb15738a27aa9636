"""Random fields, endmember mixing, blobs and grid helpers of the simulator."""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio.crs
import rasterio.features
from affine import Affine
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from canopywatch.dates import date_from_days
from canopywatch_dev.simulate.model import (
    EM_DRY,
    EM_GREEN,
    EM_SOIL,
    ENDMEMBERS,
    NIR_INDEX,
    RED_INDEX,
    BoolArray,
    FloatArray,
    UInt8Array,
)

# --------------------------------------------------------------------------- helpers


def clearing_date_to_datetime64(clearing_date: npt.NDArray[np.integer[Any]]) -> npt.NDArray[Any]:
    """Clearing-date raster as ``datetime64[D]``, NaT where never cleared (-1)."""
    days = np.asarray(clearing_date).astype("int64")
    out = days.astype("datetime64[D]")
    out[days < 0] = np.datetime64("NaT")
    return out


def mgrs_tile_id(epsg: int, easting: float, northing: float, lat: float) -> str:
    """MGRS 100 km square (``21LWH``) of a UTM point, as Sentinel-2 tiles are named."""
    zone = epsg % 100
    bands = "CDEFGHJKLMNPQRSTUVWX"
    band = bands[min(len(bands) - 1, max(0, math.floor((lat + 80.0) / 8.0)))]
    column_sets = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")
    column_letters = column_sets[zone % 3]
    column = column_letters[min(7, max(0, int(easting // 100000) - 1))]
    row_letters = "ABCDEFGHJKLMNPQRSTUV"
    row_shift = 5 if zone % 2 == 0 else 0
    row = row_letters[(int(northing // 100000) + row_shift) % 20]
    return f"{zone:02d}{band}{column}{row}"


def _fast_fft_length(minimum: int) -> int:
    length = max(1, minimum)
    while True:
        rest = length
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> FloatArray:
    """Zero-mean, unit-variance periodic Gaussian random field, correlation ~``sigma_px``."""
    if sigma_px > 0.3:
        # FFT on 2-3-5-smooth sizes (fast), cropped to the requested shape
        padded = (_fast_fft_length(shape[0]), _fast_fft_length(shape[1]))
        spectrum = np.fft.rfft2(rng.standard_normal(padded))
        fy = np.fft.fftfreq(padded[0])[:, None]
        fx = np.fft.rfftfreq(padded[1])[None, :]
        spectrum *= np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fx**2 + fy**2))
        noise = np.fft.irfft2(spectrum, s=padded)[: shape[0], : shape[1]]
    else:
        noise = rng.standard_normal(shape)
    std = float(noise.std())
    centred: FloatArray = ((noise - noise.mean()) / (std if std > 1e-12 else 1.0)).astype(
        np.float32
    )
    return centred


def _endmember_ndvi(em: int) -> float:
    red, nir = float(ENDMEMBERS[em, RED_INDEX]), float(ENDMEMBERS[em, NIR_INDEX])
    return (nir - red) / (nir + red)


def fraction_for_ndvi(ndvi: FloatArray, em_a: int, em_b: int) -> FloatArray:
    """Weight w of ``em_b`` in ``(1-w)*em_a + w*em_b`` whose NDVI is ``ndvi`` (clipped 0-1)."""
    red_a, nir_a = float(ENDMEMBERS[em_a, RED_INDEX]), float(ENDMEMBERS[em_a, NIR_INDEX])
    d_red = float(ENDMEMBERS[em_b, RED_INDEX]) - red_a
    d_nir = float(ENDMEMBERS[em_b, NIR_INDEX]) - nir_a
    weight = (ndvi * (nir_a + red_a) - (nir_a - red_a)) / ((d_nir - d_red) - ndvi * (d_nir + d_red))
    return np.clip(weight, 0.0, 1.0).astype(np.float32)


_NDVI_DRY_GRASS = _endmember_ndvi(EM_DRY)


def mix_for_ndvi(ndvi: FloatArray) -> tuple[UInt8Array, UInt8Array, FloatArray]:
    """Endmember pair and weight of a soil - dry grass - green grass continuum at ``ndvi``."""
    low = ndvi < _NDVI_DRY_GRASS
    em_a = np.where(low, EM_SOIL, EM_DRY).astype(np.uint8)
    em_b = np.where(low, EM_DRY, EM_GREEN).astype(np.uint8)
    weight = np.where(
        low, fraction_for_ndvi(ndvi, EM_SOIL, EM_DRY), fraction_for_ndvi(ndvi, EM_DRY, EM_GREEN)
    ).astype(np.float32)
    return em_a, em_b, weight


def wetness(day: int, wet_peak_doy: int) -> float:
    """0 (dry season) .. 1 (wet season), saturating at both ends."""
    doy = date_from_days(day).timetuple().tm_yday
    return min(1.0, max(0.0, 0.5 + 0.8 * math.cos(2.0 * math.pi * (doy - wet_peak_doy) / 365.25)))


def _top_pixels(values: FloatArray, candidates: BoolArray, count: int) -> BoolArray:
    """Mask of the ``count`` candidate pixels with the highest values."""
    flat = np.flatnonzero(candidates)
    chosen = np.zeros(values.size, dtype=bool)
    if count >= flat.size:
        chosen[flat] = True
    elif count > 0:
        order = np.argpartition(values.ravel()[flat], flat.size - count)
        chosen[flat[order[flat.size - count :]]] = True
    return chosen.reshape(values.shape)


def mask_to_geometry(mask: BoolArray, transform: Affine) -> BaseGeometry:
    """Pixel-exact (Multi)Polygon of the True pixels of ``mask``."""
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    window = np.ascontiguousarray(mask[r0:r1, c0:c1]).astype(np.uint8)
    window_transform = transform * Affine.translation(c0, r0)
    polygons = [
        shape(geom)
        for geom, _ in rasterio.features.shapes(
            window, mask=window.astype(bool), connectivity=4, transform=window_transform
        )
    ]
    return unary_union(polygons)


def _disk(shape_hw: tuple[int, int], centre: tuple[int, int], radius_px: float) -> BoolArray:
    rows = np.arange(shape_hw[0])[:, None] - centre[0]
    cols = np.arange(shape_hw[1])[None, :] - centre[1]
    disk: BoolArray = rows**2 + cols**2 <= radius_px**2
    return disk


def _dilate4(mask: BoolArray) -> BoolArray:
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def grow_blob(
    eligible: BoolArray, seed_pixel: tuple[int, int], n_pixels: int, rng: np.random.Generator
) -> list[int]:
    """Flat indices of a 4-connected, irregular, elongated blob grown from ``seed_pixel``.

    Pixels are taken in order of a jittered distance mixing Euclidean and Chebyshev norms
    in a rotated frame, so blobs look like fields cut into the forest; the returned order
    is the growth order (the front of a progressive clearing).
    """
    height, width = eligible.shape
    eligible_flat = eligible.ravel()
    angle = rng.uniform(0.0, math.pi)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    elongation = rng.uniform(1.0, 2.5)
    jitter = rng.random(4 * n_pixels + 8)
    r0, c0 = seed_pixel
    start = r0 * width + c0
    heap: list[tuple[float, int]] = [(0.0, start)]
    seen = {start}
    order: list[int] = []
    pushes = 0
    while heap and len(order) < n_pixels:
        _, pixel = heapq.heappop(heap)
        order.append(pixel)
        row, col = divmod(pixel, width)
        for nrow, ncol in ((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)):
            if not (0 <= nrow < height and 0 <= ncol < width):
                continue
            neighbour = nrow * width + ncol
            if neighbour in seen or not eligible_flat[neighbour]:
                continue
            seen.add(neighbour)
            dx, dy = ncol - c0, nrow - r0
            u = dx * cos_a + dy * sin_a
            v = (dy * cos_a - dx * sin_a) * elongation
            distance = 0.5 * (math.hypot(u, v) + max(abs(u), abs(v)))
            heapq.heappush(heap, (distance * (1.0 + 0.35 * float(jitter[pushes])), neighbour))
            pushes += 1
    return order
