"""Airflow UI links from canopywatch tasks to their outputs (the scenes in the MinIO console)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from canopywatch.airflow.links import ScenesInMinio


class CanopywatchPlugin(AirflowPlugin):
    name = "canopywatch"
    global_operator_extra_links = [ScenesInMinio()]
