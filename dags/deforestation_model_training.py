"""
### deforestation_model_training

Retrains the change-detection model on demand: `dvc repro` of `ml/dvc.yaml`
(simulate -> features -> train -> evaluate) with `ml/params.yaml`. The trained model
and its card land in `ml/models/`; `deforestation_detect_weekly` uses it from its next
run on. Metrics are in `ml/metrics.json` (`dvc metrics show`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from canopywatch.airflow.dag_config import ML_DIR
from canopywatch.airflow.dag_defaults import dag_defaults

with DAG(
    dag_id="deforestation_model_training",
    description="Retrain the XGBoost change-detection model (dvc repro)",
    doc_md=__doc__,
    schedule=None,
    tags=["canopywatch", "detection", "training", "dvc"],
    **dag_defaults(retries=1),
) as dag:
    BashOperator(
        task_id="dvc_repro",
        bash_command="dvc repro && dvc metrics show",
        cwd=str(ML_DIR),
        execution_timeout=timedelta(hours=2),
    )
