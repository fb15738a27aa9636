"""The PostGIS tables of subscriptions and their delivery log.

``subscriptions``: one row per (area, channel, target), the minimum status it wants and
its signing secret; removing one deactivates it and keeps its log. ``subscription_deliveries``:
one row per (subscription, idempotency key = ``<alert id>:<status>``) with its state
(``pending`` while being tried, ``delivered``, ``dead_letter`` after the last failed
attempt), the attempts made, the last HTTP status or error, the body as signed and sent
(for a redelivery) and how many times it was redelivered. The primary key makes a
delivery happen at most once per subscription and key, whoever consumes the topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canopywatch.messages import stable_id

DDL = """
CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id  text PRIMARY KEY,
    aoi_id           text NOT NULL,
    channel          text NOT NULL,
    target           text NOT NULL,
    min_status       text NOT NULL CHECK (min_status IN ('low', 'high')),
    secret           text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_aoi_idx ON subscriptions (aoi_id) WHERE active;
ALTER TABLE subscriptions DROP CONSTRAINT IF EXISTS subscriptions_channel_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_channel_check
    CHECK (channel IN ('webhook', 'email'));

CREATE TABLE IF NOT EXISTS subscription_deliveries (
    subscription_id  text NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    idempotency_key  text NOT NULL,
    alert_id         text NOT NULL,
    status           text NOT NULL,
    event            text NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead_letter')),
    attempts         integer NOT NULL DEFAULT 0,
    last_http_status integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (subscription_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS subscription_deliveries_state_idx
    ON subscription_deliveries (state, updated_at);
-- the signed body, kept so a dead letter can be redelivered as it was first sent
ALTER TABLE subscription_deliveries ADD COLUMN IF NOT EXISTS body bytea;
ALTER TABLE subscription_deliveries
    ADD COLUMN IF NOT EXISTS redeliveries integer NOT NULL DEFAULT 0;
"""
_DDL_LOCK = 0x63_77_73_62  # "cwsb"
MIN_STATUSES = ("low", "high")
CHANNELS = ("webhook", "email")
STATES = ("pending", "delivered", "dead_letter")
_AOI_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class UnknownAoiError(LookupError):
    """The subscription names an area that is not registered."""


class UnknownSubscriptionError(LookupError):
    """No active subscription has this id."""


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    aoi_id: str
    channel: str
    target: str
    min_status: str
    secret: str
    active: bool = True
    created_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The fields a listing shows (never the secret)."""
        return {
            "subscription_id": self.subscription_id,
            "aoi_id": self.aoi_id,
            "channel": self.channel,
            "target": self.target,
            "min_status": self.min_status,
            "active": self.active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    idempotency_key: str
    alert_id: str
    status: str
    event: str
    state: str
    attempts: int
    last_http_status: int | None
    last_error: str | None
    updated_at: datetime
    delivered_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "updated_at": self.updated_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }


def ensure_schema(conn: Any) -> None:
    from canopywatch.storage import aois

    aois.ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        cur.execute(DDL)
    conn.commit()


def check_min_status(value: str) -> str:
    if value not in MIN_STATUSES:
        raise ValueError(f"min status {value!r}: choose one of {', '.join(MIN_STATUSES)}")
    return value


def subscription_id_for(aoi_id: str, channel: str, target: str) -> str:
    return "sub-" + stable_id(aoi_id, channel, target, length=12)


def create(
    conn: Any, *, aoi_id: str, target: str, min_status: str, secret: str, channel: str = "webhook"
) -> Subscription:
    """Insert (or reactivate with the new settings and secret) a subscription of ``aoi_id``."""
    check_min_status(min_status)
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: choose one of {', '.join(CHANNELS)}")
    if not _AOI_ID.match(aoi_id):
        raise UnknownAoiError(f"area {aoi_id!r} is not registered (canopywatch aoi list)")
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM aois WHERE aoi_id = %s AND active", (aoi_id,))
        if cur.fetchone() is None:
            raise UnknownAoiError(
                f"area {aoi_id!r} is not registered (canopywatch aoi add --name {aoi_id} ...)"
            )
        subscription_id = subscription_id_for(aoi_id, channel, target)
        cur.execute(
            """
            INSERT INTO subscriptions (subscription_id, aoi_id, channel, target, min_status, secret)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (subscription_id) DO UPDATE SET min_status = EXCLUDED.min_status,
                secret = EXCLUDED.secret, active = true
            RETURNING created_at
            """,
            (subscription_id, aoi_id, channel, target, min_status, secret),
        )
        created_at = cur.fetchone()[0]
    conn.commit()
    return Subscription(
        subscription_id, aoi_id, channel, target, min_status, secret, True, created_at
    )


_COLUMNS = "subscription_id, aoi_id, channel, target, min_status, secret, active, created_at"


def list_subscriptions(
    conn: Any, *, aoi_id: str | None = None, include_inactive: bool = False
) -> list[Subscription]:
    ensure_schema(conn)
    where = ["(%(aoi)s::text IS NULL OR aoi_id = %(aoi)s)"]
    if not include_inactive:
        where.append("active")
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE {' AND '.join(where)} "
            "ORDER BY aoi_id, subscription_id",
            {"aoi": aoi_id},
        )
        rows = cur.fetchall()
    return [Subscription(*row) for row in rows]


def get(conn: Any, subscription_id: str) -> Subscription:
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE subscription_id = %s AND active",
            (subscription_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise UnknownSubscriptionError(f"no active subscription {subscription_id!r}")
    return Subscription(*row)


def remove(conn: Any, subscription_id: str) -> None:
    """Deactivate a subscription (its delivery log stays)."""
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE subscriptions SET active = false WHERE subscription_id = %s AND active",
            (subscription_id,),
        )
        changed = cur.rowcount
    conn.commit()
    if not changed:
        raise UnknownSubscriptionError(f"no active subscription {subscription_id!r}")


def deliveries(
    conn: Any,
    *,
    subscription_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    ensure_schema(conn)
    if state is not None and state not in STATES:
        raise ValueError(f"state {state!r}: choose one of {', '.join(STATES)}")
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT subscription_id, idempotency_key, alert_id, status, event, state, attempts,
                   last_http_status, last_error, updated_at, delivered_at
            FROM subscription_deliveries
            WHERE (%(sub)s::text IS NULL OR subscription_id = %(sub)s)
              AND (%(state)s::text IS NULL OR state = %(state)s)
            ORDER BY updated_at DESC, idempotency_key LIMIT %(limit)s
            """,
            {"sub": subscription_id, "state": state, "limit": limit},
        )
        rows = cur.fetchall()
    return [Delivery(*row) for row in rows]
