"""The Airflow Asset that starts COG curation: new raw scenes recorded in Delta ``scenes_raw``.

``deforestation_monitor`` emits it (``outlets`` of ``record_scenes``); ``scene_curation``
is scheduled on it. Both build it from the same settings, so the URI matches.
"""

from __future__ import annotations

from typing import Any

from canopywatch.settings import Settings

SCENES_RAW_ASSET_NAME = "canopywatch.lake.scenes_raw"


def scenes_raw_uri(settings: Settings) -> str:
    return f"s3://{settings.bucket}/lake/scenes_raw"


def scenes_raw_asset(settings: Settings) -> Any:
    """``Asset(name="canopywatch.lake.scenes_raw", uri="s3://<bucket>/lake/scenes_raw")``."""
    from airflow.sdk import Asset

    return Asset(name=SCENES_RAW_ASSET_NAME, uri=scenes_raw_uri(settings), group="canopywatch")
