"""Airflow UI links from canopywatch tasks to their outputs (the scenes in the MinIO console)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class ScenesInMinio(BaseOperatorLink):
    """Opens the bucket's scene prefix in the MinIO console."""

    name = "Scenes in MinIO"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # read when the link is asked for: plugins load into long-lived Airflow processes
        from canopywatch.settings import Settings

        settings = Settings.from_env()
        return f"http://127.0.0.1:{settings.minio_console_port}/browser/{settings.bucket}/sentinel_hub%2F"
