"""The per-area PNG quicklook a person can read.

Two true-colour panels (before, after: the median composites ``detect_area`` keeps of the
first and the last quarter of the dates, each titled with its exact first and last day),
alert outlines coloured by status with each alert's short id and alert date written on it
(the largest ones first, at most ``MAX_LABELS``), plantation harvests in dashed outlines
(a cut the detector classed apart is still a cut a person checks), a legend, a scale bar,
a north arrow, lon/lat coordinates on the axes, and below them the NDVI time series of the
largest alert (mean over its pixels of every clear observation, the alert and confirmation
dates marked). Attribution: "Contains modified Copernicus Sentinel data".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
from affine import Affine

from canopywatch.dates import date_from_days
from canopywatch.sentinel2 import ATTRIBUTION

FloatArray = npt.NDArray[np.float32]
MAX_LABELS = 12
COLOURS = {"high": "#ff2a2a", "low": "#ffd400", "withdrawn": "#9e9e9e",
           "plantation_harvest": "#3fa7ff"}  # fmt: skip
LABELS = {"high": "high confidence", "low": "low confidence", "withdrawn": "withdrawn",
          "plantation_harvest": "plantation harvest"}  # fmt: skip


@dataclass(frozen=True)
class NdviSeries:
    """Mean NDVI of one alert's pixels per clear date (NaN where none was clear)."""

    alert_id: str
    dates: list[dt.date]
    ndvi: FloatArray
    alert_date: dt.date | None = None
    confirmed_date: dt.date | None = None


def composite_periods(days: Sequence[int] | npt.NDArray[np.int64]) -> tuple[str, str]:
    """Titles of the before/after composites with their exact days (first and last quarter
    of the dates, as ``detect_area`` builds them)."""
    values = [int(d) for d in days]
    if not values:
        return "before", "after"
    quarter = max(1, len(values) // 4)

    def title(name: str, part: list[int]) -> str:
        first, last = date_from_days(part[0]), date_from_days(part[-1])
        span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
        return f"{name}: {span} (median of {len(part)} dates)"

    return title("before", values[:quarter]), title("after", values[-quarter:])


def largest_alert_series(source: Any, alerts: gpd.GeoDataFrame) -> NdviSeries | None:
    """The NDVI series of the largest alert, read from ``source`` (a ``StackSource``) over
    the alert's window only; None without alerts."""
    import rasterio.features
    from rasterio.windows import Window

    if alerts is None or len(alerts) == 0:
        return None
    grid = source.grid
    row = alerts.loc[alerts["area_ha"].astype(float).idxmax()]
    geometry = gpd.GeoSeries([row.geometry], crs=alerts.crs).to_crs(grid.crs).iloc[0]
    inverse = ~grid.transform
    minx, miny, maxx, maxy = geometry.bounds
    c0, r0 = inverse * (minx, maxy)
    c1, r1 = inverse * (maxx, miny)
    col0, row0 = max(0, math.floor(c0)), max(0, math.floor(r0))
    col1, row1 = min(grid.width, math.ceil(c1)), min(grid.height, math.ceil(r1))
    if col1 <= col0 or row1 <= row0:
        return None
    window = Window(col0, row0, col1 - col0, row1 - row0)
    stack = source.read(window)
    inside = rasterio.features.geometry_mask(
        [geometry], out_shape=stack.shape, transform=stack.transform, invert=True
    )
    if stack.has_reflectance:
        nir, red = stack.bands["B08"], stack.bands["B04"]
        with np.errstate(all="ignore"):
            ndvi = (nir - red) / (nir + red)
    else:
        ndvi = next(iter(stack.bands.values()))
    usable = stack.clear & inside[None] & np.isfinite(ndvi)
    counts = usable.sum(axis=(1, 2))
    with np.errstate(all="ignore"):
        means = np.where(counts > 0, np.where(usable, ndvi, 0).sum(axis=(1, 2)) / counts, np.nan)

    def day(value: Any) -> dt.date | None:
        if value is None or value != value:  # NaN, or NaT: a low alert has no confirmed date
            return None
        try:
            return (
                value.date() if hasattr(value, "date") else dt.date.fromisoformat(str(value)[:10])
            )
        except ValueError:
            return None

    return NdviSeries(
        str(row.get("alert_id", row.get("id", ""))),
        stack.dates,
        means.astype(np.float32),
        day(row.get("alert_date")),
        day(row.get("confirmed_date")),
    )


def _harvests(others: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame:
    if others is None or len(others) == 0 or "status" not in others:
        return gpd.GeoDataFrame(geometry=[])
    harvests = others[others["status"] == "plantation_harvest"]
    return harvests if crs is None or harvests.crs is None else harvests.to_crs(crs)


def _outline(axis: Any, geometry: Any, colour: str, linestyle: str = "-") -> None:
    """Draw the exterior of each polygon of ``geometry`` (Polygon or MultiPolygon)."""
    for polygon in getattr(geometry, "geoms", [geometry]):
        xs, ys = polygon.exterior.xy
        axis.plot(xs, ys, color=colour, linewidth=1.0, ls=linestyle)


def _nice_length(span_m: float) -> float:
    target = span_m / 5
    exponent = math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * 10**exponent <= target:
            return float(step * 10**exponent)
    return float(10**exponent)


def _lonlat_ticks(axis: Any, crs: Any, extent: tuple[float, float, float, float]) -> None:
    from pyproj import Transformer

    left, right, bottom, top = extent
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xs = np.linspace(left, right, 4)[1:-1]
    ys = np.linspace(bottom, top, 4)[1:-1]
    lons, _ = to_lonlat.transform(xs, np.full_like(xs, bottom))
    _, lats = to_lonlat.transform(np.full_like(ys, left), ys)
    axis.set_xticks(xs, [f"{abs(v):.3f}°{'W' if v < 0 else 'E'}" for v in lons], fontsize=7)
    axis.set_yticks(ys, [f"{abs(v):.3f}°{'S' if v < 0 else 'N'}" for v in lats], fontsize=7,
                    rotation=90, va="center")  # fmt: skip


def write_quicklook(
    before_rgb: FloatArray,
    after_rgb: FloatArray,
    alerts: gpd.GeoDataFrame,
    transform: Affine,
    path: Path,
    title: str = "",
    dates: Sequence[str] = ("before", "after"),
    *,
    crs: Any = None,
    series: NdviSeries | None = None,
    others: gpd.GeoDataFrame | None = None,
) -> Path:
    """Write the quicklook PNG (see the module doc); ``crs`` gives lon/lat coordinates
    (without it the axes show the grid's own coordinates), ``dates`` the panel titles
    (``composite_periods``), ``series`` the NDVI panel, ``others`` the other changes
    (``alerts.other_changes``), of which the plantation harvests are drawn."""
    import matplotlib.pyplot as plt

    figure = quicklook_figure(before_rgb, after_rgb, alerts, transform, title, dates,
                              crs=crs, series=series, others=others)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def quicklook_figure(
    before_rgb: FloatArray,
    after_rgb: FloatArray,
    alerts: gpd.GeoDataFrame,
    transform: Affine,
    title: str = "",
    dates: Sequence[str] = ("before", "after"),
    *,
    crs: Any = None,
    series: NdviSeries | None = None,
    others: gpd.GeoDataFrame | None = None,
) -> Any:
    """The quicklook as a matplotlib Figure (``write_quicklook`` saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patheffects as effects
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    height, width = before_rgb.shape[1:]
    left, top = transform * (0, 0)
    right, bottom = transform * (width, height)
    extent = (left, right, bottom, top)
    shown = alerts if crs is None or alerts.crs is None else alerts.to_crs(crs)
    order = shown.assign(_area=shown["area_ha"].astype(float)).sort_values("_area", ascending=False)
    harvests = _harvests(others, crs)
    figure = plt.figure(figsize=(12, 9.2 if series is not None else 6.8), dpi=100)
    grid = figure.add_gridspec(2 if series is not None else 1, 2,
                               height_ratios=[3, 1.1] if series is not None else [1])  # fmt: skip
    axes = [figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1])]
    halo = [effects.withStroke(linewidth=2.2, foreground="black")]
    statuses: set[str] = set()
    for axis, rgb, label in zip(axes, (before_rgb, after_rgb), dates, strict=True):
        image = np.nan_to_num(np.moveaxis(rgb, 0, -1), nan=0.0)
        axis.imshow(np.clip(image / 0.15, 0.0, 1.0) ** 0.8, extent=extent)
        for row in order.itertuples():
            status = str(getattr(row, "status", "") or getattr(row, "confidence_level", "low"))
            statuses.add(status)
            _outline(axis, row.geometry, COLOURS.get(status, COLOURS["low"]))
        for geometry in harvests.geometry:
            _outline(axis, geometry, COLOURS["plantation_harvest"], "--")
        for row in order.head(MAX_LABELS).itertuples():
            point = row.geometry.representative_point()
            alert_id = str(getattr(row, "alert_id", getattr(row, "id", "")))[:8]
            alert_date = str(getattr(row, "alert_date", ""))[:10]
            axis.annotate(f"{alert_id}\n{alert_date}", (point.x, point.y), fontsize=6.5,
                          color="white", ha="center", va="center", path_effects=halo)  # fmt: skip
        axis.set_xlim(left, right)
        axis.set_ylim(bottom, top)
        axis.set_title(label, fontsize=10)
        if crs is not None:
            _lonlat_ticks(axis, crs, extent)
        else:
            axis.tick_params(labelsize=7)
        length = _nice_length(right - left)
        axis.add_artist(AnchoredSizeBar(
            axis.transData, length, f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m",
            "lower right", pad=0.4, color="white", frameon=False, size_vertical=(top - bottom) / 150,
            fontproperties={"size": 8},
        ))  # fmt: skip
        axis.annotate("N", xy=(0.06, 0.94), xytext=(0.06, 0.80), xycoords="axes fraction",
                      ha="center", va="center", fontsize=10, color="white", path_effects=halo,
                      arrowprops={"arrowstyle": "-|>", "color": "white", "lw": 1.5})  # fmt: skip
    handles = [Patch(facecolor="none", edgecolor=COLOURS[s], label=LABELS[s])
               for s in COLOURS if s in statuses or s in {"high", "low"}]  # fmt: skip
    if len(harvests):
        handles.append(Patch(facecolor="none", edgecolor=COLOURS["plantation_harvest"], ls="--",
                             label=f"{len(harvests)} plantation harvest(s), not alerted"))  # fmt: skip
    axes[1].legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8,
                   title=f"{len(alerts)} alert(s)", title_fontsize=7)  # fmt: skip
    if series is not None:
        panel = figure.add_subplot(grid[1, :])
        valid = np.isfinite(series.ndvi)
        dates_valid = [d for d, ok in zip(series.dates, valid, strict=True) if ok]
        panel.plot(dates_valid, series.ndvi[valid], "o-", color="#2e7d32", markersize=3, lw=1)  # type: ignore[arg-type]
        marks = ((series.alert_date, "alert", "#d32f2f", 0.98),
                 (series.confirmed_date, "confirmed", "#6a1b9a", 0.86))  # fmt: skip
        for day, name, colour, height in marks:
            if day is not None:
                panel.axvline(day, color=colour, ls="--", lw=1)  # type: ignore[arg-type]
                panel.text(day, height, f" {name} {day.isoformat()}", color=colour, fontsize=7,  # type: ignore[arg-type]
                           va="top", transform=panel.get_xaxis_transform())  # fmt: skip
        panel.set_ylabel("NDVI (clear obs.)", fontsize=8)
        panel.set_title(f"NDVI of the largest alert {series.alert_id[:8]}", fontsize=9)
        panel.tick_params(labelsize=7)
        panel.grid(alpha=0.3)
        panel.legend(handles=[Line2D([], [], color="#2e7d32", marker="o", ms=3,
                                     label="mean over the alert's pixels")], fontsize=7)  # fmt: skip
    figure.suptitle(f"{title}  ({len(alerts)} alerts)  {ATTRIBUTION}", fontsize=9)
    figure.tight_layout()
    return figure
