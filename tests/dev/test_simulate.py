"""Tests of the Sentinel-2 L2A simulator."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import replace

import numpy as np
import pytest
import rasterio.features
from shapely.geometry import box

from canopywatch.dates import days_since_epoch
from canopywatch.geo import utm_epsg
from canopywatch.sentinel2 import (
    BANDS,
    BOA_ADD_OFFSET_DN,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_CLOUDY,
    SCL_NO_DATA,
    SCL_VEGETATION,
    SCL_WATER,
)
from canopywatch_dev.simulate import (
    DEFORESTATION_KINDS,
    LC_BARE,
    LC_FOREST,
    LC_PASTURE,
    LC_WATER,
    Event,
    Simulation,
    SimulationConfig,
    clearing_date_to_datetime64,
    mgrs_tile_id,
    simulate,
    simulate_area,
)

SMALL = SimulationConfig(seed=7, width=96, height=80)
CLEAR_SKY = SimulationConfig(
    seed=3,
    width=160,
    height=160,
    cloudiness=0.0,
    haziness=0.0,
    nodata_edge_probability=0.0,
)


def reflectance(dn: np.ndarray) -> np.ndarray:
    values: np.ndarray = (dn.astype(np.float64) - BOA_ADD_OFFSET_DN) / 10000.0
    return values


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    normalised: np.ndarray = (a - b) / (a + b)
    return normalised


def event_mask(sim: Simulation, event: Event) -> np.ndarray:
    burned = rasterio.features.rasterize(
        [(event.geometry, 1)], out_shape=sim.shape, transform=sim.transform, fill=0
    )
    mask: np.ndarray = np.asarray(burned).astype(bool)
    return mask


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def clear_sky() -> Simulation:
    return simulate(CLEAR_SKY)


@pytest.fixture(scope="module")
def clear_sky_stack(clear_sky: Simulation) -> list[dict[str, np.ndarray]]:
    return [scene for _, scene in clear_sky.stack()]


@pytest.fixture(scope="module")
def medium() -> Simulation:
    return simulate(SimulationConfig(seed=11, width=256, height=256))


# ------------------------------------------------------------------ determinism, format


def test_same_seed_gives_identical_output(small: Simulation) -> None:
    again = simulate(SMALL)
    assert again.acquisitions == small.acquisitions
    assert np.array_equal(again.clearing_date, small.clearing_date)
    assert np.array_equal(again.landcover, small.landcover)
    assert [(e.kind, e.start, e.area_ha) for e in again.events] == [
        (e.kind, e.start, e.area_ha) for e in small.events
    ]
    for index in (0, 17, len(small.acquisitions) - 1):
        first, second = small.render(index), again.render(index)
        for key in (*BANDS, "SCL"):
            assert np.array_equal(first[key], second[key]), key


def test_different_seed_gives_different_output(small: Simulation) -> None:
    other = simulate(replace(SMALL, seed=8))
    assert not np.array_equal(other.landcover, small.landcover)
    assert not np.array_equal(other.render(0)["B08"], small.render(0)["B08"])


def test_render_independent_of_call_order_and_cache() -> None:
    config = replace(SMALL, render_cache_size=1)
    forward, backward = simulate(config), simulate(config)
    indices = [0, 5, 9, 5, 2]
    forward_scenes = {i: forward.render(i) for i in indices}
    backward_scenes = {i: backward.render(i) for i in reversed(indices)}
    for i in indices:
        assert np.array_equal(forward_scenes[i]["B04"], backward_scenes[i]["B04"])
    # callers may write into what they get without corrupting the cache
    scene = forward.render(9)
    scene["B04"][:] = 0
    assert np.array_equal(forward.render(9)["B04"], backward_scenes[9]["B04"])


def test_render_rejects_unknown_index(small: Simulation) -> None:
    with pytest.raises(IndexError):
        small.render(len(small.acquisitions))


def test_dtypes_and_shapes(small: Simulation) -> None:
    scene = small.render(3)
    assert set(scene) == {*BANDS, "SCL"}
    for band in BANDS:
        assert scene[band].dtype == np.uint16
        assert scene[band].shape == (SMALL.height, SMALL.width)
    assert scene["SCL"].dtype == np.uint8
    assert scene["SCL"].shape == (SMALL.height, SMALL.width)
    assert small.clearing_date.dtype == np.int32
    assert small.clearing_date.shape == (SMALL.height, SMALL.width)
    assert small.landcover.dtype == np.uint8
    assert small.crs.to_epsg() == SMALL.epsg
    assert small.transform.a == SMALL.resolution and small.transform.e == -SMALL.resolution
    assert small.bounds == (500000.0, 8800000.0 - 800.0, 500960.0, 8800000.0)


def test_dn_offset_and_nodata_only_where_intended() -> None:
    sim = simulate(replace(SMALL, nodata_edge_probability=0.5, end=dt.date(2023, 4, 30)))
    saw_nodata = False
    for acquisition, scene in sim.stack():
        nodata = scene["SCL"] == SCL_NO_DATA
        for band in BANDS:
            assert np.all(scene[band][nodata] == 0)
            assert np.all(scene[band][~nodata] > BOA_ADD_OFFSET_DN)
        share = 100.0 * nodata.mean()
        assert acquisition.nodata_pixel_percentage == pytest.approx(share, abs=0.01)
        saw_nodata |= bool(nodata.any())
    assert saw_nodata


def test_no_nodata_when_edges_disabled(clear_sky: Simulation) -> None:
    for index in range(0, len(clear_sky.acquisitions), 10):
        scene = clear_sky.render(index)
        assert not np.any(scene["SCL"] == SCL_NO_DATA)
        assert all(int(scene[band].min()) > BOA_ADD_OFFSET_DN for band in BANDS)


# ------------------------------------------------------------------ surface realism


def test_forest_reflectance_is_realistic(clear_sky: Simulation) -> None:
    scene = clear_sky.render(10)
    forest = (clear_sky.landcover == LC_FOREST) & (clear_sky.clearing_date < 0)
    expected = {
        "B04": (0.015, 0.03),
        "B08": (0.25, 0.35),
        "B11": (0.12, 0.17),
        "B12": (0.05, 0.08),
    }
    for band, (low, high) in expected.items():
        values = reflectance(scene[band][forest])
        p2, p98 = np.percentile(values, [2, 98])
        assert low <= p2 and p98 <= high, (band, p2, p98)
    ndvi = ratio(reflectance(scene["B08"][forest]), reflectance(scene["B04"][forest]))
    assert np.percentile(ndvi, 5) >= 0.8 and np.percentile(ndvi, 95) <= 0.9
    assert np.mean(scene["SCL"][forest] == SCL_VEGETATION) > 0.99


def test_water_is_dark_with_very_low_nir(clear_sky: Simulation) -> None:
    scene = clear_sky.render(10)
    water = clear_sky.landcover == LC_WATER
    assert water.any()
    assert np.percentile(reflectance(scene["B08"][water]), 95) < 0.04
    assert np.mean(scene["SCL"][water] == SCL_WATER) > 0.99


def test_pasture_ndvi_follows_the_seasons(
    clear_sky: Simulation, clear_sky_stack: list[dict[str, np.ndarray]]
) -> None:
    # the default grid is in the southern tropics: wet in February, dry in August
    pasture = clear_sky.landcover == LC_PASTURE
    for event in clear_sky.events:
        if event.kind in ("pasture_drying", "flooding"):
            pasture &= ~event_mask(clear_sky, event)

    def median_ndvi(month: int) -> float:
        values = []
        for acquisition, scene in zip(clear_sky.acquisitions, clear_sky_stack, strict=True):
            if acquisition.date.month == month:
                red, nir = reflectance(scene["B04"][pasture]), reflectance(scene["B08"][pasture])
                values.append(np.median(ratio(nir, red)))
        return float(np.median(values))

    assert 0.55 <= median_ndvi(2) <= 0.75
    assert 0.30 <= median_ndvi(8) <= 0.50


def test_bare_soil_reflectance_is_realistic(clear_sky: Simulation) -> None:
    scene = clear_sky.render(10)
    bare = clear_sky.landcover == LC_BARE
    expected = {"B04": (0.12, 0.20), "B08": (0.20, 0.30), "B11": (0.28, 0.38), "B12": (0.20, 0.30)}
    for band, (low, high) in expected.items():
        median = np.median(reflectance(scene[band][bare]))
        assert low <= median <= high, (band, median)


# ------------------------------------------------------------------ truth and events


def test_clearing_date_is_exact_in_rendered_data(
    clear_sky: Simulation, clear_sky_stack: list[dict[str, np.ndarray]]
) -> None:
    cleared_ever = clear_sky.clearing_date >= 0
    assert cleared_ever.any()
    checked_before = checked_after = 0
    for acquisition, scene in zip(clear_sky.acquisitions, clear_sky_stack, strict=True):
        day = days_since_epoch(acquisition.date)
        ndvi = ratio(reflectance(scene["B08"]), reflectance(scene["B04"]))
        before = cleared_ever & (clear_sky.clearing_date > day)
        # regrowth starts 60 days or more after clearing at the earliest
        fresh = (
            cleared_ever & (clear_sky.clearing_date <= day) & (clear_sky.clearing_date > day - 45)
        )
        assert np.all(ndvi[before] > 0.7)
        assert np.all(ndvi[fresh] < 0.4)
        checked_before += int(before.sum())
        checked_after += int(fresh.sum())
    assert checked_before > 0 and checked_after > 0


def test_burned_clearings_have_negative_nbr_for_a_while(
    clear_sky: Simulation, clear_sky_stack: list[dict[str, np.ndarray]]
) -> None:
    burned = [e for e in clear_sky.events if e.kind == "burned_clearing"]
    assert burned
    mask = event_mask(clear_sky, burned[0])
    negative_dates = 0
    for scene in clear_sky_stack:
        nbr = ratio(reflectance(scene["B08"][mask]), reflectance(scene["B12"][mask]))
        negative_dates += int(np.median(nbr) < 0)
    assert 3 <= negative_dates <= 25


def test_regrowth_recovers_ndvi_gradually(
    clear_sky: Simulation, clear_sky_stack: list[dict[str, np.ndarray]]
) -> None:
    regrowth = [e for e in clear_sky.events if e.kind == "clearing_regrowth"]
    assert regrowth and regrowth[0].until is not None
    event = regrowth[0]
    assert event.until is not None
    mask = event_mask(clear_sky, event)
    series = []
    for acquisition, scene in zip(clear_sky.acquisitions, clear_sky_stack, strict=True):
        if acquisition.date >= event.start:
            ndvi = ratio(reflectance(scene["B08"][mask]), reflectance(scene["B04"][mask]))
            series.append((acquisition.date, float(np.median(ndvi))))
    at_start = [v for d, v in series if d < event.until]
    later = [v for d, v in series if d >= event.until + dt.timedelta(days=150)]
    assert max(at_start) < 0.4
    assert later, "the clear-sky series must reach 150 days past the regrowth start"
    assert later[-1] > max(at_start) + 0.2
    recovering = [v for d, v in series if d >= event.until]
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(recovering))


def test_event_areas_and_geometry(medium: Simulation) -> None:
    clearings = [e for e in medium.events if e.is_deforestation]
    assert {e.kind for e in clearings} == set(DEFORESTATION_KINDS)
    areas = [e.area_ha for e in clearings]
    assert min(areas) >= 0.05 - 1e-9 and min(areas) <= 0.1
    assert max(areas) <= 40.0 + 1e-9 and max(areas) >= 10.0
    grid = box(*medium.bounds)
    for event in medium.events:
        assert event.geometry.area / 10000.0 == pytest.approx(event.area_ha, rel=1e-9)
        assert grid.contains(event.geometry)
        assert event.start <= event.end
        assert event.is_deforestation == (event.kind in DEFORESTATION_KINDS)
        mask = event_mask(medium, event)
        assert mask.sum() * 0.01 == pytest.approx(event.area_ha)
        if event.is_deforestation:
            days = medium.clearing_date[mask]
            assert days.min() == days_since_epoch(event.start)
            assert days.max() == days_since_epoch(event.end)
    progressive = [e for e in clearings if e.kind == "progressive_clearing"]
    assert any(e.end > e.start for e in progressive)
    cleared_pixels = sum(int(event_mask(medium, e).sum()) for e in clearings)
    assert cleared_pixels == int((medium.clearing_date >= 0).sum())


def test_non_deforestation_events_do_not_touch_clearing_date(medium: Simulation) -> None:
    others = [e for e in medium.events if not e.is_deforestation]
    assert {"harvest", "pasture_drying", "flooding"} <= {e.kind for e in others}
    for event in others:
        assert np.all(medium.clearing_date[event_mask(medium, event)] == -1)
    assert np.all(medium.landcover[medium.clearing_date >= 0] == LC_FOREST)


def test_clearing_date_to_datetime64() -> None:
    raster = np.array([[-1, 0], [19358, 19723]], dtype=np.int32)
    dates = clearing_date_to_datetime64(raster)
    assert np.isnat(dates[0, 0])
    assert dates[0, 1] == np.datetime64("1970-01-01")
    assert dates[1, 0] == np.datetime64("2023-01-01")
    assert dates[1, 1] == np.datetime64("2024-01-01")


# ------------------------------------------------------------------ atmosphere


def test_cloud_classes_coincide_with_bright_pixels(medium: Simulation) -> None:
    seen = 0
    for index, acquisition in enumerate(medium.acquisitions):
        if not 10 <= acquisition.cloud_cover <= 90 or seen >= 5:
            continue
        scene = medium.render(index)
        cloud = np.isin(scene["SCL"], (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH))
        vegetation = scene["SCL"] == SCL_VEGETATION
        if cloud.sum() < 100 or vegetation.sum() < 100:
            continue
        blue = reflectance(scene["B02"])
        assert np.percentile(blue[cloud], 5) > 0.15
        assert np.median(blue[scene["SCL"] == SCL_CLOUD_HIGH]) > 0.3
        assert np.median(blue[vegetation]) < 0.1
        for band in BANDS:
            values = reflectance(scene[band][scene["SCL"] == SCL_CLOUD_HIGH])
            assert 0.3 <= np.median(values) <= 0.8, band
        seen += 1
    assert seen >= 3


def test_cloud_shadows_are_displaced_and_darkened(medium: Simulation) -> None:
    reference = next(
        i
        for i, a in enumerate(medium.acquisitions)
        if a.cloud_cover == 0 and a.nodata_pixel_percentage == 0
    )
    clear_nir = reflectance(medium.render(reference)["B08"])
    height, width = medium.shape
    checked = 0
    for index, acquisition in enumerate(medium.acquisitions):
        params = medium.atmosphere(index)
        if params.sky != "partly" or acquisition.nodata_pixel_percentage > 0:
            continue
        scene = medium.render(index)
        shadow = scene["SCL"] == SCL_CLOUD_SHADOW
        if shadow.sum() < 200:
            continue
        cloud = np.isin(scene["SCL"], (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH))
        d_row, d_col = params.shadow_offset_px
        assert abs(d_row) + abs(d_col) >= 10
        rows, cols = np.nonzero(shadow)
        src_rows, src_cols = rows - d_row, cols - d_col
        inside = (src_rows >= 0) & (src_rows < height) & (src_cols >= 0) & (src_cols < width)
        caster_is_cloud = cloud[src_rows[inside], src_cols[inside]]
        assert caster_is_cloud.mean() > 0.95
        # shadows fall beside their clouds: the undisplaced cloud mask overlaps them less
        assert cloud[rows, cols].mean() == 0
        nir = reflectance(scene["B08"])
        assert np.median(nir[shadow]) < 0.75 * np.median(clear_nir[shadow])
        checked += 1
        if checked >= 3:
            break
    assert checked >= 1


def test_fully_cloudy_dates_exist(medium: Simulation) -> None:
    overcast = [a for a in medium.acquisitions if a.cloud_cover >= 99.0]
    assert overcast
    scene = medium.render(overcast[0].index)
    assert np.mean(np.isin(scene["SCL"], list(SCL_CLOUDY))) >= 0.99
    assert np.median(reflectance(scene["B04"])) > 0.3


def test_cloud_cover_matches_rendered_scl(medium: Simulation) -> None:
    for acquisition in medium.acquisitions[:30]:
        scl = medium.render(acquisition.index)["SCL"]
        valid = scl != SCL_NO_DATA
        flagged = np.isin(scl, list(SCL_CLOUDY)) & valid
        expected = 100.0 * flagged.sum() / max(1, valid.sum())
        assert acquisition.cloud_cover == pytest.approx(expected, abs=0.01)
    covers = [a.cloud_cover for a in medium.acquisitions]
    assert min(covers) < 5 and 20 < float(np.mean(covers)) < 80


def test_haze_brightens_visible_bands_without_cloud_flags(clear_sky: Simulation) -> None:
    hazy = simulate(replace(CLEAR_SKY, haziness=4.0))
    index = next(
        i
        for i in range(len(hazy.acquisitions))
        if hazy.atmosphere(i).haze_level > 0.05 and hazy.atmosphere(i).sky == "clear"
    )
    clear, hazed = clear_sky.render(index), hazy.render(index)
    assert np.median(reflectance(hazed["B02"]) - reflectance(clear["B02"])) > 0.02
    assert abs(np.median(reflectance(hazed["B12"]) - reflectance(clear["B12"]))) < 0.005
    assert not np.any(np.isin(hazed["SCL"], (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CLOUD_SHADOW)))
    assert set(np.unique(hazed["SCL"])) <= {4, 5, 6, 10}


# ------------------------------------------------------------------ acquisitions


def test_revisit_is_five_days_with_gaps(medium: Simulation) -> None:
    days = [days_since_epoch(a.date) for a in medium.acquisitions]
    steps = np.diff(days)
    assert np.all(steps % 5 == 0) and np.all(steps > 0)
    assert np.mean(steps == 5) > 0.85
    assert np.any(steps > 5)
    config = medium.config
    assert config.start <= medium.acquisitions[0].date < config.start + dt.timedelta(days=15)
    assert medium.acquisitions[-1].date <= config.end
    assert [a.index for a in medium.acquisitions] == list(range(len(medium.acquisitions)))


def test_acquisition_metadata(small: Simulation) -> None:
    pattern = re.compile(
        r"^S2([AB])_MSIL2A_(\d{8}T\d{6})_N\d{4}_R\d{3}_T(\d{2}[C-X][A-Z]{2})_\d{8}T\d{6}$"
    )
    hours = set()
    for acquisition in small.acquisitions:
        assert acquisition.datetime.tzinfo is not None
        assert acquisition.datetime.utcoffset() == dt.timedelta(0)
        assert acquisition.platform in ("sentinel-2a", "sentinel-2b")
        match = pattern.match(acquisition.product_id)
        assert match, acquisition.product_id
        assert match.group(1) == acquisition.platform[-1].upper()
        assert match.group(2) == acquisition.datetime.strftime("%Y%m%dT%H%M%S")
        assert match.group(3) == acquisition.tile_id
        assert 0.0 <= acquisition.cloud_cover <= 100.0
        hours.add((acquisition.datetime.hour, acquisition.datetime.minute))
    assert len(hours) == 1
    hour, _ = hours.pop()
    assert 13 <= hour <= 15  # ~10:30 local solar time at 57 W
    assert {a.platform for a in small.acquisitions} == {"sentinel-2a", "sentinel-2b"}


def test_mgrs_tile_id() -> None:
    # Sentinel-2 tile 21LXK covers 600-700 km E, 8900-9000 km N of zone 21 south
    assert mgrs_tile_id(32721, 650000.0, 8950000.0, -9.5) == "21LXK"
    # 31UDQ (Paris area)
    assert mgrs_tile_id(32631, 450000.0, 5420000.0, 48.9) == "31UDQ"


# ------------------------------------------------------------------ simulate_area


def test_utm_zone_selection() -> None:
    # the simulator uses the product's one UTM-zone function (canopywatch.geo.utm_epsg)
    assert utm_epsg(-57.05, -12.05) == 32721
    assert utm_epsg(10.02, 45.02) == 32632
    assert utm_epsg(-180.0, 1.0) == 32601
    assert utm_epsg(179.99, -1.0) == 32760
    # a simulated area in south-west Norway lies in zone 32 (32V), not 31
    assert (
        simulate_area(
            (4.90, 60.30, 4.92, 60.31), dt.date(2024, 6, 1), dt.date(2024, 6, 20)
        ).crs.to_epsg()
        == 32632
    )


@pytest.mark.parametrize(
    ("bbox", "epsg"),
    [
        ((-57.10, -12.06, -57.08, -12.04), 32721),
        ((10.00, 45.00, 10.02, 45.015), 32632),
    ],
)
def test_simulate_area_covers_bbox(bbox: tuple[float, float, float, float], epsg: int) -> None:
    sim = simulate_area(
        bbox, dt.date(2024, 1, 1), dt.date(2024, 2, 29), seed=5, resolution=20.0, n_clearings=3
    )
    assert sim.config.epsg == epsg
    assert sim.crs.to_epsg() == epsg
    west, south, east, north = sim.bounds_lonlat
    assert west <= bbox[0] and south <= bbox[1] and east >= bbox[2] and north >= bbox[3]
    # snapped to the resolution, and not much larger than needed
    assert sim.config.origin_x % 20.0 == 0 and sim.config.origin_y % 20.0 == 0
    assert east - west < (bbox[2] - bbox[0]) + 0.002
    assert all(dt.date(2024, 1, 1) <= a.date <= dt.date(2024, 2, 29) for a in sim.acquisitions)
    assert sim.render(0)["B04"].shape == (sim.config.height, sim.config.width)


def test_simulate_area_rejects_bad_bbox() -> None:
    with pytest.raises(ValueError):
        simulate_area((1.0, 1.0, 0.0, 2.0), dt.date(2024, 1, 1), dt.date(2024, 2, 1))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        SimulationConfig(width=0)
    with pytest.raises(ValueError):
        SimulationConfig(start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 1))
    with pytest.raises(ValueError):
        SimulationConfig(forest_share=0.9, cropland_share=0.3)
    with pytest.raises(ValueError):
        SimulationConfig(epsg=4326)


@pytest.mark.slow
def test_full_two_year_stack_renders_every_scene() -> None:
    # speed is measured in benchmarks/, not asserted here
    sim = simulate(SimulationConfig(seed=1))
    count = 0
    for _, scene in sim.stack():
        assert scene["B08"].shape == (512, 512)
        count += 1
    assert count > 120
