"""The Airflow Asset that starts COG curation: new raw scenes recorded in Delta ``scenes_raw``.

``deforestation_monitor`` emits it (``outlets`` of ``record_scenes``); ``scene_curation``
is scheduled on it.
"""

from __future__ import annotations

from typing import Any

SCENES_RAW_ASSET_NAME = "canopywatch.lake.scenes_raw"


def scenes_raw_asset() -> Any:
    """``Asset("canopywatch.lake.scenes_raw")``: the deployment's raw scene table.

    Named without the bucket on purpose: Airflow keeps one active asset per name and
    URI, and a DAG parsed with another bucket (a test run next to a running platform)
    would otherwise deactivate the other's asset.
    """
    from airflow.sdk import Asset

    return Asset(name=SCENES_RAW_ASSET_NAME, group="canopywatch")
