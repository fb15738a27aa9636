"""The quicklook on a small simulated clearing: what a reader finds on it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import active_alerts
from canopywatch.detect.detector import build_detector, detect_area
from canopywatch.detect.quicklook import (
    composite_periods,
    largest_alert_series,
    quicklook_figure,
    write_quicklook,
)
from canopywatch_dev.detection.reference import SimulationSource
from canopywatch_dev.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def detected():
    simulation = simulate(
        SimulationConfig(
            seed=5, width=128, height=128, start=dt.date(2020, 6, 1), end=dt.date(2021, 12, 31),
            n_clearings=5, min_clearing_ha=1.0, max_clearing_ha=4.0, cropland_share=0.0,
            forest_share=0.75, pasture_drying_per_year=0, floods_per_year=0, cloudiness=0.5,
        )
    )  # fmt: skip
    source = SimulationSource(simulation)
    detector = build_detector("harmonic", monitor_start_day=days_since_epoch(dt.date(2021, 1, 1)))
    result = detect_area(source, detector, aoi="quicklook-area")
    return simulation, source, result, active_alerts(result.alerts)


def test_composite_periods_give_exact_days():
    days = [days_since_epoch(dt.date(2024, 1, 1)) + 5 * i for i in range(8)]
    assert composite_periods(days) == (
        "before: 2024-01-01 to 2024-01-06 (median of 2 dates)",
        "after: 2024-01-31 to 2024-02-05 (median of 2 dates)",
    )
    assert composite_periods([days[0]]) == (
        "before: 2024-01-01 (median of 1 dates)",
        "after: 2024-01-01 (median of 1 dates)",
    )


@pytest.mark.slow
def test_quicklook_has_legend_scale_north_coordinates_ids_dates_and_ndvi(detected, tmp_path: Path):
    simulation, source, result, alerts = detected
    assert len(alerts) >= 4
    series = largest_alert_series(source, alerts)
    largest = alerts.loc[alerts["area_ha"].idxmax()]
    assert series is not None and series.alert_id == largest["alert_id"]
    assert series.alert_date == largest["alert_date"].date()
    # the NDVI series shows the clearing: high before the alert date, low after it
    days = np.array([days_since_epoch(d) for d in series.dates])
    alert_day = days_since_epoch(series.alert_date)
    before = np.nanmean(series.ndvi[(days < alert_day) & (days > alert_day - 120)])
    after = np.nanmean(series.ndvi[(days > alert_day + 30) & (days < alert_day + 150)])
    assert before > 0.7 and after < before - 0.3

    periods = composite_periods(result.days)
    figure = quicklook_figure(result.before_rgb, result.after_rgb, alerts, result.grid.transform,
                              "quicklook-area", periods, crs=result.grid.crs, series=series)  # fmt: skip
    maps, panel = figure.axes[:2], figure.axes[2]
    texts = [t.get_text() for axis in maps for t in axis.texts]
    assert [axis.get_title() for axis in maps] == list(periods)
    assert periods[0].startswith("before: 2020-06-0") and "2021-12" in periods[1]
    for row in alerts.sort_values("area_ha", ascending=False).head(12).itertuples():
        assert f"{row.alert_id[:8]}\n{row.alert_date:%Y-%m-%d}" in texts
    assert texts.count("N") == 2  # a north arrow on each map
    legend = [t.get_text() for t in maps[1].get_legend().get_texts()]
    assert {"high confidence", "low confidence"} <= set(legend)
    scale_bars = [a for axis in maps for a in axis.artists if type(a).__name__ == "AnchoredSizeBar"]
    assert len(scale_bars) == 2
    assert [t.get_text() for t in scale_bars[0].txt_label.get_children()] == ["200 m"]
    xlabels = [t.get_text() for t in maps[0].get_xticklabels()]
    ylabels = [t.get_text() for t in maps[0].get_yticklabels()]
    assert all(s.endswith("°W") for s in xlabels) and all(s.endswith("°S") for s in ylabels)
    lon = float(xlabels[0].rstrip("°W"))
    assert -simulation.bounds_lonlat[0] > lon > -simulation.bounds_lonlat[2]
    assert "NDVI of the largest alert" in panel.get_title()
    assert any(t.get_text().startswith(" alert 20") for t in panel.texts)
    assert "Contains modified Copernicus Sentinel data" in figure._suptitle.get_text()

    png = write_quicklook(result.before_rgb, result.after_rgb, alerts, result.grid.transform,
                          tmp_path / "q.png", "quicklook-area", periods, crs=result.grid.crs,
                          series=series)  # fmt: skip
    with Image.open(png) as image:
        assert image.size == (1200, 920)


@pytest.mark.slow
def test_an_unconfirmed_largest_alert_is_drawn_without_a_confirmed_date(detected, tmp_path: Path):
    """Alerts read back from a file carry NaT where a low alert has no confirmed date."""
    _, source, result, alerts = detected
    path = tmp_path / "alerts.gpkg"
    unconfirmed = alerts.copy()
    largest = unconfirmed["area_ha"].idxmax()
    unconfirmed.loc[largest, "status"] = "low"
    unconfirmed.loc[largest, "confirmed_date"] = None
    unconfirmed.to_file(path)
    read_back = gpd.read_file(path)
    assert pd.isna(read_back.loc[read_back["area_ha"].idxmax(), "confirmed_date"])
    series = largest_alert_series(source, read_back)
    assert series is not None and series.alert_date is not None
    assert series.confirmed_date is None
    figure = quicklook_figure(result.before_rgb, result.after_rgb, read_back,
                              result.grid.transform, "quicklook-area",
                              composite_periods(result.days), crs=result.grid.crs,
                              series=series)  # fmt: skip
    marks = [t.get_text() for t in figure.axes[2].texts]
    assert any(m.startswith(" alert 20") for m in marks)
    assert not any(m.startswith(" confirmed") for m in marks)


@pytest.mark.slow
def test_plantation_harvests_are_drawn_dashed_and_named_in_the_legend(detected):
    """A cut the detector classed as a plantation harvest is not an alert, but a person who
    checks the area by eye sees it outlined; withdrawn changes are not drawn."""
    _, _, result, alerts = detected
    others = alerts.head(2).copy()
    others["status"] = ["plantation_harvest", "withdrawn"]
    shown = alerts.iloc[2:]
    figure = quicklook_figure(result.before_rgb, result.after_rgb, shown, result.grid.transform,
                              "quicklook-area", composite_periods(result.days),
                              crs=result.grid.crs, others=others)  # fmt: skip
    maps = figure.axes[:2]
    dashed = [line for line in maps[0].get_lines() if line.get_linestyle() == "--"]
    harvest = others.iloc[0].geometry
    parts = len(getattr(harvest, "geoms", [harvest]))
    assert len(dashed) == parts
    legend = [t.get_text() for t in maps[1].get_legend().get_texts()]
    assert "1 plantation harvest(s), not alerted" in legend
    assert "withdrawn" not in legend
    assert f"{len(shown)} alerts" in figure._suptitle.get_text()
