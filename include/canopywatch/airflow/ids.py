"""Every Airflow connection id, pool and Asset the DAGs and their steps use: the one place to
change them.

The local platform (``canopywatch_dev.platform``) creates connections under these ids
(``AIRFLOW_CONN_*``); a deployment that brings its own services creates the same ids.
Importing this module imports no Airflow (the Asset is built on first use), so the dev kit
and tests can read the ids cheaply.
"""

from __future__ import annotations

from typing import Any

# connections
CDSE_CONN = "cdse_default"  # generic: login = OAuth client id, password = secret, extra URLs
KAFKA_CONN = "kafka_default"  # the downloader's consumer group (consumer settings)
KAFKA_LAKE_CONN = "kafka_lake"  # the lake writers' own consumer group
# every producer: bootstrap and producer settings only, so no producer warns (at ERROR, on
# stderr) about the consumer-only group.id / enable.auto.commit / auto.offset.reset
KAFKA_PRODUCER_CONN = "kafka_producer"
S3_CONN = "minio_default"  # aws: MinIO or any S3 (raw scenes, COGs, exports, Delta tables)
POSTGIS_CONN = "postgis_default"  # postgres: the catalog (its writer)
POSTGIS_DBT_CONN = "postgis_dbt"  # postgres: the catalog as dbt's role (Cosmos' profile)
SPARK_CONN = "spark_default"  # spark: local[*] or a cluster

CONNECTIONS: tuple[str, ...] = (
    CDSE_CONN,
    KAFKA_CONN,
    KAFKA_LAKE_CONN,
    KAFKA_PRODUCER_CONN,
    S3_CONN,
    POSTGIS_CONN,
    POSTGIS_DBT_CONN,
    SPARK_CONN,
)

# pools
CDSE_POOL = "cdse_api"  # concurrent requests to the Copernicus Data Space APIs
CDSE_POOL_SLOTS = 4

# assets
SCENES_RAW_ASSET_NAME = "canopywatch.lake.scenes_raw"

# The deployment's Delta ``scenes_raw``: ``record_scenes`` of ``deforestation_monitor``
# updates it, ``scene_curation`` is scheduled on it. Named without the bucket on purpose:
# Airflow keeps one active asset per name and URI, and a DAG parsed with another bucket (a
# test run next to a running platform) would otherwise deactivate the other's asset.
# ``SCENES_RAW``: ``Asset(name=SCENES_RAW_ASSET_NAME, group="canopywatch")``, built on first use.
_ASSETS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    if name == "SCENES_RAW":
        if name not in _ASSETS:
            from airflow.sdk import Asset

            _ASSETS[name] = Asset(name=SCENES_RAW_ASSET_NAME, group="canopywatch")
        return _ASSETS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
