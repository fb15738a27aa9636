"""
### catalog_sync

Applies the Delta lake's new versions (`scenes_raw`, `scenes_cog`, `alerts`) to the
PostGIS catalog, incrementally; `rebuild=true` reloads every table from Delta. The
monitoring DAG runs the same sync after its lake writes; this one catches up on
writes made elsewhere (other DAGs, Spark jobs, manual loads).
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, get_current_context, task

from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.ids import POSTGIS_CONN, S3_CONN

with DAG(
    dag_id="catalog_sync",
    description="Delta lake -> PostGIS catalog, incrementally",
    doc_md=__doc__,
    schedule="@hourly",
    tags=["canopywatch", "catalog", "postgis"],
    **dag_defaults(retries=2),
    params={
        "rebuild": Param(
            False,
            type="boolean",
            title="Rebuild PostGIS from Delta",
            description="off: apply only the Delta changes since the last sync (fast); on: "
            "reload every PostGIS catalog table from the Delta tables (same result, slower)",
        )
    },
) as dag:

    @task
    def sync() -> str:
        from canopywatch.airflow.lake import sync_from_airflow

        rebuild = bool(get_current_context()["params"]["rebuild"])
        return sync_from_airflow(
            aws_conn_id=S3_CONN, postgres_conn_id=POSTGIS_CONN, rebuild=rebuild
        ).to_json()

    sync()
