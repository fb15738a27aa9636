"""
### catalog_sync

Applies the Delta lake's new versions (`scenes_raw`, `scenes_cog`, `alerts`) to the
PostGIS catalog, incrementally; `rebuild=true` reloads every table from Delta. The
monitoring DAG runs the same sync after its lake writes; this one catches up on
writes made elsewhere (other DAGs, Spark jobs, manual loads).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from canopywatch.airflow.ids import POSTGIS_CONN, S3_CONN

with DAG(
    dag_id="catalog_sync",
    description="Delta lake -> PostGIS catalog, incrementally",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "canopywatch", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["canopywatch", "catalog", "postgis"],
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
