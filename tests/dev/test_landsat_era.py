"""Landsat-era NDVI stacks (the benchmark's stand-in for an 11-year Landsat series)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from canopywatch.dates import days_since_epoch
from canopywatch_dev.landscapes import LandscapeConfig, generate
from canopywatch_dev.landscapes.landsat import L8_START, landsat_ndvi_stack, sensors, slc_off_gaps


def test_platforms_follow_the_eras_of_the_archive() -> None:
    days = np.asarray(
        [days_since_epoch(dt.date(y, 6, 1)) for y in (2008, 2008, 2012, 2012, 2014, 2014)]
    )
    assert sensors(days, np.asarray([0, 1, 0, 1, 0, 1])) == ["L7", "L5", "L7", "", "L7", "L8"]


def test_slc_off_stripes_miss_a_share_of_each_etm_look_across_the_window() -> None:
    rng = np.random.default_rng(0)
    shares = [slc_off_gaps((96, 96), rng).mean() for _ in range(50)]
    assert min(shares) > 0.05 and max(shares) < 0.4  # 1-6 of every 16 lines
    one = slc_off_gaps((96, 96), np.random.default_rng(1))
    assert one.any(axis=1).sum() > 40  # stripes cross the window, not a corner


def test_the_stack_drops_the_2012_slots_and_raises_oli_ndvi() -> None:
    config = LandscapeConfig(
        seed=500003, kind="mixed", size_px=32, start=dt.date(2011, 6, 1),
        end=dt.date(2014, 6, 1), revisit_days=8, pixel_m=30.0, n_events=(0, 0),
    )  # fmt: skip
    landscape = generate(config)
    stack = landsat_ndvi_stack(landscape, 0)
    assert stack.days.size < landscape.days.size  # no platform in half the 2012 slots
    forest = landscape.reference().stable_forest
    kept = np.isin(landscape.days, stack.days)
    platform = np.asarray(sensors(landscape.days, landscape.sky.orbit))[kept]
    ndvi = stack.bands["ndvi"][:, forest]
    oli = np.nanmedian(ndvi[platform == "L8"])
    etm = np.nanmedian(ndvi[(platform == "L7") & (stack.days >= L8_START)])
    # the same forest read higher by OLI (the orbits' own brightness difference on top)
    assert 0.015 < oli - etm < 0.08
    etm_clear = stack.clear[platform == "L7"].mean()
    assert etm_clear < stack.clear[platform != "L7"].mean() - 0.05  # SLC-off stripes
