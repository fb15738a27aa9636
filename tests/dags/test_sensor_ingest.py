"""sensor_ingest: the streaming job, the PostGIS sync, then the dbt sensor models (Cosmos)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "sensor_ingest.py"
MODELS = ("stg_sensors", "sensor_health", "mart_aoi_daily_weather")


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "dbt"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    mp.setenv("AIRFLOW__COSMOS__CACHE_DIR", str(tmp_path_factory.mktemp("cosmos")))

    def no_network(*args, **kwargs):
        raise AssertionError("DAG parsing must not open network connections")

    mp.setattr(socket.socket, "connect", no_network)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAG_FILE))
    mp.undo()
    assert bag.import_errors == {}
    return bag.dags["sensor_ingest"]


def test_flow_and_schedule(dag):
    assert dag.schedule == "@hourly" or str(dag.timetable.summary) == "@hourly"
    assert dag.max_active_runs == 1
    stream = dag.get_task("stream_ingest")
    assert stream.downstream_task_ids == {"sync_sensors"}
    assert type(stream).__name__ == "StreamIngestOperator"
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt_sensors.")}
    for model in MODELS:
        assert f"dbt_sensors.{model}_run" in dbt_tasks or any(
            t.startswith(f"dbt_sensors.{model}") for t in dbt_tasks
        ), dbt_tasks
    # only the sensor models: the scene marts stay in scene_curation
    assert not any("mart_latest_usable_scene" in t for t in dbt_tasks)
    first = {t for t in dag.get_task("sync_sensors").downstream_task_ids}
    assert first and all(t.startswith("dbt_sensors.") for t in first)


def test_credentials_are_not_template_fields(dag):
    stream = dag.get_task("stream_ingest")
    assert "env_vars" in stream.template_fields  # the public ones only
    assert stream.application.endswith("spark/stream_ingest.py")
    assert not stream.application_args  # resolved when the task runs, from connections
