"""The benchmarks' case scoring (``canopywatch_dev.detection.scoring``) on a hand-made case:
two clearings, one before the monitoring start and one after, both alerted on time."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from canopywatch.detect.baseline import STATUS_HIGH, PixelAlerts
from canopywatch.detect.evaluate import ReferenceData, ReferenceEvent
from canopywatch.detect.observations import S2_BANDS, ObservationStack
from canopywatch_dev.detection.scoring import monitoring_reference, pooled, score

SIZE = 20
TRANSFORM = Affine(10, 0, 500000, 0, -10, 8800000)
EARLY = (slice(2, 8), slice(2, 8))  # 0.36 ha cleared before the monitoring start
LATE = (slice(12, 18), slice(12, 18))  # 0.36 ha cleared after it
START, EARLY_DAY, MONITOR_START, LATE_DAY = 19000, 19060, 19090, 19300


def case() -> tuple[ObservationStack, ReferenceData, PixelAlerts]:
    days = np.arange(START, START + 400, 10, dtype=np.int64)
    clear = np.ones((days.size, SIZE, SIZE), dtype=bool)
    bands = {band: np.full((days.size, SIZE, SIZE), 0.1, dtype=np.float32) for band in S2_BANDS}
    stack = ObservationStack(days, bands, clear, TRANSFORM, CRS.from_epsg(32721))
    clearing = np.full((SIZE, SIZE), -1, dtype=np.int64)
    raster = np.zeros((SIZE, SIZE), dtype=np.int32)
    first = np.full((SIZE, SIZE), -1, dtype=np.int64)
    for number, (block, day) in enumerate(((EARLY, EARLY_DAY), (LATE, LATE_DAY)), start=1):
        clearing[block], raster[block] = day, number
        first[block] = max(day, MONITOR_START) + 10  # nothing alerted before the start
    events = (ReferenceEvent(1, EARLY_DAY), ReferenceEvent(2, LATE_DAY))
    reference = ReferenceData(clearing, raster, events, TRANSFORM)
    alerted = first >= 0
    pixel_alerts = PixelAlerts(
        first_day=first,
        confirmed_day=first.copy(),
        score=np.where(alerted, 0.9, 0.0).astype(np.float32),
        monitored=np.ones((SIZE, SIZE), dtype=bool),
        status=np.where(alerted, STATUS_HIGH, 0).astype(np.int8),
    )
    return stack, reference, pixel_alerts


def test_monitoring_reference_keeps_only_the_events_from_the_start() -> None:
    _, reference, _ = case()
    later = monitoring_reference(reference, MONITOR_START)
    assert [e.number for e in later.events] == [2]
    assert set(np.unique(later.event_raster).tolist()) == {0, 2}
    assert (later.clearing_day[EARLY] == -1).all()
    assert (later.clearing_day[LATE] == LATE_DAY).all()


def test_a_late_alert_on_a_history_clearing_is_true_and_pa_counts_both_ways() -> None:
    stack, reference, pixel_alerts = case()
    run = score(stack, reference, pixel_alerts, monitor_start=MONITOR_START, seconds=1.0)
    row = pooled([run])
    assert row["alerts"] == 2 and row["event_ua"] == 1.0
    assert row["event_pa"] == 1.0 and row["events"] == 2
    assert row["monitoring_events"] == 1 and row["event_pa_monitoring"] == 1.0
    assert row["early"] == 0
    assert row["mpix_obs_s"] == stack.n_dates * SIZE * SIZE / 1e6

    missed = PixelAlerts(
        first_day=np.where(reference.event_raster == 2, pixel_alerts.first_day, -1),
        confirmed_day=np.where(reference.event_raster == 2, pixel_alerts.confirmed_day, -1),
        score=pixel_alerts.score,
        monitored=pixel_alerts.monitored,
        status=np.where(reference.event_raster == 2, pixel_alerts.status, 0).astype(np.int8),
    )
    row = pooled([score(stack, reference, missed, monitor_start=MONITOR_START, seconds=1.0)])
    assert row["event_pa"] == 0.5 and row["event_pa_monitoring"] == 1.0


def test_false_alerts_on_dated_changes_are_split_by_the_last_year() -> None:
    stack, reference, pixel_alerts = case()
    last = int(stack.days[-1])
    recent_cut, old_cut = (slice(2, 8), slice(12, 18)), (slice(12, 18), slice(2, 8))
    other_day = np.full((SIZE, SIZE), -1, dtype=np.int64)
    other_day[recent_cut] = last - 100  # cut in the series' last year: not regrown yet
    other_day[old_cut] = last - 380
    other = other_day >= 0
    dated = ReferenceData(
        reference.clearing_day, reference.event_raster, reference.events, TRANSFORM,
        other_change=other, other_change_day=other_day,
    )  # fmt: skip
    first = pixel_alerts.first_day.copy()
    for block, day in ((recent_cut, last - 90), (old_cut, last - 370)):
        first[block] = day
    alerts = PixelAlerts(
        first_day=first,
        confirmed_day=first.copy(),
        score=np.where(first >= 0, 0.9, 0.0).astype(np.float32),
        monitored=pixel_alerts.monitored,
        status=np.where(first >= 0, STATUS_HIGH, 0).astype(np.int8),
    )
    row = pooled([score(stack, dated, alerts, monitor_start=MONITOR_START, seconds=1.0)])
    recent_ha, dated_ha = row["false_on_changes_ha"]
    assert round(recent_ha, 2) == 0.36 and round(dated_ha, 2) == 0.72
    # the true alerts on the two clearings count in neither
    assert row["alerts"] == 4 and row["event_ua"] == 0.5
