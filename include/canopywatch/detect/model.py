"""The XGBoost change model: P(pixel cleared by the date of a clear observation).

``train_model`` is deterministic for a seed (exact/hist CPU tree building, fixed
sub-sampling seed). ``save_model`` writes ``model.json`` (XGBoost's own JSON format) and
``model_card.json`` (features, training data and its Delta version, parameters,
metrics); ``load_model`` needs nothing but those two files, so any process (an Airflow
task, a Spark executor) scores identically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

FloatArray = npt.NDArray[np.float32]
MODEL_FILE = "model.json"
CARD_FILE = "model_card.json"
DEFAULT_XGB_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5.0,
    "nthread": 2,
}


@dataclass
class TrainedModel:
    booster: xgb.Booster
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return list(self.card["features"])

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unversioned"))

    @property
    def indices(self) -> tuple[str, ...]:
        return tuple(self.card.get("indices", ("ndvi", "ndmi")))

    @property
    def threshold(self) -> float:
        return float(self.card.get("threshold", 0.5))

    def predict(self, matrix: FloatArray) -> FloatArray:
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        data = xgb.DMatrix(matrix, feature_names=self.features, nthread=1)
        probabilities: FloatArray = self.booster.predict(data).astype(np.float32)
        return probabilities


def train_model(
    matrix: FloatArray,
    labels: npt.NDArray[Any],
    features: Sequence[str],
    *,
    seed: int = 0,
    rounds: int = 200,
    params: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    weights: npt.NDArray[Any] | None = None,
) -> TrainedModel:
    settings = {**DEFAULT_XGB_PARAMS, **(params or {}), "seed": seed}
    data = xgb.DMatrix(
        matrix, label=labels, weight=weights, feature_names=list(features), nthread=1
    )
    booster = xgb.train(settings, data, num_boost_round=rounds)
    raw = booster.save_raw(raw_format="json")
    version = hashlib.sha256(bytes(raw)).hexdigest()[:12]
    full_card: dict[str, Any] = {
        "name": "canopywatch-clearing-xgb",
        "version": f"xgb-{version}",
        "features": list(features),
        "params": settings,
        "rounds": rounds,
        "seed": seed,
        "training_rows": int(matrix.shape[0]),
        "positive_rows": int(np.asarray(labels).sum()),
        **(card or {}),
    }
    return TrainedModel(booster, full_card)


def save_model(model: TrainedModel, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(directory / MODEL_FILE))
    (directory / CARD_FILE).write_text(
        json.dumps(model.card, indent=2, sort_keys=True, default=str)
    )
    return directory


def load_model(directory: Path) -> TrainedModel:
    model_path, card_path = directory / MODEL_FILE, directory / CARD_FILE
    if not model_path.is_file() or not card_path.is_file():
        raise ValueError(f"{directory} holds no {MODEL_FILE} + {CARD_FILE}")
    booster = xgb.Booster()
    booster.load_model(str(model_path))
    booster.set_param({"nthread": 2})
    return TrainedModel(booster, json.loads(card_path.read_text()))
