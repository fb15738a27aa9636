"""The saved model scores identically in a task (plain Python) and in a Spark job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from canopywatch.detect.model import load_model, save_model, train_model
from canopywatch.detect.spark_scoring import score_dataframe

pytestmark = [pytest.mark.slow]


def test_spark_job_and_task_give_the_same_probabilities(tmp_path, spark):
    rng = np.random.default_rng(0)
    features = ["ndvi_dev", "nbr_dev", "run_length", "neighbours"]
    matrix = rng.normal(size=(2000, len(features))).astype(np.float32)
    labels = (matrix[:, 0] + 0.5 * matrix[:, 2] > 0.3).astype(np.float32)
    model_dir = save_model(
        train_model(matrix, labels, features, seed=1, rounds=30), tmp_path / "model"
    )

    in_task = load_model(model_dir).predict(matrix)

    try:
        frame = spark.createDataFrame(
            pd.DataFrame(matrix, columns=features).assign(row=np.arange(len(matrix)))
        )
        scored = score_dataframe(frame.repartition(4), model_dir).toPandas().sort_values("row")
    finally:
        spark.catalog.clearCache()
    assert scored["probability"].to_numpy(dtype=np.float32).tolist() == in_task.tolist()
