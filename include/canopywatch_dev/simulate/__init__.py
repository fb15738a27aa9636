"""Synthetic Sentinel-2 L2A acquisitions over a tropical forest frontier.

The model, briefly:

* Grid: a north-up UTM grid (``SimulationConfig``); acquisitions every ``revisit_days``
  (Sentinel-2A and -2B alternating) with occasional missing dates.
* Static layers, computed once: land cover from thresholded Gaussian random fields
  (lakes in the lowest terrain, forest blobs, settlement and bare-soil patches, crop
  parcels on a rectangular cadastre, pasture elsewhere; planted stands on open land
  where ``plantation_share`` > 0), a per-pixel texture multiplier and per-pixel pasture
  productivity.
* Surface at a date: every pixel is a linear mix of two endmember spectra (``a``, ``b``,
  weight ``w``). Pasture and crops pick the mix giving a target NDVI that follows the
  wet/dry season (crops: sowing, growth, senescence, harvest per parcel). Events switch
  pixels to other mixes: deforestation turns forest into slash/bare soil (optionally a
  burn scar for some weeks, optionally regrowth later); pasture drying, flooding and
  harvest are changes that are not deforestation. Plantations (module ``plantations``)
  mix a species canopy with the floor at a canopy cover carrying planting rows, gaps and
  age; rotation clear-cuts and thinnings are not deforestation either.
* Atmosphere per acquisition: clouds are a window of a static multi-scale random texture
  thresholded to a drawn cover fraction (overcast dates are fully covered); shadows are
  the same cloud field displaced along the anti-solar direction, darkening the surface;
  haze adds path radiance mostly to the visible bands; sensor noise; occasionally a
  swath edge leaves part of the grid without data.
* Encoding: DN = reflectance * 10000 + 1000 (BOA_ADD_OFFSET of processing baseline
  >= 04.00), DN 0 = no data; SCL classes as in the L2A scene classification.

Truth: ``Simulation.clearing_date`` holds, per pixel, the day (since 1970-01-01) from
which the rendered data show the pixel as no longer forest (cleared iff
``clearing_date <= acquisition day``); ``Simulation.events`` holds dated polygons of
every change, deforestation or not.

Every random draw comes from ``numpy.random.default_rng([seed, stream, ...])``, so a
render depends only on the configuration and the acquisition index.

The package, by section: ``model`` (land-cover and endmember codes, spectra, the
configuration and the records a simulation produces), ``helpers`` (random fields,
mixing, blobs, grid helpers), ``landscape`` (the static land-cover layers), ``events``
(placing clearings, crop harvests and transient changes), ``plantations`` (planted
stands, their texture, cuts and thinnings), ``simulation`` (the
``Simulation``: acquisitions, atmosphere, surface per date, rendering) and the entry
points ``simulate`` and ``simulate_area``.
"""

from __future__ import annotations

from canopywatch_dev.simulate.helpers import (
    clearing_date_to_datetime64,
    mgrs_tile_id,
)
from canopywatch_dev.simulate.model import (
    DEFORESTATION_KINDS,
    EVENT_KINDS,
    LANDCOVER_NAMES,
    LC_BARE,
    LC_CROPLAND,
    LC_FOREST,
    LC_PASTURE,
    LC_PLANTATION,
    LC_SETTLEMENT,
    LC_WATER,
    Acquisition,
    AtmosphereParams,
    Event,
    SimulationConfig,
)
from canopywatch_dev.simulate.simulation import Simulation, simulate, simulate_area

__all__ = [
    "DEFORESTATION_KINDS",
    "EVENT_KINDS",
    "LANDCOVER_NAMES",
    "LC_BARE",
    "LC_CROPLAND",
    "LC_FOREST",
    "LC_PASTURE",
    "LC_PLANTATION",
    "LC_SETTLEMENT",
    "LC_WATER",
    "Acquisition",
    "AtmosphereParams",
    "Event",
    "Simulation",
    "SimulationConfig",
    "clearing_date_to_datetime64",
    "mgrs_tile_id",
    "simulate",
    "simulate_area",
]
