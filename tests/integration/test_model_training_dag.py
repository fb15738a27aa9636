"""``deforestation_model_training`` run with ``dag.test()`` (``airflow dags test``): its
``dvc repro`` on a tiny configuration, in a copy of ml/ the DAG is pointed at
(``CANOPYWATCH_ML_PROJECT``), so the repository's own ml/ is never touched.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.integration.conftest import AirflowEnv, airflow_dags_test
from tests.integration.test_catalog_sync_dag import output_of

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_model_training_dag_trains_a_versioned_model_on_a_tiny_configuration(airflow_env, tmp_path):
    from canopywatch.detect.model import load_model
    from canopywatch.settings import REPO_ROOT
    from canopywatch_dev.detection.ml_project import tiny_ml_project

    project = tiny_ml_project(tmp_path)
    tracked = {p.name: p.read_bytes() for p in (REPO_ROOT / "ml").glob("*") if p.is_file()}
    env = AirflowEnv(
        airflow_env.settings,
        {**airflow_env.variables, "CANOPYWATCH_ML_PROJECT": str(project)},
    )
    result = airflow_dags_test(env, {}, dag_id="deforestation_model_training")
    output = output_of(result)
    assert result.returncode == 0, output[-6000:]
    model = load_model(project / "models" / "s2")
    assert re.fullmatch(r"xgb-[0-9a-f]{12}", model.version)
    assert f"model s2: {model.version}" in output  # the task log names the model it trained
    assert model.card["training_data"]["delta_version"] == 0
    assert model.card["rounds"] == 10 and model.card["stack_kind"] == "s2"
    assert model.predict(np.zeros((3, len(model.features)), dtype=np.float32)).shape == (3,)
    metrics = json.loads((project / "metrics.json").read_text())
    assert {"statistical baseline", "XGBoost"} <= set(metrics)
    assert "metrics.json" in output  # dvc metrics show ran after the repro
    # the repository's own ml/ is untouched: the DAG trained where it was pointed
    assert {p.name: p.read_bytes() for p in (REPO_ROOT / "ml").glob("*") if p.is_file()} == tracked
