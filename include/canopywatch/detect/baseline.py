"""The statistical detector (no training): the reference and the fallback.

Per pixel, a robust baseline of each index is the median of its earlier clear,
non-anomalous observations (the last ``history_size``); once a pixel's history spans a
year, only same-season observations (+-``season_window_days`` day of year) are used. A
date-wide offset (the median deviation of the area's forest pixels on that date) is
removed first, so phenology, haze and illumination shared by the whole area are not
anomalies, and the history is stored de-seasoned. An observation is anomalous when every
index dropped by more than ``max(min_drop, z * sigma)``; a run of ``confirm_count``
consecutive anomalous clear observations confirms it; ``withdraw_count`` normal clear
observations withdraw an unconfirmed one. A pixel is monitored only while it has been
forest-like in most of its earlier clear observations outside the current anomaly run
(``max_nonforest_share``), so crops and pasture that look like forest at their seasonal
peak drop out once a harvest or drying has come and gone.

``iterate_monitor`` yields that state date by date (``MonitorStep``); the baseline turns
its anomaly flags into alerts, the features module turns it into model inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from canopywatch.detect.indices import compute_index
from canopywatch.detect.observations import ObservationStack

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]


@dataclass(frozen=True)
class IndexRule:
    min_drop: float  # smallest drop (index units) that can be anomalous
    sigma_floor: float  # lower bound of the robust spread
    forest_min: float | None = None  # baseline needed to monitor a pixel (primary index)


INDEX_RULES: dict[str, IndexRule] = {
    "ndvi": IndexRule(min_drop=0.20, sigma_floor=0.03, forest_min=0.70),
    "ndmi": IndexRule(min_drop=0.15, sigma_floor=0.03, forest_min=0.15),
    "nbr": IndexRule(min_drop=0.20, sigma_floor=0.03, forest_min=0.35),
    "nbr2": IndexRule(min_drop=0.06, sigma_floor=0.02, forest_min=None),
    "evi": IndexRule(min_drop=0.15, sigma_floor=0.03, forest_min=0.35),
}
DEFAULT_RULE = IndexRule(min_drop=0.20, sigma_floor=0.03, forest_min=None)
S2_INDICES: tuple[str, ...] = ("ndvi", "ndmi")


@dataclass(frozen=True)
class BaselineParams:
    indices: tuple[str, ...] = S2_INDICES  # the first is primary (forest mask, features)
    rules: dict[str, IndexRule] = field(default_factory=lambda: dict(INDEX_RULES))
    z: float = 3.0
    min_history: int = 2
    history_size: int = 24
    season_window_days: int = 30
    season_min_age_days: int = 300
    confirm_count: int = 2
    withdraw_count: int = 1
    min_reference_pixels: int = 20
    spatial_normalization: bool = True
    # stable-forest mask: a pixel is monitored only while at most this share of its earlier
    # clear observations outside the current anomaly run were below the forest threshold
    # (crops at their seasonal peak look like forest for a few months; forest stays forest)
    max_nonforest_share: float = 0.6

    def rule(self, index: str) -> IndexRule:
        return self.rules.get(index, DEFAULT_RULE)

    def for_index(self, index: str, forest_min: float | None = None) -> BaselineParams:
        """These parameters on a single-index stack (``--index-stack``)."""
        rules = dict(self.rules)
        base = self.rule(index)
        if forest_min is not None:
            rules[index] = IndexRule(base.min_drop, base.sigma_floor, forest_min)
        return BaselineParams(**{**self.__dict__, "indices": (index,), "rules": rules})


@dataclass
class MonitorStep:
    """State of every pixel (flattened) at one date, after reading that date."""

    position: int
    day: int
    observed: BoolArray  # clear and monitored (forest-like with enough history)
    clear: BoolArray
    values: dict[str, FloatArray]
    baseline: dict[str, FloatArray]
    sigma: dict[str, FloatArray]
    deviation: dict[str, FloatArray]  # value - baseline - date offset (NaN where not clear)
    offset: dict[str, float]
    date_spread: dict[str, float]  # robust spread of the forest pixels' deviations that date
    anomalous: BoolArray
    run_length: IntArray  # consecutive anomalous clear observations, this one included
    run_start: IntArray  # day of the first of them, -1 outside a run
    run_min_deviation: FloatArray  # most negative primary deviation in the run
    previous_deviation: FloatArray  # primary deviation of the previous clear observation
    days_since_clear: FloatArray  # days since the previous clear observation (NaN: none)
    history_count: IntArray
    history_first_day: IntArray
    neighbour_anomalous: FloatArray  # share of anomalous among observed 3x3 neighbours
    neighbour_deviation: FloatArray  # mean primary deviation of clear 3x3 neighbours
    # earlier clear observations outside the current anomaly run (runs that ended count):
    # the share whose primary index was below the forest threshold (crops after harvest,
    # dried pasture; a cleared forest pixel's own run is left out) and the number of
    # anomalous observations in runs that were withdrawn (seasonal drops that came back)
    nonforest_share: FloatArray
    withdrawn_anomalies: IntArray
    shape: tuple[int, int]


def _sorted_median(sorted_values: FloatArray, counts: IntArray) -> FloatArray:
    """Median of each row of values sorted with NaN last, ``counts`` finite per row."""
    rows = np.arange(sorted_values.shape[0])
    lo = np.maximum(counts - 1, 0) // 2
    hi = np.maximum(counts, 1) // 2
    hi = np.minimum(hi, sorted_values.shape[1] - 1)
    median = 0.5 * (sorted_values[rows, lo] + sorted_values[rows, hi])
    median[counts == 0] = np.nan
    result: FloatArray = median.astype(np.float32)
    return result


def robust_location_scale(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Row-wise median and 1.4826 * MAD, ignoring NaN."""
    counts = np.isfinite(values).sum(axis=1).astype(np.int64)
    median = _sorted_median(np.sort(values, axis=1), counts)
    spread = np.abs(values - median[:, None])
    mad = _sorted_median(np.sort(spread, axis=1), counts)
    return median, (1.4826 * mad).astype(np.float32)


def _same_season(history_days: IntArray, day: int, window: int, min_age: int) -> BoolArray:
    age = day - history_days
    gap = np.mod(age, 365.25)
    circular = np.minimum(gap, 365.25 - gap)
    same: BoolArray = (history_days >= 0) & (age >= min_age) & (circular <= window)
    return same


def iterate_monitor(stack: ObservationStack, params: BaselineParams) -> Iterator[MonitorStep]:
    height, width = stack.shape
    n_pixels = height * width
    size = params.history_size
    names = params.indices
    primary = names[0]
    series = {name: compute_index(name, stack.bands) for name in names}

    history = {name: np.full((n_pixels, size), np.nan, dtype=np.float32) for name in names}
    history_days = np.full((n_pixels, size), -1, dtype=np.int64)
    count = np.zeros(n_pixels, dtype=np.int64)
    first_day = np.full(n_pixels, -1, dtype=np.int64)
    last_clear = np.full(n_pixels, -1, dtype=np.int64)
    run = np.zeros(n_pixels, dtype=np.int64)
    run_start = np.full(n_pixels, -1, dtype=np.int64)
    normal = np.zeros(n_pixels, dtype=np.int64)
    run_min = np.full(n_pixels, np.nan, dtype=np.float32)
    previous = np.full(n_pixels, np.nan, dtype=np.float32)
    forest_min = params.rule(primary).forest_min
    settled_clear = np.zeros(n_pixels, dtype=np.int64)
    settled_low = np.zeros(n_pixels, dtype=np.int64)
    pending_clear = np.zeros(n_pixels, dtype=np.int64)
    pending_low = np.zeros(n_pixels, dtype=np.int64)
    withdrawn = np.zeros(n_pixels, dtype=np.int64)

    for position, day_value in enumerate(stack.days):
        day = int(day_value)
        values = {name: series[name][position].ravel() for name in names}
        clear = stack.clear[position].ravel().copy()
        for name in names:
            clear &= np.isfinite(values[name])
        idx = np.flatnonzero(clear & (count >= 1))

        baseline = {name: np.full(n_pixels, np.nan, dtype=np.float32) for name in names}
        sigma = {name: np.full(n_pixels, np.nan, dtype=np.float32) for name in names}
        deviation = {name: np.full(n_pixels, np.nan, dtype=np.float32) for name in names}
        offset: dict[str, float] = {}
        spread: dict[str, float] = {}
        if idx.size:
            same = _same_season(
                history_days[idx], day, params.season_window_days, params.season_min_age_days
            )
            seasonal = same.sum(axis=1) >= 2
            raw_deviation: dict[str, FloatArray] = {}
            for name in names:
                window = history[name][idx]
                if seasonal.any():
                    window = window.copy()
                    window[seasonal] = np.where(same[seasonal], window[seasonal], np.nan)
                med, pixel_spread = robust_location_scale(window)
                baseline[name][idx] = med
                sigma[name][idx] = np.maximum(pixel_spread, params.rule(name).sigma_floor)
                raw_deviation[name] = values[name][idx] - med
            forest_like = (
                np.ones(idx.size, dtype=bool)
                if forest_min is None
                else baseline[primary][idx] >= forest_min
            )
            reference = forest_like & (run[idx] == 0)
            for name in names:
                offset[name] = 0.0
                spread[name] = 0.0
                if params.spatial_normalization and reference.sum() >= params.min_reference_pixels:
                    shared = raw_deviation[name][reference]
                    offset[name] = float(np.median(shared))
                    spread[name] = 1.4826 * float(np.median(np.abs(shared - offset[name])))
                deviation[name][idx] = raw_deviation[name] - np.float32(offset[name])
        else:
            forest_like = np.zeros(0, dtype=bool)
            offset = dict.fromkeys(names, 0.0)
            spread = dict.fromkeys(names, 0.0)

        candidate = np.zeros(n_pixels, dtype=bool)
        candidate[idx[forest_like]] = True
        nonforest_share = (settled_low / np.maximum(settled_clear, 1)).astype(np.float32)
        monitored = (
            candidate
            & (count >= params.min_history)
            & (nonforest_share <= params.max_nonforest_share)
        )
        anomalous = candidate.copy()
        for name in names:
            rule = params.rule(name)
            # the date's own spread (snow, leaf-off, haze hit pixels unevenly) adds to the pixel's
            noise = np.sqrt(sigma[name] ** 2 + np.float32(spread[name]) ** 2)
            threshold = np.maximum(rule.min_drop, params.z * noise)
            with np.errstate(invalid="ignore"):
                anomalous &= -deviation[name] >= threshold

        # runs of anomalies; a normal clear observation ends (withdraws) a run
        run[anomalous] += 1
        starting = anomalous & (run == 1)
        run_start[starting] = day
        run_min[starting] = np.nan
        normal[anomalous] = 0
        run_min[anomalous] = np.fmin(run_min[anomalous], deviation[primary][anomalous])
        calm = clear & ~anomalous & (run > 0)
        normal[calm] += 1
        ended = calm & (normal >= params.withdraw_count)
        run[ended] = 0
        run_start[ended] = -1
        normal[ended] = 0
        run_min[ended] = np.nan

        observed = monitored
        share, neighbour_dev = _neighbourhood(
            anomalous & observed, observed, deviation[primary], clear, (height, width)
        )
        since = np.where(last_clear >= 0, day - last_clear, np.nan).astype(np.float32)
        yield MonitorStep(
            position=position,
            day=day,
            observed=observed,
            clear=clear,
            values=values,
            baseline=baseline,
            sigma=sigma,
            deviation=deviation,
            offset=offset,
            date_spread=spread,
            anomalous=anomalous & observed,
            run_length=run.copy(),
            run_start=run_start.copy(),
            run_min_deviation=run_min.copy(),
            previous_deviation=previous.copy(),
            days_since_clear=since,
            history_count=count.copy(),
            history_first_day=first_day.copy(),
            neighbour_anomalous=share,
            neighbour_deviation=neighbour_dev,
            nonforest_share=nonforest_share,
            withdrawn_anomalies=withdrawn.copy(),
            shape=(height, width),
        )

        # out-of-run record: anomalous observations wait until their run is withdrawn
        if forest_min is None:
            low = np.zeros(n_pixels, dtype=bool)
        else:
            with np.errstate(invalid="ignore"):
                low = clear & (values[primary] - np.float32(offset[primary]) < forest_min)
        pending_clear[anomalous] += 1
        pending_low[anomalous & low] += 1
        settled = clear & ~anomalous
        settled_clear[settled] += 1
        settled_low[settled & low] += 1
        settled_clear[ended] += pending_clear[ended]
        settled_low[ended] += pending_low[ended]
        withdrawn[ended] += pending_clear[ended]
        pending_clear[ended] = 0
        pending_low[ended] = 0

        # history: clear observations outside any anomaly run, stored de-seasoned
        push = np.flatnonzero(clear & ~anomalous & (run == 0))
        slot = count[push] % size
        for name in names:
            history[name][push, slot] = values[name][push] - np.float32(offset[name])
        history_days[push, slot] = day
        first_day[push] = np.where(first_day[push] < 0, day, first_day[push])
        count[push] += 1
        previous[clear] = deviation[primary][clear]
        last_clear[clear] = day


def _neighbourhood(
    anomalous: BoolArray,
    observed: BoolArray,
    deviation: FloatArray,
    clear: BoolArray,
    shape: tuple[int, int],
) -> tuple[FloatArray, FloatArray]:
    def box(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = ndimage.uniform_filter(
            values.reshape(shape), size=3, mode="constant"
        ).ravel()
        return out

    observed_share = box(observed.astype(np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(
            observed_share > 0, box(anomalous.astype(np.float32)) / observed_share, np.nan
        ).astype(np.float32)
        usable = clear & np.isfinite(deviation)
        clear_share = box(usable.astype(np.float32))
        mean_dev = np.where(
            clear_share > 0,
            box(np.where(usable, deviation, 0).astype(np.float32)) / clear_share,
            np.nan,
        ).astype(np.float32)
    return share, mean_dev


@dataclass
class AlertTracker:
    """Alert rules per pixel: low confidence at the first detection, high on confirmation
    (``confirm_count`` consecutive detections), withdrawn after ``withdraw_count`` clear
    observations without detection before confirmation. Confirmed alerts stay."""

    n_pixels: int
    confirm_count: int = 2
    withdraw_count: int = 1
    first_day: IntArray = field(init=False)
    confirmed_day: IntArray = field(init=False)
    run: IntArray = field(init=False)
    normal: IntArray = field(init=False)
    score: FloatArray = field(init=False)
    withdrawn: IntArray = field(init=False)

    def __post_init__(self) -> None:
        self.first_day = np.full(self.n_pixels, -1, dtype=np.int64)
        self.confirmed_day = np.full(self.n_pixels, -1, dtype=np.int64)
        self.run = np.zeros(self.n_pixels, dtype=np.int64)
        self.normal = np.zeros(self.n_pixels, dtype=np.int64)
        self.score = np.zeros(self.n_pixels, dtype=np.float32)
        self.withdrawn = np.zeros(self.n_pixels, dtype=np.int64)

    def update(self, day: int, observed: BoolArray, detected: BoolArray, score: FloatArray) -> None:
        open_ = self.confirmed_day < 0
        hit = observed & detected & open_
        new = hit & (self.run == 0)
        self.first_day[new] = day
        self.run[hit] += 1
        self.normal[hit] = 0
        self.score[hit] = np.maximum(self.score[hit], score[hit])
        confirm = hit & (self.run >= self.confirm_count)
        self.confirmed_day[confirm] = day
        miss = observed & ~detected & open_ & (self.run > 0)
        self.normal[miss] += 1
        withdraw = miss & (self.normal >= self.withdraw_count)
        self.first_day[withdraw] = -1
        self.run[withdraw] = 0
        self.normal[withdraw] = 0
        self.score[withdraw] = 0.0
        self.withdrawn[withdraw] += 1
        confirmed = ~open_ & observed & detected
        self.score[confirmed] = np.maximum(self.score[confirmed], score[confirmed])


# per-pixel lifecycle codes (PixelAlerts.status)
STATUS_NONE = 0
STATUS_LOW = 1
STATUS_HIGH = 2
STATUS_WITHDRAWN = 3
STATUS_PLANTATION_HARVEST = 4


@dataclass(frozen=True)
class PixelAlerts:
    """Per-pixel alert state of a window at the end of its series (H x W arrays)."""

    first_day: IntArray  # first anomalous observation of the alert, -1: none
    confirmed_day: IntArray  # -1: not confirmed
    score: FloatArray  # 0..1
    monitored: BoolArray  # pixels that were ever monitored (forest-like history)
    # per-pixel lifecycle (STATUS_*); None: derived (high when confirmed, else low)
    status: Int8Array | None = None

    @property
    def alerted(self) -> BoolArray:
        """Pixels with an active deforestation alert (low or high)."""
        flagged: BoolArray = self.first_day >= 0
        if self.status is not None:
            flagged &= (self.status == STATUS_LOW) | (self.status == STATUS_HIGH)
        return flagged

    def status_codes(self) -> Int8Array:
        if self.status is not None:
            return self.status
        codes = np.where(
            self.confirmed_day >= 0,
            STATUS_HIGH,
            np.where(self.first_day >= 0, STATUS_LOW, STATUS_NONE),
        )
        result: Int8Array = codes.astype(np.int8)
        return result


def tracker_result(tracker: AlertTracker, ever: BoolArray, shape: tuple[int, int]) -> PixelAlerts:
    return PixelAlerts(
        first_day=tracker.first_day.reshape(shape).copy(),
        confirmed_day=tracker.confirmed_day.reshape(shape).copy(),
        score=tracker.score.reshape(shape).copy(),
        monitored=ever.reshape(shape).copy(),
    )


def anomaly_strength(step: MonitorStep, params: BaselineParams) -> FloatArray:
    """0..1 confidence of a baseline anomaly: how far past its threshold the weakest index is."""
    ratio = np.full(step.observed.size, np.inf, dtype=np.float32)
    for name in params.indices:
        rule = params.rule(name)
        with np.errstate(invalid="ignore"):
            ratio = np.fmin(ratio, -step.deviation[name] / np.float32(rule.min_drop))
    ratio = np.where(np.isfinite(ratio), ratio, 0.0).astype(np.float32)
    strength: FloatArray = np.clip(1.0 - 0.5 / np.maximum(ratio, 0.5), 0.0, 1.0).astype(np.float32)
    return strength


def detect_baseline(stack: ObservationStack, params: BaselineParams | None = None) -> PixelAlerts:
    params = params or BaselineParams()
    height, width = stack.shape
    tracker = AlertTracker(height * width, params.confirm_count, params.withdraw_count)
    ever = np.zeros(height * width, dtype=bool)
    for step in iterate_monitor(stack, params):
        ever |= step.observed
        tracker.update(step.day, step.observed, step.anomalous, anomaly_strength(step, params))
    return tracker_result(tracker, ever, (height, width))
