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
from rasterio.windows import Window
from scipy import ndimage

from canopywatch.detect.harmonic import nan_median
from canopywatch.detect.indices import nbr, ndvi
from canopywatch.detect.observations import ObservationStack, StackSource

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
    # px; a larger window's shifts are estimated on its central square of this size
    estimation_px: int = 128
    # the median composite whose round trip finds the edges no resampling restores is taken
    # over at most this many dates, evenly spread (a composite, not a time series)
    composite_dates: int = 48
    # an area of several windows is estimated once, on the best of up to this many squares
    # a side spread over it (``estimate_area_shifts``)
    area_chips: int = 3

    def __post_init__(self) -> None:
        if self.composite_dates < 1 or self.area_chips < 2:
            raise ValueError("composite_dates must be >= 1 and area_chips >= 2")


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
    date's clouds), smoothed, and the smoothed one's gradients and their magnitude."""

    values: FloatArray
    smoothed: npt.NDArray[np.float64]
    grad_y: npt.NDArray[np.float64]
    grad_x: npt.NDArray[np.float64]
    gradient: npt.NDArray[np.float64]

    @classmethod
    def of(cls, values: FloatArray, params: CoregistrationParams) -> Reference:
        # smoothed, so that a shift of a pixel across a sharp edge stays within linear range
        smoothed = ndimage.gaussian_filter(values.astype(np.float64), params.smoothing_px)
        grad_y, grad_x = np.gradient(smoothed)
        return cls(values, smoothed, grad_y, grad_x, np.hypot(grad_y, grad_x))


@dataclass(frozen=True)
class ShiftEstimate:
    """A date's shift in one band and what its misfit test needs."""

    dy: float
    dx: float
    smoothed: npt.NDArray[np.float64]  # the date, smoothed
    used: BoolArray  # the pixels the last step used

    @property
    def size(self) -> float:
        return float(np.hypot(self.dy, self.dx))

    def misfit_ratio(self, reference: Reference) -> float:
        """The misfit on the reference's edges after the shift over the misfit without it
        (a true shift takes most of it away; a season's or a clearing's change does not)."""
        gradient = reference.gradient
        edges = self.used & (gradient >= np.quantile(gradient[self.used], 0.8))
        shifted = ndimage.shift(self.smoothed, (-self.dy, -self.dx), order=1, mode="nearest")
        before = _edge_misfit(reference.smoothed, self.smoothed, edges)
        after = _edge_misfit(reference.smoothed, shifted, edges)
        return after / before


def usable_area(valid: BoolArray, params: CoregistrationParams) -> BoolArray:
    """The pixels of a date away from its clouds and the window's edge, where the smoothing
    mixes neither into what is used (one mask for both estimation bands)."""
    smooth = params.smoothing_px
    inner: BoolArray = ndimage.binary_erosion(
        valid, iterations=int(np.ceil(3 * smooth)), border_value=0
    )
    return inner


def estimate_shift(
    reference: Reference, image: FloatArray, valid: BoolArray, inner: BoolArray,
    params: CoregistrationParams,
) -> ShiftEstimate | None:  # fmt: skip
    """(dy, dx) in px such that ``image`` is ``reference`` moved by (dy, dx); None where
    too little of the date is clear away from its clouds and the window's edge (``inner``,
    the ``usable_area`` of ``valid``)."""
    reference64, grad_y, grad_x = reference.smoothed, reference.grad_y, reference.grad_x
    filled = np.where(valid, image, reference.values).astype(np.float64)
    smoothed = ndimage.gaussian_filter(filled, params.smoothing_px)
    thinned = np.zeros(valid.shape, dtype=bool)
    thinned[:: params.sample_step, :: params.sample_step] = True
    ok = inner & thinned
    if ok.sum() < 50:
        return None
    # the steps after the first are resampled at the sampled pixels only
    rows, cols = np.nonzero(ok)
    inner_mask = inner.astype(np.float32)
    shift = np.zeros(2)
    use = np.ones(rows.size, dtype=bool)
    values = smoothed[rows, cols]
    for _ in range(params.iterations):
        r, c = rows[use], cols[use]
        design = np.stack([np.ones(r.size), reference64[r, c], -grad_y[r, c], -grad_x[r, c]],
                          axis=1)  # fmt: skip
        step_shift = _solve(design, values[use])[2:]
        shift = shift + step_shift
        if np.hypot(*step_shift) < 0.01 or np.hypot(*shift) > 2 * params.max_shift:
            break
        at = np.stack([rows + shift[0], cols + shift[1]])
        values = ndimage.map_coordinates(smoothed, at, order=1, mode="nearest")
        usable = ndimage.map_coordinates(inner_mask, at, order=1, mode="constant")
        use = usable > 0.999
        if use.sum() < 50:
            return None
    used = np.zeros(valid.shape, dtype=bool)
    used[rows[use], cols[use]] = True
    return ShiftEstimate(float(shift[0]), float(shift[1]), smoothed, used)


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
    """Resample one date by ``shift`` in place; its pixels that are usable after it."""
    back = (-shift[0], -shift[1])
    clear = stack.clear[position]
    source = ndimage.shift(clear.astype(np.float32), back, order=1, mode="constant")
    usable: BoolArray = clear & (source > 0.999)
    if all(name in composites for name in INDEX_BANDS):
        usable &= ~_unrestorable(composites, shift, params.edge_tolerance)
    for values in stack.bands.values():
        # a usable pixel's four sources are all clear: what fills the others is never used
        filled = np.where(clear, values[position], np.float32(0.0))
        moved = ndimage.shift(filled, back, order=1, mode="nearest").astype(np.float32)
        values[position] = np.where(usable, moved, np.nan)
    return usable


def _centre(size: int, most: int) -> slice:
    """The central ``most`` of ``size`` (all of it when smaller)."""
    start = max(0, (size - most) // 2)
    return slice(start, start + min(size, most))


def _composite(cube: FloatArray, most_dates: int | None = None) -> FloatArray:
    """Per-pixel median of a (T, H, W) band over its dates (at most ``most_dates`` of them,
    evenly spread through the stack's dates), gaps filled with the mean."""
    if most_dates is not None and cube.shape[0] > most_dates:
        cube = cube[np.unique(np.linspace(0, cube.shape[0] - 1, most_dates).round().astype(int))]
    flat = nan_median(cube.reshape(cube.shape[0], -1).astype(np.float32))
    fill = float(np.nanmean(flat)) if np.isfinite(flat).any() else 0.0
    return np.where(np.isfinite(flat), flat, fill).reshape(cube.shape[1:]).astype(np.float32)


def estimate_shifts(
    stack: ObservationStack,
    params: CoregistrationParams | None = None,
    dates: BoolArray | None = None,
) -> tuple[npt.NDArray[np.float32], BoolArray]:
    """The (T, 2) shifts (dy, dx) in px of the stack's dates (of ``dates`` only, when given)
    that are off by ``min_shift`` or more and pass every test, 0 elsewhere; and which dates
    could be estimated at all (clear enough at the centre)."""
    params = params or CoregistrationParams()
    shifts = np.zeros((stack.n_dates, 2), dtype=np.float32)
    height, width = stack.shape
    if not all(band in stack.bands for band in ESTIMATION_BANDS) or min(height, width) < 16:
        return shifts, np.zeros(stack.n_dates, dtype=bool)
    # a date's shift is one geometry for the whole window: its centre tells it
    rows, cols = (_centre(size, params.estimation_px) for size in (height, width))
    cubes = {band: stack.bands[band][:, rows, cols] for band in ESTIMATION_BANDS}
    valid_at = stack.clear[:, rows, cols].copy()
    for band in ESTIMATION_BANDS:
        valid_at &= np.isfinite(cubes[band])
    estimated = valid_at.mean(axis=(1, 2)) >= params.min_clear
    if dates is not None:
        estimated &= dates
    if not estimated.any():  # a window asked only for dates clouded here too
        return shifts, estimated
    references = {band: Reference.of(_composite(cube), params) for band, cube in cubes.items()}
    first_band, second_band = ESTIMATION_BANDS
    for position in np.flatnonzero(estimated):
        valid = valid_at[position]
        # the tests below in their cheapest order (all must pass): a first band's shift
        # under min_shift less half the allowed disagreement cannot average to min_shift
        inner = usable_area(valid, params)
        first = estimate_shift(references[first_band], cubes[first_band][position], valid,
                               inner, params)  # fmt: skip
        if first is None or first.size < params.min_shift - params.max_band_disagreement / 2:
            continue
        second = estimate_shift(references[second_band], cubes[second_band][position], valid,
                                inner, params)  # fmt: skip
        if second is None:
            continue
        # one geometry moves every band alike; a season, haze or texture does not
        if float(np.hypot(first.dy - second.dy, first.dx - second.dx)) > (
            params.max_band_disagreement
        ):
            continue
        dy, dx = (first.dy + second.dy) / 2, (first.dx + second.dx) / 2
        if not params.min_shift <= float(np.hypot(dy, dx)) <= params.max_shift:
            continue
        if all(
            estimate.misfit_ratio(references[band]) <= params.max_misfit
            for band, estimate in zip(ESTIMATION_BANDS, (first, second), strict=True)
        ):
            shifts[position] = (dy, dx)
    return shifts, estimated


def apply_shifts(
    stack: ObservationStack,
    shifts: npt.NDArray[np.float32],
    params: CoregistrationParams | None = None,
) -> ObservationStack:
    """``stack`` with each date of a non-zero (T, 2) shift resampled back (a copy when any
    is; the stack itself when none)."""
    params = params or CoregistrationParams()
    found = np.flatnonzero(np.any(shifts != 0, axis=1))
    if found.size == 0:
        return stack
    bands = {name: cube.copy() for name, cube in stack.bands.items()}
    out = replace(stack, bands=bands, clear=stack.clear.copy())
    # the edges no resampling makes pure are found on these
    composites = {name: _composite(stack.bands[name], params.composite_dates)
                  for name in INDEX_BANDS if name in stack.bands}  # fmt: skip
    for position in found:
        shift = (float(shifts[position, 0]), float(shifts[position, 1]))
        out.clear[position] = _resample(out, int(position), shift, composites, params)
    return out


def coregister(
    stack: ObservationStack,
    params: CoregistrationParams | None = None,
    area: AreaShifts | None = None,
) -> tuple[ObservationStack, npt.NDArray[np.float32]]:
    """``stack`` with its shifted dates resampled back (a copy when any is), and the
    (T, 2) shifts (dy, dx) applied (0 where none was estimated or applied). With the
    ``area``'s shifts, those are applied; a date the area could not estimate (its chip
    clouded) is estimated on this stack."""
    if area is None:
        shifts, _ = estimate_shifts(stack, params)
    else:
        shifts, estimated = area.on(stack.days)
        if not estimated.all():
            own, _ = estimate_shifts(stack, params, ~estimated)
            shifts = np.where(estimated[:, None], shifts, own).astype(np.float32)
    return apply_shifts(stack, shifts, params), shifts


@dataclass(frozen=True)
class AreaShifts:
    """Each date's shift, estimated once for a whole area: Sentinel-2 misregistration is one
    geometry per date over a granule, so every window of an area is moved alike (no seams
    between windows estimated apart, and one estimate instead of one per window)."""

    days: npt.NDArray[np.int64]
    shifts: npt.NDArray[np.float32]  # (T, 2), 0 where none
    estimated: BoolArray  # (T,), False where the chip was too clouded to tell
    # (row, col) of the chip's top left corner in the area; None: nothing to estimate on
    # (an index stack)
    chip: tuple[int, int] | None

    def on(self, days: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], BoolArray]:
        """The shifts of ``days`` and whether each was estimated (False for a day the area
        does not have)."""
        shifts = np.zeros((len(days), 2), dtype=np.float32)
        estimated = np.zeros(len(days), dtype=bool)
        position = np.searchsorted(self.days, days)
        known = position < len(self.days)
        known[known] = self.days[position[known]] == days[known]
        shifts[known] = self.shifts[position[known]]
        estimated[known] = self.estimated[position[known]]
        return shifts, estimated

    @property
    def n_shifted(self) -> int:
        return int(np.any(self.shifts != 0, axis=1).sum())


def edge_strength(values: FloatArray, params: CoregistrationParams) -> float:
    """How well a composite pins a shift down: the smaller eigenvalue of its structure tensor
    (the summed outer products of its smoothed gradients). Lucas-Kanade's error is its
    inverse; a straight road or a uniform forest leaves one direction, or both, free."""
    reference = Reference.of(values, params)
    gy, gx = reference.grad_y, reference.grad_x
    tensor = np.array([[np.sum(gy * gy), np.sum(gy * gx)], [np.sum(gy * gx), np.sum(gx * gx)]])
    return float(np.linalg.eigvalsh(tensor)[0])


def _chip_corners(height: int, width: int, size: int, per_side: int) -> list[tuple[int, int]]:
    """Up to ``per_side`` x ``per_side`` chip corners spread evenly over the area."""

    def starts(extent: int) -> list[int]:
        if extent <= size:
            return [0]
        return sorted({round(i * (extent - size) / (per_side - 1)) for i in range(per_side)})

    return [(row, col) for row in starts(height) for col in starts(width)]


def estimate_area_shifts(source: StackSource, params: CoregistrationParams) -> AreaShifts:
    """The area's shifts, estimated on the one of up to ``area_chips`` x ``area_chips``
    squares of ``estimation_px`` spread over it with the strongest edges in NIR
    (``edge_strength``): the centre of an area can be uniform forest that tells nothing."""
    grid = source.grid
    size = params.estimation_px
    best: tuple[float, tuple[int, int], ObservationStack] | None = None
    for row, col in _chip_corners(grid.height, grid.width, size, params.area_chips):
        chip = source.read(Window(col, row, min(size, grid.width), min(size, grid.height)))
        if ESTIMATION_BANDS[0] not in chip.bands:
            break  # an index stack: nothing to estimate
        strength = edge_strength(
            _composite(chip.bands[ESTIMATION_BANDS[0]], params.composite_dates), params
        )
        if best is None or strength > best[0]:
            best = (strength, (row, col), chip)
    if best is None:
        days = np.asarray(source.days, dtype=np.int64)
        nothing_to_do = np.ones(len(days), dtype=bool)
        return AreaShifts(days, np.zeros((len(days), 2), np.float32), nothing_to_do, None)
    _, corner, chip = best
    shifts, estimated = estimate_shifts(chip, params)
    return AreaShifts(np.asarray(chip.days, dtype=np.int64), shifts, estimated, corner)
