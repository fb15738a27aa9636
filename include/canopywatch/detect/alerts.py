"""Alert polygons from per-pixel alert state (quicklooks: ``canopywatch.detect.quicklook``).

A polygon is a connected (8-neighbour) set of alerted pixels of at least the minimum
mapping unit, in the columns of the alert schema (``canopywatch.alert_schema``). Its
``alert_date`` is the first date by which a connected patch of its alerted pixels reached
the MMU (so stray early pixels, even more than the MMU of them scattered over a large
clearing, cannot back-date it), ``confirmed_date`` the date a connected patch of its
confirmed pixels did (None: low confidence).

Ids are stable across re-runs, as the clearing grows and as the weekly window moves:
they hash the area, the alert date and an anchor pixel, the one of the pixels that broke
on the alert date whose position hashes lowest. Pixels that join later (growth) are not
candidates; a stray pixel that a moved window adds or drops changes the anchor only if it
is the anchor itself (1 in the number of candidates), where an "earliest pixel" anchor is
that stray pixel whenever it is early. A withdrawn alert keeps its pixels' break dates, so
it gets the id it had while active and updates that alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio.crs
import rasterio.features
from affine import Affine
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import shape
from shapely.ops import unary_union

from canopywatch.alert_schema import (
    ACTIVE_STATUSES,
    DATETIME_FIELDS,
    FIELD_NAMES,
    HIGH_CONFIDENCE,
    confidence_level,
    method_of,
)
from canopywatch.dates import date_from_days
from canopywatch.detect.baseline import (
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_PLANTATION_HARVEST,
    STATUS_WITHDRAWN,
    PixelAlerts,
)
from canopywatch.messages import stable_id

FloatArray = npt.NDArray[np.float32]
HIGH_CONFIDENCE_FLOOR = HIGH_CONFIDENCE
LOW_CONFIDENCE_CAP = 0.79


@dataclass(frozen=True)
class AlertPolicy:
    mmu_ha: float = 0.1
    connectivity: int = 8
    # neighbouring pixels whose first-disturbance dates are this close belong together
    max_date_spread_days: int = 30
    # a group under the MMU joins the groups it touches whose median date is this close: a
    # small clearing whose pixels went on scattered dates over a season is one polygon
    fragment_merge_days: int = 90
    # touching groups that are each under the MMU join when their median dates lie within
    # this (a clearing in a leaf-off, whose pixels broke partly at the cut and partly
    # when the season failed to come back): neither is an alert alone, no polygon spans years
    fragment_pair_days: int = 365
    # an alert is dated when a connected patch of the MMU had broken (scattered early
    # pixels, a haze date or a leaf-off across a stand, do not date the clearing they join);
    # False: when any MMU of its pixels had
    date_by_patch: bool = True


def mmu_pixels(mmu_ha: float, pixel_area_m2: float) -> int:
    """Pixels a polygon needs to reach ``mmu_ha``, to the nearest pixel: one 30 m pixel
    (0.09 ha) meets a 0.1 ha unit within its resolution, ten 10 m pixels make 0.1 ha."""
    return max(1, round(mmu_ha * 10000.0 / pixel_area_m2))


def _connected(
    head: npt.NDArray[np.int64], tail: npt.NDArray[np.int64], n: int
) -> tuple[int, npt.NDArray[np.int64]]:
    """Connected components of an undirected graph of ``n`` nodes given by its edges."""
    graph = coo_matrix((np.ones(head.size, dtype=np.int8), (head, tail)), (n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), np.asarray(labels, dtype=np.int64)


def _dated_components(
    mask: npt.NDArray[np.bool_],
    first_day: npt.NDArray[np.int64],
    pixel_area_m2: float,
    policy: AlertPolicy,
) -> tuple[npt.NDArray[np.int32], int]:
    """Label raster of ``mask`` grouped by place and date (0 elsewhere) and its count.

    Two neighbouring pixels belong to one group when their first-disturbance dates lie
    within ``policy.max_date_spread_days`` of each other: a clearing that spreads week by
    week over months is one polygon (each pixel next to one cut a few days before it),
    while a clearing next to an older one, or a few stale pixels years before, are apart.
    A group under the MMU then joins the groups it touches whose median date is within
    ``policy.fragment_merge_days`` (a small clearing whose pixels went on scattered dates
    over a season), and touching groups both under the MMU join within
    ``policy.fragment_pair_days``; groups of at least the MMU are kept.
    """
    min_pixels = mmu_pixels(policy.mmu_ha, pixel_area_m2)
    out = np.zeros(mask.shape, dtype=np.int32)
    flat = np.flatnonzero(mask.ravel())
    if flat.size == 0:
        return out, 0
    height, width = mask.shape
    node = np.full(mask.size, -1, dtype=np.int64)
    node[flat] = np.arange(flat.size)
    node_grid = node.reshape(height, width)
    offsets = [(0, 1), (1, 0)]
    if policy.connectivity == 8:
        offsets += [(1, 1), (1, -1)]
    heads: list[npt.NDArray[np.int64]] = []
    tails: list[npt.NDArray[np.int64]] = []
    for dy, dx in offsets:
        x0, x1 = max(0, -dx), width - max(0, dx)
        a, b = node_grid[: height - dy, x0:x1], node_grid[dy:, x0 + dx : x1 + dx]
        both = (a >= 0) & (b >= 0)
        heads.append(a[both])
        tails.append(b[both])
    head, tail = np.concatenate(heads), np.concatenate(tails)
    days = first_day.ravel()[flat]
    close = np.abs(days[head] - days[tail]) <= policy.max_date_spread_days
    count, component = _connected(head[close], tail[close], flat.size)
    sizes = np.bincount(component, minlength=count)
    # fragments under the MMU join touching groups of a close median date
    medians = np.asarray(
        ndimage.median(days, labels=component + 1, index=np.arange(1, count + 1)), dtype=float
    ).reshape(count)
    ca, cb = component[head], component[tail]
    small_a, small_b = sizes[ca] < min_pixels, sizes[cb] < min_pixels
    apart = np.abs(medians[ca] - medians[cb])
    touching = (small_a | small_b) & (apart <= policy.fragment_merge_days)
    touching |= small_a & small_b & (apart <= policy.fragment_pair_days)
    touching &= ca != cb
    groups, group_of = _connected(ca[touching], cb[touching], count)
    group = group_of[component]
    group_sizes = np.bincount(group, minlength=groups)
    kept = np.flatnonzero(group_sizes >= min_pixels)
    renumber = np.zeros(groups, dtype=np.int32)
    renumber[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    out.ravel()[flat] = renumber[group]
    return out, int(kept.size)


def _mmu_day(
    days: npt.NDArray[np.int64], inside: npt.NDArray[np.bool_], k: int, policy: AlertPolicy
) -> int | None:
    """The first of ``days`` (within ``inside``, -1 = never) by which ``k`` of its pixels
    had reached it, in one connected patch (``policy.date_by_patch``) or anywhere; None when
    they never do. A patch only grows with the date, so a binary search over the distinct
    dates finds it."""
    dated = inside & (days >= 0)
    if not policy.date_by_patch:
        reached_days = np.sort(days[dated])
        return int(reached_days[k - 1]) if reached_days.size >= k else None
    candidates = np.unique(days[dated])
    structure = ndimage.generate_binary_structure(2, 2 if policy.connectivity == 8 else 1)

    def reached(day: int) -> bool:
        labels, count = ndimage.label(dated & (days <= day), structure=structure)
        return count > 0 and int(np.bincount(labels.ravel())[1:].max()) >= k

    if candidates.size == 0 or not reached(int(candidates[-1])):
        return None
    low, high = 0, candidates.size - 1
    while low < high:
        middle = (low + high) // 2
        if reached(int(candidates[middle])):
            high = middle
        else:
            low = middle + 1
    return int(candidates[low])


def polygonize(
    pixel_alerts: PixelAlerts,
    transform: Affine,
    crs: rasterio.crs.CRS,
    *,
    aoi: str,
    model_version: str,
    policy: AlertPolicy | None = None,
    method: str | None = None,
) -> gpd.GeoDataFrame:
    """Alert polygons in the alert schema's columns (``canopywatch.alert_schema``; the
    geometry in the grid's CRS) with their lifecycle ``status``: low / high (active
    deforestation alerts), withdrawn (the series came back) and plantation_harvest (cut
    and regrown). ``method`` defaults to the one ``model_version`` names."""
    policy = policy or AlertPolicy()
    chosen_method = method or method_of(model_version)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    min_pixels = mmu_pixels(policy.mmu_ha, pixel_area)
    codes = pixel_alerts.status_codes()
    has_date = pixel_alerts.first_day >= 0
    groups = (
        ("active", has_date & ((codes == STATUS_LOW) | (codes == STATUS_HIGH))),
        ("withdrawn", has_date & (codes == STATUS_WITHDRAWN)),
        ("plantation_harvest", has_date & (codes == STATUS_PLANTATION_HARVEST)),
    )
    records: list[dict[str, Any]] = []
    for group, mask in groups:
        if not mask.any():
            continue
        labels, count = _dated_components(mask, pixel_alerts.first_day, pixel_area, policy)
        if count == 0:
            continue
        geometries: dict[int, list[Any]] = {}
        for geometry, value in rasterio.features.shapes(
            labels, mask=labels > 0, connectivity=4, transform=transform
        ):
            geometries.setdefault(int(value), []).append(shape(geometry))
        objects = ndimage.find_objects(labels)
        for number in range(1, count + 1):
            box = objects[number - 1]
            if box is None:
                continue
            inside = labels[box] == number
            first = pixel_alerts.first_day[box][inside]
            score = pixel_alerts.score[box][inside]
            k = min(first.size, min_pixels)
            # a group is one connected set of dated pixels: by its last date it is whole
            alert_day = _mmu_day(pixel_alerts.first_day[box], inside, k, policy)
            alert_day = int(first.max()) if alert_day is None else alert_day
            confirmed_day = _mmu_day(pixel_alerts.confirmed_day[box], inside, k, policy)
            # the id: the area, the alert date and an anchor pixel among those that broke on
            # that date, chosen by a hash of its position, not by its date, so a stray pixel
            # that a moved history window adds or drops rarely moves it (docstring)
            rows, cols = np.nonzero(inside & (pixel_alerts.first_day[box] == alert_day))
            xs, ys = transform * (cols + box[1].start + 0.5, rows + box[0].start + 0.5)
            anchor = int(np.argmin(_position_hash(np.asarray(xs), np.asarray(ys))))
            x, y = float(np.asarray(xs)[anchor]), float(np.asarray(ys)[anchor])
            mean_score = float(np.mean(score)) if score.size else 0.0
            if group == "active":
                status = "high" if confirmed_day is not None else "low"
                confidence = (
                    max(mean_score, HIGH_CONFIDENCE_FLOOR)
                    if confirmed_day is not None
                    else min(mean_score, LOW_CONFIDENCE_CAP)
                )
            else:
                status, confidence, confirmed_day = group, 0.0, None
            confidence = round(min(0.99, max(0.01, confidence)), 4)
            alert_date = date_from_days(alert_day)
            records.append(
                {
                    "alert_id": stable_id(aoi, f"{x:.1f}", f"{y:.1f}", alert_date),
                    "aoi_id": aoi,
                    "alert_date": _utc_day(alert_day),
                    "confirmed_date": None if confirmed_day is None else _utc_day(confirmed_day),
                    "confidence": confidence,
                    "confidence_level": confidence_level(confidence),
                    "status": status,
                    "area_ha": round(int(inside.sum()) * pixel_area / 10000.0, 4),
                    "method": chosen_method,
                    "model_version": model_version,
                    "geometry": unary_union(geometries.get(number, [])),
                }
            )
    frame = pd.DataFrame.from_records(records, columns=list(FIELD_NAMES))
    for column in DATETIME_FIELDS:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ms, UTC]")
    alerts = gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)
    return alerts.sort_values(["alert_date", "alert_id"]).reset_index(drop=True)


def _utc_day(day: int) -> datetime:
    return datetime.combine(date_from_days(day), time(0), tzinfo=UTC)


def _position_hash(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> Any:
    """A well-mixed 64-bit hash of positions rounded to 0.1 (splitmix64 finaliser)."""

    def mix(z: Any) -> Any:
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    xi = np.round(xs * 10.0).astype(np.int64).view(np.uint64)
    yi = np.round(ys * 10.0).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        return mix(mix(xi) ^ yi)


def active_alerts(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The deforestation alerts (status low or high): withdrawn ones and plantation harvests
    are other changes."""
    if alerts.empty:
        return alerts
    active: gpd.GeoDataFrame = alerts[alerts["status"].isin(ACTIVE_STATUSES)].reset_index(drop=True)
    return active


def publishable(alerts: gpd.GeoDataFrame, known_ids: Iterable[str]) -> gpd.GeoDataFrame:
    """What a run publishes: every active alert, and each withdrawn or harvested one whose
    id is already known (it updates that alert; one never published is not news)."""
    if alerts.empty:
        return alerts
    keep = alerts["status"].isin(ACTIVE_STATUSES) | alerts["alert_id"].isin(set(known_ids))
    chosen: gpd.GeoDataFrame = alerts[keep].reset_index(drop=True)
    return chosen


def other_changes(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if alerts.empty:
        return alerts
    other: gpd.GeoDataFrame = alerts[~alerts["status"].isin(ACTIVE_STATUSES)].reset_index(drop=True)
    return other
