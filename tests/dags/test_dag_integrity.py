"""Every DAG imports offline and fast, with owners, retries and tags set."""

import socket
import time
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    def no_network(*args, **kwargs):
        raise AssertionError("DAG parsing must not open network connections")

    mp.setattr(socket.socket, "connect", no_network)
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(str(DAGS_DIR))
    bag.parse_seconds = time.perf_counter() - started
    yield bag
    mp.undo()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"deforestation_monitor", "catalog_sync"} <= set(dagbag.dags)


def test_parsing_fits_the_import_timeout(dagbag):
    # Airflow kills a DAG file import after dagbag_import_timeout (30 s by default)
    assert dagbag.parse_seconds < 30, f"DAG folder took {dagbag.parse_seconds:.1f}s to parse"


def test_owners_retries_tags(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
        assert any(t.retries > 0 for t in dag.tasks), f"{dag_id} never retries"


def test_monitor_params_and_shape(dagbag):
    dag = dagbag.dags["deforestation_monitor"]
    params = dag.params
    assert set(params.keys()) >= {"bbox", "start", "end", "max_cloud", "function", "aoi_name"}
    assert params.get_param("bbox").schema["minItems"] == 4
    assert "s2l2a_bands" in params.get_param("function").schema["enum"]
    ids = {t.task_id for t in dag.tasks}
    assert ids == {
        "resolve_areas",
        "plan_tiles",
        "search_tile",
        "estimate_cost",
        "publish_requests",
        "download_scenes",
        "summarize",
        "reconcile_lake",
        "lake_versions",
        "record_scenes",
        "sync_catalog",
        "export_review",
    }
    assert dag.get_task("download_scenes").pool == "cdse_api"
    # stored scenes the lake lacks are announced again before the lake writer runs
    assert dag.get_task("reconcile_lake").downstream_task_ids == {"lake_versions"}
    assert "reconcile_lake" in dag.get_task("download_scenes").downstream_task_ids
    assert dag.get_task("search_tile").pool == "cdse_api"
    # the processing units are estimated (and the budget checked) before anything is published
    assert "publish_requests" in dag.get_task("estimate_cost").downstream_task_ids


def test_bad_bbox_param_is_rejected_before_any_task(dagbag):
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    for bad in ([1, 2, 3], [1, 2, 3, "x"]):
        params = copy.deepcopy(dagbag.dags["deforestation_monitor"].params)
        with pytest.raises(ParamValidationError, match="bbox"):
            params["bbox"] = bad  # ParamsDict validates on assignment, as the trigger form does
            params.validate()
    good = copy.deepcopy(dagbag.dags["deforestation_monitor"].params)
    good["bbox"] = [-55.1, -10.05, -55.05, -10.0]
    assert good.validate()["bbox"] == [-55.1, -10.05, -55.05, -10.0]


def test_library_is_not_imported_heavily_at_parse_time():
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'dags');"
        "import deforestation_monitor;"
        "import catalog_sync;"
        "heavy = [m for m in ('sentinelhub', 'rasterio', 'deltalake', 'canopywatch.airflow.monitor') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=DAGS_DIR.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""
