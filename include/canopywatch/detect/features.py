"""Model inputs per pixel and clear observation, from the monitor's state (``MonitorStep``).

Columns: the indices with their baseline, deviation (de-seasoned), z-score, spread and the
date offset; current reflectance and two extra indices when bands are present; the run of
consecutive anomalies (length, days, deepest drop), the previous clear deviation, the
share of anomalous neighbours and their mean deviation, days since the previous clear
observation, the length of the pixel's history, and its out-of-run record (share of
earlier clear observations below the forest threshold, anomalies in withdrawn runs), which
tells seasonal crops and pasture from forest. ``write_features`` stores a table of
rows (with labels and provenance) as a Delta table and returns its version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from canopywatch.detect.baseline import MonitorStep
from canopywatch.detect.indices import compute_index
from canopywatch.detect.observations import S2_BANDS, ObservationStack

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
EXTRA_S2_INDICES: tuple[str, ...] = ("nbr", "nbr2")
CONTEXT_FEATURES: tuple[str, ...] = (
    "run_length",
    "run_days",
    "run_min_dev",
    "prev_dev",
    "days_since_clear",
    "history_count",
    "history_days",
    "neighbour_anomalous",
    "neighbour_dev",
    "nonforest_share",
    "withdrawn_anomalies",
)


def feature_names(indices: Sequence[str], with_bands: bool) -> list[str]:
    names: list[str] = []
    for index in indices:
        names += [index, f"{index}_baseline", f"{index}_dev", f"{index}_z", f"{index}_sigma"]
        names += [f"{index}_offset", f"{index}_date_spread"]
    if with_bands:
        names += list(S2_BANDS) + list(EXTRA_S2_INDICES)
    return names + list(CONTEXT_FEATURES)


def step_features(
    step: MonitorStep,
    rows: IntArray,
    indices: Sequence[str],
    bands_now: Mapping[str, FloatArray] | None,
) -> FloatArray:
    """Feature matrix (len(rows), n_features) in ``feature_names`` order."""
    columns: list[npt.NDArray[Any]] = []
    for index in indices:
        deviation = step.deviation[index][rows]
        sigma = step.sigma[index][rows]
        columns += [
            step.values[index][rows],
            step.baseline[index][rows],
            deviation,
            deviation / np.maximum(sigma, 1e-6),
            sigma,
            np.full(rows.size, step.offset[index], dtype=np.float32),
            np.full(rows.size, step.date_spread[index], dtype=np.float32),
        ]
    if bands_now is not None:
        flat = {name: values.ravel()[rows] for name, values in bands_now.items()}
        columns += [flat[band] for band in S2_BANDS]
        columns += [compute_index(name, flat) for name in EXTRA_S2_INDICES]
    run_start = step.run_start[rows]
    columns += [
        step.run_length[rows],
        np.where(run_start >= 0, step.day - run_start, -1),
        np.nan_to_num(step.run_min_deviation[rows], nan=0.0),
        step.previous_deviation[rows],
        step.days_since_clear[rows],
        step.history_count[rows],
        np.where(step.history_first_day[rows] >= 0, step.day - step.history_first_day[rows], 0),
        step.neighbour_anomalous[rows],
        step.neighbour_deviation[rows],
        step.nonforest_share[rows],
        step.withdrawn_anomalies[rows],
    ]
    matrix: FloatArray = np.column_stack(columns).astype(np.float32)
    return matrix


def stack_bands_at(stack: ObservationStack, position: int) -> dict[str, FloatArray] | None:
    if not stack.has_reflectance:
        return None
    return {band: stack.bands[band][position] for band in S2_BANDS}


def write_features(
    table: Any, uri: str | Path, *, mode: Literal["overwrite", "append"] = "overwrite"
) -> int:
    """Write a pandas/pyarrow table to the Delta table at ``uri``; returns the new version."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    target = str(uri)
    if isinstance(uri, Path):
        uri.mkdir(parents=True, exist_ok=True)
    data = (
        table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    )
    if mode == "overwrite":
        write_deltalake(target, data, mode="overwrite", schema_mode="overwrite")
    else:
        write_deltalake(target, data, mode="append")
    return int(DeltaTable(target).version())


def read_features(uri: str | Path, version: int | None = None) -> Any:
    """The Delta ``features`` table (at ``version``) as a pandas DataFrame."""
    from deltalake import DeltaTable

    return DeltaTable(str(uri), version=version).to_pandas()


def collect_rows(
    stack: ObservationStack,
    clearing_day: IntArray,
    params: Any,
    rng: np.random.Generator,
    *,
    stable_fraction: float = 0.01,
    hard_fraction: float = 0.1,
) -> tuple[FloatArray, npt.NDArray[np.int8], dict[str, npt.NDArray[Any]]]:
    """Training rows of one stack: ``hard_fraction`` of the rows of ever-cleared pixels and
    of anomalous-looking observations (all of those near a clearing date), plus
    ``stable_fraction`` of the rest; label = cleared by that date."""
    from canopywatch.detect.baseline import iterate_monitor

    indices = tuple(params.indices)
    with_bands = stack.has_reflectance
    flat_clearing = clearing_day.ravel()
    ever_cleared = flat_clearing >= 0
    matrices: list[FloatArray] = []
    labels: list[npt.NDArray[np.int8]] = []
    meta: dict[str, list[npt.NDArray[Any]]] = {"day": [], "pixel": []}
    primary = indices[0]
    for step in iterate_monitor(stack, params):
        rows = np.flatnonzero(step.observed)
        if rows.size == 0:
            continue
        hard = (
            ever_cleared[rows]
            | (step.deviation[primary][rows] < -0.08)
            | (step.run_length[rows] > 0)
        )
        near = np.abs(step.day - flat_clearing[rows]) <= 30
        draw = rng.random(rows.size)
        keep = (hard & (near | (draw < hard_fraction))) | (draw < stable_fraction)
        rows = rows[keep]
        if rows.size == 0:
            continue
        matrices.append(step_features(step, rows, indices, stack_bands_at(stack, step.position)))
        day_cleared = flat_clearing[rows]
        labels.append(((day_cleared >= 0) & (day_cleared <= step.day)).astype(np.int8))
        meta["day"].append(np.full(rows.size, step.day, dtype=np.int64))
        meta["pixel"].append(rows.astype(np.int64))
    n_features = len(feature_names(indices, with_bands))
    if not matrices:
        return (
            np.zeros((0, n_features), dtype=np.float32),
            np.zeros(0, dtype=np.int8),
            {key: np.zeros(0, dtype=np.int64) for key in meta},
        )
    return (
        np.concatenate(matrices),
        np.concatenate(labels),
        {key: np.concatenate(parts) for key, parts in meta.items()},
    )
