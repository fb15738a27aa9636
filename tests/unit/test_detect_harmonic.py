"""The harmonic detector on tiny generated series with exactly known truth.

The series are built here (not by either simulator): a deciduous forest with a yearly
leaf-off whose timing shifts between years beside an evergreen one (so no date-wide offset
can explain the leaf-off), a clearing in the monitoring period and one in
the history, unflagged haze on one date, written as L2A GeoTIFFs for the CLI.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from canopywatch.dates import days_since_epoch
from canopywatch.detect.alerts import active_alerts, polygonize
from canopywatch.detect.commands import EXIT_USAGE, main
from canopywatch.detect.detector import HarmonicDetector
from canopywatch.detect.evaluate import (
    ReferenceData,
    ReferenceEvent,
    evaluate_alerts,
    rasterize_alerts,
)
from canopywatch.detect.harmonic import (
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_PLANTATION_HARVEST,
    HarmonicParams,
    default_monitor_start,
    run_harmonic,
)
from canopywatch.detect.observations import S2_BANDS, ObservationStack

SIZE = 24
START = dt.date(2023, 1, 1)
TRANSFORM = Affine(10, 0, 500000, 0, -10, 8800000)
CRS_UTM = CRS.from_epsg(32721)
LEAF_ON = {"B02": 0.025, "B03": 0.045, "B04": 0.025, "B08": 0.33, "B11": 0.15, "B12": 0.06}
LEAF_OFF = {"B02": 0.045, "B03": 0.06, "B04": 0.06, "B08": 0.21, "B11": 0.22, "B12": 0.12}
BARE = {"B02": 0.07, "B03": 0.09, "B04": 0.12, "B08": 0.22, "B11": 0.30, "B12": 0.25}
CLEARED = (slice(4, 9), slice(4, 9))  # 25 px = 0.25 ha, cleared in the monitoring period
OLD_CLEARING = (slice(14, 19), slice(14, 19))  # cleared in the history
HAZE_PATCH = (slice(0, 6), slice(16, 22))
DECIDUOUS_COLUMNS = 10  # columns left of this are deciduous, the rest evergreen


def leaf_on_share(day_of_series: np.ndarray, shift_days: np.ndarray) -> np.ndarray:
    """1 in summer, 0 in the leaf-off season (northern), smooth 30-day transitions."""
    doy = np.mod(day_of_series - shift_days, 365.25)
    up = np.clip((doy - 100) / 30, 0, 1)
    down = np.clip((310 - doy) / 30, 0, 1)
    return np.minimum(up, down)


def series(clear_day: int, old_day: int, haze_day: int | None = None) -> ObservationStack:
    rng = np.random.default_rng(7)
    offsets = np.arange(0, 730, 5)
    days = days_since_epoch(START) + offsets
    n = offsets.size
    year = (offsets // 365)[:, None, None]
    # per pixel and per year timing jitter of +-15 days
    jitter = rng.uniform(-15, 15, size=(2, SIZE, SIZE))
    shift = np.where(year == 0, jitter[0][None], jitter[1][None])
    share = leaf_on_share(offsets[:, None, None].astype(float), shift)
    share[:, :, DECIDUOUS_COLUMNS:] = 1.0  # evergreen: leaves all year
    bands = {}
    for band in S2_BANDS:
        value = LEAF_OFF[band] + (LEAF_ON[band] - LEAF_OFF[band]) * share
        for block, day in ((CLEARED, clear_day), (OLD_CLEARING, old_day)):
            after = (offsets >= day)[:, None, None] & np.zeros((1, SIZE, SIZE), dtype=bool)
            after[:, block[0], block[1]] = (offsets >= day)[:, None, None]
            value = np.where(after, BARE[band], value)
        value = value + rng.normal(0, 0.004, size=(n, SIZE, SIZE))
        bands[band] = value.astype(np.float32)
    if haze_day is not None:
        t = int(np.searchsorted(offsets, haze_day))
        for band, lift in {"B02": 0.06, "B03": 0.045, "B04": 0.035, "B08": 0.02}.items():
            bands[band][t, HAZE_PATCH[0], HAZE_PATCH[1]] += lift
    clear = rng.random((n, SIZE, SIZE)) > 0.05
    clear &= (rng.random(n) > 0.35)[:, None, None]  # cloudy dates
    if haze_day is not None:
        clear[int(np.searchsorted(offsets, haze_day))] = True  # the haze is not flagged
    for band in S2_BANDS:
        bands[band][~clear] = np.nan
    return ObservationStack(days.astype(np.int64), bands, clear, TRANSFORM, CRS_UTM)


def test_leaf_off_is_not_alerted_and_the_clearing_is_dated_at_its_first_clear_look() -> None:
    clear_day, old_day = 520, 60
    stack = series(clear_day, old_day, haze_day=600)
    state = run_harmonic(stack, HarmonicParams())
    status = state.status.reshape(SIZE, SIZE)
    first = state.first_day.reshape(SIZE, SIZE)
    active = (status == 1) | (status == 2)
    stable = np.ones((SIZE, SIZE), dtype=bool)
    stable[CLEARED] = False
    stable[OLD_CLEARING] = False
    # two leaf-offs (one in the monitoring period with shifted timing) and a haze patch: no
    # alert polygon on the stable forest, and at most a few stray pixels (the earlier
    # baseline flags 215 of the 550 stable pixels here)
    alerts = active_alerts(
        polygonize(HarmonicDetector().detect(stack), TRANSFORM, CRS_UTM, aoi="t", model_version="h")
    )
    polygons = rasterize_alerts(alerts, (SIZE, SIZE), TRANSFORM)
    assert int((polygons[stable] > 0).sum()) == 0
    assert int(active[stable].sum()) <= 0.03 * int(stable.sum())
    assert (status[CLEARED] == STATUS_HIGH).all()
    clearing = days_since_epoch(START) + clear_day
    clear_dates = stack.days[stack.clear[:, 6, 6]]
    first_look = int(clear_dates[clear_dates >= clearing][0])
    assert int(np.median(first[CLEARED])) == first_look
    # cleared during the history: no active alert (at most a withdrawn one while the model
    # learnt the bare state)
    assert int(active[OLD_CLEARING].sum()) == 0


def strip_seen_once(cols: np.ndarray) -> ObservationStack:
    """Stable forest where a cloud hung over rows 4-11 of ``cols`` for all but one date of
    the 90-day history (a series that starts in a wet season: 1 clear look, 6 make a full
    history), cleared there at the monitoring start."""
    rows = np.arange(4, 12)
    stack = series(clear_day=10_000, old_day=10_000)
    offsets = stack.days - stack.days[0]
    history = np.flatnonzero(offsets < 90)
    seen = history[stack.clear[np.ix_(history, rows, cols)].all(axis=(1, 2))][:1]
    hidden = history[~np.isin(history, seen)]
    stack.clear[np.ix_(hidden, rows, cols)] = False
    cleared = offsets >= 90
    for band in S2_BANDS:
        values = stack.bands[band]
        values[np.ix_(cleared, rows, cols)] = BARE[band]
        values[~stack.clear] = np.nan
    assert (stack.clear[np.ix_(history, rows, cols)].sum(axis=0) == 1).all()
    return stack


def alerted_in(
    stack: ObservationStack, params: HarmonicParams, patch: tuple[slice, slice]
) -> np.ndarray:
    status = run_harmonic(stack, params).status.reshape(SIZE, SIZE)[patch]
    return (status == 1) | (status == 2)


def test_a_patch_with_few_history_looks_inside_the_forest_is_monitored_and_alone_it_is_not() -> (
    None
):
    """Inside established forest the strip seen once is monitored anyway, so its clearing at
    the monitoring start is alerted; the same strip with no forest around it (bare fields)
    is not monitored, and without the context rule neither is it inside the forest."""
    patch = (slice(4, 12), slice(14, 16))  # evergreen
    stack = strip_seen_once(np.arange(14, 16))
    assert alerted_in(stack, HarmonicParams(), patch).all()
    assert not alerted_in(stack, replace(HarmonicParams(), context_min_obs=None), patch).any()
    outside = np.ones((SIZE, SIZE), dtype=bool)
    outside[patch] = False
    fields = {band: np.where(outside[None] & stack.clear, BARE[band], values).astype(np.float32)
              for band, values in stack.bands.items()}  # fmt: skip
    alone = ObservationStack(stack.days, fields, stack.clear, TRANSFORM, CRS_UTM)
    assert not alerted_in(alone, HarmonicParams(), patch).any()


def test_a_wider_cloud_strip_inside_the_forest_is_monitored_whole() -> None:
    """A 4 px (40 m) strip: its inner columns have one column of full-history forest in
    their 5 x 5 neighbourhood (a fifth of it); the default context share monitors them too,
    where the earlier 40 % left the strip's middle unwatched."""
    patch = (slice(4, 12), slice(13, 17))
    stack = strip_seen_once(np.arange(13, 17))
    assert alerted_in(stack, HarmonicParams(), patch).all()
    earlier = alerted_in(stack, replace(HarmonicParams(), context_share=0.4), patch)
    assert earlier[:, [0, 3]].all() and not earlier[2:-2, 1:3].any()  # away from its ends


def test_nothing_is_alerted_before_the_monitoring_start() -> None:
    stack = series(clear_day=300, old_day=10_000)
    start = int(stack.days[0]) + 400
    params = HarmonicParams().with_periods(None, start)
    state = run_harmonic(stack, params)
    alerted = state.first_day[(state.status == 1) | (state.status == 2)]
    assert alerted.size == 0 or int(alerted.min()) >= start
    assert default_monitor_start(stack.days) == int(stack.days[0]) + 90


def test_a_cut_whose_canopy_closes_again_is_a_plantation_harvest_and_pasture_stays_an_alert() -> (
    None
):
    stack = series(clear_day=10_000, old_day=10_000)  # stable forest everywhere
    offsets = stack.days - days_since_epoch(START)
    planted = (slice(2, 7), slice(12, 17))  # cut on day 200, bare 60 days, replanted
    pasture = (slice(14, 19), slice(12, 17))  # cut on day 200, grass from day 260 on
    regrowth = np.clip((offsets - 260) / 240.0, 0.0, 1.0)[:, None, None]  # closed by day 500
    grass = np.clip((offsets - 260) / 60.0, 0.0, 1.0)[:, None, None]
    grass_values = {"B02": 0.04, "B03": 0.07, "B04": 0.05, "B08": 0.30, "B11": 0.26, "B12": 0.15}
    for band in S2_BANDS:
        cut = (offsets >= 200)[:, None, None]
        value = stack.bands[band]
        trees = BARE[band] + (LEAF_ON[band] - BARE[band]) * regrowth
        herbs = BARE[band] + (grass_values[band] - BARE[band]) * grass
        block = value[:, planted[0], planted[1]]
        value[:, planted[0], planted[1]] = np.where(cut, trees, block)
        block = value[:, pasture[0], pasture[1]]
        value[:, pasture[0], pasture[1]] = np.where(cut, herbs, block)
        value[~stack.clear] = np.nan
    state = run_harmonic(stack, HarmonicParams())
    status = state.status.reshape(SIZE, SIZE)
    assert (status[planted] == STATUS_PLANTATION_HARVEST).mean() >= 0.9
    assert (status[pasture] == STATUS_HIGH).mean() >= 0.9  # regreened, but not to canopy


def test_a_harvest_on_the_anniversary_of_an_earlier_one_is_the_crops_season_not_an_alert() -> None:
    stack = series(clear_day=10_000, old_day=10_000)  # stable forest everywhere
    offsets = stack.days - days_since_epoch(START)
    crop = (slice(2, 7), slice(12, 17))  # a forest-like crop, bare on one clear look ...
    cleared = (slice(14, 19), slice(12, 17))  # a forest cleared when the crop is harvested
    looked = stack.clear[:, crop[0], crop[1]].all(axis=(1, 2)) & (offsets >= 290)
    first_harvest = int(offsets[np.argmax(looked)])
    second_harvest = first_harvest + 365  # ... and a year later, to the end of the series
    harvested = (offsets == first_harvest) | (offsets >= second_harvest)
    for band in S2_BANDS:
        value = stack.bands[band]
        block = value[:, crop[0], crop[1]]
        value[:, crop[0], crop[1]] = np.where(harvested[:, None, None], BARE[band], block)
        block = value[:, cleared[0], cleared[1]]
        value[:, cleared[0], cleared[1]] = np.where(
            (offsets >= second_harvest)[:, None, None], BARE[band], block
        )
        value[~stack.clear] = np.nan

    def alerted(params: HarmonicParams) -> tuple[float, float]:
        status = run_harmonic(stack, params).status.reshape(SIZE, SIZE)
        active = (status == STATUS_LOW) | (status == STATUS_HIGH)
        return float(active[crop].mean()), float(active[cleared].mean())

    # without the season rule the second harvest is alerted at the end of the series
    assert alerted(replace(HarmonicParams(), season_days=None))[0] >= 0.9
    crop_share, cleared_share = alerted(HarmonicParams())
    assert crop_share <= 0.1
    assert cleared_share >= 0.9  # a clearing with no harvest behind it stays an alert


def test_grass_on_a_clearing_that_matches_the_leaf_off_is_no_replanting() -> None:
    """A deciduous forest cleared in summer, bare for five months, then grass as dull as
    the leafless forest: in the leaf-off trough it matches the prediction, but a
    replanting is confirmed only in the canopy season, so it stays an alert."""
    stack = series(clear_day=10_000, old_day=10_000)
    offsets = stack.days - days_since_epoch(START)
    block = (slice(14, 19), slice(2, 7))  # deciduous columns
    bare = (offsets >= 150) & (offsets < 300)
    grass = {"B02": 0.05, "B03": 0.065, "B04": 0.065, "B08": 0.21, "B11": 0.23, "B12": 0.13}
    for band in S2_BANDS:
        value = stack.bands[band]
        forest = value[:, block[0], block[1]]
        after = np.where((offsets >= 300)[:, None, None], grass[band], forest)
        value[:, block[0], block[1]] = np.where(bare[:, None, None], BARE[band], after)
        value[~stack.clear] = np.nan

    def statuses(params: HarmonicParams) -> np.ndarray:
        return run_harmonic(stack, params).status.reshape(SIZE, SIZE)[block]

    assert (statuses(HarmonicParams()) == STATUS_HIGH).mean() >= 0.9
    unchecked = statuses(replace(HarmonicParams(), regrowth_in_leaf=False))
    assert (unchecked == STATUS_PLANTATION_HARVEST).mean() >= 0.9


def test_regrowth_that_matches_the_forest_only_off_its_peak_is_no_replanting() -> None:
    """A forest of small amplitude (a spruce under the low winter sun: off its peak by about
    0.13 NDVI) clear-cut in summer, bare for 200 days, then grass: in winter and spring the
    grass matches the forest's prediction within a break, at the summer peak it stays well
    below it. The real THEIA series shows this: a canopy is confirmed only at its peak."""
    stack = series(clear_day=10_000, old_day=10_000)
    offsets = stack.days - days_since_epoch(START)
    block = (slice(14, 19), slice(2, 7))  # deciduous columns, damped to half the leaf-off
    cut = offsets >= 200
    grass = {"B02": 0.04, "B03": 0.07, "B04": 0.05, "B08": 0.25, "B11": 0.20, "B12": 0.085}
    for band in S2_BANDS:
        value = stack.bands[band]
        forest = LEAF_ON[band] + 0.5 * (value[:, block[0], block[1]] - LEAF_ON[band])
        after = np.where((offsets >= 400)[:, None, None], grass[band], BARE[band])
        value[:, block[0], block[1]] = np.where(cut[:, None, None], after, forest)
        value[~stack.clear] = np.nan

    def statuses(params: HarmonicParams) -> np.ndarray:
        return run_harmonic(stack, params).status.reshape(SIZE, SIZE)[block]

    assert (statuses(HarmonicParams()) == STATUS_HIGH).mean() >= 0.9
    anywhere_in_leaf = statuses(replace(HarmonicParams(), regrowth_peak_share=1.0))
    assert (anywhere_in_leaf == STATUS_PLANTATION_HARVEST).mean() >= 0.9


DRY_GRASS = {"B02": 0.06, "B03": 0.08, "B04": 0.10, "B08": 0.22, "B11": 0.30, "B12": 0.22}
PASTURE = (slice(2, 11), slice(12, 21))  # evergreen columns


def browning_pasture(wet_start: bool) -> ObservationStack:
    """A forest-like green pasture that browns for 200 days a year, from day 165 and again
    a year later to the end of the series; ``wet_start``: only two clear looks of it
    before its first browning."""
    stack = series(clear_day=10_000, old_day=10_000)
    offsets = stack.days - days_since_epoch(START)
    rows, cols = (np.arange(part.start, part.stop) for part in PASTURE)
    if wet_start:
        wet = np.flatnonzero(offsets < 160)
        seen = wet[stack.clear[np.ix_(wet, rows, cols)].all(axis=(1, 2))][:2]
        stack.clear[np.ix_(wet[~np.isin(wet, seen)], rows, cols)] = False
    day_of_year = np.mod(offsets, 365)
    browned = ((offsets >= 165) & (day_of_year >= 165)) | ((offsets >= 365) & (day_of_year < 5))
    for band in S2_BANDS:
        value = stack.bands[band]
        green = value[:, PASTURE[0], PASTURE[1]]
        value[:, PASTURE[0], PASTURE[1]] = np.where(browned[:, None, None], DRY_GRASS[band], green)
        value[~stack.clear] = np.nan
    return stack


def active_share(stack: ObservationStack, params: HarmonicParams) -> float:
    status = run_harmonic(stack, params).status.reshape(SIZE, SIZE)[PASTURE]
    return float(((status == STATUS_LOW) | (status == STATUS_HIGH)).mean())


def test_a_pasture_that_browns_for_months_each_year_is_learnt_after_its_first_season() -> None:
    """The first browning comes back as a cut that closed again (not an alert), and it
    teaches the pixel, so the second, still brown at the end of the series, is not
    alerted either."""
    stack = browning_pasture(wet_start=False)
    assert active_share(stack, HarmonicParams()) <= 0.1
    assert active_share(stack, replace(HarmonicParams(), learn_regrowth=False)) >= 0.9


def test_a_browning_seen_before_the_pixel_is_monitored_is_learnt_too() -> None:
    """Under a wet season that left the pasture two clear looks before its first browning
    it is not monitored yet then, and the browning that came back is learnt into its
    history as a withdrawn alert's would be, so the second is not alerted."""
    stack = browning_pasture(wet_start=True)
    own_looks_only = replace(HarmonicParams(), context_min_obs=None)
    assert active_share(stack, own_looks_only) <= 0.1
    assert active_share(stack, replace(own_looks_only, learn_regrowth=False)) >= 0.9


def reference_for(stack: ObservationStack, clear_day: int) -> ReferenceData:
    clearing = np.full((SIZE, SIZE), -1, dtype=np.int64)
    day = days_since_epoch(START) + clear_day
    clearing[CLEARED] = day
    raster = np.zeros((SIZE, SIZE), dtype=np.int32)
    raster[CLEARED] = 1
    return ReferenceData(clearing, raster, (ReferenceEvent(1, day),), TRANSFORM)


def test_back_dated_alerts_are_false_and_latency_is_never_negative() -> None:
    stack = series(clear_day=520, old_day=10_000)
    alerts = active_alerts(
        polygonize(HarmonicDetector().detect(stack), TRANSFORM, CRS_UTM, aoi="t", model_version="h")
    )
    reference = reference_for(stack, 520)
    on_time = evaluate_alerts(alerts, reference, as_of_day=int(stack.days[-1]))
    assert on_time.events[">=0.1ha"].precision == 1.0
    assert on_time.events[">=0.1ha"].recall == 1.0
    assert on_time.early_alerts == 0
    assert 0 <= min(on_time.latency_days) <= 15
    shifted = alerts.copy()
    shifted["alert_date"] = shifted["alert_date"] - dt.timedelta(days=200)
    early = evaluate_alerts(shifted, reference, as_of_day=int(stack.days[-1]))
    assert early.events[">=0.1ha"].n_true_alerts == 0
    assert early.events[">=0.1ha"].recall == 0.0
    assert early.early_alerts == len(shifted)
    assert early.pixel_precision == 0.0 and early.latency_days == []


def write_l2a(stack: ObservationStack, folder: Path, *, tags: bool) -> None:
    """Standard L2A-like GeoTIFFs: B02..B12 + SCL as described bands, DN with the +1000
    offset of processing baseline 04.00, the offset and scale as tags (when ``tags``)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [*S2_BANDS, "SCL"]
    for position, day in enumerate(stack.days):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
        clear = stack.clear[position]
        layers = [
            np.where(clear, np.nan_to_num(stack.bands[b][position]) * 10000 + 1000, 0)
            for b in S2_BANDS
        ]
        scl = np.where(clear, 4, 9)
        with rasterio.open(
            folder / f"S2B_MSIL2A_{date:%Y%m%d}.tif", "w", driver="GTiff", width=SIZE,
            height=SIZE, count=len(names), dtype="uint16", crs=CRS_UTM, transform=TRANSFORM,
            nodata=0,
        ) as dst:  # fmt: skip
            dst.write(np.stack([*layers, scl]).astype(np.uint16))
            for index, name in enumerate(names, start=1):
                dst.set_band_description(index, name)
            if tags:
                dst.update_tags(BOA_ADD_OFFSET="-1000", BOA_QUANTIFICATION_VALUE="10000")


def test_cli_reads_band_names_and_offset_from_the_files(tmp_path: Path) -> None:
    import geopandas as gpd

    stack = series(clear_day=520, old_day=10_000)
    write_l2a(stack, tmp_path / "scenes", tags=True)
    out = tmp_path / "alerts.geojson"
    assert main(["detect", "--scenes", str(tmp_path / "scenes"), "--out", str(out)]) == 0
    alerts = gpd.read_file(out)
    assert len(alerts) == 1
    assert set(alerts["status"]) == {"high"}
    assert (tmp_path / "alerts_forest_baseline.tif").exists()


def test_cli_writes_each_pixels_disturbance_date_status_and_confidence(tmp_path: Path) -> None:
    """``<out>_disturbance.tif`` (a COG): the cleared block's pixels carry their own first
    break dates (YYYYMMDD; the polygon's alert_date is the date its tenth pixel broke, the
    0.1 ha unit), a later confirmation,
    status high and a high confidence; undisturbed forest is 0 (nodata) in every band."""
    import geopandas as gpd
    from rio_cogeo.cogeo import cog_validate

    from canopywatch.detect.layers import DISTURBANCE_BANDS

    stack = series(clear_day=520, old_day=10_000)
    write_l2a(stack, tmp_path / "scenes", tags=True)
    out = tmp_path / "alerts.geojson"
    assert main(["detect", "--scenes", str(tmp_path / "scenes"), "--out", str(out)]) == 0
    alert_date = int(gpd.read_file(out)["alert_date"].iloc[0].strftime("%Y%m%d"))
    layer = tmp_path / "alerts_disturbance.tif"
    assert cog_validate(str(layer))[0]
    with rasterio.open(layer) as src:
        assert src.descriptions == DISTURBANCE_BANDS and src.nodata == 0
        first, confirmed, status, confidence = src.read()
    cleared = np.sort(first[CLEARED].ravel())
    assert int(cleared[0]) >= int((START + dt.timedelta(days=520)).strftime("%Y%m%d"))
    # dated when the 0.1 ha unit (10 px) had broken; pixels in leaf-off at the cut break later
    assert int(cleared[9]) == alert_date and cleared[0] < cleared[-1]
    assert (status[CLEARED] == STATUS_HIGH).all()
    assert (confirmed[CLEARED] > first[CLEARED]).all() and (confidence[CLEARED] >= 80).all()
    quiet = status == 0
    assert quiet.mean() > 0.8
    assert not first[quiet].any() and not confirmed[quiet].any() and not confidence[quiet].any()


def test_yyyymmdd_encodes_days_since_the_epoch_and_none_as_zero() -> None:
    from canopywatch.detect.layers import yyyymmdd

    days = np.array(
        [0, days_since_epoch(dt.date(2024, 2, 29)), days_since_epoch(dt.date(2006, 12, 31)), -1]
    )
    assert yyyymmdd(days).tolist() == [19700101, 20240229, 20061231, 0]


def _cell_polygons(path: Path, rows: slice, cols: slice) -> Path:
    """One polygon over the pixels ``rows`` x ``cols`` of the test grid, as GeoJSON."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = TRANSFORM * (cols.start, rows.stop)
    x1, y1 = TRANSFORM * (cols.stop, rows.start)
    gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs=CRS_UTM).to_file(path)
    return path


def test_cli_plantation_map_makes_the_cut_a_plantation_harvest(tmp_path: Path) -> None:
    """A cut inside the user's plantation map (``--plantations``, e.g. SDPT polygons) is a
    ``plantation_harvest`` in the other-changes file, not a deforestation alert; the same cut
    with no map is one high alert."""
    import geopandas as gpd

    stack = series(clear_day=520, old_day=10_000)
    write_l2a(stack, tmp_path / "scenes", tags=True)
    planted = _cell_polygons(tmp_path / "sdpt.geojson", slice(3, 10), slice(3, 10))
    out = tmp_path / "alerts.geojson"
    argv = ["detect", "--scenes", str(tmp_path / "scenes"), "--out", str(out)]
    assert main([*argv, "--plantations", str(planted)]) == 0
    assert len(gpd.read_file(out)) == 0
    others = gpd.read_file(tmp_path / "alerts_other_changes.geojson")
    assert list(others["status"]) == ["plantation_harvest"]
    # the 25 cut pixels (0.25 ha); observed 0.26: one neighbouring deciduous pixel, alerted
    # at its leaf-off and re-dated when it dropped again, is linked to the cut
    assert 0.25 <= float(others["area_ha"].iloc[0]) <= 0.27


def test_cli_forest_mask_limits_what_is_monitored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forest baseline without the cut block: nothing there is monitored, so no alert;
    a missing mask file is one line and exit 2."""
    import geopandas as gpd

    stack = series(clear_day=520, old_day=10_000)
    write_l2a(stack, tmp_path / "scenes", tags=True)
    forest = _cell_polygons(tmp_path / "forest.geojson", slice(12, SIZE), slice(0, SIZE))
    out = tmp_path / "alerts.geojson"
    argv = ["detect", "--scenes", str(tmp_path / "scenes"), "--out", str(out)]
    assert main([*argv, "--forest-mask", str(forest)]) == 0
    assert len(gpd.read_file(out)) == 0
    with rasterio.open(tmp_path / "alerts_forest_baseline.tif") as src:
        monitored = src.read(1)
    assert int(monitored[:12].sum()) == 0 and int(monitored[12:].sum()) > 0
    capsys.readouterr()
    assert main([*argv, "--plantations", str(tmp_path / "missing.gpkg")]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--plantations" in err and "no such file" in err


def test_cli_refuses_dn_with_the_offset_left_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = series(clear_day=520, old_day=10_000)
    write_l2a(stack, tmp_path / "scenes", tags=False)
    out = tmp_path / "alerts.geojson"
    code = main(["detect", "--scenes", str(tmp_path / "scenes"), "--out", str(out)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "BOA offset" in err
    assert not out.exists()


def test_evaluate_scores_one_loss_year(tmp_path: Path) -> None:
    """`canopywatch evaluate --year`: only that year's loss is reference, only that year's
    alerts count, and the Olofsson area estimate comes with its confidence interval."""
    import json

    import geopandas as gpd
    from shapely.geometry import box

    loss = np.zeros((SIZE, SIZE), dtype=np.uint8)
    loss[2:8, 2:8] = 16  # 2016
    loss[14:20, 14:20] = 15  # 2015: not scored with --year 2016
    labels = tmp_path / "lossyear.tif"
    with rasterio.open(
        labels, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint8",
        crs=CRS_UTM, transform=TRANSFORM,
    ) as dst:  # fmt: skip
        dst.write(loss, 1)
    x0, y0 = TRANSFORM * (2, 8)
    x1, y1 = TRANSFORM * (8, 2)
    a0, b0 = TRANSFORM * (14, 20)
    a1, b1 = TRANSFORM * (20, 14)
    alerts = gpd.GeoDataFrame(
        {"alert_date": ["2016-04-02", "2015-06-01"]},
        geometry=[box(x0, y0, x1, y1), box(a0, b0, a1, b1)],
        crs=CRS_UTM,
    )
    alerts.to_file(tmp_path / "alerts.gpkg", driver="GPKG")
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--alerts", str(tmp_path / "alerts.gpkg"), "--labels", str(labels),
            "--year", "2016", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["events_>=0.1ha"]["n_alerts"] == 1
    assert metrics["events_>=0.1ha"]["precision"] == 1.0
    assert metrics["events_>=0.1ha"]["recall"] == 1.0
    assert metrics["pixel_f1"] == 1.0
    area = metrics["area"]
    assert area["mapped_deforestation_ha"] == pytest.approx(0.36)
    assert area["users_accuracy"] == 1.0 and "producers_accuracy_ci95" in area


def two_steps(
    first: dict[str, float], first_day: int, bare_day: int, *, seed: int, length: int = 500
) -> tuple[ObservationStack, tuple[slice, slice]]:
    """Cloud-free leaf-on forest whose 6 x 6 block turns to ``first`` on ``first_day`` and to
    bare soil on ``bare_day`` (days of a series of ``length`` days)."""
    rng = np.random.default_rng(seed)
    offsets = np.arange(0, length, 5)
    days = days_since_epoch(START) + offsets
    block = (slice(2, 8), slice(2, 8))
    bands = {}
    for band in S2_BANDS:
        value = np.full((offsets.size, SIZE, SIZE), LEAF_ON[band], dtype=np.float64)
        value[(offsets >= first_day) & (offsets < bare_day), block[0], block[1]] = first[band]
        value[offsets >= bare_day, block[0], block[1]] = BARE[band]
        bands[band] = (value + rng.normal(0, 0.004, value.shape)).astype(np.float32)
    clear = np.ones((offsets.size, SIZE, SIZE), dtype=bool)
    return ObservationStack(days.astype(np.int64), bands, clear, TRANSFORM, CRS_UTM), block


def block_first_days(stack: ObservationStack, block: tuple[slice, slice], **overrides: Any) -> Any:
    """The block's first-break days, as days of the series, with ``overrides`` of the
    default parameters."""
    state = run_harmonic(stack, replace(HarmonicParams(), **overrides))
    return state.first_day.reshape(SIZE, SIZE)[block] - days_since_epoch(START)


GREEN_SLASH = {"B02": 0.04, "B03": 0.06, "B04": 0.09, "B08": 0.28, "B11": 0.25, "B12": 0.17}


def test_a_clearing_after_a_partial_drop_is_dated_at_the_clearing() -> None:
    """An understorey fire or an early leaf-off (the leaf-off spectrum from day 250) that a
    clearing follows (bare soil, day 330): the alert is dated at the clearing's first clear
    look, not at the partial drop; without the second-drop rule it would be 80 days early."""
    stack, block = two_steps(LEAF_OFF, 250, 330, seed=3)
    assert (block_first_days(stack, block) == 330).all()
    assert (block_first_days(stack, block, second_drop_days=None) == 250).all()


def test_a_cut_whose_slash_dries_to_soil_keeps_the_date_of_the_cut() -> None:
    """A clear-cut left as fresh slash (NDVI ~0.47, NBR ~0.06: 6.3 break sizes below the
    forest on NBR at the first look, where a leaf-off keeps its woody NBR) that dries to bare
    soil 40 days later: a second drop of a break's size, but no partial level before it, so
    the alert keeps the cut's date; the second-drop rule without the onset check re-dated it."""
    slash = {"B02": 0.04, "B03": 0.06, "B04": 0.09, "B08": 0.25, "B11": 0.27, "B12": 0.22}
    stack, block = two_steps(slash, 250, 290, seed=5)
    assert (block_first_days(stack, block) == 250).all()
    assert (block_first_days(stack, block, second_drop_onset=float("inf")) >= 290).all()


def test_slash_burned_weeks_after_the_cut_of_an_evergreen_forest_keeps_the_cut_date() -> None:
    """Slash-and-burn in a forest whose year of history showed no leaf-off: the cut leaves
    slash (NDVI ~0.51, NBR ~0.24: 4.5 break sizes on NBR, where a leafless canopy would sit)
    that burns to bare ground 50 days later. A leaf-off cannot fall 0.35 NDVI below a forest
    whose seasons span a few hundredths, so the alert keeps the cut's date; without the
    season check the burn re-dated it, 50 days late."""
    stack, block = two_steps(GREEN_SLASH, 415, 465, seed=6, length=600)
    assert (block_first_days(stack, block) == 415).all()
    assert (block_first_days(stack, block, season_bounds_onset=False) == 465).all()


def test_slash_burned_in_the_first_year_keeps_the_cut_date() -> None:
    """The same slash in a history too short to know the forest's seasons (cut on day 250),
    burned to char 50 days later (NIR 0.07, under SWIR-2): a burn on an open alert burns the
    cut's slash, so the alert keeps the cut's date; without the char check it moved to the
    burn. Bare soil instead of char (the leaf-off test above) is still re-dated."""
    char = {"B02": 0.03, "B03": 0.038, "B04": 0.045, "B08": 0.07, "B11": 0.11, "B12": 0.095}
    stack, block = two_steps(GREEN_SLASH, 250, 300, seed=7)
    burnt = stack.days - stack.days[0] >= 300
    for band, value in char.items():
        stack.bands[band][burnt, block[0], block[1]] = value
    assert (block_first_days(stack, block) == 250).all()
    assert (block_first_days(stack, block, burn_keeps_date=False) == 300).all()


def test_a_crop_that_shows_its_harvests_leaves_the_forest_baseline() -> None:
    """A forest-like irrigated crop (leaf-on reflectance all year) harvested to bare soil
    for two weeks twice in the monitoring period: monitored from the history (its looks were
    forest-like), it leaves the forest baseline once its first harvest comes back, while
    the forest beside it stays in."""
    stack = series(clear_day=10_000, old_day=10_000)
    offsets = stack.days - stack.days[0]
    crop = (slice(19, 24), slice(12, 20))  # evergreen columns: leaf-on all year
    harvests = ((offsets >= 200) & (offsets < 215)) | ((offsets >= 560) & (offsets < 575))
    stack.clear[np.ix_(harvests, np.arange(19, 24), np.arange(12, 20))] = True
    for band in S2_BANDS:
        values = stack.bands[band]
        values[np.ix_(harvests, np.arange(19, 24), np.arange(12, 20))] = BARE[band]
    state = run_harmonic(stack, HarmonicParams())
    baseline = state.monitored.reshape(SIZE, SIZE)
    assert not baseline[crop].any()
    assert baseline[0:4, 10:16].all()  # evergreen forest, no event
    status = state.status.reshape(SIZE, SIZE)[crop]
    assert not ((status == STATUS_LOW) | (status == STATUS_HIGH)).any()
