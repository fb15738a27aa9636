"""The static land-cover layers of a simulated area."""

from __future__ import annotations

import numpy as np

from canopywatch_dev.simulate.helpers import _top_pixels, smooth_field
from canopywatch_dev.simulate.model import (
    _STREAM_LANDSCAPE,
    _TEXTURE_AMPLITUDE,
    LC_BARE,
    LC_CROPLAND,
    LC_FOREST,
    LC_PASTURE,
    LC_PLANTATION,
    LC_SETTLEMENT,
    LC_WATER,
    BoolArray,
    FloatArray,
    Int32Array,
    SimulationConfig,
    _Landscape,
)
from canopywatch_dev.simulate.plantations import build_plantations

# --------------------------------------------------------------------------- landscape


def _build_landscape(config: SimulationConfig) -> _Landscape:
    rng = np.random.default_rng([config.seed, _STREAM_LANDSCAPE])
    shape_hw = (config.height, config.width)
    n_pixels = config.height * config.width
    res = config.resolution

    terrain = smooth_field(rng, shape_hw, 1500.0 / res) + 0.3 * smooth_field(
        rng, shape_hw, 300.0 / res
    )
    forest_field = smooth_field(rng, shape_hw, 400.0 / res) + 0.35 * smooth_field(
        rng, shape_hw, 80.0 / res
    )
    settlement_field = smooth_field(rng, shape_hw, 80.0 / res)
    bare_field = smooth_field(rng, shape_hw, 50.0 / res)
    crop_field = smooth_field(rng, shape_hw, 800.0 / res)
    productivity = smooth_field(rng, shape_hw, 300.0 / res)
    fine = 0.7 * smooth_field(rng, shape_hw, 0.8) + 0.3 * smooth_field(rng, shape_hw, 3.0)
    green_field = smooth_field(rng, shape_hw, 2.0)

    landcover = np.full(shape_hw, LC_PASTURE, dtype=np.uint8)
    everywhere = np.ones(shape_hw, dtype=bool)
    water = _top_pixels(-terrain, everywhere, round(config.water_share * n_pixels))
    landcover[water] = LC_WATER
    forest = _top_pixels(forest_field, ~water, round(config.forest_share * n_pixels))
    landcover[forest] = LC_FOREST
    open_land = ~water & ~forest
    settlement = _top_pixels(settlement_field, open_land, round(config.settlement_share * n_pixels))
    landcover[settlement] = LC_SETTLEMENT
    open_land &= ~settlement
    bare = _top_pixels(bare_field, open_land, round(config.bare_share * n_pixels))
    landcover[bare] = LC_BARE
    open_land &= ~bare
    # own random stream, drawn from only where plantation_share > 0
    planted, plantations = build_plantations(config, open_land)
    landcover[planted] = LC_PLANTATION
    open_land &= ~planted

    parcel = _crop_parcels(config, rng, open_land, crop_field)
    landcover[parcel >= 0] = LC_CROPLAND

    texture = np.clip(1.0 + _TEXTURE_AMPLITUDE[landcover] * fine, 0.6, 1.4).astype(np.float32)
    pasture_index = np.flatnonzero(landcover == LC_PASTURE)
    quality = np.clip(0.5 + 0.3 * productivity.ravel()[pasture_index], 0.0, 1.0)
    return _Landscape(
        landcover=landcover,
        terrain=terrain.astype(np.float32),
        texture=texture,
        parcel=parcel,
        pasture_ndvi_dry=(0.32 + 0.16 * quality).astype(np.float32),
        pasture_ndvi_wet=(0.57 + 0.16 * quality).astype(np.float32),
        pasture_index=pasture_index,
        crop_index=np.flatnonzero(landcover == LC_CROPLAND),
        settlement_green=np.clip(0.15 + 0.1 * green_field, 0.0, 0.35).astype(np.float32),
        plantations=plantations,
    )


def _crop_parcels(
    config: SimulationConfig, rng: np.random.Generator, open_land: BoolArray, crop_field: FloatArray
) -> Int32Array:
    """Parcel number per pixel (-1 elsewhere): cells of a cadastre grid with most open land."""
    cell = max(4, round(400.0 / config.resolution))
    offset_row, offset_col = (int(v) for v in rng.integers(0, cell, size=2))
    rows = (np.arange(config.height) + offset_row) // cell
    cols = (np.arange(config.width) + offset_col) // cell
    n_cell_cols = int(cols[-1]) + 1
    cell_id = (rows[:, None] * n_cell_cols + cols[None, :]).ravel()
    n_cells = int(cell_id.max()) + 1
    open_flat = open_land.ravel()
    open_count = np.bincount(cell_id, weights=open_flat, minlength=n_cells)
    crop_sum = np.bincount(cell_id, weights=crop_field.ravel() * open_flat, minlength=n_cells)
    suitability = np.where(
        open_count >= 0.5 * cell * cell, crop_sum / np.maximum(open_count, 1), -np.inf
    )
    target = round(config.cropland_share * config.height * config.width)
    parcel_of_cell = np.full(n_cells, -1, dtype=np.int32)
    total = 0
    for number, cell_number in enumerate(np.argsort(-suitability)):
        if total >= target or not np.isfinite(suitability[cell_number]):
            break
        parcel_of_cell[cell_number] = number
        total += int(open_count[cell_number])
    parcel = np.where(open_flat, parcel_of_cell[cell_id], -1).astype(np.int32)
    # renumber the used parcels 0..n-1; lookup[-1] (pixels outside cropland) stays -1
    used = np.unique(parcel[parcel >= 0])
    lookup = np.full(n_cells + 1, -1, dtype=np.int32)
    lookup[used] = np.arange(used.size, dtype=np.int32)
    return lookup[parcel].reshape(config.height, config.width)
