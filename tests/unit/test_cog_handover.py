"""The COG job's hand-over: pending rows read with delta-rs from real local Delta tables, the
run-keyed object written and read through a boto3 client stubbed with S3's own response
shapes, its validation, and the arguments and conf the operator gives spark-submit."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from canopywatch.cog import handover
from canopywatch.cog.job import SCENE_COLUMNS
from canopywatch.cog.submit import job_arguments, spark_conf, spark_submit_argv
from canopywatch.geo import BBox, bbox_geohash
from canopywatch.lake.rows import Provenance, scene_cog_row, scene_raw_row
from canopywatch.lake.tables import SCENES_COG, SCENES_RAW, Lake
from canopywatch.lake.writer import OffsetRow, write_exactly_once
from canopywatch.layout import SceneKey
from canopywatch.messages import SceneConverted, SceneDownloaded, stable_id

BUCKET = "canopywatch"
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"]


def downloaded_scene(index: int) -> SceneDownloaded:
    bbox = BBox(-55.40, -7.10, -55.35, -7.05)
    acquired = datetime(2024, 4, 1, 14, 12, tzinfo=UTC) + timedelta(days=5 * index)
    key = SceneKey("simulated", "s2l2a_bands", bbox_geohash(bbox), acquired, bbox).key
    return SceneDownloaded(
        scene_id=stable_id(key),
        request_id=f"ut-{index}",
        aoi_id="ut-cog",
        source="simulated",
        function="s2l2a_bands",
        raw_key=key,
        bucket=BUCKET,
        bbox=bbox.as_tuple(),
        footprint=bbox.to_geojson(),
        geohash=bbox_geohash(bbox),
        acquired_at=acquired,
        crs="EPSG:32721",
        shape=(520, 600),
        bands=BANDS,
        cloud_cover=10.0,
        checksum="0" * 64,
        size_bytes=1000 + index,
    )


def _write(lake: Lake, spec, rows: list[dict], topic: str) -> None:
    write_exactly_once(lake, spec, [OffsetRow(topic, 0, n, row) for n, row in enumerate(rows)])


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


@pytest.fixture
def scenes(lake: Lake) -> list[SceneDownloaded]:
    downloaded = [downloaded_scene(i) for i in range(4)]
    now = datetime.now(UTC)
    rows = [scene_raw_row(m, Provenance("ut-raw", 0, n, now)) for n, m in enumerate(downloaded)]
    _write(lake, SCENES_RAW, rows, "ut-raw")
    return downloaded


def _converted(lake: Lake, outcomes: list[tuple[SceneDownloaded, bool]]) -> None:
    now = datetime.now(UTC)
    rows = [
        scene_cog_row(
            SceneConverted(
                scene_id=m.scene_id,
                cog_key=m.raw_key.replace("raw.tif", "cog.tif"),
                valid=valid,
                validation_errors=[] if valid else ["not a readable GeoTIFF"],
            ),
            Provenance("ut-cog", 0, n, now),
        )
        for n, (m, valid) in enumerate(outcomes)
    ]
    _write(lake, SCENES_COG, rows, "ut-cog")


def test_no_scenes_raw_table_means_nothing_pending(lake: Lake):
    assert handover.pending_rows(lake) == []


def test_every_raw_scene_is_pending_before_any_cog_is_recorded(lake: Lake, scenes):
    rows = handover.pending_rows(lake)
    assert [r["scene_id"] for r in rows] == sorted(m.scene_id for m in scenes)
    by_id = {m.scene_id: m for m in scenes}
    for row in rows:
        assert set(row) == set(SCENE_COLUMNS)
        scene = by_id[row["scene_id"]]
        assert (row["bucket"], row["raw_key"], row["function"], row["size_bytes"]) == (
            BUCKET,
            scene.raw_key,
            "s2l2a_bands",
            scene.size_bytes,
        )


def test_scenes_with_a_valid_cog_are_left_out_and_failed_ones_kept(lake: Lake, scenes):
    _converted(lake, [(scenes[0], True), (scenes[1], False), (scenes[2], True)])
    pending = {r["scene_id"] for r in handover.pending_rows(lake)}
    assert pending == {scenes[1].scene_id, scenes[3].scene_id}


def test_given_ids_are_selected_whatever_their_cogs(lake: Lake, scenes):
    _converted(lake, [(scenes[0], True)])
    rows = handover.pending_rows(lake, [scenes[0].scene_id, scenes[2].scene_id, "f" * 16])
    assert {r["scene_id"] for r in rows} == {scenes[0].scene_id, scenes[2].scene_id}


def test_job_key_is_run_keyed_and_s3_safe():
    key = handover.job_key(
        "scene_curation", "asset_triggered__2026-12-02T19:00:00.123+00:00", "convert_cogs", 2
    )
    assert key == (
        "_jobs/cog_convert/scene_curation/asset_triggered__2026-12-02T19_00_00.123_00_00/"
        "convert_cogs.try2.json"
    )
    assert handover.job_key("d", "r", "t", 1, map_index=3).endswith("/t.3.try1.json")
    assert handover.job_key("d", "r", "t", 1) != handover.job_key("d", "r", "t", 2)


def _client():
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_rows_round_trip_through_put_and_get_object(lake: Lake, scenes):
    from canopywatch.storage.objects import ObjectStore

    rows = handover.pending_rows(lake)
    client = _client()
    stored: dict[str, bytes] = {}
    key = handover.job_key("scene_curation", "manual__1", "convert_cogs", 1)
    with Stubber(client) as stub:
        stub.add_response(
            "put_object",
            {"ETag": '"9b2cf535f27731c974343645a3985328"'},
            {"Bucket": BUCKET, "Key": key, "Body": ANY, "ContentType": "application/json",
             "Metadata": ANY},
        )  # fmt: skip
        uri = handover.write_handover(ObjectStore(client, BUCKET), key, rows)
        stub.assert_no_pending_responses()
    assert uri == f"s3://{BUCKET}/{key}"
    stored[key] = handover.handover_document(rows)
    assert json.loads(stored[key])["format"] == handover.FORMAT
    with Stubber(client) as stub:
        stub.add_response(
            "get_object",
            {"Body": _body(stored[key]), "ContentLength": len(stored[key]),
             "ContentType": "application/json"},
            {"Bucket": BUCKET, "Key": key},
        )  # fmt: skip
        assert handover.read_handover(client, uri) == rows


def test_a_missing_object_is_a_handover_error_not_a_client_error():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code="NoSuchKey",
            service_message="The specified key does not exist.",
            http_status_code=404,
            expected_params={"Bucket": BUCKET, "Key": "_jobs/cog_convert/x.json"},
        )
        with pytest.raises(handover.HandoverError, match="does not exist"):
            handover.read_handover(client, f"s3://{BUCKET}/_jobs/cog_convert/x.json")


def _row(**changes) -> dict:
    row = {"scene_id": "a" * 16, "bucket": BUCKET, "raw_key": "k/raw.tif",
           "function": "s2l2a_bands", "size_bytes": 10}  # fmt: skip
    return {**row, **changes}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"{not json", "not JSON"),
        (json.dumps([_row()]).encode(), "not a canopywatch.cog-scenes/1"),
        (json.dumps({"format": "other/1", "scenes": []}).encode(), "format: 'other/1'"),
        (json.dumps({"format": handover.FORMAT}).encode(), "no 'scenes' list"),
        (json.dumps({"format": handover.FORMAT, "scenes": ["x"]}).encode(), "not an object"),
        (
            json.dumps({"format": handover.FORMAT, "scenes": [{"scene_id": "a"}]}).encode(),
            "missing bucket, raw_key, function, size_bytes",
        ),
        (
            json.dumps({"format": handover.FORMAT, "scenes": [_row(raw_key="")]}).encode(),
            "raw_key must be a non-empty string",
        ),
        (
            json.dumps({"format": handover.FORMAT, "scenes": [_row(size_bytes=True)]}).encode(),
            "size_bytes must be a non-negative integer",
        ),
        (
            json.dumps({"format": handover.FORMAT, "scenes": [_row(size_bytes="10")]}).encode(),
            "size_bytes must be a non-negative integer",
        ),
    ],
)
def test_malformed_documents_are_refused(document: bytes, reason: str):
    with pytest.raises(handover.HandoverError, match=reason):
        handover.parse_handover(document)


def test_extra_fields_are_dropped_and_rows_keep_their_order():
    rows = [_row(scene_id="b" * 16, extra=1), _row()]
    document = {"format": handover.FORMAT, "scenes": rows}
    parsed = handover.parse_handover(json.dumps(document).encode())
    assert [r["scene_id"] for r in parsed] == ["b" * 16, "a" * 16]
    assert all(set(r) == set(SCENE_COLUMNS) for r in parsed)


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "http://b/k", "bucket/key"])
def test_only_s3_object_uris_are_accepted(uri: str):
    with pytest.raises(handover.HandoverError, match="not an s3://bucket/key URI"):
        handover.split_uri(uri)
    assert handover.split_uri("s3a://b/_jobs/x.json") == ("b", "_jobs/x.json")


def test_arguments_name_the_handover_and_refuse_ids_beside_it():
    args = job_arguments(lake_root="s3://b/lake", s3_endpoint=None, topic="t",
                         kafka_bootstrap="k:9092", scenes_from="s3://b/_jobs/x.json")  # fmt: skip
    assert args[args.index("--scenes-from") + 1] == "s3://b/_jobs/x.json"
    assert "--scene-ids" not in args
    with pytest.raises(ValueError, match="not both"):
        job_arguments(lake_root="s3://b/lake", s3_endpoint=None, topic="t", kafka_bootstrap=None,
                      scene_ids=["a"], scenes_from="s3://b/_jobs/x.json")  # fmt: skip


def test_the_handed_over_session_has_no_delta_or_s3a_and_no_jars():
    lean = spark_conf("http://127.0.0.1:19000", delta=False)
    assert not [k for k in lean if "delta" in k or "s3a" in k or k == "spark.sql.extensions"]
    assert lean["spark.executorEnv.GDAL_NUM_THREADS"] == "1"
    full = spark_conf("http://127.0.0.1:19000")
    assert full["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert full["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:19000"
    assert "--jars" not in spark_submit_argv("local[2]", None, lean, [])
    argv = spark_submit_argv("local[2]", ["/x/delta-spark_2.13.jar"], full, [])
    assert argv[argv.index("--jars") + 1] == "/x/delta-spark_2.13.jar"


def test_the_application_refuses_ids_and_a_handover_together():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spark"))
    try:
        import cog_convert
    finally:
        sys.path.pop(0)
    base = ["--lake", "s3://b/lake", "--topic", "t", "--no-publish"]
    assert cog_convert.parse_args([*base, "--scenes-from", "s3://b/_jobs/x.json"]).scenes_from
    with pytest.raises(SystemExit):
        cog_convert.parse_args([*base, "--scenes-from", "s3://b/x.json", "--scene-ids", "a"])
