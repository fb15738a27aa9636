"""Redelivery of dead letters: ``canopywatch subscriptions redeliver``.

A delivery that was dead-lettered (``canopywatch.subscriptions.delivery``: its attempts ran
out, or the target answered a final 4xx) is sent again with the body it was first signed
and sent with, so the receiver sees the same event, idempotency key and payload. Each
redelivery is a fresh round of the policy's attempts with the same exponential backoff;
the row goes back to ``pending`` first, so whoever else holds it is never doubled, and
``redeliveries`` counts the rounds. Deliveries of a removed subscription, and dead
letters from before bodies were kept, are reported and left as they are.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from canopywatch.subscriptions.delivery import DeliveryPolicy, deliver_event
from canopywatch.subscriptions.store import ensure_schema, get

log = logging.getLogger(__name__)


@dataclass
class RedeliveryReport:
    found: int = 0  # dead letters that matched
    outcomes: Counter[str] = field(default_factory=Counter)  # delivered / dead_letter / busy
    inactive: int = 0  # of a removed subscription: left as they are
    without_body: int = 0  # dead-lettered before bodies were kept: cannot be sent again

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "outcomes": dict(self.outcomes),
            "inactive": self.inactive,
            "without_body": self.without_body,
        }


_DEAD_LETTERS = """
SELECT d.subscription_id, d.idempotency_key, d.alert_id, d.status, d.event, d.body, s.active
FROM subscription_deliveries AS d JOIN subscriptions AS s USING (subscription_id)
WHERE d.state = 'dead_letter'
  AND (%(sub)s::text IS NULL OR d.subscription_id = %(sub)s)
  AND (%(key)s::text IS NULL OR d.idempotency_key = %(key)s)
ORDER BY d.updated_at, d.subscription_id, d.idempotency_key
"""


def redeliver(
    conn: Any,
    client: httpx.Client,
    policy: DeliveryPolicy,
    *,
    subscription_id: str | None = None,
    key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RedeliveryReport:
    """Send the matching dead letters again (all, one subscription's, or one key)."""
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(_DEAD_LETTERS, {"sub": subscription_id, "key": key})
        rows = cur.fetchall()
    conn.commit()
    report = RedeliveryReport(found=len(rows))
    for sub_id, idempotency_key, ref_id, status, event, body, active in rows:
        if not active:
            report.inactive += 1
            continue
        if body is None:
            report.without_body += 1
            continue
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE subscription_deliveries SET state = 'pending', attempts = 0, "
                "redeliveries = redeliveries + 1, updated_at = now() "
                "WHERE subscription_id = %s AND idempotency_key = %s AND state = 'dead_letter'",
                (sub_id, idempotency_key),
            )
            reopened = cur.rowcount
        conn.commit()
        if not reopened:  # another redelivery took it meanwhile
            report.outcomes["busy"] += 1
            continue
        outcome = deliver_event(
            conn, client, get(conn, sub_id), policy,
            key=idempotency_key, ref_id=ref_id, status=status, event=event,
            body=bytes(body), sleep=sleep,
        )  # fmt: skip
        report.outcomes[outcome] += 1
        log.info("%s -> %s redelivered: %s", idempotency_key, sub_id, outcome)
    return report
