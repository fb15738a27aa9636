"""Comparison methods for the benchmark (no training).

* ``detect_ndvi_drop``: the simplest operational rule. A pixel is forest when the median
  NDVI of its first ``reference_obs`` clear observations is >= ``forest_min``; it is
  alerted (and confirmed at once) at the first clear observation ``drop`` below that.
* ``detect_bfast_monitor``: BFAST-Monitor style. A stable history period (the first
  ``history_share`` of the series) fits, per pixel by least squares, a level plus one
  annual harmonic (level only when the history spans less than ``harmonic_min_days``);
  in the monitoring period a moving sum (MOSUM) of the last ``window`` clear residuals,
  scaled by the history's residual spread, flags a break when it falls below
  ``-critical``; the break date is the first observation of that window that is below
  the fit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.indices import compute_index
from canopywatch.detect.observations import ObservationStack

FloatArray = npt.NDArray[np.float32]


def detect_ndvi_drop(
    stack: ObservationStack,
    *,
    forest_min: float = 0.7,
    drop: float = 0.3,
    reference_obs: int = 3,
    index: str = "ndvi",
) -> PixelAlerts:
    values = compute_index(index, stack.bands)
    n_dates = stack.n_dates
    height, width = stack.shape
    series = values.reshape(n_dates, -1)
    clear = stack.clear.reshape(n_dates, -1) & np.isfinite(series)
    rank = np.cumsum(clear, axis=0)  # clear observations so far, this one included
    in_reference = clear & (rank <= reference_obs)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            reference = np.nanmedian(np.where(in_reference, series, np.nan), axis=0)
    forest = (rank[-1] >= reference_obs) & (reference >= forest_min)
    hit = clear & (rank > reference_obs) & (series <= reference - drop) & forest
    any_hit = hit.any(axis=0)
    first = np.argmax(hit, axis=0)
    first_day = np.where(any_hit, stack.days[first], -1).astype(np.int64)
    return PixelAlerts(
        first_day=first_day.reshape(height, width),
        confirmed_day=first_day.reshape(height, width).copy(),
        score=np.where(any_hit, 0.9, 0.0).astype(np.float32).reshape(height, width),
        monitored=forest.reshape(height, width),
    )


def detect_bfast_monitor(
    stack: ObservationStack,
    *,
    history_share: float = 0.25,
    window: int = 3,
    critical: float = 2.5,
    min_history: int = 4,
    forest_min: float = 0.7,
    harmonic_min_days: int = 300,
    index: str = "ndvi",
) -> PixelAlerts:
    values = compute_index(index, stack.bands)
    n_dates = stack.n_dates
    height, width = stack.shape
    series = values.reshape(n_dates, -1).astype(np.float64)
    clear = stack.clear.reshape(n_dates, -1) & np.isfinite(series)
    days = stack.days.astype(np.float64)
    split = days[0] + history_share * (days[-1] - days[0])
    history = days <= split
    omega = 2.0 * math.pi / 365.25
    harmonic = (days[history][-1] - days[0]) >= harmonic_min_days if history.any() else False
    design = [np.ones_like(days)]
    if harmonic:
        design += [np.cos(omega * days), np.sin(omega * days)]
    basis = np.stack(design, axis=1)  # (T, k)
    weights = (clear & history[:, None]).astype(np.float64)  # (T, P)
    filled = np.where(clear, series, 0.0)
    k = basis.shape[1]
    normal = np.einsum("tp,ti,tj->pij", weights, basis, basis) + 1e-6 * np.eye(k)
    rhs = np.einsum("tp,ti,tp->pi", weights, basis, filled)
    coefficients = np.linalg.solve(normal, rhs[..., None])[..., 0]  # (P, k)
    fitted = basis @ coefficients.T  # (T, P)
    residual = np.where(clear, series - fitted, np.nan)
    n_history = weights.sum(axis=0)
    with np.errstate(all="ignore"):
        hist_res = np.where(weights > 0, residual, np.nan)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sigma = np.nanstd(hist_res, axis=0)
            level = np.nanmedian(np.where(weights > 0, series, np.nan), axis=0)
    sigma = np.maximum(np.nan_to_num(sigma, nan=1.0), 0.03)
    usable = (n_history >= min_history) & (level >= forest_min)

    first_day = np.full(series.shape[1], -1, dtype=np.int64)
    buffer = np.zeros((window, series.shape[1]))
    buffer_day = np.full((window, series.shape[1]), -1, dtype=np.int64)
    filled_count = np.zeros(series.shape[1], dtype=np.int64)
    for t in np.flatnonzero(~history):
        observed = clear[t] & usable & (first_day < 0)
        slot = filled_count[observed] % window
        buffer[slot, np.flatnonzero(observed)] = residual[t, observed]
        buffer_day[slot, np.flatnonzero(observed)] = int(stack.days[t])
        filled_count[observed] += 1
        ready = observed & (filled_count >= window)
        mosum = buffer.sum(axis=0) / (sigma * math.sqrt(window))
        broken = ready & (mosum < -critical)
        if broken.any():
            below = np.where(buffer < 0, buffer_day, np.iinfo(np.int64).max)
            first_day[broken] = below.min(axis=0)[broken]
    alerted = first_day >= 0
    return PixelAlerts(
        first_day=first_day.reshape(height, width),
        confirmed_day=first_day.reshape(height, width).copy(),
        score=np.where(alerted, 0.9, 0.0).astype(np.float32).reshape(height, width),
        monitored=usable.reshape(height, width),
    )
