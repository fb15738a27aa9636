import json
from datetime import UTC, datetime

import pytest

from canopywatch.messages import (
    SCHEMA_VERSION,
    DeadLetter,
    DownloadRequest,
    MessageError,
    dlq_topic,
    stable_id,
)


def request(**overrides):
    fields = dict(
        request_id="abc",
        aoi_id="demo",
        tile_id="r0c0",
        bbox=(-55.1, -10.05, -55.05, -10.0),
        epsg=32721,
        utm_bounds=(489000.0, 8888000.0, 494000.0, 8894000.0),
        width=500,
        height=600,
        acquired_at=datetime(2024, 3, 5, 13, 51, tzinfo=UTC),
        time_from=datetime(2024, 3, 5, tzinfo=UTC),
        time_to=datetime(2024, 3, 5, 23, 59, 59, tzinfo=UTC),
        function="s2l2a_bands",
        max_cloud=80,
        resolution=10,
    )
    fields.update(overrides)
    return DownloadRequest(**fields)


def test_round_trip_and_version():
    message = request()
    payload = json.loads(message.to_json())
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["message_type"] == "DownloadRequest"
    assert DownloadRequest.from_json(message.to_bytes()) == message


def test_unknown_fields_are_ignored_for_forward_compatibility():
    payload = json.loads(request().to_json())
    payload["new_optional_field"] = 42
    assert DownloadRequest.from_json(json.dumps(payload)).request_id == "abc"


def test_newer_major_version_and_bad_payloads_are_rejected_clearly():
    payload = json.loads(request().to_json())
    payload["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(MessageError, match="newer than this reader"):
        DownloadRequest.from_json(json.dumps(payload))
    with pytest.raises(MessageError, match="DownloadRequest"):
        DownloadRequest.from_json(b"not json")
    with pytest.raises(MessageError, match="empty"):
        DownloadRequest.from_json(None)
    del payload["schema_version"]
    payload["width"] = 3000
    with pytest.raises(MessageError, match="width"):
        DownloadRequest.from_json(json.dumps(payload))


def test_dead_letter_and_ids():
    letter = DeadLetter(source_topic="t", partition=1, offset=5, error="boom", payload="x")
    assert DeadLetter.from_json(letter.to_json()).error == "boom"
    assert dlq_topic("canopywatch.download-requests") == "canopywatch.download-requests.dlq"
    assert stable_id("a", 1) == stable_id("a", 1) != stable_id("a", 2)
