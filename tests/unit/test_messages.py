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


def test_the_alert_message_carries_every_field_of_the_alert_schema():
    from canopywatch.alert_schema import ALERT_FIELDS, FIELD_NAMES, Alert
    from canopywatch.messages import AlertPublished

    assert tuple(Alert.model_fields) == FIELD_NAMES
    assert set(FIELD_NAMES) <= set(AlertPublished.model_fields)
    required = {f.name for f in ALERT_FIELDS if f.required}
    assert required == {n for n, f in Alert.model_fields.items() if f.is_required()}
    geometry = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}
    message = AlertPublished(
        alert_id="a", aoi_id="demo", alert_date=datetime(2024, 3, 5, tzinfo=UTC),
        confidence=0.3, confidence_level="low", status="withdrawn", area_ha=0.4,
        method="harmonic", model_version="harmonic-v1", geometry=geometry,
    )  # fmt: skip
    assert AlertPublished.from_json(message.to_bytes()) == message
    with pytest.raises(MessageError, match="status"):
        AlertPublished.from_json(message.to_json().replace('"withdrawn"', '"gone"'))
    # a payload from before confidence_level, status and method still reads
    earlier = json.loads(message.to_json())
    for name in ("confidence_level", "status", "method"):
        del earlier[name]
    earlier.update(confidence=0.93, model_version="xgb-0123")
    read = AlertPublished.from_json(json.dumps(earlier))
    assert (read.confidence_level, read.status, read.method) == ("high", "high", "xgboost")
