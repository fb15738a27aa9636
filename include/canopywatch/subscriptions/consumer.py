"""``canopywatch.alerts`` -> webhook deliveries.

``deliver_messages`` is the library function: each consumed ``AlertPublished`` is
delivered to every active subscription of its area (``delivery.deliver``; the delivery
log makes a replay deliver nothing twice); a message that is not a valid alert is logged
and skipped. ``run`` is the process around it: a Kafka consumer in its own group
(``canopywatch-subscriptions``) that polls, delivers and then commits the batch's offsets,
either until the topic is drained (``once``, what the ``alert_subscriptions`` DAG runs) or
for ever (``canopywatch subscriptions deliver --follow``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from canopywatch.messages import AlertPublished, MessageError
from canopywatch.settings import Settings
from canopywatch.subscriptions import store
from canopywatch.subscriptions.delivery import AlertEvent, DeliveryPolicy, deliver
from canopywatch.transport import KafkaMessage

log = logging.getLogger(__name__)

CONSUMER_GROUP = "canopywatch-subscriptions"
POLL_TIMEOUT_S = 2.0
BATCH_SIZE = 200


@dataclass
class DeliveryReport:
    messages: int = 0
    invalid: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, other: DeliveryReport) -> None:
        self.messages += other.messages
        self.invalid += other.invalid
        self.outcomes.update(other.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "invalid": self.invalid, **dict(self.outcomes)}


def deliver_messages(
    conn: Any,
    client: httpx.Client,
    messages: Iterable[KafkaMessage],
    policy: DeliveryPolicy,
) -> DeliveryReport:
    report = DeliveryReport()
    store.ensure_schema(conn)
    by_aoi: dict[str, list[store.Subscription]] = {}
    for message in messages:
        if message.error():
            raise RuntimeError(f"Kafka error: {message.error()}")
        report.messages += 1
        try:
            alert = AlertEvent.from_message(AlertPublished.from_json(message.value()))
        except MessageError as exc:
            report.invalid += 1
            log.warning("offset %s: not an alert, skipped: %s", message.offset(), exc)
            continue
        if alert.aoi_id not in by_aoi:
            by_aoi[alert.aoi_id] = store.list_subscriptions(conn, aoi_id=alert.aoi_id)
        for subscription in by_aoi[alert.aoi_id]:
            report.outcomes[deliver(conn, client, subscription, alert, policy)] += 1
    return report


def run(
    settings: Settings,
    *,
    once: bool = True,
    max_messages: int | None = None,
    group: str = CONSUMER_GROUP,
    connect_db: Callable[[], Any] | None = None,
    bootstrap: str | None = None,
) -> DeliveryReport:
    """Consume ``<prefix>.alerts`` and deliver; offsets are committed after each batch.
    ``connect_db`` / ``bootstrap`` (the Airflow connections in a DAG) default to the settings'."""
    from confluent_kafka import Consumer

    from canopywatch.catalog.schema import connect

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap or settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 0,  # a broker that is down is reported once, not logged per retry
        }
    )
    topic = settings.topic("alerts")
    consumer.subscribe([topic])
    total = DeliveryReport()
    policy = DeliveryPolicy.from_settings(settings)
    idle_polls = 0
    try:
        opened = connect_db() if connect_db is not None else connect(settings)
        with opened as conn, httpx.Client() as client:
            while max_messages is None or total.messages < max_messages:
                batch = consumer.consume(BATCH_SIZE, timeout=POLL_TIMEOUT_S)
                if not batch:
                    idle_polls += 1
                    # the first polls may return nothing while the group is being joined
                    if once and idle_polls >= 3:
                        break
                    continue
                idle_polls = 0
                total.add(deliver_messages(conn, client, batch, policy))
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    log.info("%s: %s", topic, total.as_dict())
    return total
