"""The independent landscape generator: physically bounded values, truth, files, speed."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import rasterio

from canopywatch.dates import days_since_epoch
from canopywatch.detect.observations import MaskingConfig, SceneFilesSource
from canopywatch_dev.landscapes import (
    DECIDUOUS_FOREST,
    EVALUATION_SEED_MIN,
    EVERGREEN_FOREST,
    IRRIGATED_CROPLAND,
    LANDCOVER_NAMES,
    LANDSCAPE_TYPES,
    PLANTATION,
    SCENE_BANDS,
    Landscape,
    LandscapeConfig,
    generate,
    randomized_config,
    scenarios,
)


def nd(a: Any, b: Any) -> Any:
    return (a - b) / (a + b)


def daily(scene: Landscape) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    days = np.arange(scene.days[0], scene.days[-1] + 1)
    return days, scene.surface(days)


def complete_runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True that start and end inside the series."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    return [int(b - a) for a, b in zip(starts, ends, strict=True) if a > 0 and b < flags.size]


@pytest.fixture(scope="module")
def mixed() -> Landscape:
    return generate(LandscapeConfig(seed=500011, kind="mixed", size_px=64))


@pytest.fixture(scope="module")
def evergreen_events() -> dict[str, Landscape]:
    """Scenes whose events are all of one kind, in evergreen forest only."""
    mixes = {
        "clearcut": (1.0, 0.0, 0.0, 0.0),
        "gradual": (0.0, 1.0, 0.0, 0.0),
        "subpixel": (0.0, 0.0, 1.0, 0.0),
        "fire_then_clear": (0.0, 0.0, 0.0, 1.0),
    }
    return {
        kind: generate(
            LandscapeConfig(
                seed=500021, kind="gradual_subpixel", size_px=48, deciduous_share=0.0, event_mix=mix
            )
        )
        for kind, mix in mixes.items()
    }


def test_evergreen_forest_observed_values_are_tropical_forest(mixed: Landscape) -> None:
    stack, ref = mixed.stack(), mixed.reference()
    forest = (mixed.ground.landcover == EVERGREEN_FOREST) & ref.stable_forest
    med = {b: np.nanmedian(stack.bands[b][:, forest], axis=0) for b in stack.bands}
    ndvi = np.nanmedian(nd(stack.bands["B08"], stack.bands["B04"])[:, forest], axis=0)
    assert 0.8 <= np.median(ndvi) <= 0.92
    assert 0.02 <= np.median(med["B04"]) <= 0.04
    assert 0.28 <= np.median(med["B08"]) <= 0.38
    assert 0.13 <= np.median(med["B11"]) <= 0.18
    assert 0.05 <= np.median(med["B12"]) <= 0.08
    # small seasonal amplitude: noise-free NDVI varies by less than 0.06 over the years
    surface = mixed.surface()
    s_ndvi = nd(surface["B08"], surface["B04"])[:, forest]
    assert np.median(s_ndvi.max(axis=0) - s_ndvi.min(axis=0)) < 0.06


def test_deciduous_leaf_off_is_deep_and_its_timing_varies_by_pixel_and_year() -> None:
    scene = generate(LandscapeConfig(seed=500031, kind="deciduous", size_px=48))
    days, surface = daily(scene)
    ref = scene.reference()
    px = (scene.ground.landcover == DECIDUOUS_FOREST) & ref.stable_forest
    ndvi = nd(surface["B08"], surface["B04"])[:, px]
    assert np.median(ndvi.max(axis=0)) > 0.8
    onsets = []
    for year in (2023, 2024):
        in_year = (days >= days_since_epoch(dt.date(year, 1, 1))) & (
            days < days_since_epoch(dt.date(year + 1, 1, 1))
        )
        trough = ndvi[in_year].min(axis=0)
        assert np.median(trough) < 0.55
        assert np.all(trough > 0.3)
        half = (ndvi[in_year].max(axis=0) + trough) / 2
        onsets.append(np.argmax(ndvi[in_year] < half, axis=0))
    shift = onsets[1] - onsets[0]
    assert np.mean(shift != 0) > 0.9  # timing differs between years
    assert np.std(onsets[0]) > 4  # and between pixels
    # smooth transitions: the fall from 90 % to 10 % of the amplitude takes 10-40 days
    year = ndvi[:365]
    top, low = year.max(axis=0), year.min(axis=0)
    start = np.argmax(year < low + 0.9 * (top - low), axis=0)
    end = np.argmax(year < low + 0.1 * (top - low), axis=0)
    assert 10 <= np.median(end - start) <= 40


def test_crop_harvests_drop_ndvi_for_10_to_18_days_and_the_median_stays_forest_like() -> None:
    scene = generate(LandscapeConfig(seed=500041, kind="irrigated_crops", size_px=48))
    _, surface = daily(scene)
    px = scene.ground.landcover == IRRIGATED_CROPLAND
    ndvi = nd(surface["B08"], surface["B04"])[:, px]
    assert np.median(np.median(ndvi, axis=0)) > 0.75
    lengths: list[int] = []
    dips_per_pixel = []
    for column in (ndvi < 0.5).T:
        runs = complete_runs(column)
        lengths += runs
        dips_per_pixel.append(len(runs))
    assert lengths
    assert min(lengths) >= 10 and max(lengths) <= 18
    assert min(dips_per_pixel) >= 2  # at least one harvest a year
    assert np.min(ndvi) < 0.3  # bare soil
    assert scene.reference().other_change[scene.ground.landcover == IRRIGATED_CROPLAND].all()


def test_plantations_are_cut_in_both_years_and_regrow() -> None:
    scene = generate(LandscapeConfig(seed=500051, kind="plantations", size_px=48))
    g = scene.ground
    cut = g.plantation_cut_day[g.landcover == PLANTATION]
    cut = cut[cut >= 0]
    assert cut.size
    years = {dt.date(1970, 1, 1).year + int(d // 365.25) for d in np.unique(cut)}
    assert years == {2023, 2024}
    days, surface = daily(scene)
    ndvi = nd(surface["B08"], surface["B04"])
    rows, cols = np.nonzero(g.plantation_cut_day >= 0)
    first = int(np.argmin(g.plantation_cut_day[rows, cols]))
    y, x = rows[first], cols[first]
    k = int(g.plantation_cut_day[y, x] - days[0])
    assert ndvi[k - 10, y, x] > 0.75
    assert ndvi[k + 20, y, x] < 0.35
    assert ndvi[-1, y, x] > ndvi[k + 20, y, x] + 0.25  # replanted and climbing back
    ref = scene.reference()
    assert ref.other_change[g.plantation_cut_day >= 0].all()
    assert not ref.stable_forest[g.landcover == PLANTATION].any()


def test_abrupt_clearcut_ndvi_before_and_after_the_clearing_day(
    evergreen_events: dict[str, Landscape],
) -> None:
    scene = evergreen_events["clearcut"]
    days, surface = daily(scene)
    ndvi = nd(surface["B08"], surface["B04"])
    g = scene.ground
    rows, cols = np.nonzero((g.clearing_day >= 0) & (g.removed_share >= 0.9))
    assert rows.size > 50
    for y, x in zip(rows, cols, strict=True):
        k = int(g.clearing_day[y, x] - days[0])
        assert ndvi[max(k - 30, 0) : k, y, x].min() > 0.7
        assert ndvi[k + 1 : k + 60, y, x].max() < 0.4


def test_gradual_clearing_dates_each_pixel_when_it_lost_its_canopy(
    evergreen_events: dict[str, Landscape],
) -> None:
    scene = evergreen_events["gradual"]
    days, surface = daily(scene)
    ndvi = nd(surface["B08"], surface["B04"])
    g = scene.ground
    for event in scene.events:
        if event.number == 0:
            continue
        inside = g.event_raster == event.number
        spread = g.clearing_day[inside].max() - g.clearing_day[inside].min()
        if inside.sum() >= 20:
            assert 25 <= spread <= 125
        for y, x in zip(*np.nonzero(inside), strict=True):
            k = int(g.clearing_day[y, x] - days[0])
            assert ndvi[max(k - 6, 0), y, x] > 0.7
            assert ndvi[min(k + 6, days.size - 1), y, x] < 0.5


def test_subpixel_clearings_give_intermediate_reflectance(
    evergreen_events: dict[str, Landscape],
) -> None:
    scene = evergreen_events["subpixel"]
    days, surface = daily(scene)
    ndvi = nd(surface["B08"], surface["B04"])
    g = scene.ground
    rows, cols = np.nonzero(g.clearing_day >= 0)
    share = g.removed_share[rows, cols]
    assert share.min() >= 0.4 and share.max() <= 0.7
    after = np.array(
        [
            ndvi[int(g.clearing_day[y, x] - days[0]) + 8, y, x]
            for y, x in zip(rows, cols, strict=True)
        ]
    )
    assert 0.4 < np.median(after) < 0.7


def test_fire_before_clearing_lowers_nbr_while_ndvi_stays_forest(
    evergreen_events: dict[str, Landscape],
) -> None:
    scene = evergreen_events["fire_then_clear"]
    days, surface = daily(scene)
    ndvi = nd(surface["B08"], surface["B04"])
    nbr = nd(surface["B08"], surface["B12"])
    g = scene.ground
    ref = scene.reference()
    checked = 0
    for event in scene.events:
        if event.kind != "fire_then_clear":
            continue
        assert event.fire_day is not None and event.fire_day < event.start_day - 15
        inside = g.event_raster == event.number
        f, k = event.fire_day - int(days[0]), event.start_day - int(days[0])
        if f < 15:
            continue
        before = nbr[f - 12 : f - 3][:, inside].mean()
        burned = nbr[f + 4 : min(f + 30, k - 2)][:, inside].mean()
        assert before - burned > 0.05
        assert ndvi[f + 4 : k - 2][:, inside].min() > 0.6
        # the truth start is the clearing, not the fire
        assert ref.clearing_day[inside].min() == event.start_day
        checked += 1
    assert checked
    # the burned rim that was never cleared is other change, not deforestation
    rim = (g.fire_day >= 0) & (g.clearing_day < 0)
    assert ref.other_change[rim].all()


def test_fires_without_clearing_are_other_change(mixed: Landscape) -> None:
    ref = mixed.reference()
    fires = [e for e in mixed.events if e.kind == "fire_only"]
    assert fires
    for fire in fires:
        burned = mixed.ground.fire_day == fire.fire_day
        assert ref.other_change[burned].all()
        assert (ref.clearing_day[burned] < 0).all()


def test_reference_events_sizes_dates_and_masks(mixed: Landscape) -> None:
    ref = mixed.reference()
    assert 8 <= len(ref.events) <= 15
    starts = []
    for event in ref.events:
        inside = ref.event_raster == event.number
        assert 10 <= inside.sum() <= 500  # 0.1-5 ha
        assert event.start_day == ref.clearing_day[inside].min()
        starts.append(event.start_day)
    assert (ref.event_raster > 0).sum() == (ref.clearing_day >= 0).sum()
    mid = days_since_epoch(dt.date(2024, 1, 1))
    assert min(starts) < mid < max(starts)  # clearings in both years
    assert ref.stable_forest is not None and ref.other_change is not None
    assert not (ref.stable_forest & ref.other_change).any()
    assert not (ref.stable_forest & (ref.clearing_day >= 0)).any()
    assert ref.landcover is not None
    assert ref.landcover_names == LANDCOVER_NAMES
    assert set(np.unique(ref.landcover)) <= set(LANDCOVER_NAMES)
    cleared_cover = np.unique(ref.landcover[ref.clearing_day >= 0])
    assert set(cleared_cover.tolist()) <= {EVERGREEN_FOREST, DECIDUOUS_FOREST}
    assert {e.kind for e in ref.events} <= {"clearcut", "gradual", "subpixel", "fire_then_clear"}


def test_land_cover_is_spatially_coherent(mixed: Landscape) -> None:
    lc = mixed.ground.landcover
    same = np.mean(lc[:, 1:] == lc[:, :-1]) + np.mean(lc[1:] == lc[:-1])
    assert same / 2 > 0.85
    assert len(np.unique(lc)) == 7


def test_haze_is_unflagged_and_raises_blue_more_than_swir() -> None:
    scene = generate(LandscapeConfig(seed=500061, kind="thin_cloud_orbits", size_px=48))
    hazy = np.flatnonzero(scene.sky.haze_depth > 0.3)
    assert hazy.size
    surface = scene.surface()
    diff = {}
    for band in ("B02", "B04", "B08", "B12"):
        obs, truth = scene.reflectance[band][hazy], surface[band][hazy]
        ok = scene.clear[hazy]
        diff[band] = float(np.mean((obs - truth)[ok]))
    assert diff["B02"] > diff["B04"] > diff["B12"]
    assert diff["B02"] - diff["B12"] > 0.01
    # the haze stays clear in the mask and keeps its land SCL class
    assert np.isin(scene.scl[hazy][scene.clear[hazy]], (4, 5, 6)).all()


def test_relative_orbits_differ_in_brightness() -> None:
    scene = generate(LandscapeConfig(seed=500071, kind="thin_cloud_orbits", size_px=48))
    assert set(np.unique(scene.orbit)) == {0, 1}
    factor = scene.sky.orbit_factor
    assert np.all(np.abs(factor[0] - factor[1]) > 0.02)
    stack = scene.stack()
    forest = scene.reference().stable_forest
    low_haze = scene.sky.haze_depth < 0.05
    nir = [
        np.nanmedian(stack.bands["B08"][(scene.orbit == o) & low_haze][:, forest]) for o in (0, 1)
    ]
    ratio = nir[0] / nir[1]
    expected = factor[0, 3] / factor[1, 3]
    assert abs(ratio - expected) < 0.03


def test_clouds_are_flagged_but_their_soft_edges_are_not(mixed: Landscape) -> None:
    assert np.isin(mixed.scl, (3, 8, 9)).any()
    surface = mixed.surface()
    no_haze = mixed.sky.haze_depth == 0
    cloudy = np.isin(mixed.scl, (8, 9))[no_haze]
    from scipy import ndimage

    near = ndimage.binary_dilation(cloudy, structure=np.ones((1, 3, 3), bool)) & ~cloudy
    near &= mixed.clear[no_haze]
    excess = (mixed.reflectance["B02"][no_haze] - surface["B02"][no_haze])[near]
    assert np.median(excess) > 0.01  # edge pixels left clear are brightened by cloud
    # stack: NaN exactly where flagged
    stack = mixed.stack()
    assert np.array_equal(np.isnan(stack.bands["B02"]), ~stack.clear)


def test_misregistration_and_wet_season_gaps() -> None:
    scene = generate(LandscapeConfig(seed=500081, kind="misregistration_gaps", size_px=48))
    size = np.hypot(*scene.sky.shift_px.T)
    shifted = size > 0
    assert 0.1 <= shifted.mean() <= 0.45
    assert size[shifted].min() >= 0.5 and size[shifted].max() <= 1.0
    clear_share = scene.clear.mean(axis=(1, 2))
    for year in (2023, 2024):
        lo = days_since_epoch(dt.date(year, 1, 1))
        window = [
            clear_share[(scene.days >= d) & (scene.days < d + 60)].mean()
            for d in range(lo, lo + 200, 5)
        ]
        assert min(window) < 0.1  # two months with almost no clear observation
    noise = LANDSCAPE_TYPES["misregistration_gaps"]["wet_gap_months"]
    assert noise[0] >= 2


def test_written_scenes_are_standard_l2a_geotiffs(tmp_path: Any) -> None:
    config = LandscapeConfig(
        seed=500091, kind="mixed", size_px=32, start=dt.date(2023, 6, 1), end=dt.date(2023, 7, 20)
    )
    scene = generate(config)
    paths = scene.write_scenes(tmp_path)
    assert len(paths) == scene.days.size
    assert all(re.fullmatch(r"S2[AB]_MSIL2A_\d{8}\.tif", p.name) for p in paths)
    with rasterio.open(paths[0]) as src:
        assert src.count == 7
        assert src.descriptions == SCENE_BANDS
        assert src.dtypes == ("uint16",) * 7
        assert src.nodata == 0
        tags = src.tags()
        assert tags["BOA_ADD_OFFSET"] == "-1000"
        assert tags["BOA_QUANTIFICATION_VALUE"] == "10000"
        assert src.crs.to_epsg() == 32721
    forest = scene.reference().stable_forest & (scene.ground.landcover == EVERGREEN_FOREST)
    dn = []
    for t, path in enumerate(paths):
        with rasterio.open(path) as src:
            b08, scl = src.read(4), src.read(7)
        ok = forest & scene.clear[t]
        dn.append(b08[ok])
        assert np.array_equal(scl, scene.scl[t])
    assert 3800 <= np.median(np.concatenate(dn)) <= 4400  # ~0.33 * 10000 + 1000
    # the product reads them back to the same stack
    source = SceneFilesSource(
        [(int(d), p) for d, p in zip(scene.days, paths, strict=True)],
        band_order=SCENE_BANDS,
        masking=MaskingConfig(dilation_px=0),
        dn_offset=-1000.0,
    )
    read, stack = source.read(), scene.stack()
    assert np.array_equal(read.clear, stack.clear)
    np.testing.assert_allclose(read.bands["B08"], stack.bands["B08"], atol=1e-4)


def test_generation_is_deterministic_by_seed() -> None:
    config = LandscapeConfig(seed=123, kind="mixed", size_px=32)
    a, b = generate(config), generate(config)
    assert np.array_equal(a.reflectance["B04"], b.reflectance["B04"])
    assert np.array_equal(a.scl, b.scl)
    assert np.array_equal(a.reference().clearing_day, b.reference().clearing_day)
    c = generate(replace(config, seed=124))
    assert not np.array_equal(a.reference().clearing_day, c.reference().clearing_day)


def test_every_landscape_type_generates_its_classes() -> None:
    assert set(LANDSCAPE_TYPES) == {
        "deciduous",
        "irrigated_crops",
        "plantations",
        "gradual_subpixel",
        "fire_then_clear",
        "thin_cloud_orbits",
        "misregistration_gaps",
        "mixed",
    }
    for config in scenarios(
        LANDSCAPE_TYPES, [500101], size_px=32, start=dt.date(2023, 1, 1), end=dt.date(2023, 4, 1)
    ):
        scene = generate(config)
        settings = config.settings()
        present = set(np.unique(scene.ground.landcover).tolist())
        assert PLANTATION in present if settings.plantation_share > 0 else True
        assert IRRIGATED_CROPLAND in present if settings.crop_share > 0 else True
        assert EVERGREEN_FOREST in present
        assert LANDSCAPE_TYPES[config.kind]["description"]


def test_randomized_configs_draw_every_knob() -> None:
    a, b = randomized_config(1), randomized_config(2)
    assert a.kind == "randomized" and a != b
    assert a.settings() != b.settings()
    assert not a.is_evaluation and randomized_config(EVALUATION_SEED_MIN).is_evaluation
    sa = a.settings()
    assert 0.45 <= sa.evergreen_share + sa.deciduous_share <= 0.75 + 1e-6
    scene = generate(replace(a, size_px=32, end=dt.date(2023, 5, 1)))
    assert scene.stack().n_dates > 10
    configs = scenarios(["randomized", "mixed"], [5, 6], size_px=32)
    assert len(configs) == 4 and configs[0] == randomized_config(5, 32)
    with pytest.raises(ValueError, match="unknown landscape kind"):
        LandscapeConfig(seed=1, kind="nope")


def test_a_128_px_two_year_scene_has_its_size_and_dates() -> None:
    scene = generate(LandscapeConfig(seed=500111, kind="mixed"))
    assert scene.shape == (128, 128) and scene.days.size > 130
