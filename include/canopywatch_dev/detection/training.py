"""Training data from scenarios (or user labels) into the Delta ``features`` table, and
training the model on it. ``ml/train.py`` and the training DAG call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from canopywatch.detect.baseline import BaselineParams
from canopywatch.detect.features import collect_rows, feature_names
from canopywatch.detect.indices import compute_index
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
