"""A failed pipeline run, told to every subscription: the same channels as the alerts.

``notify_failure`` sends one ``pipeline.failed`` event per active subscription, signed and
retried like an alert (``delivery.deliver_event``), logged under the idempotency key
``<dag id>:<run id>:<task id>:<try>`` so a callback that fires twice notifies once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from canopywatch.subscriptions import store
from canopywatch.subscriptions.delivery import DeliveryPolicy, deliver_event

EVENT = "pipeline.failed"
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class RunFailure:
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    error: str
    log_url: str | None = None

    @property
    def key(self) -> str:
        return f"{self.dag_id}:{self.run_id}:{self.task_id}:{self.try_number}"


def notify_failure(
    conn: Any, client: httpx.Client, failure: RunFailure, policy: DeliveryPolicy
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for subscription in store.list_subscriptions(conn):
        document = {
            "event": EVENT,
            "idempotency_key": failure.key,
            "subscription_id": subscription.subscription_id,
            "aoi_id": subscription.aoi_id,
            "failure": {**asdict(failure), "error": failure.error[:MAX_ERROR_CHARS]},
            "sent_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        state = deliver_event(
            conn,
            client,
            subscription,
            policy,
            key=failure.key,
            ref_id=f"{failure.dag_id}:{failure.run_id}",
            status="failed",
            event=EVENT,
            body=body,
        )
        outcomes[state] += 1
    return outcomes
