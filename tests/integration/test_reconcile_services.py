"""Reconcile on the real services: scenes in MinIO whose announcements never reached Kafka
are announced again by the next run, land in Delta (on MinIO) once, and a third run adds
nothing. Topic, lake prefix and bucket belong to this test session only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, lake_from_settings, open_table
from canopywatch.reconcile import reconcile_scenes
from canopywatch.settings import Settings
from canopywatch.storage.objects import ObjectStore
from tests.integration.conftest import bucket_of_its_own
from tests.unit.test_reconcile import fetch, planned

pytestmark = pytest.mark.service


def consume_all(settings, topic: str, group: str, expected: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list = []
    for _ in range(30):
        messages.extend(m for m in consumer.consume(50, timeout=1) if m.error() is None)
        if len(messages) >= expected:
            break
    if messages:
        consumer.commit(asynchronous=False)
    consumer.close()
    return messages


@pytest.fixture(scope="module")
def platform(platform: Settings) -> Iterator[Settings]:
    """The session's services with a bucket of this module's own: the scenes it stores
    are not the session's downloads (the curation DAG would convert them)."""
    with bucket_of_its_own(platform, "reconcile") as settings:
        yield settings


def test_lost_announcements_are_repaired_by_the_next_run_without_duplicates(platform):
    from canopywatch.download import download_scene
    from canopywatch_dev.platform import kafka, minio

    settings = platform
    topic = settings.topic(f"reconcile-{uuid.uuid4().hex[:6]}")
    admin = kafka.admin_client(settings)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    group = f"cwtest-reconcile-{uuid.uuid4().hex[:6]}"
    store = ObjectStore(minio.s3_client(settings), settings.bucket)
    lake = lake_from_settings(settings, prefix=f"lake-reconcile-{uuid.uuid4().hex[:6]}")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    dlq = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        # run 1 stores 4 scenes; 2 announcements are lost (never delivered to Kafka)
        announced = [download_scene(r, fetch, store).message for r in planned("run-1")]
        for message in announced[:2]:
            producer.produce(topic, message.to_bytes(), key=message.key.encode())
        assert producer.flush(30) == 0
        write_scene_batch(consume_all(settings, topic, group, 2), lake=lake, dlq=dlq)
        assert open_table(lake, SCENES_RAW).to_pyarrow_table().num_rows == 2

        # run 2: the scenes are stored, so nothing is downloaded or announced by the
        # download step; reconcile announces exactly the two missing ones
        outcome = reconcile_scenes(planned("run-2"), store, lake, producer, topic, run_id="run-2")
        assert (outcome.in_lake, len(outcome.announced)) == (2, 2)
        # ... and the lost originals turn up late as well
        for message in announced[2:]:
            producer.produce(topic, message.to_bytes(), key=message.key.encode())
        assert producer.flush(30) == 0
        write_scene_batch(consume_all(settings, topic, group, 4), lake=lake, dlq=dlq)
        ids = open_table(lake, SCENES_RAW).to_pyarrow_table().column("scene_id").to_pylist()
        assert sorted(ids) == sorted(m.scene_id for m in announced)  # 4 rows, none twice

        # run 3 repairs nothing
        outcome = reconcile_scenes(planned("run-3"), store, lake, producer, topic, run_id="run-3")
        assert (outcome.in_lake, outcome.announced) == (4, ())
    finally:
        admin.delete_topics([topic], operation_timeout=30)
