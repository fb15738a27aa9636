"""The ``nrt`` peers of ``benchmarks/detection_peers.py`` on a tiny generated series: an
evergreen forest with a clearing and a greening patch in the monitoring year. What is
checked is the adapter (dates, direction, the forest given), not ``nrt``'s accuracy, which
the benchmark measures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from canopywatch.dates import days_since_epoch
from canopywatch.detect.baseline import STATUS_HIGH
from canopywatch.detect.observations import S2_BANDS, ObservationStack
from canopywatch_dev.detection.nrt_peers import NRT_MONITORS, detect_nrt

SIZE = 16
START = dt.date(2023, 1, 1)
FOREST = {"B02": 0.025, "B03": 0.045, "B04": 0.025, "B08": 0.33, "B11": 0.15, "B12": 0.06}
SPARSE = {"B02": 0.04, "B03": 0.06, "B04": 0.06, "B08": 0.26, "B11": 0.2, "B12": 0.1}
BARE = {"B02": 0.07, "B03": 0.09, "B04": 0.12, "B08": 0.22, "B11": 0.30, "B12": 0.25}
CLEARED = (slice(2, 7), slice(2, 7))
GREENING = (slice(9, 14), slice(9, 14))  # sparse canopy that closes: a break upwards
EVENT_OFFSET = 500  # days after the start: in the monitoring year


def forest_series() -> ObservationStack:
    rng = np.random.default_rng(3)
    offsets = np.arange(0, 730, 5)
    after = (offsets >= EVENT_OFFSET)[:, None, None]
    bands = {}
    for band in S2_BANDS:
        value = np.full((offsets.size, SIZE, SIZE), FOREST[band], dtype=np.float64)
        value[:, GREENING[0], GREENING[1]] = np.where(after, FOREST[band], SPARSE[band])
        value[:, CLEARED[0], CLEARED[1]] = np.where(after, BARE[band], FOREST[band])
        bands[band] = (value + rng.normal(0, 0.004, value.shape)).astype(np.float32)
    clear = np.broadcast_to((rng.random(offsets.size) > 0.3)[:, None, None], value.shape).copy()
    for band in S2_BANDS:
        bands[band][~clear] = np.nan
    days = (days_since_epoch(START) + offsets).astype(np.int64)
    return ObservationStack(days, bands, clear, Affine(10, 0, 500000, 0, -10, 8800000),
                            CRS.from_epsg(32721))  # fmt: skip


@pytest.mark.parametrize("monitor", NRT_MONITORS)
def test_nrt_monitor_alerts_the_clearing_not_the_greening_and_only_the_forest_given(
    monitor: str,
) -> None:
    stack = forest_series()
    forest = np.ones(stack.shape, dtype=bool)
    forest[:, -1] = False  # the last column is not forest: never monitored, never alerted
    event_day = days_since_epoch(START) + EVENT_OFFSET
    alerts = detect_nrt(stack, monitor, monitor_start=int(stack.days[0]) + 365, forest=forest)

    cleared = np.zeros(stack.shape, dtype=bool)
    cleared[CLEARED] = True
    alerted = alerts.status == STATUS_HIGH
    if monitor != "EWMA":  # at nrt's default sensitivity EWMA breaks on noise within the year
        assert alerted[cleared].mean() >= 0.8
        dates = alerts.first_day[cleared & alerted]
        assert (dates >= event_day).all() and (dates <= event_day + 60).all()
    # nrt tests both ways: the canopy closing is a break too, but not a clearing (its
    # monitors also raise some noise breaks on stable forest before the event, which stay)
    assert not (alerted[GREENING] & (alerts.first_day[GREENING] >= event_day)).any()
    assert not alerted[:, -1].any()
    assert (alerts.monitored == forest).all()
