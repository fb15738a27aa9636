"""One alert event to one subscription: signed, idempotent, retried, then dead-lettered.

Which events a subscription gets: ``low`` alerts when it asked for ``--min-status low``,
``high`` ones always (``alert.new``, or ``alert.confirmed`` after a delivered ``low``), and
``withdrawn`` / ``plantation_harvest`` updates when it asked for everything or was told of the
alert before. The idempotency key is ``<alert id>:<status>``: the delivery log holds one row
per subscription and key, locked while it is tried, so each (alert, status) reaches a
subscription at most once, and exactly once unless it is dead-lettered.

An attempt succeeds on a 2xx answer. 5xx, 408, 429, timeouts and connection errors are
retried after ``backoff * 2**(attempt-1)`` seconds (at most ``MAX_BACKOFF_S``), up to
``max_attempts``; another 4xx, a redirect or a target that is no longer allowed dead-letters
at once. Redirects are never followed (they could point inside the network). A dead letter
keeps the body it was sent with; ``canopywatch.subscriptions.redelivery`` sends it again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from canopywatch.messages import AlertPublished
from canopywatch.settings import Settings
from canopywatch.subscriptions.mail import SmtpConfig, message_for, send
from canopywatch.subscriptions.signing import (
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from canopywatch.subscriptions.store import Subscription
from canopywatch.subscriptions.targets import UnsafeTargetError, check_webhook_url

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
USER_AGENT = "canopywatch-webhooks/1"
RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 5
    timeout_s: float = 5.0
    backoff_s: float = 0.5
    allow_private: bool = False
    smtp: SmtpConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=max(1, settings.webhook_max_attempts),
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
            allow_private=settings.webhook_allow_private,
            smtp=SmtpConfig.from_settings(settings),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class AlertEvent:
    """The fields of an alert a subscriber is told."""

    alert_id: str
    aoi_id: str
    status: str
    alert_date: datetime
    confirmed_date: datetime | None
    confidence: float
    area_ha: float
    model_version: str
    geometry: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        return f"{self.alert_id}:{self.status}"

    @classmethod
    def from_message(cls, message: AlertPublished) -> AlertEvent:
        status = getattr(message, "status", None) or (
            "high" if message.confirmed_date is not None else "low"
        )
        return cls(
            alert_id=message.alert_id,
            aoi_id=message.aoi_id,
            status=str(status),
            alert_date=message.alert_date,
            confirmed_date=message.confirmed_date,
            confidence=message.confidence,
            area_ha=message.area_ha,
            model_version=message.model_version,
            geometry=message.geometry,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "aoi_id": self.aoi_id,
            "status": self.status,
            "alert_date": self.alert_date.isoformat(),
            "confirmed_date": self.confirmed_date.isoformat() if self.confirmed_date else None,
            "confidence": self.confidence,
            "area_ha": self.area_ha,
            "model_version": self.model_version,
            "geometry": self.geometry,
        }


def event_name(subscription: Subscription, status: str, delivered: set[str]) -> str | None:
    """The event this status change is for ``subscription`` (None: not for it)."""
    if status == "low":
        return "alert.new" if subscription.min_status == "low" else None
    if status == "high":
        return "alert.confirmed" if "low" in delivered else "alert.new"
    if status in {"withdrawn", "plantation_harvest"}:
        if subscription.min_status == "low" or delivered:
            return f"alert.{status}"
        return None
    log.warning("alert status %r is not one subscriptions know; not delivered", status)
    return None


def body_of(subscription: Subscription, event: str, alert: AlertEvent) -> bytes:
    document = {
        "event": event,
        "idempotency_key": alert.idempotency_key,
        "subscription_id": subscription.subscription_id,
        "aoi_id": alert.aoi_id,
        "alert": alert.as_dict(),
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retry: bool
    http_status: int | None
    error: str | None


def attempt_once(
    client: httpx.Client,
    subscription: Subscription,
    event: str,
    key: str,
    body: bytes,
    policy: DeliveryPolicy,
) -> Attempt:
    if subscription.channel == "email":
        if policy.smtp is None:
            return Attempt(False, False, None, "no SMTP server configured (CANOPYWATCH_SMTP_HOST)")
        message = message_for(policy.smtp, subscription.target, event, key, body,
                              sign(subscription.secret, body))  # fmt: skip
        ok, retry, error = send(policy.smtp, message, policy.timeout_s)
        return Attempt(ok, retry, None, error)
    try:
        check_webhook_url(subscription.target, allow_private=policy.allow_private)
    except UnsafeTargetError as exc:
        return Attempt(False, False, None, str(exc))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(subscription.secret, body),
        EVENT_HEADER: event,
        IDEMPOTENCY_HEADER: key,
    }
    try:
        response = client.post(
            subscription.target,
            content=body,
            headers=headers,
            timeout=policy.timeout_s,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return Attempt(False, True, None, f"timed out after {policy.timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Attempt(False, True, None, f"{type(exc).__name__}: {exc}"[:300])
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(True, False, code, None)
    retry = code >= 500 or code in RETRYABLE_4XX
    return Attempt(False, retry, code, f"HTTP {code}")


def deliver(
    conn: Any,
    client: httpx.Client,
    subscription: Subscription,
    alert: AlertEvent,
    policy: DeliveryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Deliver ``alert`` to ``subscription`` unless done before; the resulting state
    (``delivered``, ``dead_letter``, ``skipped``: not for this subscription, ``busy``: another
    consumer holds it)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status FROM subscription_deliveries "
            "WHERE subscription_id = %s AND alert_id = %s AND state = 'delivered'",
            (subscription.subscription_id, alert.alert_id),
        )
        delivered = {row[0] for row in cur.fetchall()}
    conn.commit()
    event = event_name(subscription, alert.status, delivered)
    if event is None:
        return "skipped"
    return deliver_event(
        conn, client, subscription, policy,
        key=alert.idempotency_key, ref_id=alert.alert_id, status=alert.status, event=event,
        body=body_of(subscription, event, alert), sleep=sleep,
    )  # fmt: skip


def deliver_event(
    conn: Any,
    client: httpx.Client,
    subscription: Subscription,
    policy: DeliveryPolicy,
    *,
    key: str,
    ref_id: str,
    status: str,
    event: str,
    body: bytes,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Deliver one signed ``body`` under idempotency ``key`` with retries, logged in
    ``subscription_deliveries`` (``ref_id``: the alert id, or the failed run)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO subscription_deliveries
                (subscription_id, idempotency_key, alert_id, status, event, state, body)
            VALUES (%s, %s, %s, %s, %s, 'pending', %s) ON CONFLICT DO NOTHING
            """,
            (subscription.subscription_id, key, ref_id, status, event, body),
        )
        conn.commit()
        cur.execute(
            "SELECT state, attempts FROM subscription_deliveries "
            "WHERE subscription_id = %s AND idempotency_key = %s FOR UPDATE SKIP LOCKED",
            (subscription.subscription_id, key),
        )
        row = cur.fetchone()
        if row is None:
            conn.commit()
            return "busy"
        state, attempts = str(row[0]), int(row[1])
        if state != "pending":
            conn.commit()
            return state
        final = "dead_letter"
        while attempts < policy.max_attempts:
            attempts += 1
            result = attempt_once(client, subscription, event, key, body, policy)
            cur.execute(
                """
                UPDATE subscription_deliveries SET attempts = %s, last_http_status = %s,
                    last_error = %s, updated_at = now(),
                    state = CASE WHEN %s THEN 'delivered' ELSE state END,
                    delivered_at = CASE WHEN %s THEN now() END
                WHERE subscription_id = %s AND idempotency_key = %s
                """,
                (attempts, result.http_status, result.error, result.ok, result.ok,
                 subscription.subscription_id, key),
            )  # fmt: skip
            if result.ok:
                final = "delivered"
                break
            log.info(
                "%s -> %s: attempt %d/%d failed (%s)", key, subscription.subscription_id,
                attempts, policy.max_attempts, result.error,
            )  # fmt: skip
            if not result.retry:
                break
            if attempts < policy.max_attempts:
                sleep(policy.delay(attempts))
        if final == "dead_letter":
            cur.execute(
                "UPDATE subscription_deliveries SET state = 'dead_letter', updated_at = now() "
                "WHERE subscription_id = %s AND idempotency_key = %s",
                (subscription.subscription_id, key),
            )
            log.warning(
                "%s -> %s dead-lettered after %d attempt(s)", key, subscription.subscription_id,
                attempts,
            )  # fmt: skip
    conn.commit()
    return final
