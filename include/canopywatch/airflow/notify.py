"""``SubscriptionsNotifier``: a failed task tells the alert subscribers (Airflow notifier).

Used as ``on_failure_callback`` in the DAGs' ``default_args``, so it fires once a task has
failed for good (after its retries). It sends a signed ``pipeline.failed`` event with the
DAG, run, task, try number, the error's first line and the log URL to every active
subscription (``canopywatch.subscriptions.failures``), through the catalog connection
``postgres_conn_id``. A notification that cannot be sent is logged, never raised: it must
not hide the task's own failure.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseNotifier

from canopywatch.settings import Settings

log = logging.getLogger(__name__)


class SubscriptionsNotifier(BaseNotifier):
    template_fields = ("postgres_conn_id",)

    def __init__(self, postgres_conn_id: str = "postgis_default") -> None:
        super().__init__()
        self.postgres_conn_id = postgres_conn_id

    def notify(self, context: Any) -> None:
        import httpx

        from canopywatch.airflow.connections import postgis
        from canopywatch.subscriptions.delivery import DeliveryPolicy
        from canopywatch.subscriptions.failures import notify_failure

        failure = failure_of(context)
        try:
            policy = DeliveryPolicy.from_settings(Settings.from_env())
            with postgis(self.postgres_conn_id) as conn, httpx.Client() as client:
                outcomes = notify_failure(conn, client, failure, policy)
            log.info("failure of %s told to the subscriptions: %s", failure.key, dict(outcomes))
        except Exception as exc:  # the task's failure is what matters; log ours
            log.warning("could not notify the subscriptions of %s: %s", failure.key, exc)


def failure_of(context: Any) -> Any:
    """The ``RunFailure`` of an Airflow callback context."""
    from canopywatch.subscriptions.failures import RunFailure

    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    error = context.get("exception")
    first_line = str(error).strip().splitlines()[0] if error and str(error).strip() else ""
    return RunFailure(
        dag_id=str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "")),
        run_id=str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "")),
        task_id=str(getattr(ti, "task_id", "")),
        try_number=int(getattr(ti, "try_number", 0) or 0),
        error=f"{type(error).__name__}: {first_line}" if error else "failed",
        log_url=getattr(ti, "log_url", None),
    )


def deliver_from_airflow(
    settings: Settings, postgres_conn_id: str, kafka_conn_id: str
) -> dict[str, int]:
    """One pass of the alert subscriptions consumer with the Airflow connections."""
    from canopywatch.airflow.connections import kafka_bootstrap, postgis
    from canopywatch.subscriptions.consumer import run

    report = run(
        settings,
        once=True,
        connect_db=lambda: postgis(postgres_conn_id),
        bootstrap=kafka_bootstrap(kafka_conn_id),
    )
    return report.as_dict()
