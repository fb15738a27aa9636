"""deforestation_monitor end to end: dag.test() against real Kafka, MinIO, PostGIS and a CDSE endpoint."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Consumer
from rasterio.io import MemoryFile

from canopywatch.export.gpkg import export_label
from canopywatch.messages import DeadLetter, SceneDownloaded
from canopywatch_dev.platform import minio
from tests.integration.conftest import CONF, airflow_dags_test

pytestmark = [pytest.mark.service, pytest.mark.slow]


def drain(settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"it-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out, idle = [], 0
    while idle < 3:
        message = consumer.poll(2.0)
        if message is None:
            idle += 1
            continue
        assert message.error() is None, message.error()
        out.append((message.key(), message.value()))
    consumer.close()
    return out


def expected_days(cdse) -> set[date]:
    start, end = date.fromisoformat(CONF["start"]), date.fromisoformat(CONF["end"])
    return {
        scene.datetime.date()
        for scene in cdse.world.scenes
        if start <= scene.datetime.date() <= end
        and scene.acquisition.cloud_cover <= CONF["max_cloud"]
    }


def every_object(settings) -> dict[str, str]:
    s3 = minio.s3_client(settings)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix="sentinel_hub/"
    ):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = f"{obj['ETag']}|{obj['LastModified'].isoformat()}"
    return objects


def stored_objects(settings) -> dict[str, str]:
    """The raw scenes the monitoring runs stored. The session's scene_curation run (which
    pytest-randomly may order first) adds a cog.tif beside each of them in the same bucket."""
    return {k: v for k, v in every_object(settings).items() if k.endswith("/raw.tif")}


def test_run_succeeds_and_stores_every_scene_under_the_layout(first_run, cdse):
    env, result, process_calls = first_run
    settings = env.settings
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    days = expected_days(cdse)
    assert len(days) >= 3, "the test window should hold several clear-enough acquisitions"
    objects = stored_objects(settings)
    assert len(objects) == len(days) == process_calls
    others = set(every_object(settings)) - set(objects)
    assert {k.removesuffix("/cog.tif") for k in others} <= {
        k.removesuffix("/raw.tif") for k in objects
    }, "nothing but the raw scenes (and curation's COGs beside them) is under sentinel_hub/"
    assert {k.split("/")[3][:8] for k in objects} == {d.strftime("%Y%m%d") for d in days}
    s3 = minio.s3_client(settings)
    valid_shares, vegetation_nir, vegetation_red = [], [], []
    for key in objects:
        assert key.startswith("sentinel_hub/s2l2a_bands/") and key.endswith("/raw.tif")
        head = s3.head_object(Bucket=settings.bucket, Key=key)
        assert len(head["Metadata"]["sha256"]) == 64
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        with MemoryFile(body) as memfile, memfile.open() as ds:
            assert ds.count == 8 and ds.dtypes[0] == "uint16"
            assert ds.crs.to_epsg() == 32721
            valid_shares.append(ds.read(8).mean())  # dataMask
            vegetation = (ds.read(7) == 4) & (ds.read(8) > 0)  # SCL 4: vegetation
            vegetation_nir.append(ds.read(4)[vegetation])
            vegetation_red.append(ds.read(3)[vegetation])
    # forest as harmonised DN (BOA offset removed): observed B08 3062, red 234 (medians of
    # the vegetation pixels); with the +1000 offset left in they would be near 4060 and 1230
    assert 2600 < np.median(np.concatenate(vegetation_nir)) < 3700
    assert 100 < np.median(np.concatenate(vegetation_red)) < 600
    # the area is served; some acquisitions have a swath edge of no data, as real ones do
    assert min(valid_shares) > 0.2 and sum(valid_shares) / len(valid_shares) > 0.8


def test_every_stored_scene_is_announced_once(first_run):
    settings = first_run[0].settings
    messages = [
        SceneDownloaded.from_json(v)
        for _, v in drain(settings, settings.topic("scenes-downloaded"))
    ]
    assert sorted(m.raw_key for m in messages) == sorted(stored_objects(settings))
    assert all(m.bucket == settings.bucket and not m.skipped for m in messages)


def lake_scene_keys(settings) -> list[str]:
    from canopywatch.lake.tables import SCENES_RAW, lake_from_settings, open_table

    table = open_table(lake_from_settings(settings), SCENES_RAW, create=False)
    return sorted(table.to_pyarrow_table(columns=["raw_key"]).column("raw_key").to_pylist())


def catalog_scene_keys(settings) -> list[str]:
    from canopywatch.catalog import queries
    from canopywatch.catalog.schema import connect

    query = queries.Query.parse(CONF["bbox"], CONF["start"], CONF["end"])
    with connect(settings) as conn:
        return sorted(row["raw_key"] for row in queries.scenes_in(conn, query))


def test_every_scene_is_in_delta_and_postgis_exactly_once(first_run):
    settings = first_run[0].settings
    objects = sorted(stored_objects(settings))
    assert lake_scene_keys(settings) == objects
    assert catalog_scene_keys(settings) == objects


def test_the_run_exports_a_geopackage_for_gis_review(first_run):
    import geopandas as gpd

    settings = first_run[0].settings
    s3 = minio.s3_client(settings)
    listed = s3.list_objects_v2(Bucket=settings.exports_bucket, Prefix="geopackages/").get(
        "Contents", []
    )
    run_id = re.search(r"run_id=(manual__[^,\s]+)", first_run[1].stdout).group(1)
    key = f"geopackages/{export_label(run_id)}.gpkg"
    assert key in [o["Key"] for o in listed]
    body = s3.get_object(Bucket=settings.exports_bucket, Key=key)["Body"].read()
    path = Path(tempfile.mkdtemp()) / "review.gpkg"
    path.write_bytes(body)
    footprints = gpd.read_file(path, layer="scene_footprints")
    assert len(footprints) == len(stored_objects(settings))
    assert footprints.crs.to_epsg() == 4326


def test_poison_message_goes_to_the_dlq_with_the_error(first_run):
    settings = first_run[0].settings
    letters = [
        DeadLetter.from_json(v)
        for _, v in drain(settings, settings.topic("download-requests") + ".dlq")
    ]
    assert len(letters) == 1
    assert letters[0].key == "poison"
    assert "DownloadRequest" in letters[0].error and '"width": "x"' in letters[0].payload


def test_task_logs_say_what_was_found_and_where_it_went(first_run):
    _, result, _ = first_run
    output = result.stdout + result.stderr
    assert "found" in output and "acquisition day(s)" in output
    assert "s3://" in output


def test_rerunning_the_same_interval_adds_nothing(first_run, cdse):
    env = first_run[0]
    settings = env.settings
    objects_before = stored_objects(settings)
    announced_before = len(drain(settings, settings.topic("scenes-downloaded")))
    process_before = cdse.emulator.stats.count("process")
    result = airflow_dags_test(env, CONF)
    assert result.returncode == 0, result.stdout[-4000:]
    assert stored_objects(settings) == objects_before
    assert len(drain(settings, settings.topic("scenes-downloaded"))) == announced_before
    assert lake_scene_keys(settings) == sorted(objects_before)
    assert catalog_scene_keys(settings) == sorted(objects_before)
    assert cdse.emulator.stats.count("process") == process_before  # no processing units spent again


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({**CONF, "bbox": [-55.38, -7.10, -55.40, -7.08]}, "minx"),
        ({**CONF, "start": "2024-06-01", "end": "2024-05-01"}, "reversed"),
        ({**CONF, "bbox": [-56.0, -8.0, -54.0, -6.0]}, "more than the limit"),
    ],
)
def test_bad_input_fails_with_a_clear_message(airflow_env, conf, message):
    result = airflow_dags_test(airflow_env, conf)
    # dag.test() exits 1 with "DagRun failed" when the run failed
    assert result.returncode == 1 and "DagRun failed" in result.stderr, result.stderr[-4000:]
    assert message in result.stdout + result.stderr


def test_wrong_credentials_fail_clearly_and_the_secret_stays_out_of_logs(airflow_env, cdse):
    from dataclasses import replace

    secret = "wrong-" + uuid.uuid4().hex
    env = airflow_env.with_settings(replace(airflow_env.settings, cdse_client_secret=secret))
    result = airflow_dags_test(env, {**CONF, "aoi_name": "it-bad-credentials"})
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "DagRun failed" in result.stderr, output[-4000:]
    assert "invalid_client" in output
    assert secret not in output
    assert cdse.client_secret not in output
    assert json.dumps(CONF["bbox"])[1:-1].split(",")[0] in output
