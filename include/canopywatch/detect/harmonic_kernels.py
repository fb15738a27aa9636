"""The compiled loops of the harmonic detector (numba): the per-pixel normal equations,
their ridge solves, and the monitoring of one block of dates.

The arithmetic is ``canopywatch.detect.harmonic``'s, written per pixel so that one pass
over the arrays does what took a dozen numpy temporaries, and without the GIL, so the
detector's window threads run on every core. Shapes: ``K`` indices, ``T`` dates, ``N``
pixels, ``P`` harmonic terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

F = TypeVar("F", bound=Callable[..., Any])
F8 = npt.NDArray[np.float64]
F4 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]


def inlined(function: F) -> F:
    """A helper of a compiled loop, compiled into it (a call per pixel and date would
    cost more than its work)."""
    return cast(F, numba.njit(inline="always")(function))


def compiled(function: F) -> F:
    """``numba.njit`` with an on-disk cache (a worker compiles once, not every run) and
    without the GIL."""
    return cast(F, numba.njit(cache=True, nogil=True)(function))


@compiled
def accumulate(
    design: F8, rows: I8, values: F4, offsets: F4, weights: B1,
    normal: F8, rhs: F8, squares: F8, count: I8, changed: B1,
) -> None:  # fmt: skip
    """Add observation ``rows[r]`` of pixel ``n`` where ``weights[r, n]``: the design row
    ``design[rows[r]]`` and the values ``values[:, rows[r], n] - offsets[:, rows[r]]``."""
    n_rows = rows.shape[0]
    n_pixels = weights.shape[1]
    n_params = design.shape[1]
    n_indices = values.shape[0]
    for n in range(n_pixels):
        added = 0
        for r in range(n_rows):
            if not weights[r, n]:
                continue
            t = rows[r]
            added += 1
            for p in range(n_params):
                dp = design[t, p]
                for q in range(n_params):
                    normal[n, p, q] += dp * design[t, q]
            for k in range(n_indices):
                v = np.float64(values[k, t, n] - offsets[k, t])
                squares[n, k] += v * v
                for p in range(n_params):
                    rhs[n, p, k] += v * design[t, p]
        if added:
            count[n] += added
            changed[n] = True


@compiled
def ridge_solve(
    pixels: I8, normal: F8, rhs: F8, squares: F8, count: I8, ridge: float, floors: F4,
    beta: F8, sigma: F4,
) -> None:  # fmt: skip
    """Ridge fit of each pixel in ``pixels`` by Cholesky: ``beta`` (K, N, P) and the
    residual ``sigma`` (K, N), at least ``floors[k]``, written in place."""
    n_params = normal.shape[1]
    n_indices = rhs.shape[2]
    a = np.empty((n_params, n_params))
    low = np.empty((n_params, n_params))
    y = np.empty(n_params)
    x = np.empty(n_params)
    for j in range(pixels.shape[0]):
        n = pixels[j]
        for p in range(n_params):
            for q in range(n_params):
                a[p, q] = normal[n, p, q]
        a[0, 0] += 1e-6
        for p in range(1, n_params):
            a[p, p] += ridge
        for p in range(n_params):  # Cholesky: a = low low'
            for q in range(p + 1):
                total = a[p, q]
                for m in range(q):
                    total -= low[p, m] * low[q, m]
                if p == q:
                    low[p, p] = math.sqrt(max(total, 1e-300))
                else:
                    low[p, q] = total / low[q, q]
        dof = max(count[n] - 1, 1)
        for k in range(n_indices):
            for p in range(n_params):
                total = rhs[n, p, k]
                for m in range(p):
                    total -= low[p, m] * y[m]
                y[p] = total / low[p, p]
            for p in range(n_params - 1, -1, -1):
                total = y[p]
                for m in range(p + 1, n_params):
                    total -= low[m, p] * x[m]
                x[p] = total / low[p, p]
            # (A + R) beta = b, so beta'A beta = beta'b - beta'R beta
            fitted = 0.0
            penalty = 1e-6 * x[0] * x[0]
            for p in range(n_params):
                fitted += x[p] * rhs[n, p, k]
                beta[k, n, p] = x[p]
                if p > 0:
                    penalty += ridge * x[p] * x[p]
            rss = max(squares[n, k] - fitted - penalty, 0.0)
            sigma[k, n] = max(np.float32(math.sqrt(rss / dof)), floors[k])


@compiled
def annual_range(beta: F8, phases: F8) -> tuple[F4, F4, F4]:
    """Mean (the constant term), peak and trough over ``phases`` (24 evenly spaced days of
    a year) of each pixel's fitted seasonal curve, (K, N) each."""
    n_indices, n_pixels, n_params = beta.shape
    mean = np.empty((n_indices, n_pixels), dtype=np.float32)
    peak = np.empty((n_indices, n_pixels), dtype=np.float32)
    trough = np.empty((n_indices, n_pixels), dtype=np.float32)
    for k in range(n_indices):
        for n in range(n_pixels):
            best = -np.inf
            worst = np.inf
            for s in range(phases.shape[0]):
                value = 0.0
                for p in range(n_params):
                    value += phases[s, p] * beta[k, n, p]
                best = max(best, value)
                worst = min(worst, value)
            mean[k, n] = np.float32(beta[k, n, 0])
            peak[k, n] = np.float32(best)
            trough[k, n] = np.float32(worst)
    return mean, peak, trough


@compiled
def _shorth(sample: F4) -> tuple[np.float32, np.float32]:
    """Location and scale of the shortest half of a 1-D sample (``harmonic.shorth``)."""
    ordered = np.sort(sample)
    size = ordered.shape[0]
    half = size // 2 + 1
    start = 0
    width = np.inf
    for s in range(size - half + 1):
        w = ordered[s + half - 1] - ordered[s]
        if w < width:
            width = w
            start = s
    low, high = ordered[start], ordered[start + half - 1]
    return np.float32(0.5 * (low + high)), np.float32((high - low) / 1.349)


@inlined
def _down_to_soil(depth: F4, min_drop: F4, n: int) -> bool:
    """The dip of pixel ``n`` went below its prediction by twice a break's size on every
    index: bare soil, not a thinner canopy."""
    for k in range(depth.shape[0]):  # noqa: SIM110 (numba compiles loops, not generators)
        if not (depth[k, n] <= -2.0 * min_drop[k]):
            return False
    return True


@inlined
def _dip_came_back(
    n: int, first_day: int, age: int, confirmed_dip: bool, depth: F4, min_drop: F4,
    dip_days: int, transient_days: int, last_break: I8, dip_day: I8, stable_history: B1,
) -> bool:  # fmt: skip
    """A dip of pixel ``n`` that began on ``first_day`` is back at the pre-event state: a
    short one down to bare soil is remembered for the crop calendar, and a confirmed one
    back within ``transient_days`` (a harvest) takes the pixel out of the forest (True)."""
    soil = _down_to_soil(depth, min_drop, n)
    if soil and last_break[n] - first_day <= dip_days:
        dip_day[n] = first_day
    harvest = soil and confirmed_dip and age <= transient_days
    if harvest:
        stable_history[n] = False
    return harvest


@inlined
def _first_row(days: I8, position: int, day: int) -> int:
    """The first row at or before ``position`` whose date is on or after ``day`` (an
    episode's rows: walked back, as episodes are short next to the series)."""
    start = position
    while start > 0 and days[start - 1] >= day:
        start -= 1
    return start


@inlined
def _history_episode(
    n: int, day: int, brk: bool, normal: bool, raw: F4, min_drop: F4, confirm_count: int,
    transient_days: int, dip_days: int, hist_first: I8, run: I8, depth: F4, dip_day: I8,
    stable_history: B1, last_break: I8, position: int, pending: B1, to_learn: B1,
    learn_dips: bool, days: I8,
) -> None:  # fmt: skip
    """A look of pixel ``n`` while it is not (yet) monitored: the history it grows is held
    to the initial history's forest rule (a harvest-like dip, a run of ``confirm_count``
    breaks back within ``transient_days``, is not forest behaviour), a longer dip that came
    back is learnt (``learn_dips``), and harvest-like dips are remembered for the season
    rule."""
    n_indices = raw.shape[0]
    if brk:
        if hist_first[n] < 0:
            hist_first[n] = day
            run[n] = 0
            for k in range(n_indices):
                depth[k, n] = 0.0
        run[n] += 1
        last_break[n] = day
        pending[position, n] = True
        for k in range(n_indices):
            depth[k, n] = min(depth[k, n], raw[k, n])
        return
    if not normal or hist_first[n] < 0:
        return
    harvest = _dip_came_back(n, hist_first[n], day - hist_first[n], run[n] >= confirm_count,
                             depth, min_drop, dip_days, transient_days, last_break, dip_day,
                             stable_history)  # fmt: skip
    start = _first_row(days, position, hist_first[n])
    if learn_dips and not harvest and run[n] >= confirm_count:
        # a dip that came back is the pixel's own (a season, a pasture's browning), as a
        # withdrawn alert's is: learnt
        for t in range(start, position + 1):
            to_learn[t, n] |= pending[t, n]
    for t in range(start, position + 1):
        pending[t, n] = False
    hist_first[n] = -1
    run[n] = 0


@inlined
def _drop_in_breaks(raw: F4, min_drop: F4, n: int, season_depth: float) -> float:
    """Pixel ``n``'s drop below the prediction in break sizes of its deepest index, or 0
    when its primary index fell less than two (a fire under a standing canopy: NBR falls,
    NDVI hardly); infinite when its primary index fell more than a break below the depth
    of the pixel's own seasons (``season_depth``, peak to trough of a year it has seen):
    no leaf-off of that forest goes so deep, so the look is a cut's slash."""
    if -raw[0, n] < 2.0 * min_drop[0]:
        return 0.0
    if -raw[0, n] > season_depth + min_drop[0]:
        return np.inf
    deepest = 0.0
    for k in range(raw.shape[0]):
        deepest = max(deepest, -raw[k, n] / min_drop[k])
    return deepest


@compiled
def monitor_block(
    block_start: int, block_end: int, days: I8, design: F8, slope_design: F8, beta: F8,
    sigma: F4, peak: F4, season_depth: F4, values: F4, clear: B1, burnt: B1, hot: F4,
    hot_usual: F4, haze_hot: float, eligible: B1, min_drop: F4, settings: F8, counts: I8,
    state_days: I8, state_int: I8, strength: F4, depth: F4, early_depth: F4, onset: F4,
    stable_history: B1, ever_monitored: B1, pending: B1, to_learn: B1, date_offsets: F4,
) -> None:  # fmt: skip
    """Monitor the dates ``[block_start, block_end)`` against one fit (``harmonic``'s
    per-date loop). ``settings`` = (z, recover_z, outlier_z, timing_days, trough_share,
    second_drop_onset: the first break look's drop, in break sizes of its deepest index, under
    which an open alert can be re-dated at a second drop; regrowth_peak_share: a replanting is
    confirmed only where the prediction lies within this share of a break of its annual
    peak); ``season_depth``: the primary index's peak-to-trough depth of the pixel's fitted
    year (infinite before its history has seen one); ``burnt`` (T, N): char looks, whose
    second drop keeps an alert's date ((1, 1) where no burn is screened); ``onset`` holds
    that drop;
    ``counts`` = (confirm_count, recover_count, regrowth_days, transient_days,
    second_drop_days or -1, spatial normalisation 0/1, min_reference_pixels,
    reference_sample, season_days or -1, dip_days, regrowth_in_leaf 0/1, learn_regrowth
    0/1); ``state_days`` rows = first, confirmed, withdrawn_first, harvest_first, dip_day
    (the last harvest-like dip's first day), hist_first (the open dip of a pixel not
    monitored), last_break; ``state_int`` rows = run, back. ``haze_hot`` < 0: no haze
    screen."""
    z, recover_z, outlier_z, timing_days, trough_share, second_drop_onset = settings[:6]
    regrowth_peak_share = settings[6]
    confirm_count, recover_count, regrowth_days, transient_days = counts[:4]
    second_drop_days, normalise, min_reference, sample_size = counts[4:8]
    season_days, dip_days, regrowth_in_leaf, learn_regrowth = counts[8:12]
    n_indices, n_pixels, n_params = beta.shape
    first, confirmed = state_days[0], state_days[1]
    withdrawn_first, harvest_first, dip_day = state_days[2], state_days[3], state_days[4]
    hist_first, last_break = state_days[5], state_days[6]
    run, back = state_int[0], state_int[1]
    raw = np.empty((n_indices, n_pixels), dtype=np.float32)
    sd = np.empty((n_indices, n_pixels), dtype=np.float32)
    ok = np.empty(n_pixels, dtype=np.bool_)
    in_leaf = np.empty(n_pixels, dtype=np.bool_)  # predicted near the annual peak
    monitored = np.empty(n_pixels, dtype=np.bool_)
    reference = np.empty(n_pixels, dtype=np.int64)
    centre = np.zeros(n_indices, dtype=np.float32)
    spread = np.zeros(n_indices, dtype=np.float32)
    for position in range(block_start, block_end):
        day = days[position]
        n_reference = 0
        for n in range(n_pixels):
            monitored[n] = eligible[n] or first[n] >= 0
            ever_monitored[n] |= monitored[n]
            looked = clear[position, n]
            if looked and haze_hot >= 0 and hot[position, n] - hot_usual[n] > haze_hot:
                looked = False
            ok[n] = looked
            for k in range(n_indices):
                curve = 0.0
                slope = 0.0
                for p in range(n_params):
                    curve += design[position, p] * beta[k, n, p]
                    slope += slope_design[position, p] * beta[k, n, p]
                predicted = np.float32(curve)
                trough = max(peak[k, n] - predicted, np.float32(0.0))
                if k == 0:
                    in_leaf[n] = trough <= regrowth_peak_share * min_drop[0]
                spread_timing = np.float32(timing_days) * np.float32(abs(slope))
                spread_trough = np.float32(trough_share) * trough
                sd[k, n] = np.float32(
                    math.sqrt(sigma[k, n] ** 2 + spread_timing**2 + spread_trough**2)
                )
                raw[k, n] = values[k, position, n] - predicted
            if looked and monitored[n] and first[n] < 0:
                reference[n_reference] = n
                n_reference += 1
        if normalise and n_reference >= min_reference:
            # a few thousand pixels pin the date's offset to well under a sigma
            step = max(1, n_reference // sample_size)
            picked = reference[:n_reference:step]
            sample = np.empty(picked.shape[0], dtype=np.float32)
            for k in range(n_indices):
                for j in range(picked.shape[0]):
                    sample[j] = raw[k, picked[j]]
                centre[k], spread[k] = _shorth(sample)
                date_offsets[k, position] = centre[k]
            for n in range(n_pixels):
                for k in range(n_indices):
                    raw[k, n] -= centre[k]
                    sd[k, n] = np.float32(math.sqrt(sd[k, n] ** 2 + spread[k] ** 2))
        for n in range(n_pixels):
            if not ok[n]:
                if first[n] >= 0:
                    pending[position, n] = False
                to_learn[position, n] = False
                continue
            brk = True
            normal = True
            inlying = True
            for k in range(n_indices):
                r, s = raw[k, n], sd[k, n]
                if not (r < -z * s and r <= -min_drop[k]):
                    brk = False
                if not (r > -recover_z * s and r > -min_drop[k]):
                    normal = False
                if not (r >= -outlier_z * s):
                    inlying = False
            if not monitored[n]:
                to_learn[position, n] = inlying
                pending[position, n] = False
                if brk or (normal and hist_first[n] >= 0):  # a dip goes on, or ends
                    _history_episode(n, day, brk, normal, raw, min_drop, confirm_count,
                                     transient_days, dip_days, hist_first, run, depth,
                                     dip_day, stable_history, last_break, position, pending,
                                     to_learn, learn_regrowth != 0 and haze_hot >= 0,
                                     days)  # fmt: skip
                continue
            if hist_first[n] >= 0:  # monitored from here on: its open dip is no history
                for t in range(_first_row(days, position, hist_first[n]), position):
                    pending[t, n] = False
                hist_first[n] = -1
            if brk and first[n] < 0 and season_days >= 0 and dip_day[n] >= 0:
                since = day - dip_day[n]
                off = since % 365.25
                if since >= 300 and min(off, 365.25 - off) <= season_days:
                    brk = False
                    stable_history[n] = False
                    eligible[n] = False
            if brk and first[n] < 0:
                first[n] = day
                run[n] = 0
                strength[n] = 0.0
                onset[n] = _drop_in_breaks(raw, min_drop, n, season_depth[n])
                for k in range(n_indices):
                    depth[k, n] = 0.0
                    early_depth[k, n] = 0.0
            open_ = first[n] >= 0
            to_learn[position, n] = inlying and not open_ and not brk
            pending[position, n] = open_
            if brk:
                run[n] += 1
                back[n] = 0
                last_break[n] = day
                z_primary = -raw[0, n] / sd[0, n]
                strength[n] = max(strength[n], z_primary)
                for k in range(n_indices):
                    depth[k, n] = min(depth[k, n], raw[k, n])
                if second_drop_days >= 0:
                    age = day - first[n]
                    if age < second_drop_days:
                        for k in range(n_indices):
                            early_depth[k, n] = min(early_depth[k, n], raw[k, n])
                    else:
                        # a first look already a clearing's depth (a cut, its slash drying
                        # before a burn) is not a partial level: its alert keeps its date
                        second = onset[n] < second_drop_onset
                        if burnt.shape[0] > 1 and burnt[position, n]:
                            second = False
                        for k in range(n_indices):
                            if not (raw[k, n] <= early_depth[k, n] - min_drop[k]):
                                second = False
                        if second:
                            # a leaf-off or a fire alerted before the clearing: the alert
                            # is the clearing's, dated and confirmed from its own looks
                            first[n] = day
                            run[n] = 1
                            confirmed[n] = -1
                            strength[n] = z_primary
                            onset[n] = _drop_in_breaks(raw, min_drop, n, season_depth[n])
                            for k in range(n_indices):
                                depth[k, n] = raw[k, n]
                                early_depth[k, n] = raw[k, n]
                if confirmed[n] < 0 and run[n] >= confirm_count:
                    confirmed[n] = day
            if not (normal and open_):
                continue
            back[n] += 1
            if not (confirmed[n] < 0 or back[n] >= recover_count):
                continue
            # back at the pre-event state: withdrawn, or a replanted cut
            age = day - first[n]
            if confirmed[n] >= 0 and age >= regrowth_days and regrowth_in_leaf and not in_leaf[n]:
                back[n] = 0  # a canopy is confirmed only in its season
                continue
            replanted = confirmed[n] >= 0 and age >= regrowth_days
            if replanted:
                harvest_first[n] = first[n]
                withdrawn_first[n] = -1
            else:
                withdrawn_first[n] = first[n]
                harvest_first[n] = -1
            # a late leaf-off teaches the pixel its season, a cut that closed again its looks
            if (learn_regrowth and replanted) or (not replanted and run[n] >= confirm_count):
                for t in range(position + 1):
                    to_learn[t, n] |= pending[t, n]
            _dip_came_back(n, first[n], age, confirmed[n] >= 0, depth, min_drop, dip_days,
                           transient_days, last_break, dip_day, stable_history)  # fmt: skip
            for t in range(position + 1):
                pending[t, n] = False
            first[n] = -1
            confirmed[n] = -1
            run[n] = 0
            back[n] = 0
