"""Every DAG: what it imports (only canopywatch.airflow; nothing heavy at parse time), which
dotted-string callables it names (each resolves and takes the arguments it is given), and
the params and shape of the five DAGs of the pipeline (scene_curation's in
test_scene_curation.py, the monitor's task ids in test_dag_integrity.py)."""

from __future__ import annotations

import ast
import inspect
import json
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))
DAG_IDS = {
    "catalog_sync",
    "deforestation_detect_weekly",
    "deforestation_model_training",
    "deforestation_monitor",
    "scene_curation",
}
# a dotted path such as canopywatch.airflow.monitor.request_records
DOTTED = re.compile(r"^canopywatch(\.[A-Za-z_]\w*)+$")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    mp.setenv("AIRFLOW__COSMOS__CACHE_DIR", str(tmp_path_factory.mktemp("cosmos")))

    def no_network(*args, **kwargs):
        raise AssertionError("DAG parsing must not open network connections")

    mp.setattr(socket.socket, "connect", no_network)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS_DIR))
    yield bag
    mp.undo()


def test_the_five_dags_parse(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) >= DAG_IDS
    assert len(dagbag.dags) == len(DAG_FILES)  # one DAG per file, every file a DAG


# ------------------------------------------------------------------ imports
def canopywatch_imports(path: Path) -> list[str]:
    """Every module a DAG file imports from the product, at module level or in a task body."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if n == "canopywatch" or n.startswith("canopywatch.")]
    return found


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_files_import_only_the_airflow_glue(path):
    imports = canopywatch_imports(path)
    assert imports, f"{path.name} imports nothing from canopywatch"
    outside = [m for m in imports if not m.startswith("canopywatch.airflow")]
    assert outside == [], f"{path.name} imports {outside}; DAG files import canopywatch.airflow"


HEAVY = (
    "sentinelhub",
    "rasterio",
    "deltalake",
    "geopandas",
    "pyspark",
    "rio_cogeo",
    "psycopg",
    "dbt.cli",
    "canopywatch.download",
    "canopywatch.airflow.monitor",
    "canopywatch.airflow.weekly",
    "canopywatch.airflow.payloads",
)


@pytest.fixture(scope="module")
def heavy_at_parse_time() -> dict[str, list[str]]:
    """DAG file -> the heavy modules its import loaded, all files imported in one fresh process
    (one Airflow import instead of one per file; a module is charged to the first file)."""
    code = (
        "import importlib, json, sys; sys.path.insert(0, 'dags'); found = {}\n"
        f"for name in {[p.stem for p in DAG_FILES]!r}:\n"
        "    importlib.import_module(name)\n"
        f"    found[name] = [m for m in {HEAVY!r} if m in sys.modules"
        " and not any(m in seen for seen in found.values())]\n"
        "print('HEAVY=' + json.dumps(found))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    (line,) = [row for row in out.stdout.splitlines() if row.startswith("HEAVY=")]
    found: dict[str, list[str]] = json.loads(line.removeprefix("HEAVY="))
    return found


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_parsing_a_dag_file_imports_no_heavy_library(path, heavy_at_parse_time):
    assert heavy_at_parse_time[path.stem] == []


# ------------------------------------------------------------------ dotted-string callables
def dotted_callables(task) -> dict[str, str]:
    """Attribute name -> dotted path, for every string that names a product callable."""
    values = dict(vars(task))
    values.update(getattr(task, "partial_kwargs", None) or {})
    return {
        name: value
        for name, value in values.items()
        if isinstance(value, str) and DOTTED.match(value)
    }


def test_every_dotted_callable_the_dags_name_resolves(dagbag):
    from airflow.providers.common.compat.module_loading import import_string  # as Kafka's

    resolved = {}
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            for attr, path in dotted_callables(task).items():
                target = import_string(path)
                assert callable(target), f"{dag_id}.{task.task_id}.{attr}: {path} is not callable"
                resolved[f"{dag_id}.{task.task_id}.{attr}"] = (task, target)
    assert set(resolved) >= {
        "deforestation_monitor.publish_requests.producer_function",
        "deforestation_monitor.publish_requests.delivery_callback",
        "deforestation_monitor.download_scenes.apply_function_batch",
        "deforestation_monitor.record_scenes.apply_function_batch",
        "deforestation_detect_weekly.record_alerts.apply_function_batch",
        "scene_curation.record_cogs.apply_function_batch",
    }
    for name, (task, target) in resolved.items():
        signature = inspect.signature(target)
        if name.endswith(".apply_function_batch"):
            # the operator calls fn(messages, **apply_function_kwargs)
            signature.bind(["message"], **task.apply_function_kwargs)
        elif name.endswith(".producer_function"):
            # the mapped kwargs are what search_tile returns: TileSearch.producer_kwargs()
            signature.bind(label="area/r0c0", search="{}")
        elif name.endswith(".delivery_callback"):
            signature.bind(None, None)  # (err, msg), as confluent-kafka calls it


def test_the_producer_function_publishes_what_search_tile_hands_over():
    from canopywatch.airflow.monitor import request_records
    from canopywatch.airflow.payloads import TileSearch
    from canopywatch.messages import DownloadRequest

    request = DownloadRequest(
        request_id="r1",
        aoi_id="demo",
        tile_id="r0c0",
        function="s2l2a_bands",
        epsg=32721,
        utm_bounds=(676700.0, 9214870.0, 682250.0, 9220430.0),
        width=555,
        height=556,
        bbox=(-55.4, -7.1, -55.35, -7.05),
        acquired_at=datetime(2024, 3, 1, 14, 12, tzinfo=UTC),
        time_from=datetime(2024, 3, 1, tzinfo=UTC),
        time_to=datetime(2024, 3, 2, tzinfo=UTC),
        max_cloud=80.0,
        resolution=10.0,
    )
    kwargs = TileSearch(label="demo/r0c0", requests=(request.to_json(),)).producer_kwargs()
    assert json.loads(json.dumps(kwargs)) == kwargs  # what XCom stores
    assert list(request_records(**kwargs)) == [("r1", request.to_json())]


# ------------------------------------------------------------------ params and shape
def edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_monitor_flow(dagbag):
    dag = dagbag.dags["deforestation_monitor"]
    assert dag.schedule == "@daily"
    assert {
        ("resolve_areas", "plan_tiles"),
        ("plan_tiles", "search_tile"),
        ("search_tile", "publish_requests"),
        ("search_tile", "summarize"),
        ("publish_requests", "download_scenes"),
        ("download_scenes", "summarize"),
        ("lake_versions", "record_scenes"),
        ("lake_versions", "export_review"),
        ("record_scenes", "sync_catalog"),
        ("sync_catalog", "export_review"),
    } <= edges(dag)
    assert type(dag.get_task("search_tile")).__name__ == "DecoratedMappedOperator"
    publish = dag.get_task("publish_requests")
    assert publish.partial_kwargs["topic"] == settings_topic("download-requests")
    assert [a.name for a in dag.get_task("record_scenes").outlets] == [
        "canopywatch.lake.scenes_raw"
    ]
    assert dag.get_task("resolve_areas").retries == 0  # bad input fails at once
    assert dag.params["max_cloud"] == 80 and dag.params["function"] == "s2l2a_bands"


def test_monitor_tasks_use_the_connection_ids_of_canopywatch_airflow_ids(dagbag):
    from canopywatch.airflow import ids

    dag = dagbag.dags["deforestation_monitor"]
    download = dag.get_task("download_scenes")
    assert download.kafka_config_id == ids.KAFKA_CONN
    assert download.apply_function_kwargs["cdse_conn_id"] == ids.CDSE_CONN
    assert download.apply_function_kwargs["aws_conn_id"] == ids.S3_CONN
    assert dag.get_task("record_scenes").kafka_config_id == ids.KAFKA_LAKE_CONN
    assert download.pool == dag.get_task("search_tile").pool == ids.CDSE_POOL


def test_weekly_params_and_flow(dagbag):
    dag = dagbag.dags["deforestation_detect_weekly"]
    params = dag.params
    assert {"bbox", "aoi_name", "end", "method", "history_start", "monitor_start"} <= set(params)
    assert {"forest_mask", "plantations"} <= set(params)
    assert params["forest_mask"] is None and params["plantations"] is None
    assert params["method"] == "harmonic"
    assert set(params.get_param("method").schema["enum"]) == {"harmonic", "baseline", "xgboost"}
    marts = {
        f"alert_marts.{model}.{step}"
        for model in ("stg_alerts", "mart_alert_summary_weekly")
        for step in ("run", "test")
    }
    assert {t.task_id for t in dag.tasks} == {
        "resolve_areas",
        "detect_area",
        "record_alerts",
        "sync_catalog",
        "report",
    } | marts
    assert edges(dag) >= {
        ("resolve_areas", "detect_area"),
        ("detect_area", "record_alerts"),
        ("detect_area", "report"),
        ("record_alerts", "sync_catalog"),
        ("sync_catalog", "alert_marts.stg_alerts.run"),
        ("alert_marts.stg_alerts.test", "alert_marts.mart_alert_summary_weekly.run"),
        ("alert_marts.mart_alert_summary_weekly.test", "report"),
    }
    assert dag.get_task("resolve_areas").retries == 0
    assert dag.get_task("record_alerts").topics == [settings_topic("alerts")]
    assert dag.schedule == "@weekly"


def settings_topic(name: str) -> str:
    from canopywatch.settings import Settings

    return Settings.from_env().topic(name)


def test_catalog_sync_params_and_shape(dagbag):
    dag = dagbag.dags["catalog_sync"]
    assert set(dag.params) == {"rebuild"}
    assert dag.params["rebuild"] is False
    assert dag.params.get_param("rebuild").schema["type"] == "boolean"
    assert [t.task_id for t in dag.tasks] == ["sync"]
    assert dag.schedule == "@hourly"


def test_model_training_shape(dagbag):
    from canopywatch.airflow.dag_config import ML_DIR

    dag = dagbag.dags["deforestation_model_training"]
    assert set(dag.params) == set()
    (task,) = dag.tasks
    assert task.task_id == "dvc_repro" and "dvc repro" in task.bash_command
    assert Path(task.cwd) == ML_DIR and (ML_DIR / "dvc.yaml").exists()
    assert dag.schedule is None  # manual only


# ------------------------------------------------------------------ the ids module
def test_the_ids_module_loads_no_airflow_and_names_what_the_platform_creates(tmp_path):
    code = (
        "import sys; import canopywatch.airflow.ids as ids;"
        "print('AIRFLOW=' + str('airflow' in sys.modules or 'airflow.sdk' in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "AIRFLOW=False" in out.stdout
    from canopywatch.airflow import ids
    from canopywatch.settings import Settings
    from canopywatch_dev.platform import airflow_local

    created = airflow_local.connections(Settings(home=tmp_path))
    assert set(ids.CONNECTIONS) == set(created)  # every id the DAGs use exists locally, no more
    assert airflow_local.POOL[0] == ids.CDSE_POOL
    assert ids.SCENES_RAW.name == ids.SCENES_RAW_ASSET_NAME == "canopywatch.lake.scenes_raw"
