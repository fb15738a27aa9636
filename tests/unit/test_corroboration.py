"""The alert schema's ``corroborated_by`` from evidence rows (canopywatch.sensors.corroboration)."""

from __future__ import annotations

import pandas as pd
import pytest

from canopywatch.sensors.corroboration import (
    EVIDENCE_KINDS,
    corroborated_by,
    corroboration,
    kinds_of,
    raised_confidence,
)


def test_the_value_names_the_kinds_found_sorted_and_once() -> None:
    assert EVIDENCE_KINDS == ("acoustic", "fire", "patrol")
    assert corroboration(["patrol", "acoustic", "patrol"]) == "acoustic,patrol"
    assert corroboration([]) == ""
    assert kinds_of("acoustic,patrol") == ("acoustic", "patrol")
    assert kinds_of("") == () and kinds_of(None) == ()
    with pytest.raises(ValueError, match="unknown evidence kind"):
        corroboration(["drone"])


def test_every_alert_checked_gets_a_value_and_rows_of_other_alerts_are_ignored() -> None:
    evidence = pd.DataFrame(
        {
            "alert_id": ["a", "a", "a", "b", "zz"],
            "kind": ["fire", "acoustic", "fire", "patrol", "fire"],
            "evidence_id": ["f1", "c1", "f2", "t1", "f9"],
        }
    )
    assert corroborated_by(["a", "b", "c"], evidence) == {
        "a": "acoustic,fire",
        "b": "patrol",
        "c": "",
    }


def test_each_corroborating_kind_raises_the_confidence_by_a_tenth_up_to_one() -> None:
    assert raised_confidence(0.55, None) == 0.55
    assert raised_confidence(0.55, "") == 0.55
    assert raised_confidence(0.55, "acoustic,fire") == pytest.approx(0.75)
    assert raised_confidence(0.95, "acoustic,fire,patrol") == 1.0


def test_the_alert_message_carries_it_and_an_older_payload_reads_as_unchecked() -> None:
    from canopywatch.messages import AlertPublished

    payload = {
        "alert_id": "a1", "aoi_id": "x", "alert_date": "2024-03-01T00:00:00Z",
        "confidence": 0.9, "area_ha": 1.5, "model_version": "harmonic-v1",
        "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
    }  # fmt: skip
    assert AlertPublished.model_validate(payload).corroborated_by is None
    message = AlertPublished.model_validate({**payload, "corroborated_by": "fire"})
    again = AlertPublished.from_json(message.to_bytes())
    assert again.corroborated_by == "fire"


def test_evidence_ids_name_what_corroborates_by_kind_sorted_and_once() -> None:
    from canopywatch.sensors.corroboration import evidence_ids, ids_of

    evidence = pd.DataFrame(
        {
            "alert_id": ["a", "a", "a", "a", "b", "zz"],
            "kind": ["fire", "acoustic", "fire", "fire", "patrol", "fire"],
            "evidence_id": ["f2", "c1", "f1", "f2", "track-7", "f9"],
        }
    )
    values = evidence_ids(["a", "b", "c"], evidence)
    assert values == {
        "a": '{"acoustic":["c1"],"fire":["f1","f2"]}',
        "b": '{"patrol":["track-7"]}',
        "c": "{}",
    }
    assert ids_of(values["a"]) == {"acoustic": ["c1"], "fire": ["f1", "f2"]}
    assert ids_of("{}") == {} and ids_of(None) == {}
    # the kinds agree with corroborated_by
    kinds = corroborated_by(["a", "b", "c"], evidence)
    assert {k: ",".join(ids_of(v)) for k, v in values.items()} == kinds
    with pytest.raises(ValueError, match="unknown evidence kind"):
        evidence_ids(
            ["a"], pd.DataFrame({"alert_id": ["a"], "kind": ["drone"], "evidence_id": ["d"]})
        )


def test_the_alert_carries_evidence_ids_and_drought_anomaly_as_json_object_text() -> None:
    from pydantic import ValidationError

    from canopywatch.messages import AlertPublished

    payload = {
        "alert_id": "a1", "aoi_id": "x", "alert_date": "2024-03-01T00:00:00Z",
        "confidence": 0.9, "area_ha": 1.5, "model_version": "harmonic-v1",
        "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
    }  # fmt: skip
    old = AlertPublished.model_validate(payload)
    assert old.evidence_ids is None and old.drought_anomaly is None  # an older payload
    message = AlertPublished.model_validate(
        {**payload, "corroborated_by": "fire", "evidence_ids": {"fire": ["r1"]},
         "drought_anomaly": {"value": -1.2, "flag": "drought"}}
    )  # fmt: skip
    assert message.evidence_ids == '{"fire":["r1"]}'  # a mapping is stored as compact JSON
    assert message.drought_anomaly == '{"flag":"drought","value":-1.2}'
    again = AlertPublished.from_json(message.to_bytes())
    assert (again.evidence_ids, again.drought_anomaly) == (
        message.evidence_ids,
        message.drought_anomaly,
    )
    for bad, reason in (
        ({"evidence_ids": "fire:r1"}, "evidence_ids is not JSON"),
        ({"evidence_ids": '["r1"]'}, "evidence_ids must be a JSON object"),
        ({"evidence_ids": '{"fire": "r1"}'}, "a list of id strings"),
        ({"drought_anomaly": "-1.2"}, "drought_anomaly must be a JSON object"),
    ):
        with pytest.raises(ValidationError, match=reason):
            AlertPublished.model_validate({**payload, **bad})
