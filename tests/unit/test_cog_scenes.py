"""One scene at a time against an in-memory object store; the job's pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canopywatch.cog.convert import validate
from canopywatch.cog.job import JobReport, partition_count, publish, table_uri
from canopywatch.cog.scenes import (
    CONVERTED,
    FAILED,
    SKIPPED,
    RawScene,
    SceneConversion,
    cog_key_for,
    convert_scene,
)
from canopywatch.cog.submit import job_arguments, spark_conf, submit_environment
from canopywatch.geo import BBox
from canopywatch.layout import SceneKey
from canopywatch.storage.objects import ObjectStore
from canopywatch_dev.synthetic_raw import synthetic_raw

RAW_KEY = SceneKey(
    "simulated",
    "s2l2a_bands",
    "6y8xg",
    datetime(2024, 4, 20, 14, 12, 33, tzinfo=UTC),
    BBox(-55.4, -7.1, -55.35, -7.05),
).key


class _NotFound(Exception):
    def __init__(self) -> None:
        self.response = {"Error": {"Code": "404"}}


class FakeS3:
    """The slice of boto3's S3 client that ObjectStore uses."""

    class exceptions:
        ClientError = _NotFound

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.puts = 0

    def head_object(self, Bucket, Key):
        if Key not in self.objects:
            raise _NotFound()
        data, metadata = self.objects[Key]
        return {"ContentLength": len(data), "Metadata": metadata}

    def get_object(self, Bucket, Key):
        import io

        return {"Body": io.BytesIO(self.objects[Key][0])}

    def put_object(self, Bucket, Key, Body, ContentType, Metadata):
        self.puts += 1
        self.objects[Key] = (Body, dict(Metadata))


@pytest.fixture
def store():
    return ObjectStore(FakeS3(), "bucket")


def _scene(key: str = RAW_KEY) -> RawScene:
    return RawScene("0123456789abcdef", "bucket", key, "s2l2a_bands")


def test_converts_writes_beside_the_raw_file_and_says_so(store):
    store.put(RAW_KEY, synthetic_raw(300, 260), "image/tiff", {})
    outcome = convert_scene(store, _scene())
    assert outcome.status == CONVERTED, outcome.errors
    assert outcome.cog_key == RAW_KEY.removesuffix("raw.tif") + "cog.tif"
    assert validate(store.get(outcome.cog_key)).valid
    message = outcome.message()
    assert message.valid and message.scene_id == "0123456789abcdef"
    assert message.cog_key == outcome.cog_key and message.validation_errors == []
    assert store.head(outcome.cog_key).metadata["cog-profile"] == "canopywatch-deflate"


def test_second_run_keeps_the_valid_cog(store):
    store.put(RAW_KEY, synthetic_raw(300, 260), "image/tiff", {})
    convert_scene(store, _scene())
    puts = store.client.puts
    again = convert_scene(store, _scene())
    assert again.status == SKIPPED and again.valid
    assert store.client.puts == puts  # nothing written twice


def test_a_replaced_raw_file_is_converted_again(store):
    store.put(RAW_KEY, synthetic_raw(300, 260, seed=1), "image/tiff", {})
    convert_scene(store, _scene())
    store.put(RAW_KEY, synthetic_raw(300, 260, seed=2), "image/tiff", {})
    assert convert_scene(store, _scene()).status == CONVERTED


def test_an_invalid_cog_in_place_is_replaced(store):
    store.put(RAW_KEY, synthetic_raw(300, 260), "image/tiff", {})
    first = convert_scene(store, _scene())
    _, metadata = store.client.objects[first.cog_key]
    store.client.objects[first.cog_key] = (b"broken", metadata)
    assert convert_scene(store, _scene()).status == CONVERTED
    assert validate(store.get(first.cog_key)).valid


def test_a_corrupt_raw_file_is_reported_not_raised(store):
    store.put(RAW_KEY, synthetic_raw(300, 260)[:3000], "image/tiff", {})
    outcome = convert_scene(store, _scene())
    assert outcome.status == FAILED and not outcome.valid
    assert "not a readable GeoTIFF" in outcome.errors[0]
    assert store.head(outcome.cog_key) is None
    message = outcome.message()
    assert not message.valid and message.validation_errors == outcome.errors


def test_missing_raw_file_and_off_layout_key_are_reported(store):
    missing = convert_scene(store, _scene())
    assert missing.status == FAILED and "does not exist" in missing.errors[0]
    off = convert_scene(store, _scene("somewhere/raw.tif"))
    assert off.status == FAILED and off.errors[0].startswith("raw_key:")


def test_store_errors_are_reported(store):
    def broken(**kwargs):
        raise ConnectionError("MinIO is down")

    store.client.head_object = broken
    outcome = convert_scene(store, _scene())
    assert outcome.status == FAILED and "MinIO is down" in outcome.errors[0]


def test_records_round_trip():
    outcome = SceneConversion("s", RAW_KEY, cog_key_for(RAW_KEY), FAILED, errors=["x"])
    assert SceneConversion.from_record(outcome.to_record()) == outcome


@pytest.mark.parametrize(
    ("scenes", "cores", "requested", "expected"),
    [(0, 2, None, 1), (3, 2, None, 3), (100, 2, None, 4), (100, 8, 5, 5), (2, 8, 5, 2)],
)
def test_partition_count(scenes, cores, requested, expected):
    assert partition_count(scenes, cores, requested) == expected


def test_table_uri_uses_hadoop_s3a():
    assert table_uri("s3://b/lake/", "scenes_raw") == "s3a://b/lake/scenes_raw"
    assert table_uri("/tmp/lake", "scenes_cog") == "/tmp/lake/scenes_cog"


class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, bytes, bytes]] = []
        self._callbacks = []

    def produce(self, topic, value, key=None, on_delivery=None):
        self.sent.append((topic, value, key))
        self._callbacks.append(on_delivery)

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        for callback in self._callbacks:
            callback("broker down" if self.fail else None, None)
        return 0


def test_publish_sends_one_message_per_scene_keyed_by_scene_id():
    conversions = [
        SceneConversion("a" * 16, RAW_KEY, cog_key_for(RAW_KEY), CONVERTED),
        SceneConversion("b" * 16, RAW_KEY, cog_key_for(RAW_KEY), FAILED, errors=["bad"]),
    ]
    producer = FakeProducer()
    assert publish(conversions, producer, "t.scenes-converted") == 2
    assert [key for _, _, key in producer.sent] == [b"a" * 16, b"b" * 16]
    with pytest.raises(RuntimeError, match="not delivered"):
        publish(conversions, FakeProducer(fail=True), "t")
    report = JobReport(conversions, 2).summary()
    assert report["converted"] == 1 and report["failed"] == 1
    assert report["failures"] == {"b" * 16: ["bad"]}


def test_nothing_secret_goes_to_arguments_or_conf():
    secret = "s3cr3t-value"
    arguments = job_arguments(
        lake_root="s3://b/lake", s3_endpoint="http://h:1", topic="t", kafka_bootstrap="k:1"
    )
    conf = spark_conf("http://h:1")
    assert secret not in " ".join(arguments) + " ".join(f"{k}={v}" for k, v in conf.items())
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert submit_environment("key", secret)["AWS_SECRET_ACCESS_KEY"] == secret
    assert "--no-publish" in job_arguments(
        lake_root="s3://b/lake", s3_endpoint=None, topic="t", kafka_bootstrap=None
    )
