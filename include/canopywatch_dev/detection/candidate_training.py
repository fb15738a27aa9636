"""Training data and training of the candidate scorer (``canopywatch.detect.candidates``).

Candidates are the harmonic detector's active alert polygons on generated series
(``canopywatch_dev.detection.cases``, both generators, so that a model can be trained on one
and tested on the other: ``benchmarks/candidate_scoring.py``), run the way the product runs
(``detect_area`` without a scorer), labelled true when the date-aware evaluation counts them
as timely true positives.

    python -m canopywatch_dev.detection train-candidates [--landscapes 60] [--simulator 10]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from canopywatch.detect.alerts import active_alerts
from canopywatch.detect.candidates import CANDIDATE_FEATURES, MODEL_DIR, candidate_matrix
from canopywatch.detect.detector import HarmonicDetector, detect_area
from canopywatch.detect.evaluate import ReferenceData, evaluate_alerts
from canopywatch.detect.model import TrainedModel, save_model, train_model
from canopywatch.detect.observations import ArraySource, ObservationStack
from canopywatch_dev.detection.cases import (
    TRAINING_SEED_BASE,
    Case,
    landscape_cases,
    simulator_cases,
)

FloatArray = npt.NDArray[np.float32]
XGB_PARAMS = {
    "max_depth": 3,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 3.0,
}
ROUNDS = 200


@dataclass
class Candidates:
    matrix: FloatArray  # (n, len(CANDIDATE_FEATURES))
    labels: npt.NDArray[np.int8]  # 1: a timely true alert
    tags: list[str]  # the case each row comes from
    statistical: FloatArray  # the detector's own confidence

    @classmethod
    def empty(cls) -> Candidates:
        return cls(
            np.zeros((0, len(CANDIDATE_FEATURES)), np.float32),
            np.zeros(0, np.int8),
            [],
            np.zeros(0, np.float32),
        )

    def __add__(self, other: Candidates) -> Candidates:
        return Candidates(
            np.concatenate([self.matrix, other.matrix]),
            np.concatenate([self.labels, other.labels]),
            self.tags + other.tags,
            np.concatenate([self.statistical, other.statistical]),
        )

    def __len__(self) -> int:
        return int(self.labels.size)


def case_candidates(tag: str, stack: ObservationStack, reference: ReferenceData) -> Candidates:
    source = ArraySource(stack)
    result = detect_area(source, HarmonicDetector(), aoi="candidates", window_size=1024)
    alerts = active_alerts(result.alerts)
    if alerts.empty:
        return Candidates.empty()
    evaluation = evaluate_alerts(alerts, reference, as_of_day=int(stack.days[-1]))
    matrix = candidate_matrix(source, alerts, result.pixel_alerts)
    if matrix is None:
        raise ValueError(f"{tag}: the generated stack has no Sentinel-2 reflectance")
    return Candidates(
        matrix,
        np.asarray(evaluation.true_alerts, dtype=np.int8),
        [tag] * len(alerts),
        alerts["confidence"].to_numpy(np.float32),
    )


def collect(cases: Iterator[Case], progress: Callable[[str], None] | None = None) -> Candidates:
    total = Candidates.empty()
    for tag, stack, reference in cases:
        total = total + case_candidates(tag, stack, reference)
        if progress is not None:
            progress(f"{tag}: {len(total)} candidates so far")
    return total


def train_scorer(candidates: Candidates, *, seed: int = 0, note: str = "") -> TrainedModel:
    """XGBoost on the candidates, false ones weighted up to the true ones' total."""
    labels = candidates.labels
    n_true, n_false = int(labels.sum()), int((labels == 0).sum())
    weights = np.where(labels == 0, n_true / max(1, n_false), 1.0).astype(np.float32)
    model = train_model(
        candidates.matrix,
        labels,
        CANDIDATE_FEATURES,
        seed=seed,
        rounds=ROUNDS,
        params=XGB_PARAMS,
        weights=weights,
        card={"name": "canopywatch-candidate-xgb", "training": note},
    )
    # the hash train_model names the model by, under this model's own prefix
    model.card["version"] = "candidates-" + model.version.removeprefix("xgb-")
    model.card["training_true"], model.card["training_false"] = n_true, n_false
    return model


def train_shipped(
    landscapes: int,
    simulator: int,
    size: int,
    out: Path = MODEL_DIR,
    progress: Callable[[str], None] | None = None,
) -> TrainedModel:
    """The shipped scorer: both generators' training sets."""
    candidates = collect(landscape_cases(landscapes, size, train=True), progress) + collect(
        simulator_cases(simulator, size, train=True), progress
    )
    note = (
        f"{landscapes} randomized landscapes (seeds {TRAINING_SEED_BASE}..) and {simulator} "
        f"training seeds of every simulator scenario type, {size} px"
    )
    model = train_scorer(candidates, note=note)
    save_model(model, out)
    return model
