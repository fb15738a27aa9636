"""Plantations in the project simulator: stands, texture, rotation cuts, reference, and
existing scenario types rendering exactly as before plantations were added."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest
import rasterio.features

from canopywatch.dates import days_since_epoch
from canopywatch_dev.detection.reference import reference_from_simulation
from canopywatch_dev.detection.scenarios import SCENARIO_TYPES, Scenario
from canopywatch_dev.simulate import LC_FOREST, LC_PLANTATION, Event, Simulation
from canopywatch_dev.simulate.model import EM_EUCALYPTUS, EM_PINE

# sha256 of landcover, clearing_date, events and every 7th render of Scenario(kind, 7,
# size_px=40, n_clearings=6), computed from the committed code before plantations existed
BEFORE_PLANTATIONS = {
    "typical": "5dec58c3a5ac8fa3d6b1cac6986ffd45809a0a6dcb60e44fd31db5e7644984c7",
    "persistent_cloud": "b46ba4125924201593008b6d5953e572299c90a9e1d92321b48727e48734061a",
    "haze": "5156618597077c6039a12f6a0972f498f45a925d332e9d02e73931dedf0a8f6c",
    "small_clearings": "b202848106915706d1dca96dec1b8dba0654414aeae4c82d8a1bf1695f3fda16",
    "agriculture": "75d3a9ff79e8052176ca900f4f8afec460026398b4ccac9f98823bbe79733399",
}


def _digest(simulation: Simulation) -> str:
    digest = hashlib.sha256()
    digest.update(simulation.landcover.tobytes())
    digest.update(simulation.clearing_date.tobytes())
    for event in simulation.events:
        digest.update(
            f"{event.id}{event.kind}{event.start}{event.end}{event.until}{event.area_ha}"
            f"{event.geometry.wkt}".encode()
        )
    for index in range(0, len(simulation.acquisitions), 7):
        rendered = simulation.render(index)
        for name in sorted(rendered):
            digest.update(rendered[name].tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("kind", sorted(BEFORE_PLANTATIONS))
def test_existing_scenario_types_render_as_before(kind: str) -> None:
    simulation = Scenario(kind, 7, size_px=40, n_clearings=6).simulate()
    assert not (simulation.landcover == LC_PLANTATION).any()
    assert _digest(simulation) == BEFORE_PLANTATIONS[kind]


@pytest.fixture(scope="module")
def plantations() -> Simulation:
    # three years, so a stand cut early is seen replanted and grown back
    return Scenario(
        "plantations", 5, size_px=96, start=dt.date(2022, 1, 1), end=dt.date(2024, 12, 31)
    ).simulate()


def _mask(simulation: Simulation, event: Event) -> np.ndarray:
    return rasterio.features.geometry_mask(
        [event.geometry], out_shape=simulation.shape, transform=simulation.transform, invert=True
    )


def _ndvi_on(simulation: Simulation, day: int) -> np.ndarray:
    days = np.asarray([days_since_epoch(a.date) for a in simulation.acquisitions])
    index = int(np.argmin(np.abs(days - day)))
    reflectance = simulation.surface_reflectance(index)
    red, nir = reflectance[2], reflectance[3]
    ndvi: np.ndarray = (nir - red) / (nir + red)
    return ndvi


def test_stands_cover_the_configured_share(plantations: Simulation) -> None:
    share = SCENARIO_TYPES["plantations"]["plantation_share"]
    planted = plantations.landcover == LC_PLANTATION
    assert abs(planted.mean() - share) < 0.06
    assert abs((plantations.landcover == LC_FOREST).mean() - 0.40) < 0.01
    stands = plantations._landscape.plantations
    assert stands is not None
    assert stands.species.size >= 4
    assert np.array_equal(stands.stand >= 0, planted)
    kinds = {event.kind for event in plantations.events}
    assert {"plantation_harvest", "plantation_thinning"} <= kinds


def test_a_cut_stand_drops_and_grows_back(plantations: Simulation) -> None:
    end = days_since_epoch(plantations.config.end)
    cuts = [e for e in plantations.events if e.kind == "plantation_harvest"]
    assert cuts
    grown = [e for e in cuts if e.until is not None and days_since_epoch(e.until) + 420 < end]
    assert grown, "no cut stand replanted early enough to grow back in the series"
    event = grown[0]
    mask = _mask(plantations, event)
    first, last = days_since_epoch(event.start), days_since_epoch(event.end)
    assert last - first <= 21
    assert event.until is not None
    replant = days_since_epoch(event.until)
    assert 30 <= replant - last <= 123
    before = float(_ndvi_on(plantations, first - 15)[mask].mean())
    slash = float(_ndvi_on(plantations, last + 10)[mask].mean())
    young = float(_ndvi_on(plantations, replant + 90)[mask].mean())
    regrown = float(_ndvi_on(plantations, replant + 420)[mask].mean())
    assert before > 0.65
    assert slash < before - 0.3
    assert slash < 0.45 and young < 0.55
    assert regrown > 0.65
    assert regrown > young + 0.2


def test_within_stand_texture_is_cover_not_a_brightness_factor(plantations: Simulation) -> None:
    stands = plantations._landscape.plantations
    assert stands is not None
    reflectance = plantations.surface_reflectance(0)
    red, nir, swir = reflectance[2], reflectance[3], reflectance[5]
    ndvi = (nir - red) / (nir + red)
    nbr = (nir - swir) / (nir + swir)
    flat_stand = stands.stand.ravel()
    checked = 0
    for stand in range(stands.species.size):
        pixels = stands.pixels[(stands.pixel_stand == stand) & ~stands.firebreak]
        if pixels.size < 30 or stands.age_at_start[stand] < stands.grow_days[stand]:
            continue
        assert np.all(flat_stand[pixels] == stand)
        # a brightness factor equal in every band would leave NDVI / NBR constant
        assert float(ndvi.ravel()[pixels].std()) > 0.01
        assert float(nbr.ravel()[pixels].std()) > 0.01
        ratio = nir.ravel()[pixels] / red.ravel()[pixels]
        assert float(ratio.std() / ratio.mean()) > 0.03
        checked += 1
    assert checked >= 2


def test_planting_rows_are_periodic(plantations: Simulation) -> None:
    stands = plantations._landscape.plantations
    assert stands is not None
    # the row pattern alternates within a few pixels: lag-1 or lag-2 neighbours across
    # the rows differ more than random pixel pairs of the stand would if it were smooth
    row = stands.row
    assert 0.3 < float(row.std()) < 0.45
    assert float(np.abs(np.diff(row)).mean()) > 0.2


def test_species_differ_in_nir_and_swir(plantations: Simulation) -> None:
    stands = plantations._landscape.plantations
    assert stands is not None
    assert {EM_EUCALYPTUS, EM_PINE} <= set(stands.species.tolist())
    reflectance = plantations.surface_reflectance(0)
    mature = stands.age_at_start >= stands.grow_days
    means = {}
    for species in (EM_EUCALYPTUS, EM_PINE):
        chosen = np.flatnonzero(mature & (stands.species == species))
        if chosen.size == 0:
            pytest.fail(f"no mature stand of species {species}")
        pixels = stands.pixels[np.isin(stands.pixel_stand, chosen) & ~stands.firebreak]
        means[species] = reflectance[:, pixels // 96, pixels % 96].mean(axis=1)
    assert means[EM_EUCALYPTUS][3] > means[EM_PINE][3] + 0.05  # B08
    assert means[EM_EUCALYPTUS][4] > means[EM_PINE][4] + 0.03  # B11


def test_reference_marks_cuts_as_other_change_not_events(plantations: Simulation) -> None:
    reference = reference_from_simulation(plantations)
    planted = plantations.landcover == LC_PLANTATION
    assert reference.landcover is not None
    codes = [code for code, name in reference.landcover_names.items() if name == "plantation"]
    assert codes == [LC_PLANTATION]
    assert np.array_equal(reference.landcover == LC_PLANTATION, planted)
    assert not (plantations.clearing_date[planted] >= 0).any()
    assert not (reference.event_raster[planted] > 0).any()
    assert not (reference.clearing_day[planted] >= 0).any()
    assert reference.stable_forest is not None and not reference.stable_forest[planted].any()
    assert all(not e.kind.startswith("plantation") for e in reference.events)
    assert reference.other_change is not None
    for event in plantations.events:
        if event.kind == "plantation_harvest":
            assert not event.is_deforestation
            assert reference.other_change[_mask(plantations, event)].all()
    # the existing types' reference names no plantation class (no plantation-map row)
    typical = reference_from_simulation(Scenario("typical", 7, size_px=40).simulate())
    assert "plantation" not in typical.landcover_names.values()
