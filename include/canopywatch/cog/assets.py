"""The Airflow Asset that starts COG curation: new raw scenes recorded in Delta ``scenes_raw``.

``deforestation_monitor`` emits it (``outlets`` of ``record_scenes``); ``scene_curation``
is scheduled on it. Both build it from the same settings, so the URI matches.
"""

from __future__ import annotations

from typing import Any

from canopywatch.settings import Settings


def scenes_raw_uri(settings: Settings) -> str:
    return f"s3://{settings.bucket}/lake/scenes_raw"


def scenes_raw_asset(settings: Settings) -> Any:
    """``Asset("s3://<bucket>/lake/scenes_raw")``, named by its URI.

    Airflow keeps one active asset per name, so a name shared by two buckets (a test
    bucket and the platform's) would deactivate one of them.
    """
    from airflow.sdk import Asset

    uri = scenes_raw_uri(settings)
    return Asset(name=uri, uri=uri, group="canopywatch")
