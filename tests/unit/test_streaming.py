"""The streaming job's submission and the sensor tables' definitions agree where they must."""

from __future__ import annotations

import re
from dataclasses import replace

from canopywatch.sensors.catalog import COLUMNS
from canopywatch.settings import REPO_ROOT, Settings
from canopywatch.streaming.jobs import SENSOR_SCHEMA, STREAMS
from canopywatch.streaming.submit import stream_arguments, stream_conf


def test_dbt_source_table_is_the_sync_table() -> None:
    macro = (REPO_ROOT / "dbt" / "macros" / "sensor_source.sql").read_text()
    body = macro[macro.index("sensor_readings (") :]
    names = re.findall(r"^\s{4}([a-z_]+) ", body, flags=re.MULTILINE)
    assert [n for n in names if n not in ("geom", "primary")] == [name for name, _ in COLUMNS]


def test_every_message_field_reaches_sensor_raw_and_postgis() -> None:
    from canopywatch.messages import SensorReading

    spark_fields = {part.split()[0] for part in SENSOR_SCHEMA.replace("\n", " ").split(",")}
    message_fields = set(SensorReading.model_fields)
    assert message_fields == spark_fields
    assert message_fields - {"schema_version", "message_type"} <= {name for name, _ in COLUMNS}


def test_stream_arguments_and_conf_carry_no_secret() -> None:
    settings = replace(
        Settings(), bucket="lake-b", topic_prefix="cw", s3_access_key="AK", s3_secret_key="SK"
    )
    args = stream_arguments(settings, bootstrap="k:9092", tables=["sensor_raw"])
    assert args == [
        "--lake", "s3a://lake-b/lake", "--checkpoints", "s3a://lake-b/checkpoints/streams",
        "--kafka-bootstrap", "k:9092", "--topic-prefix", "cw", "--tables", "sensor_raw",
    ]  # fmt: skip
    conf = stream_conf("http://127.0.0.1:19000", "us-east-1")
    text = " ".join([*args, *conf.keys(), *conf.values()])
    assert "AK" not in text.split() and "SK" not in text
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:19000"
    assert set(STREAMS) == {"sensor_raw", "satellite_raw"}
    assert STREAMS["satellite_raw"].watermark_on_arrival
    assert not STREAMS["sensor_raw"].watermark_on_arrival
