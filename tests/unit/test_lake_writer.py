"""Exactly-once Delta writes from Kafka batches, on a local-path lake."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from canopywatch.geo import geohash
from canopywatch.lake.consume import (
    DeadLetterDeliveryError,
    write_alert_batch,
    write_converted_batch,
    write_scene_batch,
)
from canopywatch.lake.tables import ALERTS, SCENES_COG, SCENES_RAW, Lake, open_table
from canopywatch.lake.writer import OffsetRow, app_id, plan_batch, write_exactly_once
from canopywatch.messages import AlertPublished, DeadLetter, SceneConverted, SceneDownloaded
from canopywatch_dev.synthetic_catalog import StaticMessage

TOPIC = "cw.scenes-downloaded"


def FakeMessage(
    payload: bytes | None, at: int, topic_name: str = TOPIC, key_bytes: bytes | None = None
) -> StaticMessage:
    return StaticMessage(payload, at, topic_name, 0, key_bytes)


@dataclass
class FakeProducer:
    """A DLQ producer; ``undeliverable`` keeps every message queued, as when the broker is away."""

    sent: list[tuple[str, bytes]] = field(default_factory=list)
    undeliverable: bool = False

    def produce(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value))

    def flush(self, timeout: float = 0) -> int:
        return len(self.sent) if self.undeliverable else 0


def scene(n: int, **changes: Any) -> SceneDownloaded:
    lon, lat = -55.4 + 0.01 * (n % 50), -7.1 + 0.01 * (n // 50)
    box = (lon, lat, lon + 0.02, lat + 0.02)
    ring = [
        [box[0], box[1]],
        [box[2], box[1]],
        [box[2], box[3]],
        [box[0], box[3]],
        [box[0], box[1]],
    ]
    fields: dict[str, Any] = {
        "scene_id": f"scene-{n:05d}",
        "request_id": f"req-{n}",
        "aoi_id": "it-area",
        "source": "sentinel_hub",
        "function": "s2l2a_bands",
        "raw_key": f"sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/bbox_{n}/raw.tif",
        "bucket": "canopywatch",
        "bbox": box,
        "footprint": {"type": "Polygon", "coordinates": [ring]},
        "geohash": "6vjyn",
        "acquired_at": datetime(2024, 3, 1, tzinfo=UTC) + timedelta(days=n % 90),
        "crs": "EPSG:32721",
        "shape": (220, 221),
        "bands": ["B02", "B03"],
        "cloud_cover": 12.5,
        "checksum": "ab" * 32,
        "size_bytes": 1000 + n,
    }
    fields.update(changes)
    return SceneDownloaded(**fields)


def messages(scenes: list[SceneDownloaded], first_offset: int = 0) -> list[StaticMessage]:
    return [FakeMessage(s.to_bytes(), first_offset + i) for i, s in enumerate(scenes)]


def rows(lake: Lake) -> pa.Table:
    return open_table(lake, SCENES_RAW).to_pyarrow_table()


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake.local(tmp_path / "lake")


def test_plan_skips_committed_offsets_and_duplicate_ids() -> None:
    records = [
        OffsetRow("t", 0, 4, {"id": "a"}),
        OffsetRow("t", 0, 5, {"id": "b"}),
        OffsetRow("t", 0, 6, {"id": "b"}),
        OffsetRow("t", 1, 2, None),
    ]
    plan = plan_batch(records, {app_id("cw", "t", 0): 4}, key="id", app="cw")
    assert [r["id"] for r in plan.rows] == ["b"]
    assert plan.offsets == {"cw:t:0": 6, "cw:t:1": 2}
    assert (plan.replayed, plan.duplicates) == (1, 1)


def test_batch_is_one_commit_with_offsets_and_replay_adds_nothing(lake: Lake) -> None:
    producer = FakeProducer()
    batch = messages([scene(i) for i in range(20)])
    first = write_scene_batch(batch, lake=lake, dlq=producer)
    table = open_table(lake, SCENES_RAW)
    assert first.commit.inserted == 20
    assert table.version() == 1  # create + one commit
    assert table.transaction_version(f"canopywatch:{TOPIC}:0") == 19

    replay = write_scene_batch(batch, lake=lake, dlq=producer)
    assert replay.commit.version is None and replay.commit.replayed == 20
    assert open_table(lake, SCENES_RAW).version() == 1
    assert rows(lake).num_rows == 20
    assert producer.sent == []


def test_same_scene_at_a_new_offset_is_stored_once(lake: Lake) -> None:
    write_scene_batch(messages([scene(1), scene(2)]), lake=lake, dlq=FakeProducer())
    again = write_scene_batch(
        messages([scene(1, skipped=True), scene(3)], first_offset=2), lake=lake, dlq=FakeProducer()
    )
    assert again.commit.inserted == 1
    assert sorted(rows(lake).column("scene_id").to_pylist()) == [
        "scene-00001",
        "scene-00002",
        "scene-00003",
    ]
    # a batch of only known scenes still records its offsets (an empty commit)
    known = write_scene_batch(messages([scene(2)], first_offset=4), lake=lake, dlq=FakeProducer())
    assert known.commit.inserted == 0 and known.commit.version is not None
    assert open_table(lake, SCENES_RAW).transaction_version(f"canopywatch:{TOPIC}:0") == 4


def test_malformed_messages_go_to_the_dlq_and_the_rest_flows(lake: Lake) -> None:
    producer = FakeProducer()
    bad_footprint = scene(7).model_copy(
        update={"footprint": {"type": "Point", "coordinates": [0, 0]}}
    )
    batch = [
        FakeMessage(scene(1).to_bytes(), 0),
        FakeMessage(b"{not json", 1, key_bytes=b"k1"),
        FakeMessage(json.dumps({"message_type": "SceneDownloaded"}).encode(), 2),
        FakeMessage(bad_footprint.to_bytes(), 3),
        FakeMessage(scene(2).to_bytes(), 4),
    ]
    outcome = write_scene_batch(batch, lake=lake, dlq=producer)
    assert outcome.commit.inserted == 2
    assert [t for t, _ in producer.sent] == [f"{TOPIC}.dlq"] * 3
    letters = [DeadLetter.from_json(v) for _, v in producer.sent]
    assert [letter.offset for letter in letters] == [1, 2, 3]
    assert "footprint must be a Polygon" in letters[2].error
    # the poison offsets are recorded: a replay does not dead-letter them twice
    write_scene_batch(batch, lake=lake, dlq=producer)
    assert len(producer.sent) == 3


def test_an_undelivered_dead_letter_commits_nothing_and_the_replay_dead_letters_it(
    lake: Lake,
) -> None:
    batch = [FakeMessage(scene(1).to_bytes(), 0), FakeMessage(b"{not json", 1)]
    with pytest.raises(DeadLetterDeliveryError, match="1 dead letter"):
        write_scene_batch(batch, lake=lake, dlq=FakeProducer(undeliverable=True))
    # neither the good row nor the offsets are committed
    assert open_table(lake, SCENES_RAW).transaction_version(f"canopywatch:{TOPIC}:0") is None
    assert rows(lake).num_rows == 0
    # the redelivered batch dead-letters the poison again and writes the rest
    producer = FakeProducer()
    outcome = write_scene_batch(batch, lake=lake, dlq=producer)
    assert outcome.commit.inserted == 1
    assert [DeadLetter.from_json(v).offset for _, v in producer.sent] == [1]
    assert open_table(lake, SCENES_RAW).transaction_version(f"canopywatch:{TOPIC}:0") == 1


def test_new_optional_field_in_a_message_is_read(lake: Lake) -> None:
    payload = json.loads(scene(1).to_json())
    payload["sun_elevation"] = 61.2  # a field a newer producer adds
    outcome = write_scene_batch(
        [FakeMessage(json.dumps(payload).encode(), 0)], lake=lake, dlq=FakeProducer()
    )
    assert outcome.commit.inserted == 1 and not outcome.dead_lettered


def test_partitions_are_geohash_prefix_and_month(lake: Lake) -> None:
    write_scene_batch(messages([scene(0), scene(40)]), lake=lake, dlq=FakeProducer())
    table = open_table(lake, SCENES_RAW)
    assert table.metadata().partition_columns == ["geohash_prefix", "month"]
    assert {(p["geohash_prefix"], p["month"]) for p in table.partitions()} == {
        ("6vj", "2024-03"),
        ("6vj", "2024-04"),
    }


def test_changed_cog_validation_updates_the_row(lake: Lake) -> None:
    key = "sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/bbox_-55.400000_-7.100000_-55.380000_-7.080000/cog.tif"
    first = SceneConverted(scene_id="s1", cog_key=key, valid=False, validation_errors=["x"])
    second = SceneConverted(scene_id="s1", cog_key=key, valid=True)
    write_converted_batch(
        [FakeMessage(first.to_bytes(), 0, "cw.scenes-converted")], lake=lake, dlq=FakeProducer()
    )
    outcome = write_converted_batch(
        [FakeMessage(second.to_bytes(), 1, "cw.scenes-converted")], lake=lake, dlq=FakeProducer()
    )
    assert outcome.commit.updated == 1
    table = open_table(lake, SCENES_COG).to_pyarrow_table()
    assert table.column("valid").to_pylist() == [True]
    assert table.column("month").to_pylist() == ["2024-03"]


def test_alerts_are_written_with_a_geohash_partition(lake: Lake) -> None:
    alert = AlertPublished(
        alert_id="a1",
        aoi_id="it-area",
        geometry={
            "type": "Polygon",
            "coordinates": [[[-55.4, -7.1], [-55.39, -7.1], [-55.39, -7.09], [-55.4, -7.1]]],
        },
        alert_date=datetime(2024, 5, 3, tzinfo=UTC),
        confidence=0.9,
        area_ha=1.5,
        model_version="xgb-1",
    )
    write_alert_batch(
        [FakeMessage(alert.to_bytes(), 0, "cw.alerts")], lake=lake, dlq=FakeProducer()
    )
    table = open_table(lake, ALERTS).to_pyarrow_table()
    assert table.column("geohash_prefix").to_pylist() == [geohash(-7.095, -55.395, 3)]
    assert table.column("month").to_pylist() == ["2024-05"]


def test_a_withdrawn_alert_updates_its_row_even_in_another_partition(lake: Lake) -> None:
    ring = [[-55.4, -7.1], [-55.39, -7.1], [-55.39, -7.09], [-55.4, -7.1]]
    active = AlertPublished(
        alert_id="a1", aoi_id="it-area", geometry={"type": "MultiPolygon", "coordinates": [[ring]]},
        alert_date=datetime(2024, 5, 30, tzinfo=UTC), confirmed_date=datetime(2024, 6, 4, tzinfo=UTC),
        confidence=0.9, confidence_level="high", status="high", area_ha=1.5,
        method="harmonic", model_version="harmonic-v1",
    )  # fmt: skip
    withdrawn = active.model_copy(
        update={"status": "withdrawn", "confidence": 0.01, "confidence_level": "low",
                "confirmed_date": None, "alert_date": datetime(2024, 6, 2, tzinfo=UTC)}
    )  # fmt: skip
    for offset, message in enumerate((active, withdrawn)):
        write_alert_batch(
            [FakeMessage(message.to_bytes(), offset, "cw.alerts")], lake=lake, dlq=FakeProducer()
        )
    rows = open_table(lake, ALERTS).to_pyarrow_table().to_pylist()
    assert [(r["alert_id"], r["status"], r["month"]) for r in rows] == [
        ("a1", "withdrawn", "2024-06")
    ]
    assert rows[0]["confirmed_date"] is None and rows[0]["method"] == "harmonic"


def test_an_alerts_table_from_before_the_status_columns_gets_them(lake: Lake) -> None:
    from dataclasses import replace

    added = ("confidence_level", "status", "method")
    earlier = replace(ALERTS, schema=pa.schema([f for f in ALERTS.schema if f.name not in added]))
    open_table(lake, earlier)
    table = open_table(lake, ALERTS)
    assert set(added) <= {f.name for f in table.schema().fields}
    alert = AlertPublished(
        alert_id="a2", aoi_id="it-area", alert_date=datetime(2024, 5, 3, tzinfo=UTC),
        geometry={"type": "Polygon", "coordinates": [[[-55.4, -7.1], [-55.39, -7.1],
                                                      [-55.39, -7.09], [-55.4, -7.1]]]},
        confidence=0.5, area_ha=0.2, model_version="xgb-1",
    )  # fmt: skip
    write_alert_batch(
        [FakeMessage(alert.to_bytes(), 0, "cw.alerts")], lake=lake, dlq=FakeProducer()
    )
    (row,) = open_table(lake, ALERTS).to_pyarrow_table().to_pylist()
    assert (row["status"], row["confidence_level"], row["method"]) == ("low", "low", "xgboost")


def test_two_partitions_in_one_batch_record_two_app_ids(lake: Lake) -> None:
    records = [OffsetRow("t", p, o, {**_raw_row(f"s{p}{o}")}) for p in (0, 1) for o in range(3)]
    result = write_exactly_once(lake, SCENES_RAW, records)
    assert result.offsets == {"canopywatch:t:0": 2, "canopywatch:t:1": 2}
    table = open_table(lake, SCENES_RAW)
    assert table.transaction_version("canopywatch:t:1") == 2
    assert table.version() == 1


def _raw_row(scene_id: str) -> dict[str, Any]:
    from canopywatch.lake.rows import Provenance, scene_raw_row

    return scene_raw_row(
        scene(1, scene_id=scene_id), Provenance(None, None, None, datetime.now(UTC))
    )


def test_cog_batch_of_a_changed_stored_row_and_a_new_one_updates_one_and_inserts_one(
    lake: Lake,
) -> None:
    def key(n: int) -> str:
        return (
            f"sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/bbox_{n}.000000_-7.100000_"
            f"{n}.500000_-7.080000/cog.tif"
        )

    def converted(n: int, at: int, valid: bool) -> StaticMessage:
        message = SceneConverted(scene_id=f"s{n}", cog_key=key(n), valid=valid)
        return FakeMessage(message.to_bytes(), at, "cw.scenes-converted")

    write_converted_batch([converted(1, 0, False)], lake=lake, dlq=FakeProducer())
    mixed = write_converted_batch(
        [converted(1, 1, True), converted(2, 2, True)], lake=lake, dlq=FakeProducer()
    )
    assert (mixed.commit.inserted, mixed.commit.updated) == (1, 1)
    unchanged = write_converted_batch([converted(2, 3, True)], lake=lake, dlq=FakeProducer())
    assert (unchanged.commit.inserted, unchanged.commit.updated) == (0, 0)
    assert unchanged.commit.version is not None  # the offsets are recorded all the same
    table = open_table(lake, SCENES_COG).to_pyarrow_table().sort_by("scene_id")
    assert table.column("scene_id").to_pylist() == ["s1", "s2"]
    assert table.column("valid").to_pylist() == [True, True]
    assert (
        open_table(lake, SCENES_COG).transaction_version("canopywatch:cw.scenes-converted:0") == 3
    )


def test_two_writers_of_one_partition_cannot_both_commit_its_offsets(lake: Lake) -> None:
    # what the append path relies on: Delta refuses a commit whose transaction app id a
    # concurrent commit already set, so the loser retries and finds its offsets written
    from deltalake import CommitProperties, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError

    first, late = open_table(lake, SCENES_RAW), open_table(lake, SCENES_RAW)
    ident = app_id("canopywatch", TOPIC, 0)
    done = CommitProperties(app_transactions=[Transaction(ident, 5)])
    write_deltalake(first, SCENES_RAW.schema.empty_table(), mode="append", commit_properties=done)
    with pytest.raises(CommitFailedError):
        write_deltalake(
            late, SCENES_RAW.schema.empty_table(), mode="append", commit_properties=done
        )
    # and the writer itself, racing from a stale view, skips what the winner wrote
    write_scene_batch(messages([scene(1), scene(2)], first_offset=6), lake=lake, dlq=FakeProducer())
    replay = write_scene_batch(
        messages([scene(1), scene(2)], first_offset=6), lake=lake, dlq=FakeProducer()
    )
    assert replay.commit.version is None and replay.commit.replayed == 2
    assert rows(lake).num_rows == 2


def test_stored_ids_are_found_in_files_written_elsewhere_and_after_compaction(lake: Lake) -> None:
    from canopywatch.lake.keys import KEY_CACHE

    write_scene_batch(messages([scene(1), scene(2)]), lake=lake, dlq=FakeProducer())
    KEY_CACHE._keys.clear()  # as in another process: the files are read
    again = write_scene_batch(messages([scene(1), scene(3)], 2), lake=lake, dlq=FakeProducer())
    assert again.commit.inserted == 1
    open_table(lake, SCENES_RAW).optimize.compact()  # new files, the old ones leave the table
    later = write_scene_batch(
        messages([scene(1), scene(3), scene(4)], 4), lake=lake, dlq=FakeProducer()
    )
    assert later.commit.inserted == 1
    assert sorted(rows(lake).column("scene_id").to_pylist()) == [
        "scene-00001",
        "scene-00002",
        "scene-00003",
        "scene-00004",
    ]
