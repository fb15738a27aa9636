"""The monitoring DAG's Kafka consumer tasks, as the DAG file builds them, on a fake broker.

The tasks' own ``execute`` runs with the consumer the hook would create replaced by a fake one
whose messages can carry a ``KafkaError`` (a real ``confluent_kafka.Message``), and with the
lake on a local folder. A consumer error fails the task (its message in the log), nothing is
written or committed, and the retry, redelivered from the last committed offset, writes the
batch and commits exactly its offsets; an undelivered dead letter likewise commits nothing.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from canopywatch.lake.tables import SCENES_RAW, Lake, open_table
from canopywatch.settings import Settings
from tests.unit.test_lake_writer import FakeProducer, scene

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
TOPIC = Settings.from_env().topic("scenes-downloaded")


@dataclass
class FakeConsumer:
    """Hands out ``batches`` in order (then nothing); records what is committed."""

    batches: list[list[Any]]
    commits: list[list[tuple[str, int, int]]] = field(default_factory=list)
    closed: bool = False

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, *args: Any, **kwargs: Any) -> list[TopicPartition]:
        offsets = kwargs.get("offsets") or (args[0] if args else None)
        assert offsets is not None, "the whole position was committed, not the batch's offsets"
        assert kwargs.get("asynchronous") is False, "offsets must be committed synchronously"
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return [TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]

    def close(self) -> None:
        self.closed = True


def scene_message(n: int, offset: int) -> Message:
    return Message(topic=TOPIC, partition=0, offset=offset, value=scene(n).to_bytes(), key=b"k")


def error_message() -> Message:
    return Message(topic=TOPIC, partition=0, error=KafkaError(KafkaError._TRANSPORT))


@pytest.fixture(scope="module")
def monitor_dag(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))

    def no_network(*args, **kwargs):
        raise AssertionError("DAG parsing must not open network connections")

    mp.setattr(socket.socket, "connect", no_network)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS_DIR / "deforestation_monitor.py"))
    mp.undo()
    assert bag.import_errors == {}
    return bag.dags["deforestation_monitor"]


@pytest.fixture
def broker(monkeypatch, tmp_path):
    """Connections as env variables, the lake on a folder, fake consumer and DLQ producer."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    kafka = {"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "enable.auto.commit": False}
    for conn_id in ("kafka_default", "kafka_lake"):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": kafka})
        )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MINIO_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "k", "password": "s",
                    "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
    )  # fmt: skip
    lake = Lake.local(tmp_path / "lake")
    monkeypatch.setattr(Lake, "s3", classmethod(lambda cls, *a, **k: lake))
    state: dict[str, Any] = {"consumer": None, "dlq": FakeProducer()}
    monkeypatch.setattr(KafkaConsumerHook, "get_consumer", lambda self: state["consumer"])
    monkeypatch.setattr(KafkaProducerHook, "get_producer", lambda self: state["dlq"])
    state["lake"] = lake
    return state


def run_task(dag, task_id: str, consumer: FakeConsumer) -> None:
    task = dag.get_task(task_id)
    task.__dict__.pop("hook", None)  # a fresh hook per attempt, as in a new task process
    task.execute(context={})


def scene_ids(lake: Lake) -> list[str]:
    table = open_table(lake, SCENES_RAW)
    return sorted(table.to_pyarrow_table(columns=["scene_id"]).column(0).to_pylist())


def test_a_consumer_error_fails_record_scenes_commits_nothing_and_the_retry_writes_it(
    monitor_dag, broker
):
    task = monitor_dag.get_task("record_scenes")
    assert task.retries > 0  # the failed attempt is retried
    broker["consumer"] = first = FakeConsumer([[scene_message(0, 0), error_message()]])
    with pytest.raises(RuntimeError, match=r"Kafka consumer error: KafkaError\{code=_TRANSPORT"):
        run_task(monitor_dag, "record_scenes", first)
    assert first.commits == [] and first.closed
    assert scene_ids(broker["lake"]) == []  # the good message before the error is not written

    # the retry: nothing was committed, so the broker redelivers from offset 0
    broker["consumer"] = retry = FakeConsumer([[scene_message(0, 0), scene_message(1, 1)]])
    run_task(monitor_dag, "record_scenes", retry)
    assert scene_ids(broker["lake"]) == ["scene-00000", "scene-00001"]
    assert retry.commits == [[(TOPIC, 0, 2)]]  # exactly this batch, next offset to read


def test_an_undelivered_dead_letter_fails_record_scenes_and_commits_nothing(monitor_dag, broker):
    poison = Message(topic=TOPIC, partition=0, offset=0, value=b'{"scene_id": 1}', key=b"k")
    broker["dlq"] = FakeProducer(undeliverable=True)
    broker["consumer"] = first = FakeConsumer([[poison, scene_message(1, 1)]])
    with pytest.raises(RuntimeError, match="not delivered to the DLQ"):
        run_task(monitor_dag, "record_scenes", first)
    assert first.commits == [] and scene_ids(broker["lake"]) == []

    broker["dlq"] = dlq = FakeProducer()
    broker["consumer"] = retry = FakeConsumer([[poison, scene_message(1, 1)]])
    run_task(monitor_dag, "record_scenes", retry)
    assert [topic for topic, _ in dlq.sent] == [f"{TOPIC}.dlq"]
    assert scene_ids(broker["lake"]) == ["scene-00001"]
    assert retry.commits == [[(TOPIC, 0, 2)]]


def test_a_consumer_error_fails_download_scenes_before_any_download_or_commit(
    monitor_dag, broker, monkeypatch
):
    from tests.unit.test_transport import Producer, request_json

    task = monitor_dag.get_task("download_scenes")
    assert task.retries > 0
    request_topic = Settings.from_env().topic("download-requests")
    good = Message(topic=request_topic, partition=0, offset=0, value=request_json("r1"))
    failed = Message(topic=request_topic, partition=0, error=KafkaError(KafkaError._TRANSPORT))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CDSE_DEFAULT",
        json.dumps({"conn_type": "generic", "login": "id", "password": "secret",
                    "extra": {"sh_base_url": "http://127.0.0.1:9",
                              "sh_token_url": "http://127.0.0.1:9/token"}}),
    )  # fmt: skip
    broker["dlq"] = producer = Producer()
    broker["consumer"] = consumer = FakeConsumer([[good, failed]])
    with pytest.raises(RuntimeError, match=r"Kafka consumer error: KafkaError\{code=_TRANSPORT"):
        run_task(monitor_dag, "download_scenes", consumer)
    assert consumer.commits == [] and consumer.closed
    # nothing announced or dead-lettered; a fetch would have failed first on the dead
    # endpoints (CDSE and MinIO at port 9) with another error
    assert producer.sent == []
