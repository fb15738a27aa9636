"""Alert polygons from per-pixel alert state; GeoJSON/GeoPackage export; PNG quicklooks.

A polygon is a connected (8-neighbour) set of alerted pixels of at least the minimum
mapping unit. Its ``alert_date`` is the first date on which its alerted area reached the
MMU (so a stray early pixel cannot back-date it), ``confirmed_date`` the date its
confirmed area reached the MMU (None: low confidence). Ids are stable across re-runs:
they hash the area, the alert date and the earliest pixel's coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio.crs
import rasterio.features
from affine import Affine
from scipy import ndimage
from shapely.geometry import shape
from shapely.ops import unary_union

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
ALERT_COLUMNS: tuple[str, ...] = (
    "id",
    "alert_date",
    "confirmed_date",
    "confidence",
    "confidence_level",
    "status",
    "area_ha",
    "model_version",
    "aoi",
    "geometry",
)
HIGH_CONFIDENCE_FLOOR = 0.8
LOW_CONFIDENCE_CAP = 0.79
ATTRIBUTION = "Contains modified Copernicus Sentinel data"


@dataclass(frozen=True)
class AlertPolicy:
    mmu_ha: float = 0.1
    connectivity: int = 8
    # pixels of one polygon have first-disturbance dates at most this far apart
    max_date_spread_days: int = 30


def mmu_pixels(mmu_ha: float, pixel_area_m2: float) -> int:
    return max(1, math.ceil(mmu_ha * 10000.0 / pixel_area_m2 - 1e-9))


def _components(mask: npt.NDArray[np.bool_], policy: AlertPolicy) -> tuple[Any, int]:
    structure = np.ones((3, 3), dtype=bool) if policy.connectivity == 8 else None
    labels, count = ndimage.label(mask, structure=structure)
    return labels, int(count)


def _dated_components(
    mask: npt.NDArray[np.bool_],
    first_day: npt.NDArray[np.int64],
    pixel_area_m2: float,
    policy: AlertPolicy,
) -> tuple[npt.NDArray[np.int32], int]:
    """Label raster of ``mask`` grouped by place and date (0 elsewhere) and its count.

    Connected pixels are split into groups whose first-disturbance dates lie within
    ``policy.max_date_spread_days`` of the group's earliest date, so no polygon joins pixels
    years apart; each group's connected parts that meet the MMU are kept.
    """
    min_pixels = mmu_pixels(policy.mmu_ha, pixel_area_m2)
    out = np.zeros(mask.shape, dtype=np.int32)
    labels, count = _components(mask, policy)
    if count == 0:
        return out, 0
    next_label = 0
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == number
        if int(inside.sum()) < min_pixels:
            continue
        days = first_day[box]
        group = np.full(inside.shape, -1, dtype=np.int64)
        remaining = np.sort(np.unique(days[inside]))
        cluster = 0
        while remaining.size:
            start = remaining[0]
            members = remaining[remaining - start <= policy.max_date_spread_days]
            group[inside & np.isin(days, members)] = cluster
            remaining = remaining[members.size :]
            cluster += 1
        for cluster_id in range(cluster):
            parts, n_parts = _components(group == cluster_id, policy)
            if n_parts == 0:
                continue
            sizes = np.bincount(parts.ravel(), minlength=n_parts + 1)
            for part in np.flatnonzero(sizes >= min_pixels):
                if part == 0:
                    continue
                next_label += 1
                region = out[box]
                region[parts == part] = next_label
    return out, next_label


def polygonize(
    pixel_alerts: PixelAlerts,
    transform: Affine,
    crs: rasterio.crs.CRS,
    *,
    aoi: str,
    model_version: str,
    policy: AlertPolicy | None = None,
) -> gpd.GeoDataFrame:
    """Alert polygons with their lifecycle ``status``: low / high (active deforestation
    alerts), withdrawn (the series came back) and plantation_harvest (cut and regrown)."""
    policy = policy or AlertPolicy()
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
            confirmed = pixel_alerts.confirmed_day[box][inside]
            score = pixel_alerts.score[box][inside]
            k = min(first.size, min_pixels)
            alert_day = int(np.partition(first, k - 1)[k - 1])
            done = np.sort(confirmed[confirmed >= 0])
            confirmed_day = int(done[k - 1]) if done.size >= k else None
            rows, cols = np.nonzero(inside)
            order = np.lexsort((cols, rows, first))
            seed_row = int(rows[order[0]]) + box[0].start
            seed_col = int(cols[order[0]]) + box[1].start
            x, y = transform * (seed_col + 0.5, seed_row + 0.5)
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
            records.append(
                {
                    "id": stable_id(aoi, f"{x:.1f}", f"{y:.1f}", date_from_days(alert_day)),
                    "alert_date": date_from_days(alert_day).isoformat(),
                    "confirmed_date": None
                    if confirmed_day is None
                    else date_from_days(confirmed_day).isoformat(),
                    "confidence": round(min(0.99, max(0.01, confidence)), 4),
                    "confidence_level": status if group == "active" else "none",
                    "status": status,
                    "area_ha": round(int(inside.sum()) * pixel_area / 10000.0, 4),
                    "model_version": model_version,
                    "aoi": aoi,
                    "geometry": unary_union(geometries.get(number, [])),
                }
            )
    frame = gpd.GeoDataFrame(records, columns=list(ALERT_COLUMNS), geometry="geometry", crs=crs)
    return frame.sort_values(["alert_date", "id"]).reset_index(drop=True)


def active_alerts(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The deforestation alerts (status low or high): withdrawn ones and plantation harvests
    are other changes."""
    if alerts.empty:
        return alerts
    active: gpd.GeoDataFrame = alerts[alerts["status"].isin(("low", "high"))].reset_index(drop=True)
    return active


def other_changes(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if alerts.empty:
        return alerts
    other: gpd.GeoDataFrame = alerts[~alerts["status"].isin(("low", "high"))].reset_index(drop=True)
    return other


def write_alerts(alerts: gpd.GeoDataFrame, path: Path) -> Path:
    """GeoJSON (reprojected to EPSG:4326) or GeoPackage (native CRS), by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in {".geojson", ".json"}:
        out = alerts.to_crs(4326) if alerts.crs is not None else alerts
        if path.exists():
            path.unlink()
        out.to_file(path, driver="GeoJSON")
    elif suffix == ".gpkg":
        alerts.to_file(path, driver="GPKG", layer="alerts", mode="w")
    else:
        raise ValueError(f"alert output {path.name}: use .geojson or .gpkg")
    return path


def write_quicklook(
    before_rgb: FloatArray,
    after_rgb: FloatArray,
    alerts: gpd.GeoDataFrame,
    transform: Affine,
    path: Path,
    title: str = "",
    dates: Sequence[str] = ("before", "after"),
) -> Path:
    """True colour before/after side by side with alert outlines (red: high, yellow: low)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = before_rgb.shape[1:]
    left, top = transform * (0, 0)
    right, bottom = transform * (width, height)
    extent = (left, right, bottom, top)
    figure, axes = plt.subplots(1, 2, figsize=(12, 6.4), dpi=100)
    for axis, rgb, label in zip(axes, (before_rgb, after_rgb), dates, strict=True):
        image = np.nan_to_num(np.moveaxis(rgb, 0, -1), nan=0.0)
        axis.imshow(np.clip(image / 0.15, 0.0, 1.0) ** 0.8, extent=extent)
        for row in alerts.itertuples():
            colour = "red" if row.confidence_level == "high" else "yellow"
            geometries = getattr(row.geometry, "geoms", [row.geometry])
            for polygon in geometries:
                xs, ys = polygon.exterior.xy
                axis.plot(xs, ys, color=colour, linewidth=0.9)
        axis.set_title(label)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"{title}  ({len(alerts)} alerts)  {ATTRIBUTION}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
