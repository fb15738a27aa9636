"""The COG Spark job on local[2] against the real MinIO, Delta tables and Kafka.

Seeds this session's bucket with raw scenes (one of them a truncated TIFF) and their
``scenes_raw`` rows, runs ``spark/cog_convert.py`` through spark-submit as the
operator does (the pending rows read with delta-rs and handed over under ``_jobs/``; no
Delta or S3A jars), checks every COG with ``rio cogeo validate`` and GDAL, records the
SceneConverted messages in ``scenes_cog`` with the lake consumer, then runs the job
again the previous way (it reads Delta itself with delta-spark over S3A): only the
corrupt scene is selected, and nothing is converted twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rasterio
from rasterio.enums import MaskFlags

from canopywatch.cog import handover
from canopywatch.cog.submit import (
    job_arguments,
    spark_conf,
    spark_jars,
    spark_submit_argv,
    submit_environment,
)
from canopywatch.lake.rows import Provenance, scene_raw_row
from canopywatch.lake.tables import SCENES_COG, SCENES_RAW, lake_from_settings, open_table
from canopywatch.lake.writer import OffsetRow, write_exactly_once
from canopywatch.messages import SceneDownloaded
from canopywatch.settings import Settings
from canopywatch.storage.objects import ObjectStore
from canopywatch_dev.synthetic_raw import synthetic_raw
from tests.unit.test_cog_handover import BANDS, downloaded_scene

pytestmark = [pytest.mark.service, pytest.mark.slow]

GOOD_SCENES = 4
RIO = Path(sys.executable).with_name("rio")


def _scene(settings: Settings, store: ObjectStore, index: int, data: bytes) -> SceneDownloaded:
    """The unit tests' downloaded scene ``index``, its raw ``data`` stored in the bucket."""
    scene = downloaded_scene(index)
    checksum = store.put(scene.raw_key, data, "image/tiff", {})
    return scene.model_copy(
        update={
            "request_id": f"it-{index}",
            "aoi_id": "it-cog",
            "bucket": settings.bucket,
            "cloud_cover": 10.0 * index,
            "checksum": checksum,
            "size_bytes": len(data),
        }
    )


@pytest.fixture(scope="module")
def platform(platform: Settings):  # type: ignore[no-redef]
    """This module's own bucket: its seeded scenes (one corrupt) stay out of other tests' lake."""
    from dataclasses import replace

    from canopywatch_dev.platform import minio

    own = replace(
        platform, bucket=f"{platform.bucket}-cog", exports_bucket=f"{platform.bucket}-cog-x"
    )
    minio.ensure_buckets(own)
    yield own
    s3 = minio.s3_client(own)
    for bucket in (own.bucket, own.exports_bucket):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def seeded(platform: Settings):
    """Raw scenes in MinIO and scenes_raw: GOOD_SCENES valid ones and one truncated TIFF."""
    from canopywatch_dev.platform import minio

    store = ObjectStore(minio.s3_client(platform), platform.bucket)
    scenes = [
        _scene(platform, store, i, synthetic_raw(600, 520, seed=i)) for i in range(GOOD_SCENES)
    ]
    corrupt = _scene(platform, store, GOOD_SCENES, synthetic_raw(600, 520, seed=99)[:4000])
    scenes.append(corrupt)
    lake = lake_from_settings(platform)
    now = datetime.now(UTC)
    records = [
        OffsetRow("it-seed", 0, offset, scene_raw_row(m, Provenance("it-seed", 0, offset, now)))
        for offset, m in enumerate(scenes)
    ]
    write_exactly_once(lake, SCENES_RAW, records)
    return scenes, corrupt, store


def run_job(settings: Settings, report: Path, *, hand_over: bool, master: str = "local[2]") -> dict:
    """The job as ``CogConvertOperator`` submits it: with ``hand_over`` the pending rows go
    through a ``_jobs/`` object (deleted afterwards), else the job reads Delta itself."""
    from canopywatch_dev.platform import minio

    lake = lake_from_settings(settings)
    store = ObjectStore(minio.s3_client(settings), settings.bucket)
    uri = None
    if hand_over:
        key = handover.job_key("it-cog", uuid.uuid4().hex, "convert_cogs", 1)
        uri = handover.write_handover(store, key, handover.pending_rows(lake))
    argv = spark_submit_argv(
        master,
        None if hand_over else spark_jars(settings),
        spark_conf(settings.s3_endpoint, delta=not hand_over),
        job_arguments(
            lake_root=lake.root,
            s3_endpoint=settings.s3_endpoint,
            topic=settings.topic("scenes-converted"),
            kafka_bootstrap=settings.kafka_bootstrap,
            scenes_from=uri,
            report=report,
        ),
    )
    assert ("--jars" in argv) is not hand_over
    env = {**os.environ, **submit_environment(*minio.credentials(settings))}
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    finally:
        if uri:
            handover.delete_handover(store.client, uri)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    _, secret = minio.credentials(settings)
    assert secret not in result.stdout + result.stderr, "the S3 secret key was printed"
    outcome = json.loads(report.read_text())
    phases = outcome["summary"]["phases_s"]
    assert set(phases) >= {"select", "session", "convert", "stop", "publish"}
    return outcome


def record_converted(settings: Settings) -> None:
    """What record_cogs does: scenes-converted -> scenes_cog, with the lake consumer."""
    from confluent_kafka import Consumer, Producer

    from canopywatch.lake.consume import write_converted_batch

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"it-cog-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic("scenes-converted")])
    messages = []
    try:
        while True:
            batch = consumer.consume(num_messages=100, timeout=5)
            if not batch:
                break
            messages.extend(batch)
    finally:
        consumer.close()
    assert messages, "no SceneConverted messages on the topic"
    dlq = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    outcome = write_converted_batch(messages, lake=lake_from_settings(settings), dlq=dlq)
    assert not outcome.dead_lettered


def test_spark_job_converts_validates_and_is_idempotent(platform: Settings, seeded, tmp_path):
    scenes, corrupt, store = seeded
    first = run_job(platform, tmp_path / "first.json", hand_over=True)
    assert not store.list_keys(handover.JOBS_PREFIX), "the hand-over object was left behind"
    by_id = {s["scene_id"]: s for s in first["scenes"]}
    assert first["summary"]["scenes"] == GOOD_SCENES + 1
    assert first["summary"]["converted"] == GOOD_SCENES
    assert first["summary"]["failed"] == 1
    assert first["summary"]["published"] == GOOD_SCENES + 1
    failed = by_id[corrupt.scene_id]
    assert failed["status"] == "failed"
    assert "not a readable GeoTIFF" in failed["errors"][0] or "conversion" in failed["errors"][0]

    modified = {}
    for scene in scenes[:GOOD_SCENES]:
        outcome = by_id[scene.scene_id]
        assert outcome["status"] == "converted"
        assert outcome["cog_key"] == scene.raw_key.replace("raw.tif", "cog.tif")
        path = tmp_path / f"{scene.scene_id}.tif"
        path.write_bytes(store.get(outcome["cog_key"]))
        checked = subprocess.run(
            [str(RIO), "cogeo", "validate", str(path)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "is a valid cloud optimized GeoTIFF" in checked.stdout
        with rasterio.open(path) as cog:  # GDAL opens it: bands, mask, overviews, tiling
            assert cog.count == len(BANDS) - 1
            assert cog.descriptions == tuple(BANDS[:-1])
            assert cog.mask_flag_enums[0] == [MaskFlags.nodata] and cog.nodata == 0  # from dataMask
            assert cog.scales[:6] == (1e-4,) * 6  # reflectance = DN / 10000
            assert cog.overviews(1)
            assert cog.block_shapes[0] == (512, 512)
            assert not cog.read_masks(1)[:, :10].any()  # the dataMask=0 strip is masked
        head = store.client.head_object(Bucket=platform.bucket, Key=outcome["cog_key"])
        modified[outcome["cog_key"]] = head["LastModified"]
    assert store.head(corrupt.raw_key.replace("raw.tif", "cog.tif")) is None

    record_converted(platform)
    cogs = open_table(lake_from_settings(platform), SCENES_COG).to_pyarrow_table().to_pylist()
    assert len(cogs) == GOOD_SCENES + 1
    assert sum(r["valid"] for r in cogs) == GOOD_SCENES

    # what the operator would hand over now: only the scene without a valid COG
    pending = handover.pending_rows(lake_from_settings(platform))
    assert [r["scene_id"] for r in pending] == [corrupt.scene_id]
    # re-run the previous way (Delta read by the job): it selects the same, and it fails again
    second = run_job(platform, tmp_path / "second.json", hand_over=False)
    assert second["summary"]["scenes"] == 1
    assert second["summary"]["converted"] == 0
    assert [s["scene_id"] for s in second["scenes"]] == [corrupt.scene_id]
    for key, when in modified.items():
        assert store.client.head_object(Bucket=platform.bucket, Key=key)["LastModified"] == when
