"""Deforestation detection: observations, indices, the statistical baseline, features,
the XGBoost model, alert rules, user labels, evaluation and the ``detect``/``evaluate``
commands. No Airflow imports here: DAG tasks call these functions."""
