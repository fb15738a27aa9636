"""The demo's sensor step: the demo stations' simulated year goes to Kafka through
``canopywatch sensors ingest`` (readings, then FIRMS hotspots), every row accepted.

The rest of the step is tested where it lives: the ``sensor_ingest`` DAG run
(tests/dags/test_sensor_ingest.py) and ``canopywatch sensors corroborate``
(test_corroboration.py)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from canopywatch.settings import Settings
from canopywatch_dev import demo
from tests.integration.conftest import topics_of_their_own

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def platform(platform: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    with topics_of_their_own(platform, f"demo{uuid.uuid4().hex[:4]}") as settings:
        monkeypatch.setenv("CANOPYWATCH_TOPIC_PREFIX", settings.topic_prefix)
        yield settings


def _on_topic(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "count"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for number in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def test_the_demo_ingests_a_year_of_its_stations_readings(
    platform: Settings, tmp_path: Path
) -> None:
    code, rows = demo.ingest_sensors(replace(platform, home=tmp_path))
    assert code == 0, rows
    ((label, text),) = rows
    folder = tmp_path / "demo-sensors"
    lines = (folder / "readings.jsonl").read_text().splitlines()
    fires = (folder / "firms.csv").read_text().splitlines()[1:]
    assert {json.loads(line)["kind"] for line in lines} == {
        "weather", "soil_moisture", "acoustic", "patrol_gps"
    }  # fmt: skip
    assert len(fires) > 0
    topic = platform.topic("sensor-readings")
    published = [int(n) for n in re.findall(rf"(\d+) reading\(s\) to {re.escape(topic)}", text)]
    assert published == [len(lines), len(fires)], text
    assert text.count("; 0 bad row(s)") == 2, text
    assert _on_topic(platform, topic) == len(lines) + len(fires)
    assert label == "sensor readings" and str(folder) in text
