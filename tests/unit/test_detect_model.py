"""XGBoost model: deterministic training, identical scores after save/load in a new process,
and the Delta features table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from canopywatch.detect.features import read_features, write_features
from canopywatch.detect.model import load_model, save_model, train_model

FEATURES = ["ndvi_dev", "ndmi_dev", "run_length", "neighbour_anomalous"]


def toy_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, len(FEATURES))).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=3000)) < -0.5).astype(np.int8)
    return x, y


def test_training_is_deterministic_for_a_seed() -> None:
    x, y = toy_data()
    first = train_model(x, y, FEATURES, seed=3, rounds=30)
    second = train_model(x, y, FEATURES, seed=3, rounds=30)
    assert first.version == second.version
    assert np.array_equal(first.predict(x), second.predict(x))
    other = train_model(x, y, FEATURES, seed=4, rounds=30)
    assert other.version != first.version


def test_scores_identically_after_load_in_a_fresh_process(tmp_path: Path) -> None:
    x, y = toy_data()
    model = train_model(x, y, FEATURES, seed=1, rounds=30, card={"indices": ["ndvi", "ndmi"]})
    directory = save_model(model, tmp_path / "model")
    card = json.loads((directory / "model_card.json").read_text())
    assert card["features"] == FEATURES and card["version"] == model.version
    assert {"params", "seed", "training_rows"} <= set(card)
    np.save(tmp_path / "x.npy", x[:200])
    script = (
        "import sys, numpy as np; from pathlib import Path;"
        "from canopywatch.detect.model import load_model;"
        "m = load_model(Path(sys.argv[1])); x = np.load(sys.argv[2]);"
        "np.save(sys.argv[3], m.predict(x))"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(directory),
            str(tmp_path / "x.npy"),
            str(tmp_path / "p.npy"),
        ],
        check=True,
    )
    assert np.array_equal(np.load(tmp_path / "p.npy"), model.predict(x[:200]))
    assert np.array_equal(load_model(directory).predict(x[:200]), model.predict(x[:200]))


def test_features_delta_table_versions(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ndvi_dev": [0.1, -0.4], "label": [0, 1], "scenario": ["a", "a"]})
    uri = tmp_path / "features"
    assert write_features(frame, uri) == 0
    assert write_features(frame, uri, mode="append") == 1
    assert len(read_features(uri)) == 4
    assert len(read_features(uri, version=0)) == 2
