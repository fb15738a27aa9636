"""BatchCommitConsumer: commit() commits exactly the last processed batch, synchronously."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError, KafkaException

from canopywatch.airflow.kafka_commits import (
    BatchCommitConsumer,
    CommitAfterBatchOperator,
    OffsetCommitError,
)


class Message:
    def __init__(self, partition, offset, error=None, topic="t"):
        self._partition, self._offset, self._error, self._topic = partition, offset, error, topic

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def error(self):
        return self._error


@dataclass
class Committed:
    """What the real commit() returns per partition (TopicPartition.error is read-only)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None


class Consumer:
    """A fake confluent consumer: hands out batches, records commits and their mode."""

    def __init__(self, batches, refuse=None, raise_on_commit=False):
        self.batches = list(batches)
        self.commits = []
        self.refuse = refuse
        self.raise_on_commit = raise_on_commit
        self.closed = False

    def consume(self, num_messages=1, timeout=-1):
        return self.batches.pop(0) if self.batches else []

    def commit(self, message=None, offsets=None, asynchronous=True):
        if self.raise_on_commit:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        self.commits.append(([(tp.topic, tp.partition, tp.offset) for tp in offsets], asynchronous))
        error = None if self.refuse is None else KafkaError(self.refuse)
        return [Committed(tp.topic, tp.partition, tp.offset, error) for tp in offsets]

    def close(self):
        self.closed = True


def test_commit_covers_only_the_batch_just_consumed_and_is_synchronous():
    raw = Consumer([[Message(0, 0), Message(1, 0), Message(0, 1)], [Message(0, 2)]])
    consumer = BatchCommitConsumer(raw)
    consumer.consume(num_messages=3)
    consumer.commit()
    consumer.consume(num_messages=3)
    consumer.commit()
    assert raw.commits == [
        ([("t", 0, 2), ("t", 1, 1)], False),
        ([("t", 0, 3)], False),
    ]


def test_a_batch_that_fails_is_never_committed():
    """The operator commits only after the batch function returned; a failure commits nothing."""
    raw = Consumer([[Message(0, 0), Message(0, 1)], [Message(0, 2), Message(0, 3)]])
    consumer = BatchCommitConsumer(raw)
    consumer.consume(num_messages=2)
    consumer.commit()
    consumer.consume(num_messages=2)  # this batch's function raises: no commit() call
    consumer.close()
    assert raw.commits == [([("t", 0, 2)], False)]
    assert raw.closed


def test_nothing_to_commit_after_an_empty_poll():
    raw = Consumer([[Message(0, 5)], []])
    consumer = BatchCommitConsumer(raw)
    consumer.consume()
    consumer.commit()
    consumer.consume()  # end of log
    assert consumer.commit() is None
    assert raw.commits == [([("t", 0, 6)], False)]


def test_messages_carrying_errors_have_no_position():
    raw = Consumer(
        [[Message(0, -1001, error=KafkaError(KafkaError._PARTITION_EOF)), Message(0, 4)]]
    )
    consumer = BatchCommitConsumer(raw)
    consumer.consume()
    assert [(tp.partition, tp.offset) for tp in consumer.pending_offsets()] == [(0, 5)]


def test_batches_accumulate_until_commit_for_end_of_operator():
    raw = Consumer([[Message(0, 0)], [Message(0, 1), Message(1, 7)]])
    consumer = BatchCommitConsumer(raw)
    consumer.consume()
    consumer.consume()
    consumer.commit()
    assert raw.commits == [([("t", 0, 2), ("t", 1, 8)], False)]


def test_a_refused_commit_fails_the_task_and_keeps_the_offsets_pending():
    raw = Consumer([[Message(0, 0)]], refuse=KafkaError.REBALANCE_IN_PROGRESS)
    consumer = BatchCommitConsumer(raw)
    consumer.consume()
    with pytest.raises(OffsetCommitError, match=r"t\[0\]"):
        consumer.commit()
    assert [tp.offset for tp in consumer.pending_offsets()] == [1]


def test_a_broker_error_on_commit_fails_the_task():
    consumer = BatchCommitConsumer(Consumer([[Message(0, 0)]], raise_on_commit=True))
    consumer.consume()
    with pytest.raises(OffsetCommitError, match="offset commit failed"):
        consumer.commit()


def test_operator_defaults_to_committing_after_each_batch():
    operator = CommitAfterBatchOperator(
        task_id="consume", topics=["t"], apply_function_batch=lambda messages: None
    )
    assert operator.commit_cadence == "end_of_batch"
    assert type(operator.hook).__name__ == "_BatchCommitHook"
