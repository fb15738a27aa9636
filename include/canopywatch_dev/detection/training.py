"""Training data from scenarios (or user labels) into the Delta ``features`` table, and
training the model on it. ``ml/train.py`` and the training DAG call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from canopywatch.detect.baseline import BaselineParams
from canopywatch.detect.evaluate import ReferenceData
from canopywatch.detect.features import collect_rows, feature_names, read_features, write_features
from canopywatch.detect.indices import compute_index
from canopywatch.detect.model import TrainedModel, train_model
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.detection.reference import SimulationSource
from canopywatch_dev.detection.scenarios import Scenario

LABEL_COLUMN = "label"
PROVENANCE_COLUMNS: tuple[str, ...] = ("scenario", "seed", "day", "pixel", LABEL_COLUMN)


def as_index_stack(stack: ObservationStack, index: str) -> ObservationStack:
    """The same observations reduced to one index (what an ``--index-stack`` provides)."""
    return replace(stack, bands={index: compute_index(index, stack.bands)})


def rows_table(
    stack: ObservationStack,
    clearing_day: Any,
    params: BaselineParams,
    *,
    source: str,
    seed: int,
    rng: np.random.Generator,
    stable_fraction: float = 0.01,
    hard_fraction: float = 0.1,
) -> pd.DataFrame:
    matrix, labels, meta = collect_rows(
        stack,
        np.asarray(clearing_day, dtype=np.int64),
        params,
        rng,
        stable_fraction=stable_fraction,
        hard_fraction=hard_fraction,
    )
    names = feature_names(params.indices, stack.has_reflectance)
    frame = pd.DataFrame(matrix, columns=names)
    frame["scenario"] = source
    frame["seed"] = seed
    frame["day"] = meta["day"]
    frame["pixel"] = meta["pixel"]
    frame[LABEL_COLUMN] = labels
    return frame


def scenario_feature_table(
    scenarios: Sequence[Scenario],
    params: BaselineParams,
    *,
    index: str | None = None,
    seed: int = 0,
    progress: bool = True,
    stable_fraction: float = 0.01,
    hard_fraction: float = 0.1,
) -> pd.DataFrame:
    """Feature rows of every scenario; ``index`` reduces the stacks to that one index."""
    rng = np.random.default_rng(seed)
    frames = []
    for scenario in tqdm(scenarios, disable=not progress, desc="features"):
        simulation = scenario.simulate()
        stack = SimulationSource(simulation).read()
        if index is not None:
            stack = as_index_stack(stack, index)
        frames.append(
            rows_table(
                stack,
                simulation.clearing_date,
                params,
                source=scenario.name,
                seed=scenario.seed,
                rng=rng,
                stable_fraction=stable_fraction,
                hard_fraction=hard_fraction,
            )
        )
    return pd.concat(frames, ignore_index=True)


def labelled_feature_table(
    stack: ObservationStack,
    reference: ReferenceData,
    params: BaselineParams,
    *,
    name: str,
    seed: int = 0,
) -> pd.DataFrame:
    """Feature rows of a user stack labelled with user reference (polygons or loss year)."""
    return rows_table(
        stack,
        reference.clearing_day,
        params,
        source=name,
        seed=seed,
        rng=np.random.default_rng(seed),
    )


def train_from_delta(
    uri: str | Path,
    *,
    version: int | None = None,
    params: BaselineParams,
    with_bands: bool,
    seed: int = 0,
    rounds: int = 200,
    xgb_params: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
) -> TrainedModel:
    from deltalake import DeltaTable

    table_version = int(DeltaTable(str(uri), version=version).version())
    frame = read_features(uri, table_version)
    names = feature_names(params.indices, with_bands)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValueError(f"features table {uri} lacks columns {missing}")
    frame = frame.sort_values(["scenario", "day", "pixel"], kind="stable")
    model = train_model(
        frame[names].to_numpy(np.float32),
        frame[LABEL_COLUMN].to_numpy(),
        names,
        seed=seed,
        rounds=rounds,
        params=xgb_params,
        card={
            "indices": list(params.indices),
            "training_data": {
                "delta_table": str(uri),
                "delta_version": table_version,
                "scenarios": sorted(frame["scenario"].unique().tolist()),
            },
            **(card or {}),
        },
    )
    return model


def write_feature_table(frame: pd.DataFrame, uri: str | Path) -> int:
    return write_features(frame, uri)
