"""Airflow UI links from canopywatch tasks to their outputs (the scenes in the MinIO console)."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink


class ScenesInMinio(BaseOperatorLink):
    """Opens the bucket's scene prefix in the MinIO console."""

    name = "Scenes in MinIO"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # imported here: plugins load into long-lived Airflow processes that fork task
        # processes, which would otherwise keep a stale copy of the library
        from canopywatch.settings import Settings

        settings = Settings.from_env()
        return f"http://127.0.0.1:{settings.minio_console_port}/browser/{settings.bucket}/sentinel_hub%2F"


class CanopywatchPlugin(AirflowPlugin):
    name = "canopywatch"
    global_operator_extra_links = [ScenesInMinio()]
