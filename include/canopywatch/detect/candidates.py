"""XGBoost confidence for the harmonic detector's candidate alerts (its polygons): opt-in
(``canopywatch detect --confidence xgboost``), not the default.

The statistical detector decides *whether* and *when* (break, lifecycle, status); this
model only scores how likely each active polygon is a real clearing, and that score becomes
its ``confidence`` (high alerts in 0.80-0.99, low ones in 0.01-0.79, so the status and the
confidence level always agree). Nothing is dropped or added by it.

Its inputs are *relative* on purpose: change inside the polygon minus the change of the
monitored forest ring around it on the same dates (per index, NDVI, NBR and NDMI: the drop,
the first look's drop, the recovery since the lowest look, the pre-event noise), the
pre-event spatial texture inside against the ring, the polygon's size, shape and date
spread, the evidence counts and the statistical confidence. Absolute pre-event levels and
raw band differences are left out: they tell one generator's forest from its crops
perfectly and another's not at all (trained on one generator, tested on the other: AUC
0.09).

Why it is not the default (``benchmarks/candidate_scoring.py``): trained on the landscapes
generator it ranks the simulator's alerts better than the statistical confidence, but
trained on the simulator (since it has plantations of its own) it ranks the landscapes
generator's worse, below chance: the plantation cues it learns are each generator's own.
The evaluators' data are a third generator and real series, so it stays opt-in.

The shipped model (``candidate_model/``) is trained on randomised settings of both
generators of the dev kit (``python -m canopywatch_dev.detection train-candidates``); it
needs Sentinel-2 reflectance.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio.features
from rasterio.windows import Window
from scipy import ndimage

from canopywatch.alert_schema import ACTIVE_STATUSES, HIGH_CONFIDENCE, confidence_level
from canopywatch.dates import days_since_epoch
from canopywatch.detect.baseline import PixelAlerts
from canopywatch.detect.indices import compute_index
from canopywatch.detect.model import TrainedModel, load_model
from canopywatch.detect.observations import ObservationStack, StackSource

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
MODEL_DIR = Path(__file__).with_name("candidate_model")
RING_PX = 3  # the forest ring around a polygon that its change is measured against
WIDE_RING_PX = 6  # when the near ring holds fewer than MIN_RING_PX monitored pixels
MIN_RING_PX = 5
MARGIN_PX = WIDE_RING_PX + 2
GROUP_PX = 512  # polygons whose boxes fit one such tile are read together
# normalised differences only: scale-free, where a band's reflectance is not
SERIES: tuple[str, ...] = ("ndvi", "nbr", "ndmi")
PER_SERIES: tuple[str, ...] = ("drop", "drop_first", "recov", "pre_sd")
CANDIDATE_FEATURES: tuple[str, ...] = (
    "area_px",
    "score",
    "date_iqr",
    "compact",
    "n_pre",
    "n_post",
    "days_left",
    *(f"{series}_{name}" for series in SERIES for name in PER_SERIES),
    "homog",
)
LOW_BAND = (0.01, HIGH_CONFIDENCE - 0.01)
HIGH_BAND = (HIGH_CONFIDENCE, 0.99)


def load_scorer(directory: Path = MODEL_DIR) -> TrainedModel:
    """The shipped candidate scorer (or the one in ``directory``), refused when its features
    are not this release's."""
    model = load_model(directory)
    if tuple(model.features) != CANDIDATE_FEATURES:
        raise ValueError(
            f"{directory}: the model's features are not this release's candidate features "
            "(retrain with python -m canopywatch_dev.detection train-candidates)"
        )
    return model


def _series(stack: ObservationStack) -> dict[str, FloatArray]:
    return {name: compute_index(name, stack.bands) for name in SERIES}


def _date_medians(values: FloatArray, clear: BoolArray, mask: BoolArray) -> FloatArray:
    """Per date, the median of ``values`` over the clear pixels of ``mask`` (NaN: none)."""
    picked = np.where(clear[:, mask], values[:, mask], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians: FloatArray = np.nanmedian(picked, axis=1).astype(np.float32)
    return medians


def polygon_features(
    stack: ObservationStack,
    inside: BoolArray,
    flagged: BoolArray,
    monitored: BoolArray,
    first_day: npt.NDArray[np.int64],
    alert_day: int,
    statistical_confidence: float,
) -> FloatArray:
    """CANDIDATE_FEATURES of one polygon (``inside``) on ``stack``'s grid; NaN where a
    feature has too few clear looks (XGBoost takes NaN as missing)."""
    features = dict.fromkeys(CANDIDATE_FEATURES, np.nan)
    n = int(inside.sum())
    ring = ndimage.binary_dilation(inside, iterations=RING_PX) & ~flagged & monitored
    if ring.sum() < MIN_RING_PX:
        ring = ndimage.binary_dilation(inside, iterations=WIDE_RING_PX) & ~flagged
    features["area_px"] = float(np.log(max(1, n)))
    features["score"] = statistical_confidence
    dates = first_day[inside]
    dates = dates[dates >= 0]
    if dates.size:
        q75, q25 = np.percentile(dates, [75, 25])
        features["date_iqr"] = float(q75 - q25)
    edge = inside & ~ndimage.binary_erosion(inside)
    features["compact"] = float(n / max(1, int(edge.sum())) / np.sqrt(max(1, n)))
    days = stack.days
    features["days_left"] = float(days[-1] - alert_day)
    clear = stack.clear
    seen_inside = clear[:, inside].mean(axis=1) >= 0.5
    seen_ring = clear[:, ring].mean(axis=1) >= 0.5 if ring.any() else seen_inside
    pre = seen_inside & seen_ring & (days < alert_day)
    post = seen_inside & seen_ring & (days >= alert_day)
    features["n_pre"], features["n_post"] = float(pre.sum()), float(post.sum())
    if pre.sum() >= 2 and post.sum() >= 1 and ring.any():
        for name, values in _series(stack).items():
            own = _date_medians(values, clear, inside)
            relative = own - _date_medians(values, clear, ring)
            before = float(np.nanmedian(relative[pre]))
            after = relative[post]
            features[f"{name}_drop"] = float(np.nanmedian(after)) - before
            features[f"{name}_drop_first"] = float(after[0]) - before
            features[f"{name}_recov"] = float(np.nanmean(after[-2:]) - np.nanmin(after))
            features[f"{name}_pre_sd"] = float(np.nanstd(relative[pre]))
            if name == "ndvi":
                # even-aged stands are smoother than the forest around them, before any cut
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    level = np.nanmedian(np.where(clear[pre], values[pre], np.nan), axis=0)
                spread = float(np.nanstd(level[ring]))
                features["homog"] = float(np.nanstd(level[inside])) / max(spread, 1e-3)
    return np.asarray([features[name] for name in CANDIDATE_FEATURES], dtype=np.float32)


def _day(value: object) -> int:
    return days_since_epoch(value.date() if hasattr(value, "date") else value)  # type: ignore[arg-type]


def candidate_matrix(
    source: StackSource, alerts: gpd.GeoDataFrame, pixel_alerts: PixelAlerts
) -> FloatArray | None:
    """CANDIDATE_FEATURES (one row per row of ``alerts``, geometry in the grid's CRS), or
    None when the source has no Sentinel-2 reflectance. Polygons whose boxes fall in one
    GROUP_PX tile are read in one window."""
    grid = source.grid
    matrix = np.full((len(alerts), len(CANDIDATE_FEATURES)), np.nan, dtype=np.float32)
    if alerts.empty:
        probe = source.read(Window(0, 0, 1, 1))
        return matrix if probe.has_reflectance else None
    labels = rasterio.features.rasterize(
        [(geom, number) for number, geom in enumerate(alerts.geometry, start=1)],
        out_shape=(grid.height, grid.width),
        transform=grid.transform,
        fill=0,
        dtype="int32",
    )
    boxes = ndimage.find_objects(labels, max_label=len(alerts))
    flagged = pixel_alerts.first_day >= 0
    # each polygon's box with its margin (clipped to the grid): every array below is that small
    cuts = {
        row: (
            slice(max(0, box[0].start - MARGIN_PX), min(grid.height, box[0].stop + MARGIN_PX)),
            slice(max(0, box[1].start - MARGIN_PX), min(grid.width, box[1].stop + MARGIN_PX)),
        )
        for row, box in enumerate(boxes)
        if box is not None
    }
    groups: dict[tuple[int, int], list[int]] = {}
    for row, cut in cuts.items():
        groups.setdefault((cut[0].start // GROUP_PX, cut[1].start // GROUP_PX), []).append(row)
    for rows in groups.values():
        for window, members in _windows(rows, cuts):
            stack = source.read(window)
            if not stack.has_reflectance:
                return None
            r0, c0 = int(window.row_off), int(window.col_off)
            for row in members:
                cut = cuts[row]
                local = stack.crop(
                    slice(cut[0].start - r0, cut[0].stop - r0),
                    slice(cut[1].start - c0, cut[1].stop - c0),
                )
                alert = alerts.iloc[row]
                matrix[row] = polygon_features(
                    local,
                    labels[cut] == row + 1,
                    flagged[cut],
                    pixel_alerts.monitored[cut],
                    pixel_alerts.first_day[cut],
                    _day(alert["alert_date"]),
                    float(alert["confidence"]),
                )
    return matrix


def _windows(
    rows: Sequence[int], cuts: Mapping[int, tuple[slice, slice]]
) -> list[tuple[Window, list[int]]]:
    """One read window for ``rows`` when their cuts fit a GROUP_PX + margin square, else
    one per polygon."""

    def window(members: Sequence[int]) -> Window:
        top = min(cuts[r][0].start for r in members)
        left = min(cuts[r][1].start for r in members)
        bottom = max(cuts[r][0].stop for r in members)
        right = max(cuts[r][1].stop for r in members)
        return Window(left, top, right - left, bottom - top)

    together = window(rows)
    limit = GROUP_PX + 2 * MARGIN_PX
    if together.height <= limit and together.width <= limit:
        return [(together, list(rows))]
    return [(window([row]), [row]) for row in rows]


def rescale(probability: FloatArray, high: BoolArray) -> npt.NDArray[np.float64]:
    """The model's probability within the status's confidence band, to 4 decimals."""
    p = probability.astype(np.float64)
    low_band = LOW_BAND[0] + (LOW_BAND[1] - LOW_BAND[0]) * p
    high_band = HIGH_BAND[0] + (HIGH_BAND[1] - HIGH_BAND[0]) * p
    scaled = np.round(np.where(high, high_band, low_band), 4).astype(np.float64)
    return scaled


def score_candidates(
    source: StackSource,
    alerts: gpd.GeoDataFrame,
    pixel_alerts: PixelAlerts,
    scorer: TrainedModel,
) -> gpd.GeoDataFrame | None:
    """``alerts`` with the active ones' confidence from ``scorer``, every row's
    ``model_version`` naming the scorer too; None for a stack without Sentinel-2
    reflectance (the statistical confidence stands)."""
    active = alerts["status"].isin(ACTIVE_STATUSES).to_numpy() if len(alerts) else np.zeros(0, bool)
    chosen = alerts[active].reset_index(drop=True)
    matrix = candidate_matrix(source, chosen, pixel_alerts)
    if matrix is None:
        log.info("candidate scoring skipped: the stack has no Sentinel-2 reflectance")
        return None
    scored = alerts.copy()
    if len(alerts):
        scored["model_version"] = scored["model_version"].astype(str) + f"+{scorer.version}"
    if not active.any():
        return scored
    probability = scorer.predict(matrix)
    confidence = rescale(probability, (chosen["status"] == "high").to_numpy())
    scored.loc[active, "confidence"] = confidence
    scored.loc[active, "confidence_level"] = [confidence_level(float(c)) for c in confidence]
    log.info(
        "scored %d candidate alert(s) with %s: median confidence %.2f",
        int(active.sum()),
        scorer.version,
        float(np.median(confidence)),
    )
    return scored
