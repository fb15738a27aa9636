"""Airflow UI links from canopywatch tasks to their outputs (the scenes in the MinIO console).

"Scenes in MinIO" shows only on the tasks that store or check scenes (``download_scenes``
and ``summarize`` of ``deforestation_monitor``) and opens the run's own prefix: the common
prefix of the keys ``summarize`` found stored (e.g. ``sentinel_hub/s2l2a_bands/6vjyv/``),
or the scene root while the run has not got that far. Every other task gets no link
(an empty URL: the UI leaves it out).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

SCENE_TASKS = frozenset({"download_scenes", "summarize"})
SUMMARY_TASK = "summarize"
SCENE_ROOT = "sentinel_hub/"


def scene_prefix(keys: Sequence[str]) -> str:
    """The deepest folder holding every key (``SCENE_ROOT`` when there are none)."""
    if not keys:
        return SCENE_ROOT
    common = posixpath.commonprefix(list(keys))
    folder = common[: common.rfind("/") + 1] if "/" in common else ""
    return folder or SCENE_ROOT


def console_url(console_port: int, bucket: str, prefix: str) -> str:
    return f"http://127.0.0.1:{console_port}/browser/{bucket}/{quote(prefix, safe='')}"


def _stored_keys(ti_key: Any) -> list[str]:
    """The keys ``summarize`` of the same run returned (none before it ran)."""
    from airflow.sdk.execution_time.xcom import XCom

    summary_key = ti_key._replace(task_id=SUMMARY_TASK, map_index=-1)
    value = XCom.get_value(ti_key=summary_key, key="return_value")
    if isinstance(value, str):
        value = json.loads(value)
    return list((value or {}).get("keys") or []) if isinstance(value, dict) else []


class ScenesInMinio(BaseOperatorLink):
    """Opens the run's scene prefix in the MinIO console, on the scene tasks only."""

    name = "Scenes in MinIO"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # read when the link is asked for: plugins load into long-lived Airflow processes
        from canopywatch.settings import Settings

        if getattr(ti_key, "task_id", None) not in SCENE_TASKS:
            return ""
        settings = Settings.from_env()
        try:
            keys = _stored_keys(ti_key)
        except Exception:  # no XCom yet, or the metadata database unreachable: the root
            keys = []
        return console_url(settings.minio_console_port, settings.bucket, scene_prefix(keys))
