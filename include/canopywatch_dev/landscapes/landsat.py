"""Landsat-era NDVI stacks: a landscape's surface seen as a 2006-2016 Landsat archive is.

What the archive adds to the Sentinel-2-like sky of ``generate`` (the confounders of an
11-year Landsat series scored against Hansen loss):

* **Sensors by era.** Each 8-day acquisition slot alternates between two platforms:
  Landsat 7 ETM+ throughout, and Landsat 5 TM until 2011-11 then nothing until Landsat 8
  OLI from 2013-04 (a year and a half with a 16-day revisit only).
* **Landsat 7 SLC-off gaps.** Since 2003-05 every ETM+ scene misses wedge-shaped stripes:
  in a small window a stripe of 1-6 pixels every ~16 lines (one scan), slightly tilted,
  at a phase that changes from path to path: about a fifth of each ETM+ look is no data.
* **OLI NDVI is higher than TM/ETM+** (Roy et al. 2016: about +0.02 to +0.03 over
  vegetation): a step in the series in 2013 that is not a change on the ground.
* **Masks as the archive gives them**: flagged clouds and their shadows as no data (grown
  by one pixel of soft edge, as ``IndexStackSource`` does), the unflagged thin cloud of the
  sky left in.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from canopywatch.dates import days_since_epoch
from canopywatch.detect.index_stack import cloud_edges, land_looks
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.landscapes.landscape import Landscape

L5_END = days_since_epoch(dt.date(2011, 11, 18))
L8_START = days_since_epoch(dt.date(2013, 4, 11))
SCAN_LINES = 16
OLI_NDVI_STEP = (0.02, 0.035)


def sensors(days: npt.NDArray[np.int64], slots: npt.NDArray[np.int64]) -> list[str]:
    """The platform of each acquisition (``slots``: 0/1 alternating nominal slots; ""
    where the slot had no platform in that era)."""
    out = []
    for day, slot in zip(days.tolist(), slots.tolist(), strict=True):
        if slot == 0:
            out.append("L7")
        elif day < L5_END:
            out.append("L5")
        elif day >= L8_START:
            out.append("L8")
        else:
            out.append("")
    return out


def slc_off_gaps(shape: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """One ETM+ look's no-data stripes over a small window (True: missing)."""
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt = rng.uniform(0.08, 0.16)
    phase = rng.uniform(0, SCAN_LINES)
    gap = rng.uniform(1.0, 6.0)
    position = (rows + tilt * cols + phase) % SCAN_LINES
    missing: npt.NDArray[np.bool_] = position < gap
    return missing


def landsat_ndvi_stack(landscape: Landscape, seed: int, edge_px: int = 1) -> ObservationStack:
    """The landscape's NDVI as a Landsat archive holds it (see the module doc)."""
    rng = np.random.default_rng([seed, 0x1A5])
    raw = landscape.stack()
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (raw.bands["B08"] - raw.bands["B04"]) / (raw.bands["B08"] + raw.bands["B04"])
    platform = sensors(raw.days, landscape.sky.orbit)
    keep = np.asarray([p != "" for p in platform])
    clear = raw.clear & np.isfinite(ndvi)
    clear &= ~np.stack([cloud_edges(~c, edge_px) for c in raw.clear])
    clear &= land_looks("ndvi", ndvi)  # as IndexStackSource reads an NDVI stack
    step = np.float32(rng.uniform(*OLI_NDVI_STEP))
    for t, name in enumerate(platform):
        if name == "L7":
            clear[t] &= ~slc_off_gaps(raw.shape, rng)
        elif name == "L8":
            ndvi[t] = np.where(ndvi[t] > 0.2, ndvi[t] + step, ndvi[t])
    clear = clear[keep]
    return ObservationStack(
        days=raw.days[keep],
        bands={"ndvi": np.where(clear, ndvi[keep], np.nan).astype(np.float32)},
        clear=clear,
        transform=raw.transform,
        crs=raw.crs,
    )
