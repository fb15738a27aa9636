"""Running a detector over an area, window by window, into alert polygons.

``detect_area(source, detector, aoi=...)`` is what a DAG task calls: it reads the stack
window by window (with a halo so masks and neighbourhoods are right at window edges),
runs the baseline or the model, stitches per-pixel alert state, polygonizes alerts with
the MMU and keeps before/after true-colour composites for the quicklook.
"""

from __future__ import annotations

import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import geopandas as gpd
import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.windows import Window
from tqdm import tqdm

from canopywatch.detect.alerts import AlertPolicy, polygonize
from canopywatch.detect.baseline import (
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_PLANTATION_HARVEST,
    AlertTracker,
    BaselineParams,
    PixelAlerts,
    detect_baseline,
    iterate_monitor,
    tracker_result,
)
from canopywatch.detect.candidates import load_scorer, score_candidates
from canopywatch.detect.coregister import (
    AreaShifts,
    CoregistrationParams,
    coregister,
    estimate_area_shifts,
)
from canopywatch.detect.features import feature_names, stack_bands_at, step_features
from canopywatch.detect.harmonic import HarmonicParams, nan_median, run_harmonic
from canopywatch.detect.model import TrainedModel
from canopywatch.detect.observations import Grid, ObservationStack, StackSource, iter_windows

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 10.0  # without a progress bar (Airflow tasks): a log line this often

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
HALO_PX = 8
# an area of fewer windows than this is split into about this many, each at least
# MIN_SPLIT_PX a side, so both cores of a small machine have work (the same on every
# machine: the windows, and so the per-window date offsets, do not depend on its cores)
SPLIT_WINDOWS = 4
MIN_SPLIT_PX = 128
BASELINE_VERSION = "baseline-v1"
HARMONIC_VERSION = "harmonic-v1"
METHODS: tuple[str, ...] = ("harmonic", "baseline", "xgboost")
DEFAULT_METHOD = "harmonic"


class Detector(Protocol):
    @property
    def version(self) -> str: ...

    def detect(self, stack: ObservationStack) -> PixelAlerts: ...


@dataclass(frozen=True)
class BaselineDetector:
    params: BaselineParams = field(default_factory=BaselineParams)

    @property
    def version(self) -> str:
        return BASELINE_VERSION

    def detect(self, stack: ObservationStack) -> PixelAlerts:
        return detect_baseline(stack, self.params)


@dataclass(frozen=True)
class GridMask:
    """A user's layer on the area's grid (True: inside): a forest baseline, or plantations."""

    mask: npt.NDArray[np.bool_]
    transform: Affine

    def window_of(self, stack: ObservationStack) -> npt.NDArray[np.bool_]:
        col = round((stack.transform.c - self.transform.c) / self.transform.a)
        row = round((stack.transform.f - self.transform.f) / self.transform.e)
        height, width = stack.shape
        part: npt.NDArray[np.bool_] = self.mask[row : row + height, col : col + width]
        if part.shape != (height, width):
            raise ValueError("the mask layer does not cover the stack's grid")
        return part


@dataclass(frozen=True)
class HarmonicDetector:
    """The default: season-aware per-pixel history model (``detect.harmonic``)."""

    params: HarmonicParams = field(default_factory=HarmonicParams)
    forest_mask: GridMask | None = None
    # a plantation map (e.g. the Spatial Database of Planted Trees): a break there is a
    # plantation harvest, never a deforestation alert
    plantations: GridMask | None = None
    # the XGBoost confidence of its alert polygons (``detect.candidates``); None: statistical
    candidate_scorer: TrainedModel | None = None
    # dates off by a fraction of a pixel are resampled onto the others first; None: as read
    coregistration: CoregistrationParams | None = field(default_factory=CoregistrationParams)
    # the area's shifts, estimated once (``detect_area``); None: estimated on each stack
    area_shifts: AreaShifts | None = None

    @property
    def version(self) -> str:
        return HARMONIC_VERSION

    def detect(self, stack: ObservationStack) -> PixelAlerts:
        mask = None if self.forest_mask is None else self.forest_mask.window_of(stack)
        if self.coregistration is not None:
            stack, _ = coregister(stack, self.coregistration, self.area_shifts)
        state = run_harmonic(stack, self.params, mask)
        shape = stack.shape
        status = state.status.reshape(shape)
        if self.plantations is not None:
            planted = self.plantations.window_of(stack)
            active = (status == STATUS_LOW) | (status == STATUS_HIGH)
            status = np.where(planted & active, STATUS_PLANTATION_HARVEST, status).astype(np.int8)
        return PixelAlerts(
            first_day=state.first_day.reshape(shape),
            confirmed_day=state.confirmed_day.reshape(shape),
            score=state.score.reshape(shape),
            monitored=state.monitored.reshape(shape),
            status=status,
        )


@dataclass(frozen=True)
class ModelDetector:
    model: TrainedModel
    params: BaselineParams = field(default_factory=BaselineParams)
    threshold: float | None = None

    @property
    def version(self) -> str:
        return self.model.version

    def detect(self, stack: ObservationStack) -> PixelAlerts:
        return detect_with_model(stack, self.model, self.params, self.threshold)


def detect_with_model(
    stack: ObservationStack,
    model: TrainedModel,
    params: BaselineParams,
    threshold: float | None = None,
) -> PixelAlerts:
    indices = tuple(params.indices)
    expected = feature_names(indices, stack.has_reflectance)
    if expected != model.features:
        raise ValueError(
            f"model {model.version} was trained on other features "
            f"({len(model.features)} columns; this stack gives {len(expected)}): "
            "train a model for this kind of stack or use the baseline"
        )
    cutoff = model.threshold if threshold is None else threshold
    height, width = stack.shape
    tracker = AlertTracker(height * width, params.confirm_count, params.withdraw_count)
    ever = np.zeros(height * width, dtype=bool)
    for step in iterate_monitor(stack, params):
        ever |= step.observed
        rows = np.flatnonzero(step.observed)
        probability = np.zeros(height * width, dtype=np.float32)
        if rows.size:
            matrix = step_features(step, rows, indices, stack_bands_at(stack, step.position))
            probability[rows] = model.predict(matrix)
        tracker.update(step.day, step.observed, probability >= cutoff, probability)
    return tracker_result(tracker, ever, (height, width))


@dataclass
class AreaDetection:
    pixel_alerts: PixelAlerts
    alerts: gpd.GeoDataFrame
    grid: Grid
    days: IntArray
    before_rgb: FloatArray
    after_rgb: FloatArray
    model_version: str


def true_colour(stack: ObservationStack, dates: npt.NDArray[np.bool_]) -> FloatArray:
    """Median composite (3, H, W) of clear observations on ``dates`` (red, green, blue)."""
    names = ("B04", "B03", "B02") if stack.has_reflectance else (next(iter(stack.bands)),) * 3
    height, width = stack.shape
    medians: dict[str, FloatArray] = {}
    for name in dict.fromkeys(names):
        values = stack.bands[name][dates].reshape(-1, height * width).astype(np.float32)
        # one sort per band (np.nanmedian goes through masked arrays on short axes)
        medians[name] = (
            nan_median(values).reshape(height, width)
            if values.shape[0]
            else np.full((height, width), np.nan, dtype=np.float32)
        )
    composite: FloatArray = np.stack([medians[name] for name in names])
    if not stack.has_reflectance:
        composite = composite * np.float32(0.15)  # index 0..1 shown on the reflectance stretch
    return composite


def default_workers() -> int:
    """Windows scored at once: the compiled loops and numpy release the GIL, so two threads
    keep two cores busy; more would hold more windows in memory for little gain."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass
class _ScoredWindow:
    target: tuple[slice, slice]
    first_day: IntArray
    confirmed_day: IntArray
    score: FloatArray
    monitored: npt.NDArray[np.bool_]
    status: npt.NDArray[np.int8]
    before: FloatArray
    after: FloatArray
    days: IntArray


def _score_window(
    source: StackSource, detector: Detector, read_window: Window, core: Window
) -> _ScoredWindow:
    stack = source.read(read_window)
    result = detector.detect(stack)
    r0 = int(core.row_off - read_window.row_off)
    c0 = int(core.col_off - read_window.col_off)
    inner = (slice(r0, r0 + int(core.height)), slice(c0, c0 + int(core.width)))
    n = stack.n_dates
    quarter = max(1, n // 4)
    early = np.arange(n) < quarter
    late = np.arange(n) >= n - quarter
    return _ScoredWindow(
        target=(
            slice(int(core.row_off), int(core.row_off + core.height)),
            slice(int(core.col_off), int(core.col_off + core.width)),
        ),
        first_day=result.first_day[inner],
        confirmed_day=result.confirmed_day[inner],
        score=result.score[inner],
        monitored=result.monitored[inner],
        status=result.status_codes()[inner],
        before=true_colour(stack, early)[(slice(None), *inner)],
        after=true_colour(stack, late)[(slice(None), *inner)],
        days=stack.days,
    )


def _area_shifts(source: StackSource, params: CoregistrationParams, aoi: str) -> AreaShifts:
    shifts = estimate_area_shifts(source, params)
    if shifts.chip is None:
        return shifts  # an index stack: left as read
    row, col = shifts.chip
    if shifts.n_shifted:
        sizes = np.hypot(*shifts.shifts[np.any(shifts.shifts != 0, axis=1)].T)
        log.info("%s: %d of %d dates are off by %.2f-%.2f px and are resampled onto the others "
                 "(estimated once, on the %d px square at row %d, col %d: the strongest edges)",
                 aoi, shifts.n_shifted, len(shifts.days), sizes.min(), sizes.max(),
                 params.estimation_px, row, col)  # fmt: skip
    else:
        log.info("%s: no date is off by %.2f px or more on the %d px square at row %d, col %d; "
                 "dates it could not see are estimated window by window",
                 aoi, params.min_shift, params.estimation_px, row, col)  # fmt: skip
    return shifts


def split_window_size(grid: Grid, window_size: int) -> int:
    """``window_size``, or where the area gives fewer than ``SPLIT_WINDOWS`` windows the
    largest even split of its long side that gives that many, not under ``MIN_SPLIT_PX``
    (nor over ``window_size``)."""

    def count(size: int) -> int:
        return math.ceil(grid.height / size) * math.ceil(grid.width / size)

    if count(window_size) >= SPLIT_WINDOWS:
        return window_size
    best = window_size
    long_side = max(grid.height, grid.width)
    for parts in range(1, long_side // MIN_SPLIT_PX + 1):
        size = math.ceil(long_side / parts)
        if size > window_size:
            continue
        best = size
        if count(size) >= SPLIT_WINDOWS:
            break
    return best  # every split tried is at least MIN_SPLIT_PX: parts <= long_side // it


def detect_area(
    source: StackSource,
    detector: Detector,
    *,
    aoi: str,
    window_size: int = 512,
    policy: AlertPolicy | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> AreaDetection:
    """Score ``source`` window by window, ``workers`` windows at a time (default: 2 on a
    machine with 2 or more cores; an area of fewer than ``SPLIT_WINDOWS`` windows is split,
    ``split_window_size``), and polygonize the stitched per-pixel alert
    state."""
    grid = source.grid
    shape_hw = grid.shape
    first_day = np.full(shape_hw, -1, dtype=np.int64)
    confirmed_day = np.full(shape_hw, -1, dtype=np.int64)
    score = np.zeros(shape_hw, dtype=np.float32)
    monitored = np.zeros(shape_hw, dtype=bool)
    status = np.zeros(shape_hw, dtype=np.int8)
    before = np.full((3, *shape_hw), np.nan, dtype=np.float32)
    after = np.full((3, *shape_hw), np.nan, dtype=np.float32)
    n_workers = default_workers() if workers is None else max(1, workers)
    window_size = split_window_size(grid, window_size)
    windows = list(iter_windows(grid, window_size, HALO_PX))
    days = np.asarray(source.days, dtype=np.int64)
    started = last_note = time.monotonic()
    if not progress:
        log.info("%s: scoring %d window(s) of at most %d px over %d dates with %s (%d at a time)",
                 aoi, len(windows), window_size, len(source.days), detector.version,
                 min(n_workers, len(windows)))  # fmt: skip
    if (isinstance(detector, HarmonicDetector) and detector.coregistration is not None
            and len(windows) > 1):  # fmt: skip
        detector = replace(detector, area_shifts=_area_shifts(source, detector.coregistration, aoi))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        scored = pool.map(lambda w: _score_window(source, detector, w[0], w[1]), windows)
        for number, window in enumerate(
            tqdm(scored, total=len(windows), disable=not progress, desc=f"detect {aoi}"), start=1
        ):
            target = window.target
            first_day[target] = window.first_day
            confirmed_day[target] = window.confirmed_day
            score[target] = window.score
            monitored[target] = window.monitored
            status[target] = window.status
            before[(slice(None), *target)] = window.before
            after[(slice(None), *target)] = window.after
            days = window.days
            now = time.monotonic()
            if not progress and (now - last_note >= PROGRESS_EVERY_S or number == len(windows)):
                log.info(
                    "%s: scored window %d/%d (%.0f s)", aoi, number, len(windows), now - started
                )
                last_note = now
    pixel_alerts = PixelAlerts(first_day, confirmed_day, score, monitored, status)
    alerts = polygonize(
        pixel_alerts,
        grid.transform,
        grid.crs,
        aoi=aoi,
        model_version=detector.version,
        policy=policy,
    )
    version = detector.version
    if isinstance(detector, HarmonicDetector) and detector.candidate_scorer is not None:
        rescored = score_candidates(source, alerts, pixel_alerts, detector.candidate_scorer)
        if rescored is not None:
            alerts, version = rescored, f"{version}+{detector.candidate_scorer.version}"
    return AreaDetection(pixel_alerts, alerts, grid, days, before, after, version)


def build_detector(
    method: str = DEFAULT_METHOD,
    *,
    index: str | None = None,
    model_dir: Path | None = None,
    history_start_day: int | None = None,
    monitor_start_day: int | None = None,
    forest_mask: GridMask | None = None,
    plantations: GridMask | None = None,
    forest_min: float | None = None,
    candidate_scores: bool = False,
) -> Detector:
    """The detector for ``method`` (``harmonic``, the default everywhere; ``baseline``;
    ``xgboost`` with ``model_dir``). ``index`` names the index of a single-index stack.
    With ``candidate_scores`` a harmonic detector on Sentinel-2 reflectance gets the shipped
    candidate scorer (its alerts' confidence; not the default: ``detect.candidates``)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "harmonic":
        params = HarmonicParams()
        if index is not None:
            params = params.for_index(index, forest_min)
        elif forest_min is not None:
            params = replace(params, forest_peak_ndvi=forest_min)
        params = params.with_periods(history_start_day, monitor_start_day)
        scorer = load_scorer() if candidate_scores and index is None else None
        return HarmonicDetector(
            params, forest_mask=forest_mask, plantations=plantations, candidate_scorer=scorer
        )
    if any(v is not None for v in (forest_mask, plantations, history_start_day, monitor_start_day)):
        raise ValueError(
            "--forest-mask, --plantations and the history/monitoring periods need method harmonic"
        )
    baseline = BaselineParams()
    if index is not None:
        baseline = baseline.for_index(index.lower(), forest_min)
    elif forest_min is not None:
        ndvi_only = baseline.for_index("ndvi", forest_min)
        baseline = BaselineParams(**{**ndvi_only.__dict__, "indices": BaselineParams().indices})
    if method == "baseline":
        return BaselineDetector(baseline)
    if model_dir is None:
        raise ValueError("method xgboost needs a model folder (--model)")
    from canopywatch.detect.model import load_model

    model = load_model(model_dir)
    if tuple(model.indices) != tuple(baseline.indices):
        raise ValueError(
            f"model {model.version} uses indices {','.join(model.indices)}, "
            f"this stack gives {','.join(baseline.indices)}"
        )
    return ModelDetector(model, baseline)


def load_grid_mask(path: Path, grid: Grid, flag: str = "--forest-mask") -> GridMask:
    """A user's layer (``flag`` names it in errors) on ``grid``: a raster (non-zero =
    inside, nearest resampling) or polygons (GeoPackage, GeoJSON, Shapefile)."""
    import rasterio.features

    from canopywatch.detect.observations import read_aligned

    if not path.exists():
        raise ValueError(f"{flag} {path}: no such file")
    if path.suffix.lower() in {".tif", ".tiff", ".vrt"}:
        data, nodata = read_aligned(path, grid, Window(0, 0, grid.width, grid.height), [1])
        band = data[0]
        mask = band != 0
        if nodata is not None:
            mask &= band != nodata
        return GridMask(mask & np.isfinite(band), grid.transform)
    polygons = gpd.read_file(path)
    if polygons.empty:
        raise ValueError(f"{flag} {path}: no polygons")
    if polygons.crs is not None:
        polygons = polygons.to_crs(grid.crs)
    burned = rasterio.features.geometry_mask(
        list(polygons.geometry), out_shape=grid.shape, transform=grid.transform, invert=True
    )
    return GridMask(burned, grid.transform)
