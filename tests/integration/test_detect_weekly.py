"""deforestation_detect_weekly end to end on the scenes the monitoring run stored."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer
from rasterio.io import MemoryFile

from canopywatch.messages import AlertPublished
from canopywatch_dev.platform import minio
from tests.integration.conftest import CONF, airflow_dags_test

pytestmark = [pytest.mark.service, pytest.mark.slow]

WEEKLY = "deforestation_detect_weekly"
DETECT_CONF = {"bbox": CONF["bbox"], "aoi_name": CONF["aoi_name"], "end": CONF["end"]}


def alert_ids_published(settings) -> list[str]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"it-alerts-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topic("alerts")])
    ids, idle = [], 0
    while idle < 3:
        message = consumer.poll(2.0)
        if message is None:
            idle += 1
            continue
        ids.append(AlertPublished.from_json(message.value()).alert_id)
    consumer.close()
    return ids


def delta_alert_ids(settings) -> list[str]:
    from canopywatch.lake.tables import ALERTS, lake_from_settings, open_table

    table = open_table(lake_from_settings(settings), ALERTS)
    return sorted(table.to_pyarrow_table(columns=["alert_id"]).column("alert_id").to_pylist())


def postgis_alert_ids(settings) -> list[str]:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn:
        return sorted(r[0] for r in conn.execute("SELECT alert_id FROM alerts").fetchall())


@pytest.fixture(scope="module")
def weekly_run(first_run):
    env = first_run[0]
    assert first_run[1].returncode == 0
    return env, airflow_dags_test(env, DETECT_CONF, dag_id=WEEKLY)


def test_weekly_run_scores_the_area_and_exports_for_review(weekly_run):
    env, result = weekly_run
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # one detector on every machine: the default method, never a machine-dependent model
    assert "scoring with harmonic-v1 (method harmonic)" in output
    assert "scene(s) scored with harmonic-v1" in output
    s3 = minio.s3_client(env.settings)
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=env.settings.exports_bucket, Prefix="alerts/").get(
            "Contents", []
        )
    ]
    assert any(k.endswith(".gpkg") for k in keys) and any(k.endswith(".png") for k in keys)
    png = s3.get_object(
        Bucket=env.settings.exports_bucket, Key=next(k for k in keys if k.endswith(".png"))
    )
    assert png["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"
    # the per-pixel layers beside each tile's alerts: the forest baseline and the disturbance
    # dates, whose disturbed pixels lie inside the monitored forest
    baselines = [
        o["Key"]
        for o in s3.list_objects_v2(
            Bucket=env.settings.exports_bucket, Prefix="forest_baseline/"
        ).get("Contents", [])
    ]
    assert (env.settings.home / "exports" / baselines[0]).exists()
    layers = {}
    for name, listed in (("forest_baseline", baselines), ("disturbance", keys)):
        key = next(k for k in listed if k.endswith(f"_{name}.tif"))
        with (
            MemoryFile(
                s3.get_object(Bucket=env.settings.exports_bucket, Key=key)["Body"].read()
            ) as f,
            f.open() as src,
        ):
            layers[name] = src.read()
    first_date, _, status, _ = layers["disturbance"]
    forest = layers["forest_baseline"][0] == 1
    assert forest.any() and ((status == 1) | (status == 2)).any()
    assert forest[status > 0].all() and (first_date[status > 0] >= 20_000_101).all()


def test_alerts_flow_kafka_to_delta_to_postgis_once(weekly_run):
    settings = weekly_run[0].settings
    published = alert_ids_published(settings)
    assert published, "the test area has a clearing the detector should alert on"
    assert sorted(set(published)) == delta_alert_ids(settings) == postgis_alert_ids(settings)


def test_every_alert_was_scored_by_the_default_detector_on_every_machine(weekly_run):
    """One detector in CI and on every machine: no trained model decides what scores (the
    model folder is git-ignored), so every stored alert names harmonic / harmonic-v1."""
    from canopywatch.catalog.schema import connect
    from canopywatch.detect.detector import DEFAULT_METHOD, HARMONIC_VERSION
    from canopywatch.lake.tables import ALERTS, lake_from_settings, open_table

    assert (DEFAULT_METHOD, HARMONIC_VERSION) == ("harmonic", "harmonic-v1")
    settings = weekly_run[0].settings
    table = open_table(lake_from_settings(settings), ALERTS).to_pyarrow_table()
    assert table.num_rows > 0
    assert set(zip(table.column("method").to_pylist(), table.column("model_version").to_pylist(),
                   strict=True)) == {("harmonic", "harmonic-v1")}  # fmt: skip
    with connect(settings) as conn:
        scored = conn.execute("SELECT DISTINCT method, model_version FROM alerts").fetchall()
    assert scored == [("harmonic", "harmonic-v1")]


def test_rerunning_the_week_leaves_the_alert_tables_unchanged(weekly_run):
    env = weekly_run[0]
    before = (delta_alert_ids(env.settings), postgis_alert_ids(env.settings))
    result = airflow_dags_test(env, DETECT_CONF, dag_id=WEEKLY)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert (delta_alert_ids(env.settings), postgis_alert_ids(env.settings)) == before
