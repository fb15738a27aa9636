"""Per-date co-registration of an observation stack to its own median composite.

Sentinel-2 dates are registered to each other to well under a pixel since the 2021 Global
Reference Image, but older products and some orbits are off by 0.5-1 px. A shifted date
mixes each forest-edge pixel with its non-forest neighbour, and the drop looks like a
clearing along every edge of the scene at once. Each date's shift is estimated against the
stack's per-pixel median, in NIR and again in SWIR-1 (forest edges in two contrasts), by
Lucas-Kanade least squares: ``image = a + b reference - d . grad(reference)``, with a gain
and an offset for the date's illumination and haze, robust to the pixels that truly changed
(residuals over 3 MAD-sigmas are left out) and iterated on the re-warped image. A date off by
``min_shift`` px or more, whose shift takes most of the misfit on the edges away in both
bands and is the same in both (one geometry moves every band alike; on the real THEIA
series the two estimates of a date differ by 0.3-4 px, so nothing is moved there), is
resampled back (bilinear); a pixel whose source neighbourhood was not all clear, or that
sits on an edge no resampling makes pure again, is no observation that date.

Reflectance stacks only: a single vegetation index (an NDVI stack) has edges that change
with the season as much as with a shift (on Landsat-era NDVI stacks with no shift at all it
found 0.3-0.7 px on 1-12 of 457 dates per landscape type), so an index stack is left as read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from canopywatch.detect.harmonic import nan_median
from canopywatch.detect.indices import nbr, ndvi
from canopywatch.detect.observations import ObservationStack

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# NIR and SWIR-1 see the forest edges with different contrasts and seasons
ESTIMATION_BANDS: Final = ("B08", "B11")
INDEX_BANDS: Final = ("B04", "B08", "B12")


@dataclass(frozen=True)
class CoregistrationParams:
    min_shift: float = 0.25  # px; smaller shifts are left as they are
    max_shift: float = 2.0  # px; a larger estimate is not trusted (a date with little land)
    min_clear: float = 0.3  # share of the window that must be clear to estimate a shift
    iterations: int = 3
    sample_step: int = 2  # every second row and column is enough for four unknowns
    smoothing_px: float = 1.0
    # the shift must take this much of the misfit on the reference's edges away
    max_misfit: float = 0.7
    # px; the NIR and SWIR estimates must agree this well
    max_band_disagreement: float = 0.25
    # a resampled date's pixel whose NDVI or NBR a shift there and back moves by more than
    # this is no observation: mixed at an edge, it would read as a partial clearing
    edge_tolerance: float = 0.05


def _solve(
    design: npt.NDArray[np.float64], target: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    weights = np.ones(target.size)
    coefficients: npt.NDArray[np.float64] = np.zeros(design.shape[1])
    for _ in range(3):
        weighted = design * weights[:, None]
        normal = weighted.T @ design
        if np.linalg.cond(normal) > 1e12:
            return np.zeros(design.shape[1])
        coefficients = np.asarray(np.linalg.solve(normal, weighted.T @ target), dtype=np.float64)
        residuals = target - design @ coefficients
        sigma = 1.4826 * float(np.median(np.abs(residuals[weights > 0]))) + 1e-9
        weights = (np.abs(residuals) < 3.0 * sigma).astype(np.float64)
    return coefficients


def _edge_misfit(reference: npt.NDArray[np.float64], image: npt.NDArray[np.float64],
                 edges: BoolArray) -> float:  # fmt: skip
    """Robust residual spread of ``image ~ a + b reference`` on the edge pixels."""
    design = np.stack([np.ones(int(edges.sum())), reference[edges]], axis=1)
    residuals = image[edges] - design @ _solve(design, image[edges])
    return 1.4826 * float(np.median(np.abs(residuals))) + 1e-9


@dataclass(frozen=True)
class Reference:
    """A band's composite as every date of the stack is compared with it: as is (to fill a
    date's clouds), smoothed, and the smoothed one's gradients."""

    values: FloatArray
    smoothed: npt.NDArray[np.float64]
    grad_y: npt.NDArray[np.float64]
    grad_x: npt.NDArray[np.float64]

    @classmethod
    def of(cls, values: FloatArray, params: CoregistrationParams) -> Reference:
        # smoothed, so that a shift of a pixel across a sharp edge stays within linear range
        smoothed = ndimage.gaussian_filter(values.astype(np.float64), params.smoothing_px)
        grad_y, grad_x = np.gradient(smoothed)
        return cls(values, smoothed, grad_y, grad_x)


def estimate_shift(
    reference: Reference, image: FloatArray, valid: BoolArray, params: CoregistrationParams
) -> tuple[float, float, float]:
    """(dy, dx) in px such that ``image`` is ``reference`` moved by (dy, dx), and the
    misfit on the reference's edges after the shift over the misfit without it (a true
    shift takes most of it away; a season's or a clearing's change does not)."""
    smooth = params.smoothing_px
    reference64, grad_y, grad_x = reference.smoothed, reference.grad_y, reference.grad_x
    filled = np.where(valid, image, reference.values).astype(np.float64)
    smoothed = ndimage.gaussian_filter(filled, smooth)
    # away from clouds and the window's edge: the smoothing mixes neither into what is used
    inner = ndimage.binary_erosion(valid, iterations=int(np.ceil(3 * smooth)), border_value=0)
    thinned = np.zeros(valid.shape, dtype=bool)
    thinned[:: params.sample_step, :: params.sample_step] = True
    if (inner & thinned).sum() < 50:
        return 0.0, 0.0, 1.0
    shift = np.zeros(2)
    current, ok = smoothed, inner & thinned
    for _ in range(params.iterations):
        design = np.stack(
            [np.ones(int(ok.sum())), reference64[ok], -grad_y[ok], -grad_x[ok]], axis=1
        )
        step_shift = _solve(design, current[ok])[2:]
        shift = shift + step_shift
        if np.hypot(*step_shift) < 0.01 or np.hypot(*shift) > 2 * params.max_shift:
            break
        current = ndimage.shift(smoothed, -shift, order=1, mode="nearest")
        usable = ndimage.shift(inner.astype(np.float32), -shift, order=1, mode="constant")
        ok = inner & (usable > 0.999) & thinned
        if ok.sum() < 50:
            return 0.0, 0.0, 1.0
    gradient = np.hypot(grad_y, grad_x)
    edges = ok & (gradient >= np.quantile(gradient[ok], 0.8))
    before = _edge_misfit(reference64, smoothed, edges)
    after = _edge_misfit(reference64, current, edges)
    return float(shift[0]), float(shift[1]), after / before


def _unrestorable(composites: dict[str, FloatArray], shift: tuple[float, float],
                  tolerance: float) -> BoolArray:  # fmt: skip
    """Where a shift there and back (two bilinear resamplings) moves the composite's NDVI or
    NBR by more than ``tolerance``: edge pixels that no resampling makes pure again."""
    back = (-shift[0], -shift[1])
    round_trip = {
        name: ndimage.shift(ndimage.shift(composites[name], shift, order=1, mode="nearest"),
                            back, order=1, mode="nearest")
        for name in INDEX_BANDS
    }  # fmt: skip
    spoiled = np.zeros(composites[INDEX_BANDS[0]].shape, dtype=bool)
    for index in (ndvi, nbr):
        with np.errstate(invalid="ignore", divide="ignore"):
            spoiled |= np.abs(index(round_trip) - index(composites)) > tolerance
    return spoiled


def _resample(stack: ObservationStack, position: int, shift: tuple[float, float],
              composites: dict[str, FloatArray], params: CoregistrationParams) -> BoolArray:  # fmt: skip
    back = (-shift[0], -shift[1])
    clear = stack.clear[position]
    source = ndimage.shift(clear.astype(np.float32), back, order=1, mode="constant")
    usable: BoolArray = clear & (source > 0.999)
    if all(name in composites for name in INDEX_BANDS):
        usable &= ~_unrestorable(composites, shift, params.edge_tolerance)
    for name, values in stack.bands.items():
        filled = np.where(clear, values[position], composites[name])
        moved = ndimage.shift(filled, back, order=1, mode="nearest").astype(np.float32)
        values[position] = np.where(usable, moved, np.nan)
    return usable


def coregister(
    stack: ObservationStack, params: CoregistrationParams | None = None
) -> tuple[ObservationStack, npt.NDArray[np.float32]]:
    """``stack`` with its shifted dates resampled back (a copy when any is), and the
    (T, 2) shifts (dy, dx) found (0 where none was estimated or applied)."""
    params = params or CoregistrationParams()
    shifts = np.zeros((stack.n_dates, 2), dtype=np.float32)
    height, width = stack.shape
    if not all(band in stack.bands for band in ESTIMATION_BANDS) or min(height, width) < 16:
        return stack, shifts

    def composite(cube: FloatArray) -> FloatArray:
        flat = nan_median(cube.reshape(cube.shape[0], -1).astype(np.float32))
        fill = float(np.nanmean(flat)) if np.isfinite(flat).any() else 0.0
        return np.where(np.isfinite(flat), flat, fill).reshape(height, width).astype(np.float32)

    composites = {band: composite(stack.bands[band]) for band in ESTIMATION_BANDS}
    references = {band: Reference.of(composites[band], params) for band in ESTIMATION_BANDS}
    found: dict[int, tuple[float, float]] = {}
    for position in range(stack.n_dates):
        valid = stack.clear[position].copy()
        for band in ESTIMATION_BANDS:
            valid &= np.isfinite(stack.bands[band][position])
        if valid.mean() < params.min_clear:
            continue
        estimates = [
            estimate_shift(references[band], stack.bands[band][position], valid, params)
            for band in ESTIMATION_BANDS
        ]
        if any(misfit > params.max_misfit for *_, misfit in estimates):
            continue
        (dy0, dx0, _), (dy1, dx1, _) = estimates
        # one geometry moves every band alike; a season, haze or texture does not
        if float(np.hypot(dy0 - dy1, dx0 - dx1)) > params.max_band_disagreement:
            continue
        dy, dx = (dy0 + dy1) / 2, (dx0 + dx1) / 2
        if params.min_shift <= float(np.hypot(dy, dx)) <= params.max_shift:
            found[position] = (dy, dx)
    if not found:
        return stack, shifts
    bands = {name: cube.copy() for name, cube in stack.bands.items()}
    out = replace(stack, bands=bands, clear=stack.clear.copy())
    for name, cube in stack.bands.items():
        if name not in composites:
            composites[name] = composite(cube)
    for position, shift in found.items():
        out.clear[position] = _resample(out, position, shift, composites, params)
        shifts[position] = shift
    return out, shifts
