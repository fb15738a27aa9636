"""
### alert_subscriptions

Delivers new, confirmed and withdrawn alerts to the subscribed webhooks
(`canopywatch subscribe --aoi NAME --webhook URL`): consumes `canopywatch.alerts` in its own
consumer group until the topic is drained, signs each delivery (HMAC-SHA256,
`X-Canopywatch-Signature`), retries with exponential backoff, dead-letters after
`CANOPYWATCH_WEBHOOK_MAX_ATTEMPTS` failures and logs every delivery in PostGIS
(`canopywatch subscriptions deliveries`). Each (alert, status) reaches a subscription once,
however often the topic is replayed. Runs every 15 minutes; the same loop runs for ever with
`canopywatch subscriptions deliver --follow`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from canopywatch.airflow.dag_config import SETTINGS
from canopywatch.airflow.dag_defaults import dag_defaults
from canopywatch.airflow.ids import KAFKA_PRODUCER_CONN, POSTGIS_CONN

with DAG(
    dag_id="alert_subscriptions",
    description="canopywatch.alerts -> subscribed webhooks (signed, retried, logged)",
    doc_md=__doc__,
    schedule=timedelta(minutes=15),
    tags=["canopywatch", "alerts", "subscriptions"],
    **dag_defaults(retries=2, notify_subscribers=True),
) as dag:

    @task
    def deliver() -> dict[str, int]:
        from canopywatch.airflow.notify import deliver_from_airflow

        return deliver_from_airflow(SETTINGS, POSTGIS_CONN, KAFKA_PRODUCER_CONN)

    deliver()
