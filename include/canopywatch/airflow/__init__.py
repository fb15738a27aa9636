"""The Airflow glue: everything the DAG files use, and the only part of the product that
imports Airflow.

DAG files (``dags/``) import only from this package. Its modules resolve Airflow
connections and call the library (``download``, ``lake``, ``catalog``, ``cog``, ``detect``,
``export``); the library never imports this package (import contract in
``pyproject.toml``, see docs/architecture.md).

- ``ids``: every connection id, pool and Asset;
- ``connections``: clients built from those connections (object store, lake, PostGIS, Kafka,
  CDSE);
- ``payloads``: the typed task-to-task hand-offs (JSON in XCom);
- ``monitor``, ``weekly``, ``lake``, ``cog``, ``dbt`` (and ``reconcile``, ``budget``,
  ``streaming``, ``notify``): the steps of the DAGs;
- ``dag_config``: what DAG files need at parse time (settings, Param choices, ``form``);
- ``failures``, ``links``, ``kafka_commits``: fail-at-once wrappers, the plugin's UI link, the
  Kafka consumer that commits each batch's own offsets.

This package's ``__init__`` imports nothing, so importing ``canopywatch.airflow.ids`` at
DAG parse time stays cheap.
"""
