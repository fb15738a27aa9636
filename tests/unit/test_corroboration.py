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
