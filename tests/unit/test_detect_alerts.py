"""Alert polygons: minimum mapping unit, stable ids, dates, export, quicklook."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio.crs
from affine import Affine

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import AlertPolicy, polygonize
from canopywatch.detect.baseline import AlertTracker, PixelAlerts
from canopywatch.detect.quicklook import write_quicklook
from canopywatch.export.alerts import write_alerts

CRS = rasterio.crs.CRS.from_epsg(32721)
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 8800000.0)
DAY = days_since_epoch(dt.date(2024, 3, 1))


def pixel_alerts(shape: tuple[int, int] = (40, 40)) -> PixelAlerts:
    first = np.full(shape, -1, dtype=np.int64)
    confirmed = np.full(shape, -1, dtype=np.int64)
    first[5:10, 5:10] = DAY  # 25 px = 0.25 ha, confirmed
    confirmed[5:10, 5:10] = DAY + 5
    first[20:23, 20:23] = DAY + 10  # 9 px = 0.09 ha: under the MMU
    first[30:34, 30:33] = DAY + 20  # 12 px, low confidence
    first[30, 30] = DAY - 30  # one early pixel must not back-date the alert
    score = np.where(first >= 0, 0.7, 0.0).astype(np.float32)
    return PixelAlerts(first, confirmed, score, np.ones(shape, dtype=bool))


def test_mmu_dates_and_confidence() -> None:
    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    assert len(alerts) == 2
    assert alerts["area_ha"].min() >= 0.1
    high = alerts[alerts["confidence_level"] == "high"].iloc[0]
    assert high["alert_date"] == pd.Timestamp("2024-03-01", tz="UTC")
    assert high["confirmed_date"] == pd.Timestamp("2024-03-06", tz="UTC")
    assert high["confidence"] >= 0.8
    low = alerts[alerts["confidence_level"] == "low"].iloc[0]
    assert pd.isna(low["confirmed_date"])
    assert low["alert_date"] == pd.Timestamp("2024-03-21", tz="UTC")
    assert set(alerts["aoi_id"]) == {"a"} and set(alerts["model_version"]) == {"m"}
    assert alerts.geometry.area.sum() == pytest.approx(alerts["area_ha"].sum() * 10000.0)
    big = polygonize(
        pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m", policy=AlertPolicy(mmu_ha=0.2)
    )
    assert len(big) == 1


def test_scattered_early_pixels_do_not_date_the_clearing_they_lie_in() -> None:
    """A 2 ha clearing cut on one day whose history had 16 scattered pixels break 20 days
    before (a haze date, a leaf-off across the stand): more than the 10 px MMU, but no
    connected patch of it, so the alert is dated at the cut; a patch that grows from 10 px
    keeps the date it had at 10 px."""
    shape = (30, 30)
    first = np.full(shape, -1, dtype=np.int64)
    confirmed = np.full(shape, -1, dtype=np.int64)
    first[5:25, 5:15] = DAY + 20
    confirmed[5:25, 5:15] = DAY + 30
    scattered = (slice(6, 25, 5), slice(6, 15, 3))  # 4 x 3 pixels, none touching another
    first[scattered] = DAY
    confirmed[scattered] = DAY + 10
    first[6:25:5, 14] = DAY  # and 4 more, 2 columns from the last
    assert int((first == DAY).sum()) == 16
    pixels = PixelAlerts(first, confirmed, np.full(shape, 0.9, np.float32), np.ones(shape, bool))
    alerts = polygonize(pixels, TRANSFORM, CRS, aoi="a", model_version="m")
    assert len(alerts) == 1
    assert alerts["alert_date"].iloc[0] == pd.Timestamp(dt.date(2024, 3, 21), tz="UTC")
    assert alerts["confirmed_date"].iloc[0] == pd.Timestamp(dt.date(2024, 3, 31), tz="UTC")
    earlier = polygonize(pixels, TRANSFORM, CRS, aoi="a", model_version="m",
                         policy=AlertPolicy(date_by_patch=False))  # fmt: skip
    assert earlier["alert_date"].iloc[0] == pd.Timestamp(dt.date(2024, 3, 1), tz="UTC")

    growing = np.full(shape, -1, dtype=np.int64)
    growing[10:12, 10:15] = DAY  # 10 px on the first day
    growing[12:20, 10:15] = DAY + 7  # then the rest
    grown = PixelAlerts(growing, np.full(shape, -1, np.int64), np.full(shape, 0.6, np.float32),
                        np.ones(shape, bool))  # fmt: skip
    dated = polygonize(grown, TRANSFORM, CRS, aoi="a", model_version="m")
    assert dated["alert_date"].iloc[0] == pd.Timestamp(dt.date(2024, 3, 1), tz="UTC")
    assert pd.isna(dated["confirmed_date"].iloc[0])


def test_a_clearing_that_spreads_for_months_is_one_polygon_apart_from_an_older_one() -> None:
    shape = (20, 30)
    first = np.full(shape, -1, dtype=np.int64)
    for column in range(4, 16):  # a front moving one 10 m column every 10 days: 120 days
        first[5:8, column] = DAY + 10 * (column - 4)
    first[5:8, 16:20] = DAY - 400  # cleared the year before, right next to it
    pixels = PixelAlerts(first, first.copy(), np.full(shape, 0.9, np.float32), first >= 0)
    alerts = polygonize(pixels, TRANSFORM, CRS, aoi="a", model_version="m")
    assert sorted(alerts["area_ha"].round(2)) == [0.12, 0.36]  # 3 x 12 px and 3 x 4 px
    spreading = alerts[alerts["area_ha"].round(2) == 0.36].iloc[0]
    # dated when the spreading clearing reached the 0.1 ha unit (10 px: its 4th column)
    assert spreading["alert_date"] == pd.Timestamp("2024-03-31", tz="UTC")
    older = alerts[alerts["area_ha"].round(2) == 0.12].iloc[0]
    assert older["alert_date"] == pd.Timestamp(
        dt.date(2024, 3, 1) - dt.timedelta(days=400), tz="UTC"
    )


def test_a_small_clearing_cut_on_scattered_dates_over_a_season_is_one_polygon() -> None:
    shape = (20, 20)
    first = np.full(shape, -1, dtype=np.int64)
    rng = np.random.default_rng(4)
    first[5:8, 5:10] = DAY + rng.permutation(np.arange(0, 105, 7)).reshape(3, 5)  # over 98 days
    first[8, 5:9] = DAY - 730  # 4 stale pixels two years before, touching it
    pixels = PixelAlerts(first, first.copy(), np.full(shape, 0.9, np.float32), first >= 0)
    alerts = polygonize(pixels, TRANSFORM, CRS, aoi="a", model_version="m")
    assert alerts["area_ha"].round(2).tolist() == [0.15]  # the stale pixels stay apart
    # dated when 10 of its pixels (the 0.1 ha unit) had gone
    assert alerts.iloc[0]["alert_date"] == pd.Timestamp(
        dt.date(2024, 3, 1) + dt.timedelta(days=63), tz="UTC"
    )


def test_two_touching_fragments_under_the_mmu_months_apart_are_one_polygon_years_apart_none() -> (
    None
):
    shape = (20, 40)
    first = np.full(shape, -1, dtype=np.int64)
    # a clearing in a leaf-off: 5 px broke at the cut, 8 touching ones when the green-up
    # failed to come 110 days later; neither group reaches the 0.1 ha unit alone
    first[5, 5:10] = DAY
    first[6, 5:13] = DAY + 110
    # the same two fragments 400 days apart stay apart, both under the unit: no alert
    first[12, 25:30] = DAY
    first[13, 25:33] = DAY + 400
    pixels = PixelAlerts(first, first.copy(), np.full(shape, 0.9, np.float32), first >= 0)
    alerts = polygonize(pixels, TRANSFORM, CRS, aoi="a", model_version="m")
    assert alerts["area_ha"].round(2).tolist() == [0.13]
    # dated when 10 of its pixels (the 0.1 ha unit) had gone
    assert alerts.iloc[0]["alert_date"] == pd.Timestamp(
        dt.date(2024, 3, 1) + dt.timedelta(days=110), tz="UTC"
    )
    apart = polygonize(
        pixels, TRANSFORM, CRS, aoi="a", model_version="m",
        policy=AlertPolicy(fragment_pair_days=90),
    )  # fmt: skip
    assert apart.empty


def test_ids_are_stable_across_reruns_and_growth() -> None:
    first = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    again = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    assert first["alert_id"].tolist() == again["alert_id"].tolist()
    assert first["alert_id"].is_unique
    grown = pixel_alerts()
    grown.first_day[10:12, 5:10] = DAY + 15  # the clearing grows the next week
    later = polygonize(grown, TRANSFORM, CRS, aoi="a", model_version="m")
    assert set(first["alert_id"]) == set(later["alert_id"])
    other_aoi = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="b", model_version="m")
    assert not set(first["alert_id"]) & set(other_aoi["alert_id"])


def test_tracker_withdraws_unconfirmed_and_keeps_confirmed() -> None:
    tracker = AlertTracker(3, confirm_count=2, withdraw_count=1)
    seen = np.ones(3, dtype=bool)
    score = np.full(3, 0.9, dtype=np.float32)
    tracker.update(1, seen, np.array([True, True, False]), score)
    tracker.update(2, seen, np.array([True, False, False]), score)
    tracker.update(3, seen, np.array([False, False, False]), score)
    assert tracker.first_day.tolist() == [1, -1, -1]
    assert tracker.confirmed_day.tolist() == [2, -1, -1]
    assert tracker.withdrawn.tolist() == [0, 1, 0]


def test_exports(tmp_path: Path) -> None:
    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    geojson = write_alerts(alerts, tmp_path / "alerts.geojson")
    gpkg = write_alerts(alerts, tmp_path / "alerts.gpkg")
    back = gpd.read_file(geojson)
    assert back.crs.to_epsg() == 4326 and len(back) == 2
    assert gpd.read_file(gpkg).crs.to_epsg() == 4326
    rgb = np.full((3, 40, 40), 0.05, dtype=np.float32)
    png = write_quicklook(rgb, rgb, alerts, TRANSFORM, tmp_path / "q.png", title="t")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_the_frame_has_the_alert_schema_columns_and_types() -> None:
    from canopywatch.alert_schema import FIELD_NAMES

    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="harmonic-v1")
    assert tuple(alerts.columns) == FIELD_NAMES
    assert set(alerts["method"]) == {"harmonic"}
    assert str(alerts["alert_date"].dtype) == "datetime64[ms, UTC]"
    assert set(alerts["confidence_level"]) == {"low", "high"} == set(alerts["status"])


def test_an_early_stray_pixel_that_a_moved_window_drops_keeps_the_id() -> None:
    # the weekly 730-day window moves by a week: the history it fits on changes, and with
    # it a marginal pixel at the clearing's edge that broke before the clearing
    this_week = pixel_alerts()
    this_week.first_day[10, 4] = DAY - 12  # next to the 25 px clearing at rows/cols 5..9
    this_week.confirmed_day[10, 4] = DAY - 7
    next_week = pixel_alerts()
    next_week.first_day[10, 9] = DAY  # and another edge pixel now breaks with the clearing
    next_week.confirmed_day[10, 9] = DAY + 5
    ids = []
    for state in (this_week, next_week):
        alerts = polygonize(state, TRANSFORM, CRS, aoi="a", model_version="m")
        high = alerts[alerts["status"] == "high"]
        assert len(high) == 1 and high.iloc[0]["alert_date"] == pd.Timestamp("2024-03-01", tz="UTC")
        ids.append(high.iloc[0]["alert_id"])
    assert ids[0] == ids[1]


def test_a_clearing_seen_in_consecutive_weekly_windows_keeps_one_id() -> None:
    from canopywatch.detect.detector import HarmonicDetector
    from canopywatch.detect.observations import ObservationStack
    from tests.unit.test_detect_harmonic import CLEARED, CRS_UTM, series
    from tests.unit.test_detect_harmonic import TRANSFORM as GRID

    stack = series(clear_day=520, old_day=10_000)
    start = int(stack.days[0])
    ids = set()
    for week in range(4):
        lo, hi = start + 7 * week, start + 700 + 7 * week  # the window moves one week on
        keep = (stack.days >= lo) & (stack.days <= hi)
        window = ObservationStack(
            stack.days[keep],
            {band: values[keep] for band, values in stack.bands.items()},
            stack.clear[keep],
            GRID,
            CRS_UTM,
        )
        alerts = polygonize(
            HarmonicDetector().detect(window), GRID, CRS_UTM, aoi="a", model_version="harmonic-v1"
        )
        clearing = GRID * (CLEARED[1].start + 2.5, CLEARED[0].start + 2.5)
        hits = alerts[alerts.geometry.contains(gpd.points_from_xy([clearing[0]], [clearing[1]])[0])]
        assert list(hits["status"]) == ["high"]
        ids.add(hits.iloc[0]["alert_id"])
    assert len(ids) == 1


def test_a_withdrawn_alert_keeps_the_id_it_had_while_active() -> None:
    from canopywatch.detect.baseline import STATUS_HIGH, STATUS_LOW, STATUS_WITHDRAWN

    active = pixel_alerts()
    status = np.where(active.confirmed_day >= 0, STATUS_HIGH, STATUS_LOW).astype(np.int8)
    status[active.first_day < 0] = 0
    before = polygonize(
        PixelAlerts(active.first_day, active.confirmed_day, active.score, active.monitored, status),
        TRANSFORM, CRS, aoi="a", model_version="m",
    )  # fmt: skip
    later = status.copy()
    later[30:34, 30:33] = STATUS_WITHDRAWN  # the low-confidence one: the forest came back
    after = polygonize(
        PixelAlerts(active.first_day, active.confirmed_day, active.score, active.monitored, later),
        TRANSFORM, CRS, aoi="a", model_version="m",
    )  # fmt: skip
    low = before[before["status"] == "low"].iloc[0]
    withdrawn = after[after["status"] == "withdrawn"].iloc[0]
    assert withdrawn["alert_id"] == low["alert_id"]
    assert withdrawn["alert_date"] == low["alert_date"]
    assert withdrawn["confidence_level"] == "low" and pd.isna(withdrawn["confirmed_date"])
    assert set(before["alert_id"]) == set(after["alert_id"])


def test_alert_files_are_typed_multipolygons_in_wgs84_even_when_empty(tmp_path: Path) -> None:
    import pyogrio

    from canopywatch.alert_schema import ATTRIBUTE_NAMES

    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    for frame, name in ((alerts, "some.gpkg"), (alerts.iloc[0:0], "none.gpkg")):
        info = pyogrio.read_info(write_alerts(frame, tmp_path / name))
        assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "MultiPolygon"
        assert tuple(info["fields"]) == ATTRIBUTE_NAMES
        types = dict(zip(info["fields"], info["ogr_types"], strict=True))
        assert types["alert_date"] == types["confirmed_date"] == "OFTDateTime"
        assert types["confidence"] == types["area_ha"] == "OFTReal"
        assert types["status"] == "OFTString"
        assert info["features"] == len(frame)


def test_a_run_publishes_active_alerts_and_only_known_withdrawals() -> None:
    from canopywatch.detect.alerts import publishable

    alerts = polygonize(pixel_alerts(), TRANSFORM, CRS, aoi="a", model_version="m")
    withdrawn = alerts.assign(status="withdrawn", alert_id=["w1", "w2"])
    both = pd.concat([alerts, withdrawn], ignore_index=True)
    chosen = publishable(both, known_ids={"w2", "unrelated"})
    assert sorted(chosen["alert_id"]) == sorted([*alerts["alert_id"], "w2"])
