"""The cluster profile: the same DAGs and library on distributed engines, on loopback.

``python -m canopywatch_dev.platform.cluster up|down|status [SERVICE ...]`` (``make
platform-up PROFILE=cluster``) starts, under its own home (``.platform/cluster``) and on
ports of its own (``29000``-``29600`` by default, see :mod:`.profile`):

* ``postgres``  PostgreSQL/PostGIS (the local profile's module, another data directory)
* ``redis``     Debian's ``redis-server``, the Celery broker (password in ``secrets/``)
* ``kafka``     3 brokers in KRaft mode (each broker+controller), replication factor 3,
  ``min.insync.replicas`` 2, unclean leader election off
* ``minio``     one distributed-mode server over 4 drives (erasure coding)
* ``spark``     Spark standalone from the pyspark distribution: a master and 2 workers
* ``emulator``  the local CDSE endpoint
* ``airflow``   api-server, scheduler, dag-processor, triggerer and 2 Celery workers
  (CeleryExecutor)

Only connections and settings differ from the local profile (``CANOPYWATCH_*`` variables
and ``AIRFLOW_CONN_*``); the product code is the same.
"""

from __future__ import annotations

# start order; ``up`` also starts what a service depends on (see .stack)
SERVICES: tuple[str, ...] = ("postgres", "redis", "kafka", "minio", "spark", "emulator", "airflow")

__all__ = ["SERVICES"]
