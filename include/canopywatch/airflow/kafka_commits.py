"""Kafka consumer offsets committed only after the batch they belong to was processed.

``ConsumeFromTopicOperator(commit_cadence="end_of_batch")`` calls ``consumer.commit()``
after each batch: an *asynchronous* commit of the consumer's current position. The
commit request is built on librdkafka's thread, so it can run after the next
``consume()`` has already advanced the position, and then it commits the offsets of
a batch that was never processed; when that batch fails, the retry skips it.

``BatchCommitConsumer`` wraps the consumer so that ``commit()`` commits exactly the
offsets of the batch the last ``consume()`` returned (last offset + 1 per partition),
synchronously, and raises when the broker refuses any of them.
``CommitAfterBatchOperator`` is the operator with that consumer; it is used for every
Kafka consumer task of the DAGs (download requests and the Kafka -> Delta writers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from confluent_kafka import KafkaException, TopicPartition

log = logging.getLogger(__name__)


class OffsetCommitError(RuntimeError):
    """The broker did not take a batch's offsets; the task fails and the batch is redelivered."""


class BatchCommitConsumer:
    """A consumer whose ``commit()`` synchronously commits the last consumed batch only."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._pending: dict[tuple[str, int], int] = {}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        messages: list[Any] = self._consumer.consume(num_messages=num_messages, timeout=timeout)
        pending = self._pending  # merged until commit() (end_of_operator commits once)
        for message in messages:
            if message.error() is not None:
                continue  # no position; the batch function raises on it
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None or offset < 0:
                continue
            pending[(topic, partition)] = max(offset, pending.get((topic, partition), -1))
        return messages

    def pending_offsets(self) -> list[TopicPartition]:
        """What ``commit()`` would commit: the next offset to read, per partition."""
        return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(self._pending.items())]

    def commit(self, *args: Any, **kwargs: Any) -> list[TopicPartition] | None:
        offsets = self.pending_offsets()
        if not offsets:
            return None
        try:
            committed: list[TopicPartition] = self._consumer.commit(
                offsets=offsets, asynchronous=False
            )
        except KafkaException as exc:
            raise OffsetCommitError(f"offset commit failed: {exc}") from exc
        refused = [tp for tp in committed or [] if tp.error is not None]
        if refused:
            raise OffsetCommitError(
                "offset commit refused for "
                + ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in refused)
            )
        log.info(
            "committed offsets %s",
            ", ".join(f"{tp.topic}[{tp.partition}]={tp.offset}" for tp in offsets),
        )
        self._pending = {}
        return committed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class _BatchCommitHook(KafkaConsumerHook):  # type: ignore[misc]
    def _get_client(self, config: dict[str, Any]) -> Any:
        # offsets move only through commit(); a connection asking for auto commits is overridden
        return super()._get_client({**config, "enable.auto.commit": False})

    def get_consumer(self) -> Any:
        return BatchCommitConsumer(super().get_consumer())


class CommitAfterBatchOperator(ConsumeFromTopicOperator):  # type: ignore[misc]
    """``ConsumeFromTopicOperator`` committing each batch's offsets synchronously after it."""

    def __init__(self, *, topics: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("commit_cadence", "end_of_batch")
        super().__init__(topics=topics, **kwargs)

    @cached_property
    def hook(self) -> KafkaConsumerHook:
        return _BatchCommitHook(topics=self.topics, kafka_config_id=self.kafka_config_id)
