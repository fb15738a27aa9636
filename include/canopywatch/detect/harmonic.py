"""Season-aware per-pixel change detection: the default detector (``harmonic``).

The method follows BFAST Monitor and CCDC: each pixel's *stable history* (clear
observations in ``[history_start, monitor_start)``) is fitted, per index, by an annual
harmonic model ``y(t) = a0 + sum_k a_k cos(k w t) + b_k sin(k w t)`` (``w = 2 pi / 365.25``,
``k = 1..harmonics``); observations in the *monitoring period* (``>= monitor_start``) are
tested against the model's prediction. Nothing is alerted before ``monitor_start``.

Why each part is there (real-world confounders it answers):

* The harmonic model carries the pixel's own phenology, so a deciduous forest's yearly
  leaf-off is predicted, not alerted. Year-to-year timing jitter of leaf-off and green-up
  is absorbed by a timing uncertainty: the prediction error grows with the slope of the
  seasonal curve (``timing_days * |dy/dt|``) and with the depth of the seasonal trough
  (``trough_share * (peak - y)``).
* Fitting is ridge-regularised least squares in three passes: the second and third leave out
  observations more than ``outlier_z`` robust sigmas below the previous fit (unflagged thin
  cloud, haze, shadow, snow; one-sided, so a green-up above a short history is learnt) and the per-date offset (below) is removed before them.
* A per-date offset, the median residual of the area's forest pixels on that date, is
  removed: haze, illumination and the brightness difference between relative orbits are
  shared by the area, a clearing is not. That date's robust spread of those residuals
  (snow or haze that hits pixels unevenly) is added to every pixel's noise.
* An observation is a *break* only when every required index (NDVI and the SWIR index NBR
  for Sentinel-2; the one index of an index stack) is below the prediction by more than
  ``z`` sigmas and by at least ``min_drop``. Thin cloud and haze lower NDVI but hardly NBR;
  an understorey fire lowers NBR while the canopy keeps NDVI; a clearing lowers both.
* Alert lifecycle per pixel: the first break opens a *low* alert dated on that observation;
  ``confirm_count`` breaks (consecutive clear observations, with in-between ones not
  counting against it) make it *high*; a clear observation back at the pre-event state
  (every required index within ``recover_z`` sigmas and within ``min_drop`` of the
  prediction) withdraws an unconfirmed alert, and
  ``recover_count`` consecutive ones withdraw a confirmed alert (a crop harvest that
  regreens, a leaf-off that was late). A confirmed alert that comes back to the pre-event
  state ``regrowth_days`` (180) or more after it began is a ``plantation_harvest``: the
  canopy closed again, cut and replanted, where a seasonal dip comes back within weeks.
  The canopy is confirmed only where the model expects it at its fullest (the prediction
  within ``regrowth_peak_share`` (half) of a break of its annual peak): off the peak,
  grass on a clearing looks like the leafless or low-sun forest. Such a harvest teaches
  the pixel its looks (a pasture that browns for months, a fallow, a rotation), so the
  next such drop is predicted, not alerted.
  (Regrowth short of the pre-event state is not taken for a replanting: a clearing turned
  to pasture regreens as fast; on the independent generator that rule took five times
  more natural-forest clearing than plantation for harvests.)
* Forest baseline at the monitoring start (``forest_baseline``): a pixel is monitored when
  its history has at least ``min_history_obs`` inlying clear observations, its fitted NDVI
  reaches ``forest_peak_ndvi`` in the year and averages ``forest_mean_ndvi``, and its history
  holds no run of ``confirm_count`` consecutive break-like observations (a harvest, a
  plantation rotation, a clearing: land that behaved as cropland or a rotation is not
  forest) and at most ``max_history_breaks`` isolated ones, or ``history_break_share`` of
  its clear looks in a long history (unflagged clouds are rare, not absent). A pixel with
  ``context_min_obs`` (1) or more looks but fewer than ``min_history_obs`` (a cloud edge
  that hung over it) is monitored when ``context_share`` of the pixels within
  ``context_px`` are (it lies inside established forest; a crop field's few forest-like
  wet-season looks have no forest around them). A user forest mask replaces the greenness
  and stability rules. A pixel that is not monitored yet (too few looks) keeps growing its
  history under the same rule: a harvest-like dip (``confirm_count`` breaks down to bare
  soil, back within ``transient_days``) keeps it out, and on reflectance stacks a longer
  dip that came back (a season, a pasture's browning) is learnt, as a withdrawn alert's
  looks are (an NDVI-only stack has no haze screen to skip snow, whose winter would be
  learnt and pull a forest's fitted mean under the forest floor).
* Crop calendar (``season_days``, 30): a break within a month of the anniversary of the
  pixel's last harvest-like dip (down to bare soil, its break looks spanning at most
  ``dip_days`` (20), then back at the pre-event state; one look is enough) is that crop's
  harvest again: not alerted, and the pixel leaves the forest. Harvests recur on the
  crop's calendar; a clearing does not follow a dip that healed within weeks a year
  before. A forest-like irrigated crop whose first harvest fell on a single look before a
  wet-season gap (too few looks to confirm it) is otherwise alerted at its second. A
  leaf-off or a dry-season dip spans months of break looks, so it is no harvest here.

The per-pixel work (the normal equations, one small ridge system per pixel solved by
Cholesky, and the monitoring of each block of dates) runs in compiled loops without the
GIL (``detect.harmonic_kernels``, numba), so a window costs a few passes over its (T, H, W)
arrays and the detector's window threads keep every core busy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from canopywatch.detect import harmonic_kernels as kernels
from canopywatch.detect.baseline import (
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_PLANTATION_HARVEST,
    STATUS_WITHDRAWN,
)
from canopywatch.detect.indices import compute_index
from canopywatch.detect.observations import ObservationStack

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

YEAR_DAYS = 365.25
REFERENCE_SAMPLE = 4096  # pixels sampled for a date's offset and spread
OMEGA = 2.0 * math.pi / YEAR_DAYS
DEFAULT_HISTORY_DAYS = 90


@dataclass(frozen=True)
class IndexTest:
    min_drop: float  # smallest drop below the prediction that can be a break (index units)
    sigma_floor: float  # lower bound of a pixel's residual spread


INDEX_TESTS: dict[str, IndexTest] = {
    "ndvi": IndexTest(min_drop=0.15, sigma_floor=0.02),
    "nbr": IndexTest(min_drop=0.10, sigma_floor=0.02),
    "ndmi": IndexTest(min_drop=0.08, sigma_floor=0.02),
    "evi": IndexTest(min_drop=0.10, sigma_floor=0.02),
}
DEFAULT_TEST = IndexTest(min_drop=0.10, sigma_floor=0.02)


@dataclass(frozen=True)
class HarmonicParams:
    required: tuple[str, ...] = ("ndvi", "nbr")  # every one must break; the first is primary
    tests: dict[str, IndexTest] = field(default_factory=lambda: dict(INDEX_TESTS))
    harmonics: int = 2
    ridge: float = 2.0  # penalty on the harmonic terms, in observations
    outlier_z: float = 3.0
    z: float = 3.0
    timing_days: float = 12.0
    trough_share: float = 0.15
    confirm_count: int = 2
    recover_z: float = 2.0
    recover_count: int = 2
    regrowth_days: int = 180  # a confirmed cut back at its pre-event state later: replanted
    transient_days: int = 45  # a confirmed drop withdrawn sooner is a harvest, not a season
    # an open alert that drops again by a break's size after this long at a partial level (a
    # leaf-off or an understorey fire that a clearing follows) is re-dated at the second drop
    second_drop_days: int | None = 30
    # ... a partial level: its first break look dropped less than this many break sizes on
    # its deepest index (a leaf-off keeps its woody NBR; a cut is at bare slash at once, and
    # its slash drying to soil or burning weeks later is no new start)
    second_drop_onset: float = 5.5
    # ... but a first look whose NDVI fell more than a break below the depth of the pixel's
    # own seasons (a year of history seen) is no leaf-off: a cut's slash, which dries or
    # burns weeks later (slash-and-burn), keeps the cut's date
    season_bounds_onset: bool = True
    # ... and a second drop onto char (a burn: NIR under ``char_nir`` and under SWIR-2,
    # where bare soil keeps NIR above 0.2) burns the slash of a cut already alerted: the
    # clearing began at the cut, so the burn does not re-date it (reflectance stacks only)
    burn_keeps_date: bool = True
    char_nir: float = 0.12
    # a break within this many days of the anniversary of a harvest-like dip (down to
    # bare soil, break looks spanning at most ``dip_days``, then back at the pre-event
    # state) is the crop's season again: not a break, and the pixel is not forest
    season_days: int | None = 30
    dip_days: int = 20
    # a replanting (``regrowth_days``) is confirmed only where the model expects its canopy
    # at its fullest (within half a break of the annual peak: NDVI 0.075): off the peak,
    # grass or brambles on a clearing look like the leafless or low-sun forest (on the real
    # THEIA series a spruce clear-cut's December and May looks were taken for its canopy's)
    regrowth_in_leaf: bool = True
    regrowth_peak_share: float = 0.5
    # a cut that closed again teaches the pixel its looks (a pasture that browns for months,
    # a fallow, a rotation): the next such drop is predicted, not alerted
    learn_regrowth: bool = True
    block_days: int = 64  # the model is refitted from the grown history this often
    learn_days: int = 400  # the history stops growing once it spans this many days
    learn_min_obs: int = 24  # ... and holds this many looks (cloudy series learn longer)
    # haze screen (reflectance stacks): an observation whose haze-optimised transform
    # HOT = B02 - 0.5 B04 (Zhang et al. 2002) exceeds the pixel's usual HOT by this much is
    # atmospheric, not a surface change: it is skipped (bare soil raises B04 more than B02)
    haze_hot: float | None = 0.02
    min_history_obs: int = 6
    forest_peak_ndvi: float | None = 0.70
    forest_mean_ndvi: float | None = 0.50
    max_history_breaks: int = 1
    # isolated break-like looks (unflagged cloud, shadow) allowed per clear history look in
    # long histories; a run of ``confirm_count`` consecutive ones (a harvest, a rotation,
    # a clearing) always disqualifies
    history_break_share: float = 0.03
    # a stable history of a year or more fits its harmonic model: a residual spread above
    # this share of the primary index's smallest break (a step inside the history, a
    # clearing and its regrowth, a crop) is not forest behaviour
    max_history_sigma_share: float = 1.0
    min_reference_pixels: int = 20
    # a pixel with fewer than ``min_history_obs`` but at least this many history looks (a
    # series that starts in a wet-season gap, cloud edges) is monitored when it lies inside
    # established forest: ``context_share`` of the pixels within ``context_px`` are monitored
    # (a fifth: the middle of a 40 m cloud strip inside a forest is; a field 3 px in from a
    # forest edge is not)
    context_min_obs: int | None = 1
    context_px: int = 2
    context_share: float = 0.2
    spatial_normalization: bool = True
    history_start_day: int | None = None
    monitor_start_day: int | None = None

    def test(self, index: str) -> IndexTest:
        return self.tests.get(index, DEFAULT_TEST)

    def for_index(self, index: str, forest_min: float | None = None) -> HarmonicParams:
        """These parameters on a single-index stack (``--index-stack``)."""
        name = index.lower()
        peak = self.forest_peak_ndvi if name == "ndvi" else None
        mean = self.forest_mean_ndvi if name == "ndvi" else None
        if forest_min is not None:
            peak, mean = forest_min, None
        return replace(self, required=(name,), forest_peak_ndvi=peak, forest_mean_ndvi=mean)

    def with_periods(self, history_start: int | None, monitor_start: int | None) -> HarmonicParams:
        return replace(self, history_start_day=history_start, monitor_start_day=monitor_start)


def default_monitor_start(days: IntArray) -> int:
    """The documented default: the first ``DEFAULT_HISTORY_DAYS`` (90) days of the series
    are history only, monitoring starts after them (a third of the series when it is
    shorter than a year). The model keeps learning during monitoring, so the season it
    predicts fills in over the first year."""
    first, last = int(days.min()), int(days.max())
    return first + min(DEFAULT_HISTORY_DAYS, max(1, (last - first) // 3))


def resolve_periods(days: IntArray, params: HarmonicParams) -> tuple[int, int]:
    """(history start, monitoring start) in days since epoch for this series."""
    monitor = params.monitor_start_day
    if monitor is None:
        monitor = default_monitor_start(days)
    history = params.history_start_day if params.history_start_day is not None else int(days.min())
    if history >= monitor:
        raise ValueError("the history must start before the monitoring start")
    return history, monitor


def design_matrix(days: IntArray, harmonics: int) -> Float64Array:
    t = days.astype(np.float64)
    columns = [np.ones_like(t)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * OMEGA * t), np.sin(k * OMEGA * t)]
    matrix: Float64Array = np.stack(columns, axis=1)
    return matrix


def predict(design: Float64Array, coefficients: Float64Array) -> FloatArray:
    """(T, N) prediction of one index from its (N, P) coefficients."""
    predicted: FloatArray = (design @ coefficients.T).astype(np.float32)
    return predicted


def slope_design(days: IntArray, harmonics: int) -> Float64Array:
    """The time derivative of ``design_matrix`` (per day): ``|slope_design @ beta|`` is
    the steepness of the fitted seasonal curve on each date."""
    t = days.astype(np.float64)
    columns = [np.zeros_like(t)]
    for k in range(1, harmonics + 1):
        columns += [-k * OMEGA * np.sin(k * OMEGA * t), k * OMEGA * np.cos(k * OMEGA * t)]
    matrix: Float64Array = np.stack(columns, axis=1)
    return matrix


def phase_design(harmonics: int) -> Float64Array:
    """The design of 24 evenly spaced days of one year: the fitted curve's peak is the
    largest of them (the harmonics average to zero, so its mean is the constant term)."""
    phase_days = np.linspace(0.0, YEAR_DAYS, 24, endpoint=False).astype(np.int64)
    return design_matrix(phase_days, harmonics)


def nan_median(values: FloatArray) -> FloatArray:
    """Column-wise median of the finite values of a (T, N) array (NaN where none): one sort,
    no per-column warnings (``np.nanmedian`` warns once per all-NaN column)."""
    ordered = np.sort(values, axis=0)  # NaN sorts last
    counts = np.isfinite(values).sum(axis=0)
    low = np.maximum(counts - 1, 0) // 2
    high = np.maximum(counts, 1) // 2
    high = np.where(counts % 2 == 1, low, high)
    columns = np.arange(values.shape[1])
    median = 0.5 * (ordered[low, columns] + ordered[high, columns])
    out: FloatArray = np.where(counts > 0, median, np.nan).astype(np.float32)
    return out


def _date_offsets(
    residual: FloatArray, usable: BoolArray, reference: BoolArray, min_pixels: int
) -> FloatArray:
    """Per-date median residual of the reference pixels (0 where too few), (T,)."""
    offsets = np.zeros(residual.shape[0], dtype=np.float32)
    if not reference.any():
        return offsets
    ref = residual[:, reference]
    ok = usable[:, reference]
    counts = ok.sum(axis=1)
    for position in np.flatnonzero(counts >= min_pixels):
        offsets[position] = np.float32(np.median(ref[position][ok[position]]))
    return offsets


@dataclass
class HarmonicState:
    """Per-pixel fit and monitoring result of one window (flattened, N pixels)."""

    first_day: IntArray  # first break of the current alert (-1: none)
    confirmed_day: IntArray  # day it became high (-1: not confirmed)
    status: Int8Array
    score: FloatArray
    monitored: BoolArray  # the forest baseline: monitored, and not shown a crop by its looks
    history_obs: IntArray
    history_start: int
    monitor_start: int


@dataclass
class _History:
    """Per-pixel normal equations of the accepted (stable-history) observations, and their
    last solution: a refit solves again only the pixels that learnt something since."""

    normal: Float64Array  # (N, P, P)
    rhs: Float64Array  # (N, P, K)
    squares: Float64Array  # (N, K)
    count: IntArray  # (N,)
    changed: BoolArray  # (N,) observations added since the last solve
    solution: tuple[Float64Array, FloatArray] | None = None

    @classmethod
    def empty(cls, n_pixels: int, n_params: int, n_indices: int) -> _History:
        return cls(
            np.zeros((n_pixels, n_params, n_params)),
            np.zeros((n_pixels, n_params, n_indices)),
            np.zeros((n_pixels, n_indices)),
            np.zeros(n_pixels, dtype=np.int64),
            np.ones(n_pixels, dtype=bool),
        )

    def add_weights(
        self, design: Float64Array, values: list[FloatArray], weights: BoolArray
    ) -> None:
        """Add the observations where ``weights`` (T, N) holds."""
        stacked = np.stack([np.asarray(v, dtype=np.float32) for v in values])
        rows = np.arange(design.shape[0], dtype=np.int64)
        self.add_rows(design, rows, stacked, np.zeros(stacked.shape[:2], np.float32), weights)

    def add_rows(
        self,
        design: Float64Array,
        rows: IntArray,
        values: FloatArray,
        offsets: FloatArray,
        weights: BoolArray,
    ) -> None:
        """Add date ``rows[r]`` of pixel ``n`` where ``weights[r, n]``: values (K, T, N) less
        the per-date offsets (K, T)."""
        kernels.accumulate(
            np.ascontiguousarray(design), rows, values, offsets, weights,
            self.normal, self.rhs, self.squares, self.count, self.changed,
        )  # fmt: skip

    def solve(self, ridge: float, floors: list[float]) -> tuple[Float64Array, FloatArray]:
        """Coefficients (K, N, P) and residual sigma (K, N) of the ridge fit; only the pixels
        that learnt something are solved again."""
        n_pixels, n_params, n_indices = self.rhs.shape
        if self.solution is None:
            self.solution = (
                np.zeros((n_indices, n_pixels, n_params)),
                np.zeros((n_indices, n_pixels), dtype=np.float32),
            )
            pixels = np.arange(n_pixels, dtype=np.int64)
        else:
            pixels = np.flatnonzero(self.changed).astype(np.int64)
        if pixels.size:
            beta, sigma = self.solution
            kernels.ridge_solve(
                pixels, self.normal, self.rhs, self.squares, self.count, float(ridge),
                np.asarray(floors, dtype=np.float32), beta, sigma,
            )  # fmt: skip
        self.changed[:] = False
        return self.solution


def _initial_fit(
    design: Float64Array,
    values: list[FloatArray],
    clear: BoolArray,
    history: BoolArray,
    names: list[str],
    params: HarmonicParams,
) -> tuple[BoolArray, list[FloatArray]]:
    """Robust batch fit of the history: the inlying observations and per-date offsets."""
    n_dates = design.shape[0]
    weights = history
    offsets = [np.zeros(n_dates, dtype=np.float32) for _ in names]
    n_pixels = weights.shape[1]

    def fit(series: list[FloatArray], accepted: BoolArray) -> Float64Array:
        batch = _History.empty(n_pixels, design.shape[1], len(names))
        batch.add_weights(design, series, accepted)
        return batch.solve(params.ridge, [0.0] * len(names))[0]

    coefficients = fit(values, weights)
    for _ in range(2):
        counts = weights.sum(axis=0)
        residuals = [values[i] - predict(design, coefficients[i]) for i in range(len(names))]
        sigma = []
        for i, name in enumerate(names):
            # robust (MAD) spread: in a short cloudy history one snowy or hazy look would
            # inflate an RMS enough to keep itself in
            deviation = np.where(weights, residuals[i] - offsets[i][:, None], np.nan)
            mad = nan_median(np.abs(deviation).astype(np.float32))
            spread = np.nan_to_num(1.4826 * mad).astype(np.float32)
            sigma.append(np.maximum(spread, np.float32(params.test(name).sigma_floor)))
        if params.spatial_normalization:
            reference = counts >= params.min_history_obs
            if params.forest_mean_ndvi is not None and names[0] == "ndvi":
                mean_primary = coefficients[0][:, 0]
                reference &= mean_primary >= params.forest_mean_ndvi
            for i in range(len(names)):
                offsets[i] = _date_offsets(
                    residuals[i], clear & history, reference, params.min_reference_pixels
                )
        inlier = history.copy()
        for i in range(len(names)):
            with np.errstate(invalid="ignore"):
                # one-sided: clouds, haze, shadow and snow lower the indices; a green-up
                # above a short history's prediction is what the history must learn
                deviation = residuals[i] - offsets[i][:, None]
                inlier &= deviation >= -params.outlier_z * sigma[i][None, :]
        weights = inlier
        adjusted = [values[i] - offsets[i][:, None] for i in range(len(names))]
        coefficients = fit(adjusted, weights)
    return weights, offsets


def forest_around(
    eligible: npt.NDArray[np.bool_], shape: tuple[int, int], radius: int
) -> FloatArray:
    """Per pixel, the share of the ``(2 radius + 1)^2`` pixels around it that are monitored
    (outside the window counts as not)."""
    from scipy import ndimage

    share = ndimage.uniform_filter(
        eligible.reshape(shape).astype(np.float32), size=2 * radius + 1, mode="constant"
    )
    return np.asarray(share, dtype=np.float32).ravel()


def run_harmonic(
    stack: ObservationStack,
    params: HarmonicParams,
    forest_mask: BoolArray | None = None,
) -> HarmonicState:
    """Fit each pixel's history and monitor the rest of the series (see the module doc).

    The history keeps learning during monitoring until it spans ``learn_days`` and holds
    ``learn_min_obs`` looks (then it is
    fixed, so a slow decline is not learnt as normal): every ``block_days`` the model is refitted
    from the accepted observations (clear, not a break, not ``outlier_z`` sigmas below, no open
    alert) and from the observations of withdrawn alerts (a late leaf-off that came back
    teaches the pixel its season), so a short initial history grows into a full year.
    """
    days = stack.days
    n_dates = days.size
    height, width = stack.shape
    n_pixels = height * width
    history_start, monitor_start = resolve_periods(days, params)
    names = list(params.required)
    n_idx = len(names)
    stacked = np.empty((n_idx, n_dates, n_pixels), dtype=np.float32)  # (K, T, N)
    for i, name in enumerate(names):
        stacked[i] = compute_index(name, stack.bands).reshape(n_dates, n_pixels)
    values = list(stacked)
    clear = stack.clear.reshape(n_dates, n_pixels).copy()
    for series in values:
        clear &= np.isfinite(series)
    in_history = (days >= history_start) & (days < monitor_start)
    design = design_matrix(days, params.harmonics)
    floors = [params.test(name).sigma_floor for name in names]
    min_drop = np.asarray([params.test(name).min_drop for name in names], dtype=np.float32)

    burnt = np.zeros((1, 1), dtype=bool)
    if params.burn_keeps_date and "B08" in stack.bands and "B12" in stack.bands:
        nir, swir = stack.bands["B08"], stack.bands["B12"]
        burnt = ((nir < params.char_nir) & (nir < swir)).reshape(n_dates, n_pixels)
    hot: FloatArray | None = None
    if params.haze_hot is not None and "B02" in stack.bands and "B04" in stack.bands:
        hot = (stack.bands["B02"] - 0.5 * stack.bands["B04"]).reshape(n_dates, n_pixels)

    rows = np.flatnonzero(in_history)
    history_values = [v[rows] for v in values]
    inliers, init_offsets = _initial_fit(
        design[rows], history_values, clear[rows], clear[rows], names, params
    )
    adjusted = [history_values[i] - init_offsets[i][:, None] for i in range(n_idx)]
    history = _History.empty(n_pixels, design.shape[1], n_idx)
    history.add_weights(design[rows], adjusted, inliers)
    # break-like observations in the initial history (harvests, rotations, clearings)
    beta, sigma = history.solve(params.ridge, floors)
    broke = clear[rows].copy()
    for i in range(n_idx):
        resid = adjusted[i] - predict(design[rows], beta[i])
        with np.errstate(invalid="ignore"):
            broke &= (resid < -params.z * sigma[i][None, :]) & (resid <= -min_drop[i])
    history_breaks = broke.sum(axis=0).astype(np.int64)
    history_run = np.zeros(n_pixels, dtype=np.int64)
    longest_run = np.zeros(n_pixels, dtype=np.int64)
    for looked, broken in zip(clear[rows], broke, strict=True):
        history_run = np.where(looked, np.where(broken, history_run + 1, 0), history_run)
        np.maximum(longest_run, history_run, out=longest_run)
    allowed_breaks = np.maximum(
        params.max_history_breaks,
        np.floor(params.history_break_share * clear[rows].sum(axis=0)).astype(np.int64),
    )
    stable_history = (longest_run < params.confirm_count) & (history_breaks <= allowed_breaks)
    # ... judged only on a history of a year or more: a shorter one's spread still holds
    # the season it has not seen whole
    looked_days = np.where(clear[rows], days[rows][:, None], -1)
    span = looked_days.max(axis=0) - np.where(clear[rows], days[rows][:, None], 10**9).min(axis=0)
    long_history = span >= YEAR_DAYS
    stable_history &= ~long_history | (sigma[0] <= params.max_history_sigma_share * min_drop[0])
    # the history learns until it spans ``learn_days`` (a season), then it is fixed as in
    # BFAST Monitor: a slow decline (dieback, degradation) must not become the norm
    seen = inliers.any(axis=0)
    first_seen = np.where(seen, days[rows][np.argmax(inliers, axis=0)], monitor_start)
    learn_until = first_seen + params.learn_days

    user_forest = None if forest_mask is None else forest_mask.reshape(n_pixels)
    hot_usual = np.zeros(n_pixels, dtype=np.float32)
    if hot is not None:
        usual = np.where(inliers, hot[rows], np.nan).astype(np.float32)
        hot_usual = nan_median(usual)
        hot_usual = np.where(np.isfinite(hot_usual), hot_usual, np.float32(0.0))
    # observations waiting on an open alert, and those the history learns at the next refit
    pending = np.zeros((n_dates, n_pixels), dtype=bool)
    to_learn = np.zeros((n_dates, n_pixels), dtype=bool)
    date_offsets = np.zeros((n_idx, n_dates), dtype=np.float32)
    # per pixel: the first break of the open alert, the day it was confirmed, and the first
    # day of the last withdrawn / harvested one (-1: none); its run of breaks and of looks
    # back at the pre-event state
    state_days = np.full((7, n_pixels), -1, dtype=np.int64)
    first, confirmed, withdrawn_first, harvest_first = state_days[:4]
    state_int = np.zeros((2, n_pixels), dtype=np.int64)
    run = state_int[0]
    strength = np.zeros(n_pixels, dtype=np.float32)
    depth = np.zeros((n_idx, n_pixels), dtype=np.float32)
    early_depth = np.zeros((n_idx, n_pixels), dtype=np.float32)  # depth in its first days
    onset = np.zeros(n_pixels, dtype=np.float32)  # first break look's drop, in break sizes
    ever_monitored = np.zeros(n_pixels, dtype=bool)

    positions = np.flatnonzero(days >= monitor_start)
    block_starts = positions[:1].tolist()
    for position in positions[1:]:
        if days[position] - days[block_starts[-1]] >= params.block_days:
            block_starts.append(int(position))
    block_ends = [*block_starts[1:], n_dates]

    slopes = slope_design(days, params.harmonics)
    phases = phase_design(params.harmonics)
    settings = np.asarray(
        [
            params.z,
            params.recover_z,
            params.outlier_z,
            params.timing_days,
            params.trough_share,
            params.second_drop_onset,
            params.regrowth_peak_share,
        ],
        dtype=np.float64,
    )
    counts = np.asarray(
        [
            params.confirm_count, params.recover_count, params.regrowth_days,
            params.transient_days,
            -1 if params.second_drop_days is None else params.second_drop_days,
            int(params.spatial_normalization), params.min_reference_pixels, REFERENCE_SAMPLE,
            -1 if params.season_days is None else params.season_days, params.dip_days,
            int(params.regrowth_in_leaf), int(params.learn_regrowth),
        ],
        dtype=np.int64,
    )  # fmt: skip
    haze = -1.0
    hot_values = np.zeros((1, 1), dtype=np.float32)
    if hot is not None and params.haze_hot is not None:
        haze, hot_values = float(params.haze_hot), np.ascontiguousarray(hot, dtype=np.float32)

    def learn_waiting() -> None:
        waiting_rows = np.flatnonzero(to_learn.any(axis=1))
        if waiting_rows.size:
            young = (days[waiting_rows][:, None] < learn_until[None, :]) | (
                history.count < params.learn_min_obs
            )[None, :]
            history.add_rows(
                design, waiting_rows.astype(np.int64), stacked, date_offsets,
                to_learn[waiting_rows] & young,
            )  # fmt: skip
            to_learn[waiting_rows] = False

    for block_start, block_end in zip(block_starts, block_ends, strict=True):
        learn_waiting()
        beta, sigma = history.solve(params.ridge, floors)
        means, peaks, troughs = kernels.annual_range(beta, phases)
        season_depth = np.full(n_pixels, np.inf, dtype=np.float32)
        if params.season_bounds_onset:
            seen_year = days[block_start] - first_seen >= YEAR_DAYS
            season_depth[seen_year] = (peaks[0] - troughs[0])[seen_year]
        if user_forest is not None:
            behaves = user_forest.copy()
        else:
            behaves = stable_history.copy()
            if params.forest_peak_ndvi is not None:
                behaves &= peaks[0] >= params.forest_peak_ndvi
            if params.forest_mean_ndvi is not None:
                behaves &= means[0] >= params.forest_mean_ndvi
        eligible = behaves & (history.count >= params.min_history_obs)
        if params.context_min_obs is not None:
            few = behaves & ~eligible & (history.count >= params.context_min_obs)
            if few.any():
                eligible |= few & (forest_around(eligible, (height, width), params.context_px)
                                   >= params.context_share)  # fmt: skip
        kernels.monitor_block(
            block_start, block_end, days, design, slopes, beta, sigma, peaks, season_depth,
            stacked, clear, burnt, hot_values, hot_usual, haze, eligible, min_drop, settings,
            counts, state_days, state_int, strength, depth, early_depth, onset, stable_history,
            ever_monitored, pending, to_learn, date_offsets,
        )  # fmt: skip

    learn_waiting()
    status = np.zeros(n_pixels, dtype=np.int8)
    status[withdrawn_first >= 0] = STATUS_WITHDRAWN
    status[harvest_first >= 0] = STATUS_PLANTATION_HARVEST
    status[(first >= 0) & (confirmed < 0)] = STATUS_LOW
    status[confirmed >= 0] = STATUS_HIGH
    first_out = np.where(first >= 0, first, np.where(harvest_first >= 0, harvest_first, -1))
    first_out = np.where(first_out >= 0, first_out, withdrawn_first)
    excess = np.clip((strength - params.z) / params.z, 0.0, 1.0)
    score = np.zeros(n_pixels, dtype=np.float32)
    low = status == STATUS_LOW
    high = status == STATUS_HIGH
    score[low] = 0.5 + 0.29 * excess[low]
    confirmations = np.clip((run - params.confirm_count) / 3.0, 0.0, 1.0).astype(np.float32)
    score[high] = 0.8 + 0.1 * excess[high] + 0.09 * confirmations[high]
    return HarmonicState(
        first_day=first_out.astype(np.int64),
        confirmed_day=confirmed,
        status=status,
        score=score,
        # a pixel monitored until its own looks showed a crop (a harvest-like dip, a crop
        # calendar) was not forest: it leaves the baseline layer with the monitoring
        monitored=ever_monitored & (stable_history if user_forest is None else True),
        history_obs=history.count.copy(),
        history_start=history_start,
        monitor_start=monitor_start,
    )
