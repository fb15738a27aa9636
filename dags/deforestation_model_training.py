"""
### deforestation_model_training

Retrains the change-detection model on demand: `dvc repro` of `ml/dvc.yaml`
(simulate -> features -> train -> evaluate) with `ml/params.yaml`. The trained model
and its card land in `ml/models/`; `deforestation_detect_weekly` uses it from its next
run on. Metrics are in `ml/metrics.json` (`dvc metrics show`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from canopywatch.airflow.dag_config import ML_DIR

with DAG(
    dag_id="deforestation_model_training",
    description="Retrain the XGBoost change-detection model (dvc repro)",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "canopywatch", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["canopywatch", "detection", "training", "dvc"],
) as dag:
    BashOperator(
        task_id="dvc_repro",
        bash_command="dvc repro && dvc metrics show",
        cwd=str(ML_DIR),
        execution_timeout=timedelta(hours=2),
    )
