"""Planted stands: layout, texture, rotation clear-cuts and thinnings, surface per date.

Drawn differently from ``canopywatch_dev.landscapes`` on purpose (so that plantation cues
tested on both generators mean something): there, a plantation pixel is one material
spectrum times a brightness factor equal in every band. Here a plantation pixel is a
two-endmember mix of the stand's species canopy (``EM_EUCALYPTUS``: bright NIR, higher
SWIR; ``EM_PINE``: dark NIR, low SWIR) and the floor under it (litter / dry understorey,
or bare soil in the first year after planting), with the canopy cover as the weight:

* stands are cells of an irregular rectangular stand grid (120-300 m sides) laid over
  open land, each even-aged (age on the first day drawn per stand) and of one species;
* cover = mature cover x growth(age) x (1 - amplitude(age) x row), where ``row`` is a
  periodic planting-row / extraction-rack pattern (period 2.5-4 px, rotated per stand),
  strong in young stands and weaker once the canopy closes; the mature cover carries a
  per-pixel jitter and occasional gaps (dead trees, windthrow); some stand edges are
  bare firebreaks. Cover changes the mix, so it moves NDVI and NBR (no brightness factor
  that cancels in the indices; the static texture multiplier is 1 on plantations);
* rotation clear-cuts: a harvesting front crosses the stand in 3-21 days; the cut pixels
  are slash over soil for 1-4 months, the stand is replanted on one day and the young
  canopy closes over 8-18 months (over bare soil in its first year);
* thinnings: cover drops on all pixels of the stand, most on the racks, and recovers
  over a year or so.

Cuts and thinnings are events (``plantation_harvest``, ``plantation_thinning``) that are
not deforestation; ``clearing_date`` never marks plantation pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from canopywatch_dev.simulate.helpers import smooth_field
from canopywatch_dev.simulate.model import (
    _NEVER,
    _STREAM_PLANTATION,
    _STREAM_PLANTATION_EVENTS,
    EM_EUCALYPTUS,
    EM_LITTER,
    EM_PINE,
    EM_SOIL,
    BoolArray,
    Event,
    FloatArray,
    IntArray,
    SimulationConfig,
    UInt8Array,
    _PlantationSchedule,
    _PlantationStands,
)

YOUNG_FLOOR_DAYS = 365  # bare (weeded) soil between the young trees, litter afterwards
FIREBREAK_LITTER = 0.35  # litter share of a firebreak pixel


def build_plantations(
    config: SimulationConfig, open_land: BoolArray
) -> tuple[BoolArray, _PlantationStands | None]:
    """Plantation mask (taken from ``open_land``) and its stands; nothing drawn at share 0."""
    shape_hw = (config.height, config.width)
    if config.plantation_share <= 0:
        return np.zeros(shape_hw, dtype=bool), None
    rng = np.random.default_rng([config.seed, _STREAM_PLANTATION])
    res = config.resolution
    low, high = max(4, round(120.0 / res)), max(5, round(300.0 / res))

    def edges(length: int) -> IntArray:
        cuts = [-int(rng.integers(0, high))]
        while cuts[-1] < length:
            cuts.append(cuts[-1] + int(rng.integers(low, high + 1)))
        return np.asarray(cuts, dtype=np.int64)

    row_edges, col_edges = edges(config.height), edges(config.width)
    cell_row = np.searchsorted(row_edges, np.arange(config.height), side="right") - 1
    cell_col = np.searchsorted(col_edges, np.arange(config.width), side="right") - 1
    n_cols = col_edges.size
    cell = (cell_row[:, None] * n_cols + cell_col[None, :]).ravel()
    n_cells = int(cell.max()) + 1
    open_flat = open_land.ravel()
    suitability_field = smooth_field(rng, shape_hw, 600.0 / res).ravel()
    area = np.bincount(cell, minlength=n_cells)
    open_count = np.bincount(cell, weights=open_flat, minlength=n_cells)
    suit_sum = np.bincount(cell, weights=suitability_field * open_flat, minlength=n_cells)
    suitability = np.where(
        open_count >= 0.5 * np.maximum(area, 1), suit_sum / np.maximum(open_count, 1), -np.inf
    )
    target = round(config.plantation_share * config.height * config.width)
    chosen: list[int] = []
    total = 0
    for cell_number in np.argsort(-suitability, kind="stable"):
        if total >= target or not np.isfinite(suitability[cell_number]):
            break
        chosen.append(int(cell_number))
        total += int(open_count[cell_number])
    stand_of_cell = np.full(n_cells, -1, dtype=np.int64)
    stand_of_cell[np.asarray(chosen, dtype=np.int64)] = np.arange(len(chosen))
    stand_flat = np.where(open_flat, stand_of_cell[cell], -1)
    mask = (stand_flat >= 0).reshape(shape_hw)
    n_stands = len(chosen)
    if n_stands == 0:
        return mask, None

    pixels = np.flatnonzero(stand_flat >= 0)
    pixel_stand = stand_flat[pixels]
    rows, cols = np.divmod(pixels, config.width)
    rows_f, cols_f = rows.astype(np.float64), cols.astype(np.float64)

    species = np.where(rng.random(n_stands) < 0.6, EM_EUCALYPTUS, EM_PINE).astype(np.uint8)
    eucalyptus = species == EM_EUCALYPTUS
    # eucalyptus rotations ~6-7 years, pine ~15-25: age on the first day
    age_years = np.where(
        eucalyptus, rng.uniform(0.2, 7.0, n_stands), rng.uniform(0.2, 16.0, n_stands)
    )
    age_at_start = np.round(age_years * 365.25).astype(np.int64)
    grow_days = rng.integers(240, 541, size=n_stands).astype(np.int64)
    mature_cover = np.where(
        eucalyptus, rng.uniform(0.80, 0.95, n_stands), rng.uniform(0.72, 0.90, n_stands)
    )
    row_amplitude = rng.uniform(0.08, 0.18, n_stands).astype(np.float32)
    # rows along one of the stand grid's axes, slightly off it; period 2.5-4 px
    angle = (rng.integers(0, 2, n_stands) * (math.pi / 2)) + rng.uniform(-0.2, 0.2, n_stands)
    period = rng.uniform(2.5, 4.0, n_stands)
    phase = rng.uniform(0.0, 2.0 * math.pi, n_stands)
    rack_every = rng.integers(4, 7, n_stands)
    firebreak_top = rng.random(n_stands) < 0.5
    firebreak_left = rng.random(n_stands) < 0.5

    across = (cols_f * np.cos(angle[pixel_stand]) + rows_f * np.sin(angle[pixel_stand])) / period[
        pixel_stand
    ]
    row = (0.5 + 0.5 * np.cos(2.0 * math.pi * across + phase[pixel_stand])).astype(np.float32)
    rack = (np.floor(across).astype(np.int64) % rack_every[pixel_stand]) == 0

    jitter = smooth_field(rng, shape_hw, 0.7).ravel()[pixels]
    gap = rng.random(pixels.size) < 0.03
    gap_factor = np.where(gap, rng.uniform(0.1, 0.5, pixels.size), 1.0)
    cover_max = np.clip(
        mature_cover[pixel_stand] * (1.0 + 0.07 * jitter) * gap_factor, 0.0, 1.0
    ).astype(np.float32)

    stand_cell = np.asarray(chosen, dtype=np.int64)
    top_row = row_edges[stand_cell // n_cols]
    left_col = col_edges[stand_cell % n_cols]
    firebreak = (firebreak_top[pixel_stand] & (rows == top_row[pixel_stand])) | (
        firebreak_left[pixel_stand] & (cols == left_col[pixel_stand])
    )
    stands = _PlantationStands(
        stand=stand_flat.reshape(shape_hw).astype(np.int32),
        pixels=pixels,
        pixel_stand=pixel_stand,
        firebreak=firebreak,
        cover_max=cover_max,
        row=row,
        rack=rack,
        species=species,
        age_at_start=age_at_start,
        grow_days=grow_days,
        row_amplitude=row_amplitude,
    )
    return mask, stands


def schedule_plantations(
    config: SimulationConfig,
    stands: _PlantationStands,
    start_day: int,
    end_day: int,
    make_event: Callable[[str, BoolArray, int, int, int | None], Event],
) -> tuple[list[Event], _PlantationSchedule]:
    """Which stands are clear-cut or thinned, and when, per pixel."""
    rng = np.random.default_rng([config.seed, _STREAM_PLANTATION_EVENTS])
    n_stands = stands.species.size
    n_pixels = stands.pixels.size
    cut_day = np.full(n_pixels, _NEVER, dtype=np.int64)
    replant_day = np.full(n_pixels, _NEVER, dtype=np.int64)
    thin_day = np.full(n_pixels, _NEVER, dtype=np.int64)
    thin_fraction = np.zeros(n_pixels, dtype=np.float32)
    thin_tau = np.ones(n_pixels, dtype=np.float32)
    slash = rng.uniform(0.25, 0.65, n_pixels).astype(np.float32)

    order = rng.permutation(n_stands)
    n_cut = min(n_stands, max(1, round(config.plantation_cut_share * n_stands)))
    if config.plantation_cut_share <= 0:
        n_cut = 0
    n_thin = min(n_stands - n_cut, round(config.plantation_thin_share * n_stands))
    span_lo, span_hi = start_day + 30, max(start_day + 30, end_day - 60)
    rows, cols = np.divmod(stands.pixels, config.width)
    events: list[Event] = []
    for position, stand in enumerate(order[: n_cut + n_thin].tolist()):
        on_stand = (stands.pixel_stand == stand) & ~stands.firebreak
        members = np.flatnonzero(on_stand)
        if members.size == 0:
            continue
        cutting = position < n_cut
        duration = int(rng.integers(3, 22)) if cutting else int(rng.integers(5, 31))
        first = int(rng.integers(span_lo, span_hi + 1))
        direction = rng.uniform(0.0, 2.0 * math.pi)
        front = cols[members] * math.cos(direction) + rows[members] * math.sin(direction)
        front = front + rng.uniform(0.0, 1.5, members.size)
        rank = np.empty(members.size, dtype=np.int64)
        rank[np.argsort(front, kind="stable")] = np.arange(members.size)
        days = first + (duration * rank) // max(1, members.size - 1)
        days = np.minimum(days, end_day)
        mask = np.zeros(config.height * config.width, dtype=bool)
        mask[stands.pixels[members]] = True
        mask_hw = mask.reshape(config.height, config.width)
        if cutting:
            replant = int(days.max()) + int(rng.integers(30, 123))
            cut_day[members] = days
            replant_day[members] = replant
            events.append(
                make_event("plantation_harvest", mask_hw, first, int(days.max()), replant)
            )
        else:
            strength = float(rng.uniform(0.3, 0.5))
            thin_day[members] = days
            thin_fraction[members] = np.where(stands.rack[members], strength, 0.35 * strength)
            thin_tau[members] = float(rng.uniform(250.0, 500.0))
            events.append(make_event("plantation_thinning", mask_hw, first, int(days.max()), None))
    schedule = _PlantationSchedule(
        cut_day=cut_day,
        replant_day=replant_day,
        slash=slash,
        thin_day=thin_day,
        thin_fraction=thin_fraction,
        thin_tau=thin_tau,
    )
    return events, schedule


def apply_plantations(
    day: int,
    start_day: int,
    stands: _PlantationStands,
    schedule: _PlantationSchedule,
    flat_a: UInt8Array,
    flat_b: UInt8Array,
    flat_w: FloatArray,
) -> None:
    """Write the endmember pair and weight of every plantation pixel on ``day``."""
    stand = stands.pixel_stand
    replanted = day >= schedule.replant_day
    in_slash = (day >= schedule.cut_day) & ~replanted
    age = np.where(
        replanted, day - schedule.replant_day, stands.age_at_start[stand] + (day - start_day)
    )
    progress = np.clip(age / stands.grow_days[stand], 0.0, 1.0)
    growth = progress * progress * (3.0 - 2.0 * progress)
    # rows show strongly while the canopy is open, and weaken as it closes
    amplitude = stands.row_amplitude[stand] + 0.5 * (1.0 - growth)
    cover = stands.cover_max * growth * (1.0 - amplitude * stands.row)
    thinned = day >= schedule.thin_day
    if thinned.any():
        elapsed = (day - schedule.thin_day[thinned]).astype(np.float32)
        cover[thinned] *= 1.0 - schedule.thin_fraction[thinned] * np.exp(
            -elapsed / schedule.thin_tau[thinned]
        )
    canopy = stands.species[stand]
    floor = np.where(age < YOUNG_FLOOR_DAYS, EM_SOIL, EM_LITTER).astype(np.uint8)
    em_a = np.where(in_slash, EM_SOIL, floor).astype(np.uint8)
    em_b = np.where(in_slash, EM_LITTER, canopy).astype(np.uint8)
    weight = np.where(in_slash, schedule.slash, np.clip(cover, 0.0, 1.0)).astype(np.float32)
    em_a[stands.firebreak] = EM_SOIL
    em_b[stands.firebreak] = EM_LITTER
    weight[stands.firebreak] = FIREBREAK_LITTER
    flat_a[stands.pixels] = em_a
    flat_b[stands.pixels] = em_b
    flat_w[stands.pixels] = weight
