"""The DAGs' Kafka consumer against the real broker: offsets move only after a batch is done.

A topic of this session gets 10 messages; the consumer task reads them in batches of 3 and
its batch function fails on the second batch. While each batch is processed, the group's
committed offset (read from the broker by a separate client) must still be the end of the
previous batch; after the failure it must be 3, and the retry must process the failed batch
again and end at 10.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from canopywatch.airflow.kafka_commits import CommitAfterBatchOperator
from canopywatch.settings import Settings

pytestmark = pytest.mark.service


class Boom(RuntimeError):
    pass


@pytest.fixture
def broker() -> Settings:
    """Only the platform's Kafka is needed (started when not running)."""
    from canopywatch_dev.platform import stack

    base = Settings.from_env()
    stack.up(base, ["kafka"])
    return replace(base, topic_prefix=f"cwtest-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def topic(broker):
    from canopywatch_dev.platform import kafka

    name = broker.topic(f"commit-order-{uuid.uuid4().hex[:6]}")
    admin = kafka.admin_client(broker)
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": broker.kafka_bootstrap})
    for i in range(10):
        producer.produce(name, json.dumps({"n": i}).encode(), key=str(i).encode())
    assert producer.flush(30) == 0
    yield name
    admin.delete_topics([name], operation_timeout=30)


def test_failed_batch_is_not_committed_and_is_processed_again_on_retry(broker, topic, monkeypatch):
    group = f"cwtest-commits-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CWTEST_COMMITS",
        json.dumps(
            {
                "conn_type": "kafka",
                "extra": {
                    "bootstrap.servers": broker.kafka_bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                },
            }
        ),
    )
    observer = Consumer({"bootstrap.servers": broker.kafka_bootstrap, "group.id": group})

    def committed() -> int:
        (tp,) = observer.committed([TopicPartition(topic, 0)], timeout=10)
        return tp.offset  # -1001 (OFFSET_INVALID) before the first commit

    processed: list[int] = []
    seen_committed: list[tuple[int, int]] = []  # (first offset of the batch, committed then)
    fail_batch = {"at": 3}

    def apply(messages):
        offsets = [m.offset() for m in messages]
        seen_committed.append((offsets[0], committed()))
        if offsets[0] == fail_batch["at"]:
            fail_batch["at"] = None  # fails once: the retry succeeds
            raise Boom(f"batch at {offsets[0]} fails")
        processed.extend(offsets)

    def operator():
        return CommitAfterBatchOperator(
            task_id="consume",
            kafka_config_id="cwtest_commits",
            topics=[topic],
            apply_function_batch=apply,
            max_batch_size=3,
            poll_timeout=5,
        )

    with pytest.raises(Boom):
        operator().execute({})
    assert processed == [0, 1, 2]
    assert committed() == 3, "the failed batch's offsets must not be committed"
    # while batch N ran, the broker held exactly the end of batch N-1 (nothing ahead)
    assert seen_committed == [(0, -1001), (3, 3)]

    operator().execute({})  # the task retry
    assert processed == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "the failed batch is processed again"
    assert seen_committed[2:] == [(3, 3), (6, 6), (9, 9)]
    assert committed() == 10
    observer.close()
