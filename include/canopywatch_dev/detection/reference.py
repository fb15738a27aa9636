"""Simulator truth for the detection evaluation: a ``Simulation`` as an observation source
and as reference data (``canopywatch.detect.evaluate.ReferenceData``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import rasterio.features
from rasterio.windows import Window

from canopywatch.dates import days_since_epoch
from canopywatch.detect.evaluate import ReferenceData, ReferenceEvent
from canopywatch.detect.observations import (
    S2_BANDS,
    GriddedSource,
    MaskingConfig,
    ObservationStack,
    clear_mask_from_scl,
    finalize,
    window_or_full,
)
from canopywatch.geo import Grid
from canopywatch.sentinel2 import BOA_ADD_OFFSET_DN, REFLECTANCE_SCALE
from canopywatch_dev.simulate import LANDCOVER_NAMES, LC_FOREST, LC_PLANTATION, Simulation

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class SimulationSource(GriddedSource):
    """A ``Simulation`` as a stack source (DN with the +1000 BOA offset, SCL masking)."""

    def __init__(self, simulation: Simulation, masking: MaskingConfig | None = None) -> None:
        self.simulation = simulation
        self.masking = masking or MaskingConfig()
        config = simulation.config
        self._grid = Grid(simulation.crs, simulation.transform, config.width, config.height)
        self._days = np.asarray(
            [days_since_epoch(a.date) for a in simulation.acquisitions], dtype=np.int64
        )

    def read(self, window: Window | None = None) -> ObservationStack:
        win = window_or_full(self._grid, window)
        rows = slice(int(win.row_off), int(win.row_off + win.height))
        cols = slice(int(win.col_off), int(win.col_off + win.width))
        bands: dict[str, list[FloatArray]] = {band: [] for band in S2_BANDS}
        clear: list[BoolArray] = []
        for acquisition in self.simulation.acquisitions:
            rendered = self.simulation.render(acquisition.index)
            scl = rendered["SCL"][rows, cols]
            nodata = rendered["B04"][rows, cols] == 0
            clear.append(clear_mask_from_scl(scl, (~nodata).astype(np.uint8), self.masking))
            for band in S2_BANDS:
                dn = rendered[band][rows, cols].astype(np.float32)
                bands[band].append((dn - BOA_ADD_OFFSET_DN) / np.float32(REFLECTANCE_SCALE))
        return finalize(
            self._days.tolist(), bands, clear, self._grid.window_transform(win), self._grid.crs
        )


def reference_from_simulation(simulation: Simulation) -> ReferenceData:
    shape_hw = simulation.shape
    raster = np.zeros(shape_hw, dtype=np.int32)
    other = np.zeros(shape_hw, dtype=bool)
    other_day = np.full(shape_hw, -1, dtype=np.int64)
    events: list[ReferenceEvent] = []
    for number, event in enumerate(simulation.events, start=1):
        mask = rasterio.features.geometry_mask(
            [event.geometry], out_shape=shape_hw, transform=simulation.transform, invert=True
        )
        if event.is_deforestation:
            raster[mask & (simulation.clearing_date >= 0)] = number
            events.append(ReferenceEvent(number, days_since_epoch(event.start), event.kind))
        else:
            other |= mask
            other_day[mask & (other_day < 0)] = days_since_epoch(event.start)
    clearing = simulation.clearing_date.astype(np.int64)
    stable = (simulation.landcover == LC_FOREST) & (clearing < 0)
    # plantation cuts and thinnings are non-deforestation events, so they are in ``other``;
    # the "plantation" class is named only where there are plantations (a user's
    # plantation map is then the land-cover map's plantation class)
    has_plantations = bool((simulation.landcover == LC_PLANTATION).any())
    names = {
        code: name
        for code, name in LANDCOVER_NAMES.items()
        if code != LC_PLANTATION or has_plantations
    }
    return ReferenceData(
        clearing,
        raster,
        tuple(events),
        simulation.transform,
        stable,
        other,
        landcover=simulation.landcover.astype(np.int32),
        landcover_names=names,
        other_change_day=other_day,
    )
