"""Accuracy of alerts against reference data (user labels, or simulator truth built by
``canopywatch_dev.detection.reference``).

* Event level: an alert is a true positive when at least ``overlap_share`` of it is
  cleared in the reference; a reference event is detected when alerts cover at least
  ``overlap_share`` of it (or 0.5 ha of a large one). User's accuracy (precision) and
  producer's accuracy (recall) for events >= 0.1 ha and >= 0.5 ha.
* Pixel F1 and IoU of the alert map.
* Olofsson et al. (2014): a stratified random sample of pixels from the map strata
  (alert / no alert), the error matrix in area proportions, user's/producer's/overall
  accuracy and the deforested area with 95 % confidence intervals.
* Dates count: an alert detects an event only when its ``alert_date`` is no earlier than
  the event's start minus ``date_tolerance_days``. Alerts dated earlier than the start of
  every event they overlap are *early alerts*: reported as their own count and counted as
  false alerts for user's accuracy; an event covered only by early alerts is missed.
* Latency: days (and clear observations) from a clearing's start to its first timely alert,
  never negative (an alert within the tolerance before the start counts as 0).
* False-alert area per land-cover class when the reference has a land-cover map.
* False alerts split into those on stable forest and those on non-forest change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio.features
from affine import Affine

from canopywatch.dates import days_since_epoch

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
Z95 = 1.959964
# an alert may be dated this much before the event's start and still detect it: reference
# start dates are acquisition dates, and a clearing begun between two acquisitions is dated
# by the later one in the labels but may already show on the earlier one
DATE_TOLERANCE_DAYS = 5


@dataclass(frozen=True)
class ReferenceEvent:
    number: int  # value in ReferenceData.event_raster
    start_day: int
    kind: str = "clearing"


@dataclass(frozen=True)
class ReferenceData:
    """Reference on the stack grid: per-pixel clearing day and the events they belong to."""

    clearing_day: IntArray  # (H, W) day since epoch, -1 never cleared
    event_raster: Int32Array  # (H, W) ReferenceEvent.number, 0 none
    events: tuple[ReferenceEvent, ...]
    transform: Affine
    stable_forest: BoolArray | None = None  # forest never cleared
    other_change: BoolArray | None = None  # non-deforestation change (harvest, drying, ...)
    # land-cover class per pixel and the class names, for false-alert area per class
    landcover: Int32Array | None = None
    landcover_names: dict[int, str] = field(default_factory=dict)
    other_change_day: IntArray | None = None  # (H, W) day such a change began, -1 undated

    @property
    def pixel_area_ha(self) -> float:
        t = self.transform
        return abs(t.a * t.e - t.b * t.d) / 10000.0


def rasterize_alerts(
    alerts: gpd.GeoDataFrame, shape_hw: tuple[int, int], transform: Affine
) -> Int32Array:
    """Alert number (row + 1) per pixel, 0 elsewhere."""
    if alerts.empty:
        return np.zeros(shape_hw, dtype=np.int32)
    shapes = [(geom, number) for number, geom in enumerate(alerts.geometry, start=1)]
    burned: Int32Array = rasterio.features.rasterize(
        shapes, out_shape=shape_hw, transform=transform, fill=0, dtype="int32"
    )
    return burned


@dataclass
class EventScores:
    min_area_ha: float
    n_alerts: int
    n_true_alerts: int
    n_events: int
    n_detected: int
    precision: float  # user's accuracy
    recall: float  # producer's accuracy

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


@dataclass
class Evaluation:
    as_of_day: int
    events: dict[str, EventScores]
    pixel_precision: float
    pixel_recall: float
    pixel_f1: float
    pixel_iou: float
    latency_days: list[float]
    latency_clear_obs: list[float]
    false_alerts_stable_forest: int
    false_alerts_other_change: int
    false_alerts_other: int
    early_alerts: int = 0
    false_alert_ha_by_class: dict[str, float] = field(default_factory=dict)
    area: dict[str, Any] = field(default_factory=dict)
    per_kind_recall: dict[str, tuple[int, int]] = field(default_factory=dict)
    # per row of the scored alerts: True when the alert is a timely true positive
    true_alerts: list[bool] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            key: value
            for key, value in asdict(self).items()
            if key not in {"events", "true_alerts"}
        }
        out["latency_days"] = latency_summary(self.latency_days)
        out["latency_clear_obs"] = latency_summary(self.latency_clear_obs)
        for key, scores in self.events.items():
            out[f"events_{key}"] = {**asdict(scores), "f1": scores.f1}
        return out


def _f1(precision: float, recall: float) -> float:
    if not (precision + recall) > 0 or math.isnan(precision) or math.isnan(recall):
        return 0.0
    return 2 * precision * recall / (precision + recall)


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": math.nan, "p90": math.nan}
    array = np.asarray(values, dtype=float)
    return {
        "n": int(array.size),
        "median": float(np.median(array)),
        "p90": float(np.percentile(array, 90)),
    }


def _day(value: Any) -> int:
    import datetime as dt

    if isinstance(value, str):
        return days_since_epoch(dt.date.fromisoformat(value[:10]))
    if isinstance(value, dt.datetime):
        return days_since_epoch(value.date())
    if isinstance(value, dt.date):
        return days_since_epoch(value)
    raise ValueError(f"not a date: {value!r}")


def evaluate_alerts(
    alerts: gpd.GeoDataFrame,
    reference: ReferenceData,
    *,
    as_of_day: int,
    clear: BoolArray | None = None,
    days: IntArray | None = None,
    overlap_share: float = 0.3,
    date_tolerance_days: int = DATE_TOLERANCE_DAYS,
    min_areas_ha: Sequence[float] = (0.1, 0.5),
    olofsson_samples: tuple[int, int] = (200, 800),
    seed: int = 0,
) -> Evaluation:
    """Score ``alerts`` (in the reference grid's CRS) as of ``as_of_day``.

    ``clear`` (T, H, W) and ``days`` (T,) give latencies in clear observations too.
    """
    shape_hw = reference.clearing_day.shape
    alert_raster = rasterize_alerts(alerts, shape_hw, reference.transform)
    cleared = (reference.clearing_day >= 0) & (reference.clearing_day <= as_of_day)
    event_raster = np.where(cleared, reference.event_raster, 0)
    pixel_ha = reference.pixel_area_ha
    n_alerts = len(alerts)
    alert_days = np.array([_day(v) for v in alerts["alert_date"]], dtype=np.int64)
    alert_area_px = np.bincount(alert_raster.ravel(), minlength=n_alerts + 1)
    events_by_number = {event.number: event for event in reference.events}
    n_event_ids = max(int(reference.event_raster.max()), max(events_by_number, default=0)) + 1
    event_start = np.full(n_event_ids, np.iinfo(np.int64).max, dtype=np.int64)
    for number, event in events_by_number.items():
        event_start[number] = event.start_day
    # an alert pixel is timely on an event pixel when the alert is not dated before the event
    alert_day_px = np.concatenate([[0], alert_days])[alert_raster]
    on_event = (alert_raster > 0) & (event_raster > 0)
    timely_px = on_event & (alert_day_px >= event_start[event_raster] - date_tolerance_days)
    early_px = on_event & ~timely_px
    alert_true_px = np.bincount(alert_raster[timely_px], minlength=n_alerts + 1)
    alert_early_px = np.bincount(alert_raster[early_px], minlength=n_alerts + 1)
    alert_is_true = alert_true_px >= overlap_share * np.maximum(alert_area_px, 1)
    alert_is_true[0] = False
    alert_is_early = ~alert_is_true & (
        alert_early_px >= overlap_share * np.maximum(alert_area_px, 1)
    )
    alert_is_early[0] = False

    event_px = np.bincount(event_raster.ravel(), minlength=n_event_ids)
    covered_px = np.bincount(event_raster[timely_px], minlength=n_event_ids)

    scores: dict[str, EventScores] = {}
    latencies: list[float] = []
    latency_obs: list[float] = []
    per_kind: dict[str, list[int]] = {}
    n_early = 0
    for min_area in min_areas_ha:
        min_px = min_area / pixel_ha - 1e-9
        alert_ok = alert_area_px >= min_px
        alert_ok[0] = False
        n_al = int(alert_ok.sum())
        n_true = int((alert_ok & alert_is_true).sum())
        if min_area == min_areas_ha[0]:
            n_early = int((alert_ok & alert_is_early).sum())
        n_events = 0
        n_detected = 0
        for number, event in events_by_number.items():
            size = int(event_px[number]) if number < event_px.size else 0
            if size < min_px or size == 0:
                continue
            n_events += 1
            needed = min(overlap_share * size, 0.5 / pixel_ha)
            detected = covered_px[number] >= needed
            n_detected += int(detected)
            if min_area == min_areas_ha[0]:
                tally = per_kind.setdefault(event.kind, [0, 0])
                tally[0] += int(detected)
                tally[1] += 1
            if detected and min_area == min_areas_ha[0]:
                inside = event_raster == number
                hits = np.unique(alert_raster[inside & timely_px])
                first = int(alert_days[hits - 1].min())
                latencies.append(float(max(0, first - event.start_day)))
                if clear is not None and days is not None:
                    window = (days >= event.start_day) & (days <= first)
                    share = clear[window][:, inside].mean(axis=1) if window.any() else np.zeros(0)
                    latency_obs.append(float((share >= 0.5).sum()))
        precision = n_true / n_al if n_al else 1.0
        recall = n_detected / n_events if n_events else 1.0
        scores[f">={min_area:g}ha"] = EventScores(
            min_area, n_al, n_true, n_events, n_detected, precision, recall
        )

    mapped = alert_raster > 0
    # a pixel alert dated before the pixel's clearing is a false alert there, not a detection
    timely_pixel = mapped & cleared & (alert_day_px >= reference.clearing_day - date_tolerance_days)
    tp = int(timely_pixel.sum())
    fp = int((mapped & ~timely_pixel).sum())
    fn = int((cleared & ~timely_pixel).sum())
    pixel_precision = tp / (tp + fp) if tp + fp else 1.0
    pixel_recall = tp / (tp + fn) if tp + fn else 1.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0

    false_stable = false_other_change = false_other = 0
    for number in range(1, n_alerts + 1):
        if alert_is_true[number] or alert_area_px[number] == 0:
            continue
        inside = alert_raster == number
        if reference.other_change is not None and (
            reference.other_change[inside].mean() >= overlap_share
        ):
            false_other_change += 1
        elif reference.stable_forest is not None and reference.stable_forest[inside].mean() >= 0.5:
            false_stable += 1
        else:
            false_other += 1

    by_class: dict[str, float] = {}
    if reference.landcover is not None:
        false_px = mapped & ~timely_cleared_map(alert_raster, alert_is_true)
        classes, counts = np.unique(reference.landcover[false_px], return_counts=True)
        for value, n in zip(classes.tolist(), counts.tolist(), strict=True):
            name = reference.landcover_names.get(int(value), str(value))
            by_class[name] = round(float(n) * pixel_ha, 4)

    area = olofsson_estimate(
        mapped.ravel(), cleared.ravel(), olofsson_samples, pixel_ha, np.random.default_rng(seed)
    )
    return Evaluation(
        as_of_day=as_of_day,
        events=scores,
        pixel_precision=pixel_precision,
        pixel_recall=pixel_recall,
        pixel_f1=_f1(pixel_precision, pixel_recall),
        pixel_iou=iou,
        latency_days=latencies,
        latency_clear_obs=latency_obs,
        false_alerts_stable_forest=false_stable,
        false_alerts_other_change=false_other_change,
        false_alerts_other=false_other,
        early_alerts=n_early,
        false_alert_ha_by_class=by_class,
        area=area,
        per_kind_recall={kind: (hit, total) for kind, (hit, total) in per_kind.items()},
        true_alerts=[bool(v) for v in alert_is_true[1:]],
    )


def timely_cleared_map(alert_raster: Int32Array, alert_is_true: BoolArray) -> BoolArray:
    """Pixels of alerts that are true (timely) detections."""
    true_map: BoolArray = alert_is_true[alert_raster] & (alert_raster > 0)
    return true_map


def olofsson_estimate(
    map_change: BoolArray,
    reference_change: BoolArray,
    sample_sizes: tuple[int, int],
    pixel_area_ha: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Stratified estimation of Olofsson et al. (2014), strata = map classes.

    ``sample_sizes`` = (change stratum, no-change stratum); the sample is drawn without
    replacement from the map and labelled with the reference. Classes: 1 = deforestation.
    """
    strata = (map_change, ~map_change)
    total = map_change.size
    weights = np.array([s.sum() / total for s in strata])
    # counts[h, k]: sample units of map stratum h (0 change, 1 no change) with reference k
    counts = np.zeros((2, 2))
    sizes = np.zeros(2)
    for h, (stratum, n_wanted) in enumerate(zip(strata, sample_sizes, strict=True)):
        members = np.flatnonzero(stratum)
        n = min(n_wanted, members.size)
        if n == 0:
            continue
        chosen = rng.choice(members, size=n, replace=False)
        ref = reference_change[chosen]
        counts[h, 0] = ref.sum()
        counts[h, 1] = n - ref.sum()
        sizes[h] = n
    with np.errstate(invalid="ignore", divide="ignore"):
        row_share = np.where(sizes[:, None] > 0, counts / sizes[:, None], 0.0)
    proportions = weights[:, None] * row_share  # p_hk
    area_share = proportions[:, 0].sum()  # estimated deforested proportion
    variance = sum(
        weights[h] ** 2 * row_share[h, 0] * (1 - row_share[h, 0]) / (sizes[h] - 1)
        for h in range(2)
        if sizes[h] > 1
    )
    se_area = math.sqrt(variance)
    users = row_share[0, 0] if sizes[0] else math.nan
    se_users = math.sqrt(users * (1 - users) / (sizes[0] - 1)) if sizes[0] > 1 else math.nan
    overall = proportions[0, 0] + proportions[1, 1]
    se_overall = math.sqrt(
        sum(
            weights[h] ** 2 * row_share[h, h] * (1 - row_share[h, h]) / (sizes[h] - 1)
            for h in range(2)
            if sizes[h] > 1
        )
    )
    producers = proportions[0, 0] / area_share if area_share > 0 else math.nan
    se_producers = math.nan
    if area_share > 0 and sizes[0] > 1 and sizes[1] > 1:
        n_map = weights * total  # N_h. (pixels per map stratum)
        n_ref = (n_map[:, None] * row_share)[:, 0].sum()  # estimated N_.1
        term_own = n_map[0] ** 2 * (1 - producers) ** 2 * users * (1 - users) / (sizes[0] - 1)
        other = row_share[1, 0]
        term_other = producers**2 * n_map[1] ** 2 * other * (1 - other) / (sizes[1] - 1)
        se_producers = math.sqrt((term_own + term_other) / n_ref**2)
    total_ha = total * pixel_area_ha
    return {
        "mapped_deforestation_ha": float(map_change.sum() * pixel_area_ha),
        "estimated_deforestation_ha": float(area_share * total_ha),
        "estimated_deforestation_ci95_ha": float(Z95 * se_area * total_ha),
        "users_accuracy": float(users),
        "users_accuracy_ci95": float(Z95 * se_users),
        "producers_accuracy": float(producers),
        "producers_accuracy_ci95": float(Z95 * se_producers),
        "overall_accuracy": float(overall),
        "overall_accuracy_ci95": float(Z95 * se_overall),
        "sample_sizes": [int(s) for s in sizes],
    }
