"""Scoring with the trained model inside a Spark job (mapInPandas), for areas at scale.

Each Python worker loads the saved model once per partition iterator and scores its
rows with the same ``TrainedModel.predict`` a task uses, so a Spark job and an
Airflow task give identical probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from canopywatch.detect.model import load_model


def score_partitions(model_dir: str) -> Any:
    """The mapInPandas function: adds a ``probability`` column from the model's features."""

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        model = load_model(Path(model_dir))
        for batch in batches:
            matrix = batch[model.features].to_numpy(dtype=np.float32)
            yield batch.assign(probability=model.predict(matrix))

    return score


def score_dataframe(frame: Any, model_dir: Path) -> Any:
    """A Spark DataFrame holding the model's feature columns, with ``probability`` added."""
    from pyspark.sql.types import FloatType, StructField, StructType

    schema = StructType([*frame.schema.fields, StructField("probability", FloatType())])
    return frame.mapInPandas(score_partitions(str(model_dir)), schema)
