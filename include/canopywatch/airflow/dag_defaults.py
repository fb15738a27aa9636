"""What every canopywatch DAG declares the same way: the start date, no catch-up, how many
runs at once, the owner, retries and (for the DAGs whose failures users hear about) the
subscriptions notifier. ``with DAG(dag_id=..., schedule=..., **dag_defaults(...))``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
OWNER = "canopywatch"


def dag_defaults(
    *,
    retries: int = 2,
    retry_delay: timedelta = timedelta(minutes=1),
    max_active_runs: int = 1,
    notify_subscribers: bool = False,
) -> dict[str, Any]:
    """``start_date``, ``catchup``, ``max_active_runs`` and ``default_args`` for ``DAG(...)``;
    ``notify_subscribers``: a task that fails for good tells the alert subscriptions
    (``canopywatch.airflow.notify.SubscriptionsNotifier``)."""
    default_args: dict[str, Any] = {"owner": OWNER, "retries": retries, "retry_delay": retry_delay}
    if notify_subscribers:
        from canopywatch.airflow.ids import POSTGIS_CONN
        from canopywatch.airflow.notify import SubscriptionsNotifier

        default_args["on_failure_callback"] = SubscriptionsNotifier(POSTGIS_CONN)
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": max_active_runs,
        "default_args": default_args,
    }
