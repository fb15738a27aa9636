"""scene_curation: the Cosmos task group renders from the dbt manifest, offline and fast."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "scene_curation.py"
MODELS = (
    "stg_scenes",
    "stg_alerts",
    "mart_area_observation_coverage",
    "mart_latest_usable_scene",
    "mart_alert_summary_weekly",
)


@pytest.fixture(scope="module")
def manifest():
    """The manifest Cosmos renders from (``scripts/bootstrap.sh dbt``: dbt parse, offline)."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "dbt"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def dag(manifest, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    mp.setenv("AIRFLOW__COSMOS__CACHE_DIR", str(tmp_path_factory.mktemp("cosmos")))

    def no_network(*args, **kwargs):
        raise AssertionError("DAG parsing must not open network connections")

    mp.setattr(socket.socket, "connect", no_network)
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(str(DAG_FILE))
    seconds = time.perf_counter() - started
    mp.undo()
    assert bag.import_errors == {}
    # Airflow kills a DAG file import after dagbag_import_timeout (30 s by default)
    assert seconds < 30, f"scene_curation took {seconds:.1f}s to parse"
    return bag.dags["scene_curation"]


def test_flow_spark_then_lake_then_catalog_then_dbt(dag):
    assert dag.get_task("convert_cogs").downstream_task_ids == {"record_cogs"}
    assert dag.get_task("record_cogs").downstream_task_ids == {"sync_catalog"}
    assert dag.get_task("sync_catalog").downstream_task_ids == {
        "dbt.stg_scenes.run",
        "dbt.stg_alerts.run",
    }


def test_cosmos_group_renders_every_model_with_its_tests_after_it(dag):
    ids = {t.task_id for t in dag.tasks}
    for model in MODELS:
        assert f"dbt.{model}.run" in ids
        assert f"dbt.{model}.test" in ids
        assert dag.get_task(f"dbt.{model}.run").downstream_task_ids == {f"dbt.{model}.test"}
    # marts wait for the tests of the staging models they read
    assert (
        "dbt.mart_latest_usable_scene.run"
        in dag.get_task("dbt.stg_scenes.test").downstream_task_ids
    )
    assert (
        "dbt.mart_alert_summary_weekly.run"
        in dag.get_task("dbt.stg_alerts.test").downstream_task_ids
    )
    # the relationships test spans two models: its own task, once both are built and tested
    (across,) = [t for t in dag.tasks if t.task_id.startswith("dbt.relationships_")]
    assert across.upstream_task_ids == {"dbt.stg_scenes.test", "dbt.mart_latest_usable_scene.test"}
    run = dag.get_task("dbt.stg_scenes.run")
    assert run.profile_config.profile_mapping.conn_id == "postgis_dbt"  # cw_dbt locally
    assert run.owner == "canopywatch" and run.retries > 0


def test_rendered_from_the_manifest_not_by_running_dbt(manifest):
    from cosmos.constants import LoadMode

    from canopywatch.airflow.dbt import dbt_load_method, dbt_manifest
    from canopywatch.settings import Settings

    path = dbt_manifest(Settings.from_env())
    assert path.exists()
    assert dbt_load_method(path) is LoadMode.DBT_MANIFEST
    nodes = json.loads(path.read_text())["nodes"]
    models = [n for n in nodes.values() if n["resource_type"] == "model"]
    # scene_curation renders the scene and alert models; the sensor models are sensor_ingest's
    assert {n["name"] for n in models if "sensors" not in n["tags"]} == set(MODELS)


def test_scheduled_on_the_scenes_raw_asset_and_triggerable_with_params(dag):
    from airflow.sdk.exceptions import ParamValidationError

    assets = list(dag.timetable.asset_condition.objects)
    assert [asset.name for asset in assets] == ["canopywatch.lake.scenes_raw"]
    params = dag.params
    assert params["scene_ids"] == [] and params["profile"] == "canopywatch-deflate"
    import copy

    bad = copy.deepcopy(params)
    with pytest.raises(ParamValidationError):
        bad["scene_ids"] = ["not-an-id"]
        bad.validate()


def test_spark_task_keeps_credentials_out_of_templates(dag, monkeypatch):
    task = dag.get_task("convert_cogs")
    assert task._conn_id == "spark_default"
    assert "env_vars" in task.template_fields and task.env_vars is None
    assert task.overwrite_rtif_after_execution is False
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"})
    )
    task._runtime_env = {"AWS_SECRET_ACCESS_KEY": "hidden"}
    hook = task._get_hook()
    assert hook._env_vars == {"AWS_SECRET_ACCESS_KEY": "hidden"}
    assert task.env_vars is None  # what Airflow renders and stores never holds it


def test_parse_does_not_import_the_heavy_libraries():
    code = (
        "import sys; sys.path.insert(0, 'dags'); import scene_curation;"
        "heavy = [m for m in ('rasterio', 'rio_cogeo', 'pyspark', 'deltalake', 'dbt.cli')"
        " if m in sys.modules]; print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "HEAVY=\n" in out.stdout + "\n", out.stdout[-500:]
