"""The harmonic detector's compiled loops against plain numpy on generated data."""

from __future__ import annotations

import numpy as np

from canopywatch.detect import harmonic_kernels as kernels
from canopywatch.detect.harmonic import _History, design_matrix, phase_design, slope_design


def _series(seed: int, n_dates: int = 60, n_pixels: int = 50):
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(np.arange(19000, 19730), n_dates, replace=False)).astype(np.int64)
    design = design_matrix(days, 2)
    truth = rng.normal(0.0, 0.2, (2, n_pixels, design.shape[1]))
    values = np.einsum("tp,knp->ktn", design, truth) + rng.normal(0, 0.02, (2, n_dates, n_pixels))
    weights = rng.random((n_dates, n_pixels)) < 0.7
    weights[:, 0] = False  # a pixel with no clear look
    return days, design, values.astype(np.float32), weights


def test_normal_equations_and_ridge_solve_match_numpy():
    days, design, values, weights = _series(1)
    offsets = np.linspace(-0.01, 0.01, days.size, dtype=np.float32)[None, :].repeat(2, axis=0)
    history = _History.empty(values.shape[2], design.shape[1], 2)
    history.add_rows(design, np.arange(days.size), values, offsets, weights)
    beta, sigma = history.solve(2.0, [0.0, 0.05])
    ridge = np.diag([1e-6] + [2.0] * (design.shape[1] - 1))
    for n in range(values.shape[2]):
        rows = weights[:, n]
        x = design[rows]
        assert history.count[n] == rows.sum()
        for k in range(2):
            y = (values[k, rows, n] - offsets[k, rows]).astype(np.float64)
            expected = np.linalg.solve(x.T @ x + ridge, x.T @ y)
            np.testing.assert_allclose(beta[k, n], expected, rtol=1e-6, atol=1e-9)
            rss = ((y - x @ expected) ** 2).sum()
            want = max(np.sqrt(rss / max(rows.sum() - 1, 1)), [0.0, 0.05][k])
            np.testing.assert_allclose(sigma[k, n], want, rtol=1e-4, atol=1e-6)
    assert np.all(beta[:, 0] == 0.0) and sigma[1, 0] == np.float32(0.05)  # nothing learnt: floor


def test_a_refit_solves_only_what_changed_and_adds_up():
    days, design, values, weights = _series(2)
    once = _History.empty(values.shape[2], design.shape[1], 2)
    once.add_rows(
        design, np.arange(days.size), values, np.zeros((2, days.size), np.float32), weights
    )
    twice = _History.empty(values.shape[2], design.shape[1], 2)
    half = days.size // 2
    zeros = np.zeros((2, days.size), np.float32)
    twice.add_rows(design, np.arange(half), values, zeros, weights[:half])
    twice.solve(2.0, [0.0, 0.0])
    later = weights[half:].copy()
    later[:, 5:] = False  # only pixels 0-4 learn something new
    rest = weights[half:] & ~later
    twice.add_rows(design, np.arange(half, days.size), values, zeros, later)
    assert np.flatnonzero(twice.changed).tolist() == [n for n in range(5) if later[:, n].any()]
    twice.add_rows(design, np.arange(half, days.size), values, zeros, rest)
    np.testing.assert_allclose(twice.normal, once.normal, rtol=1e-12)
    np.testing.assert_allclose(twice.solve(2.0, [0.0, 0.0])[0], once.solve(2.0, [0.0, 0.0])[0])


def _numpy_shorth(sample: np.ndarray) -> tuple[float, float]:
    ordered = np.sort(sample)
    half = ordered.size // 2 + 1
    widths = ordered[half - 1 :] - ordered[: ordered.size - half + 1]
    start = int(np.argmin(widths))
    low, high = ordered[start], ordered[start + half - 1]
    return 0.5 * (low + high), (high - low) / 1.349


def test_shorth_ignores_a_clearing_that_a_median_follows():
    rng = np.random.default_rng(3)
    # 60 % of an area unchanged around 0, 40 % cleared (residuals near -0.4)
    sample = np.concatenate([rng.normal(0, 0.02, 600), rng.normal(-0.4, 0.05, 400)])
    sample = sample.astype(np.float32)
    centre, scale = kernels._shorth(sample)
    assert abs(centre) < 0.01 and 0.01 < scale < 0.04
    assert np.median(sample) < -0.01  # what the median would have removed from every pixel
    np.testing.assert_allclose((centre, scale), _numpy_shorth(sample), rtol=1e-5, atol=1e-7)


def test_annual_range_and_slope_design_follow_the_curve():
    rng = np.random.default_rng(4)
    beta = rng.normal(0, 0.1, (2, 30, 5))
    mean, peak, trough = kernels.annual_range(beta, phase_design(2))
    year = np.arange(0, 365, dtype=np.int64)
    curve = np.einsum("tp,knp->knt", design_matrix(year, 2), beta)
    np.testing.assert_allclose(mean, curve.mean(axis=2), atol=2e-3)
    assert np.all(peak <= curve.max(axis=2) + 1e-6) and np.all(peak >= curve.max(axis=2) - 0.01)
    assert np.all(trough >= curve.min(axis=2) - 1e-6) and np.all(trough <= curve.min(axis=2) + 0.01)
    # the derivative basis is the finite difference of the curve
    days = np.arange(19000, 19100, dtype=np.int64)
    slope = slope_design(days, 2) @ beta[0, 0]
    numeric = np.gradient(design_matrix(days, 2) @ beta[0, 0])
    np.testing.assert_allclose(slope[1:-1], numeric[1:-1], atol=1e-4)


def test_windows_scored_on_two_threads_match_one_at_a_time():
    """The compiled loops run without the GIL: two windows at once must give the same
    per-pixel result as one after the other (no shared scratch between threads)."""
    from canopywatch.detect.detector import HarmonicDetector, detect_area
    from canopywatch.detect.observations import ArraySource
    from canopywatch_dev.landscapes import LandscapeConfig, generate

    stack = generate(LandscapeConfig(seed=11, kind="mixed", size_px=64)).stack()

    one = detect_area(ArraySource(stack), HarmonicDetector(), aoi="t", window_size=32, workers=1)
    two = detect_area(ArraySource(stack), HarmonicDetector(), aoi="t", window_size=32, workers=2)
    assert (one.pixel_alerts.status > 0).sum() > 50  # the landscape has clearings to find
    for name in ("first_day", "confirmed_day", "status", "score", "monitored"):
        assert np.array_equal(getattr(one.pixel_alerts, name), getattr(two.pixel_alerts, name)), (
            name
        )
