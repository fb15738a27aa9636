"""The alert schema's ``drought_anomaly`` from tiny weather series (canopywatch.sensors.drought).

The series are short on purpose (3-day windows, 8-day records) so every number can be
worked by hand; the defaults (30-day windows, a year of record) are the same code.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest

from canopywatch.sensors.drought import (
    DRY_MM_PER_DAY,
    MIN_RECORD_DAYS,
    WINDOW_DAYS,
    StationAnomaly,
    anomalies_for,
    drought_anomaly,
    encode,
    station_anomaly,
    window_totals,
)

DAYS = pd.date_range("2024-01-01", periods=10, freq="D").date
# a wet week then a dry spell: 3-day totals 6, 6, 6, 6, 6, 4, 2, 0 (days 3..10)
WET_THEN_DRY = pd.Series([2, 2, 2, 2, 2, 2, 2, 0, 0, 0], index=DAYS, dtype=float)
TINY = {"window_days": 3, "min_record_days": 8}


def test_the_defaults_are_a_month_against_a_year() -> None:
    assert (WINDOW_DAYS, MIN_RECORD_DAYS, DRY_MM_PER_DAY) == (30, 365, 2.0)


def test_window_totals_scale_up_from_the_days_reported_and_need_the_coverage() -> None:
    days = pd.date_range("2024-01-01", periods=5, freq="D").date
    daily = pd.Series([1.0, 2.0, 4.0, 5.0], index=[days[0], days[1], days[3], days[4]])
    totals = window_totals(daily, window_days=4, min_coverage=0.75)  # 3 of 4 days
    assert list(totals.index.date) == list(days)
    assert totals.isna().tolist() == [True, True, True, False, False]
    assert totals.iloc[3] == pytest.approx((1 + 2 + 4) * 4 / 3)  # 9.333: day 3 missing
    assert totals.iloc[4] == pytest.approx((2 + 4 + 5) * 4 / 3)  # 14.667
    assert window_totals(daily, window_days=4, min_coverage=1.0).isna().all()


def test_the_station_value_is_the_z_score_of_its_own_window_totals() -> None:
    anomaly = station_anomaly("wx-a", WET_THEN_DRY, dt.date(2024, 1, 10), **TINY)
    assert anomaly is not None
    # totals 6 x5, 4, 2, 0: mean 4.5; squares 5 x 2.25 + 0.25 + 6.25 + 20.25 = 38, sd sqrt(38/7)
    assert anomaly.precip_mm == 0.0 and anomaly.normal_mm == 4.5
    assert anomaly.sd_mm == pytest.approx(math.sqrt(38 / 7))
    assert anomaly.value == pytest.approx(-4.5 / math.sqrt(38 / 7))  # -1.931
    wet = station_anomaly("wx-a", WET_THEN_DRY, dt.date(2024, 1, 5), **TINY)
    assert wet is not None and wet.value == pytest.approx(1.5 / math.sqrt(38 / 7))  # +0.644


def test_no_station_value_without_a_long_record_a_covered_window_or_any_variation() -> None:
    day = dt.date(2024, 1, 10)
    assert station_anomaly("wx-a", WET_THEN_DRY, day, window_days=3, min_record_days=11) is None
    assert station_anomaly("wx-a", WET_THEN_DRY, dt.date(2024, 1, 2), **TINY) is None
    assert station_anomaly("wx-a", WET_THEN_DRY, dt.date(2024, 2, 1), **TINY) is None
    flat = pd.Series(1.0, index=DAYS)
    assert station_anomaly("wx-c", flat, day, **TINY) is None
    gappy = WET_THEN_DRY.drop(index=[DAYS[8]])  # day 9 missing: the day-10 window has 2 of 3
    assert station_anomaly("wx-a", gappy, day, **TINY) is None


def _anomaly(station: str, precip: float, normal: float, value: float) -> StationAnomaly:
    return StationAnomaly(station, precip, normal, 1.0, value)


def test_reported_in_a_dry_month_or_a_severe_dry_spell_flagged_drought_from_minus_one() -> None:
    # dry month (under 60 mm in 30 days), moderately dry: drought
    report = drought_anomaly([_anomaly("b", 50.0, 120.0, -1.1), _anomaly("a", 30.0, 100.0, -0.9)])
    assert report == {
        "flag": "drought", "normal_mm": 110.0, "percent_of_normal": 36, "precip_mm": 40.0,
        "station_ids": ["a", "b"], "value": -1.0, "window_days": 30,
    }  # fmt: skip
    # dry month, rain as usual there: the dry season, reported but no drought
    assert drought_anomaly([_anomaly("a", 45.0, 50.0, -0.2)])["flag"] == "dry_season"
    # a wetter month: reported only when strongly negative
    assert drought_anomaly([_anomaly("a", 70.0, 240.0, -1.6)])["flag"] == "drought"
    assert drought_anomaly([_anomaly("a", 70.0, 240.0, -1.4)]) == {}
    assert drought_anomaly([_anomaly("a", 60.0, 60.0, 0.0)]) == {}  # exactly 2 mm a day
    assert drought_anomaly([]) == {}


def test_each_alert_gets_the_stored_text_from_the_stations_near_it() -> None:
    days = list(DAYS)
    daily = pd.DataFrame(
        {
            "station_id": ["wx-a"] * 10 + ["wx-b"] * 10 + ["wx-c"] * 10 + ["wx-far"] * 10,
            "day": days * 4,
            # wx-b = 1.5 wx-a + 1: the same z; wx-c never varies (no value); wx-far is wet
            "rain_mm": [*WET_THEN_DRY, *(1.5 * WET_THEN_DRY + 1), *[1.0] * 10, *[9.0] * 10],
        }
    )
    nearby = {"dry": ["wx-a", "wx-b", "wx-c"], "wet": ["wx-a", "wx-b"], "alone": []}
    alerts = [
        # 23:30 at UTC-3 is 02:30 UTC on the 10th: the window ends on the UTC day
        ("dry", dt.datetime(2024, 1, 9, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3)))),
        ("wet", dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC)),
        ("alone", dt.datetime(2024, 1, 10, tzinfo=dt.UTC)),
    ]
    values = anomalies_for(alerts, nearby, daily, **TINY)
    assert values["wet"] == "{}" and values["alone"] == "{}"
    assert values["dry"] == (
        '{"flag":"drought","normal_mm":7.1,"percent_of_normal":21,"precip_mm":1.5,'
        '"station_ids":["wx-a","wx-b"],"value":-1.93,"window_days":3}'
    )  # precip (0 + 3) / 2, normal (4.5 + 9.75) / 2, 1.5 / 7.125 = 21 %
    assert json.loads(values["dry"])["station_ids"] == ["wx-a", "wx-b"]
    assert encode({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
