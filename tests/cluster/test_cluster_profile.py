"""The cluster profile end to end: monitoring, curation and weekly detection on the
CeleryExecutor, 3 Kafka brokers, Spark standalone and erasure-coded MinIO, while one Kafka
broker, one Celery worker and one Spark worker are killed with ``kill -9`` and restarted.

The test starts a cluster of its own (home ``.platform/cluster-test``, ports 31000-31600,
so it never meets ``make platform-up PROFILE=cluster``), removed and formatted afresh each
time, and stops it at the end (the logs stay under its home). At the end every scene is
stored once in MinIO, Delta and PostGIS, and every alert once. The figures (start, each
run, the kills) are written to ``.platform/cluster-test/timings.json`` and printed.

``make test`` runs it in a pytest run of its own after the rest of the suite (marker
``cluster``, deselected from the first run); ``make test-cluster`` runs it alone (13-17 min
on 2 shared cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psutil
import pytest

from canopywatch.settings import REPO_ROOT, Settings
from canopywatch_dev.platform import airflow_local, process
from canopywatch_dev.platform.cluster import airflow as cluster_airflow
from canopywatch_dev.platform.cluster import kafka as cluster_kafka
from canopywatch_dev.platform.cluster import spark as cluster_spark
from canopywatch_dev.platform.cluster import stack
from canopywatch_dev.platform.cluster.profile import Profile
from canopywatch_dev.platform.environment import with_credentials
from tests.cluster.airflow_api import AirflowApi

pytestmark = [pytest.mark.cluster, pytest.mark.service, pytest.mark.slow]

PROFILE = Profile(home=REPO_ROOT / ".platform" / "cluster-test", port_base=31000)
AREA = stack.WORLD["areas"][0]
MONITOR, CURATION, WEEKLY = "deforestation_monitor", "scene_curation", "deforestation_detect_weekly"
CONF = {
    "bbox": AREA["bbox"],
    "start": "2023-11-01",
    "end": "2024-05-31",
    "max_cloud": 70,
    "function": "s2l2a_bands",
    "aoi_name": AREA["name"],
}
DETECT_CONF = {"bbox": CONF["bbox"], "aoi_name": CONF["aoi_name"], "end": CONF["end"]}
RUN_TIMEOUT_S = 1500
DOWN_FOR_S = 15  # how long a killed process stays dead before it is restarted


@dataclass
class Cluster:
    profile: Profile
    platform: Settings  # what the cluster was started with (restarts use it)
    settings: Settings  # the same with the cluster's credentials (queries use it)
    api: AirflowApi
    timings: dict[str, float] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A fresh cluster of the test's own, up; stopped afterwards (its logs stay)."""
    stack.down(PROFILE)  # leftovers of an interrupted run
    shutil.rmtree(PROFILE.home, ignore_errors=True)
    started = time.monotonic()
    settings = stack.up(PROFILE)  # raises PlatformError: the test errors, never skips
    user, password = airflow_local.login(settings)
    api = AirflowApi(airflow_local.api_url(settings), user, password)
    for dag_id in (MONITOR, CURATION, WEEKLY):
        api.wait_for_dag(dag_id)
    found = Cluster(PROFILE, settings, with_credentials(settings), api)
    found.timings["cluster_up_s"] = time.monotonic() - started
    try:
        yield found
    finally:
        (PROFILE.home / "timings.json").write_text(
            json.dumps({"timings": found.timings, "kills": found.kills}, indent=2) + "\n",
            encoding="utf-8",
        )
        print("\ncluster test figures:", json.dumps(found.timings, indent=1), found.kills)
        stack.down(PROFILE)
        # nothing of the cluster outlives it: not the task processes of the killed worker
        # either (each task runs in a process group of its own)
        assert cluster_processes_left() == [], "cluster processes left after stack.down"


def cluster_processes_left() -> list[str]:
    """Processes still running inside the cluster's home (pid and command line)."""
    return [
        f"{proc.pid} {' '.join(proc.info.get('cmdline') or [])}"
        for proc in process.processes_in(PROFILE.home)
    ]


# -- killing -------------------------------------------------------------------------


def kill_9(cluster: Cluster, name: str, *, group: bool) -> int:
    """``kill -9`` process ``name`` (its whole process group with ``group``); its pid."""
    pid = process.read_pid(cluster.settings, name)
    assert pid is not None, f"{name} is not running"
    if group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process.is_alive(pid), f"{name} (pid {pid}) survived kill -9"
    return pid


def kill_and_restart(
    cluster: Cluster, name: str, restart: Callable[[], None], *, group: bool, during: str
) -> None:
    killed_at = time.monotonic()
    pid = kill_9(cluster, name, group=group)
    time.sleep(DOWN_FOR_S)
    restart()
    new_pid = process.read_pid(cluster.settings, name)
    assert new_pid is not None and new_pid != pid
    cluster.kills.append({"process": name, "pid": pid, "during": during, "new_pid": new_pid,
                          "back_after_s": round(time.monotonic() - killed_at, 1)})  # fmt: skip


def task_states(cluster: Cluster, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {t["task_id"]: t["state"] for t in cluster.api.task_instances(dag_id, run_id)}


def wait_for_task_running(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        states = task_states(cluster, dag_id, run_id)
        if states.get(task_id) == "running":
            return
        assert cluster.api.run_state(dag_id, run_id) not in {"success", "failed"}, states
        time.sleep(2)
    raise TimeoutError(f"{task_id} of {run_id} never ran")


def celery_worker_running(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> str:
    """The Celery worker whose task process runs ``task_id`` (titled ``airflow worker --
    <task instance id>``)."""
    ti_id = next(t["id"] for t in cluster.api.task_instances(dag_id, run_id)
                 if t["task_id"] == task_id)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for name in cluster_airflow.WORKERS:
            pid = process.read_pid(cluster.settings, name)
            if pid is None:
                continue
            for child in psutil.Process(pid).children(recursive=True):
                try:
                    if ti_id in " ".join(child.cmdline()):
                        return name
                except psutil.Error:
                    continue
        time.sleep(1)
    raise AssertionError(f"no Celery worker runs {task_id} (task instance {ti_id})")


def try_number(cluster: Cluster, dag_id: str, run_id: str, task_id: str) -> int:
    return next(int(t["try_number"]) for t in cluster.api.task_instances(dag_id, run_id)
                if t["task_id"] == task_id)  # fmt: skip


def task_log(cluster: Cluster, dag_id: str, task_id: str) -> str:
    logs = airflow_local.airflow_home(cluster.settings) / "logs" / f"dag_id={dag_id}"
    return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in sorted(logs.glob(f"run_id=*/task_id={task_id}/attempt=*.log")))  # fmt: skip


def in_sync_replicas(settings: Settings) -> dict[str, int]:
    """The smallest ISR of each of the cluster's topics."""
    metadata = cluster_kafka.admin_client(settings).list_topics(timeout=10)
    return {
        name: min(len(p.isrs) for p in topic.partitions.values())
        for name, topic in metadata.topics.items()
        if name.startswith(settings.topic_prefix + ".")
    }


# -- what was stored -----------------------------------------------------------------


def expected_scene_days() -> set[date]:
    from canopywatch_dev.cdse_world import AreaSpec, World

    world = World.from_specs([AreaSpec.from_json(AREA)])
    start, end = date.fromisoformat(CONF["start"]), date.fromisoformat(CONF["end"])
    return {
        s.datetime.date()
        for s in world.scenes
        if start <= s.datetime.date() <= end and s.acquisition.cloud_cover <= CONF["max_cloud"]
    }


def object_keys(settings: Settings, suffix: str) -> list[str]:
    from canopywatch_dev.platform import minio

    s3 = minio.s3_client(settings)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix="sentinel_hub/"
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
    return sorted(keys)


def delta_column(settings: Settings, table_name: str, column: str) -> list[Any]:
    from canopywatch.lake import tables

    spec = {"scenes_raw": tables.SCENES_RAW, "scenes_cog": tables.SCENES_COG,
            "alerts": tables.ALERTS}[table_name]  # fmt: skip
    table = tables.open_table(tables.lake_from_settings(settings), spec, create=False)
    return sorted(table.to_pyarrow_table(columns=[column]).column(column).to_pylist())


def postgis_rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn:
        return sorted(tuple(r) for r in conn.execute(query).fetchall())  # type: ignore[arg-type]


def published_alert_ids(settings: Settings) -> list[str]:
    from confluent_kafka import Consumer

    from canopywatch.messages import AlertPublished

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"cluster-test-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topic("alerts")])
    ids, idle = [], 0
    while idle < 5:
        message = consumer.poll(2.0)
        if message is None:
            idle += 1
            continue
        assert message.error() is None, message.error()
        ids.append(AlertPublished.from_json(message.value()).alert_id)
    consumer.close()
    return ids


# -- the runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monitoring(cluster: Cluster) -> str:
    """The monitoring run; one broker and the Celery worker downloading are killed."""
    api = cluster.api
    started = time.monotonic()
    run_id = api.trigger(MONITOR, CONF)
    api.unpause(MONITOR)
    api.unpause(CURATION)
    wait_for_task_running(cluster, MONITOR, run_id, "download_scenes")
    worker = celery_worker_running(cluster, MONITOR, run_id, "download_scenes")
    broker_pid = kill_9(cluster, "kafka-2", group=False)

    def restart_both() -> None:
        cluster_kafka.up(cluster.profile, cluster.platform)
        cluster_airflow.up(cluster.profile, cluster.platform)

    kill_and_restart(cluster, worker, restart_both, group=True,
                     during=f"{MONITOR}.download_scenes")  # fmt: skip
    new_broker = process.read_pid(cluster.settings, "kafka-2")
    assert new_broker is not None and new_broker != broker_pid
    cluster.kills.insert(0, {"process": "kafka-2", "pid": broker_pid, "new_pid": new_broker,
                             "during": f"{MONITOR}.download_scenes"})  # fmt: skip
    state = api.wait_finished(MONITOR, run_id, RUN_TIMEOUT_S)
    cluster.timings["monitoring_run_s"] = time.monotonic() - started
    assert state == "success", task_states(cluster, MONITOR, run_id)
    # the task the killed worker ran was lost with it and ran again
    assert try_number(cluster, MONITOR, run_id, "download_scenes") >= 2
    return run_id


def _executor_running_on(profile: Profile, worker_port: int) -> bool:
    """Whether the Spark master lists cores of an application in use on that worker."""
    state = cluster_spark.master_state(profile) or {}
    return any(
        int(worker.get("port", -1)) == worker_port and int(worker.get("coresused", 0)) > 0
        for worker in state.get("workers", [])
        if isinstance(worker, dict)
    )


@pytest.fixture(scope="module")
def curation(cluster: Cluster, monitoring: str) -> list[str]:
    """The asset-triggered curation run(s); a Spark worker is killed during the COG job."""
    api = cluster.api
    started = time.monotonic()
    deadline = started + RUN_TIMEOUT_S
    while not api.runs(CURATION):
        assert time.monotonic() < deadline, "record_scenes never triggered scene_curation"
        time.sleep(3)
    while not cluster_spark.master_state(cluster.profile)["activeapps"]:  # type: ignore[index]
        assert time.monotonic() < deadline, "the COG job never reached the Spark master"
        time.sleep(1)
    # kill spark-worker-1 once an executor of the job runs on it (the COG job no longer reads
    # Delta first, so a fixed wait could outlast a short job)
    worker_port = cluster.profile.spark_worker_port(1)
    while not _executor_running_on(cluster.profile, worker_port):
        assert time.monotonic() < deadline, "no COG executor ever ran on spark-worker-1"
        assert cluster_spark.master_state(cluster.profile)["activeapps"], (  # type: ignore[index]
            "the COG job ended before an executor ran on spark-worker-1"
        )
        time.sleep(0.5)
    kill_and_restart(cluster, "spark-worker-1",
                     lambda: cluster_spark.up(cluster.profile, cluster.platform), group=False,
                     during=f"{CURATION}.convert_cogs")  # fmt: skip
    while True:
        runs = api.runs(CURATION)
        if all(r["state"] in {"success", "failed"} for r in runs):
            break
        assert time.monotonic() < deadline, f"scene_curation still running: {runs}"
        time.sleep(5)
    cluster.timings["curation_s"] = time.monotonic() - started
    assert {r["state"] for r in runs} == {"success"}, [
        task_states(cluster, CURATION, r["dag_run_id"]) for r in runs
    ]
    # the executor on the killed worker was lost mid-job; the job finished on what was left
    assert f"worker lost: 127.0.0.1:{worker_port}" in task_log(cluster, CURATION, "convert_cogs")
    return [r["dag_run_id"] for r in runs]


@pytest.fixture(scope="module")
def weekly(cluster: Cluster, curation: list[str]) -> str:
    api = cluster.api
    started = time.monotonic()
    run_id = api.trigger(WEEKLY, DETECT_CONF)
    api.unpause(WEEKLY)
    state = api.wait_finished(WEEKLY, run_id, RUN_TIMEOUT_S)
    cluster.timings["weekly_run_s"] = time.monotonic() - started
    assert state == "success", task_states(cluster, WEEKLY, run_id)
    # every run of the DAG (the scheduled one unpausing created, with no registered area)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not all(r["state"] in {"success", "failed"} for r in api.runs(WEEKLY)):
        assert time.monotonic() < deadline
        time.sleep(5)
    return run_id


def test_the_three_dags_run_through_the_kills_and_store_every_scene_and_alert_once(
    cluster: Cluster, monitoring: str, curation: list[str], weekly: str
) -> None:
    settings = cluster.settings
    # the kills happened mid-run, and what was killed runs again
    assert [k["process"] for k in cluster.kills] == ["kafka-2", cluster.kills[1]["process"],
                                                     "spark-worker-1"]  # fmt: skip
    assert cluster.kills[1]["process"] in cluster_airflow.WORKERS
    assert cluster_kafka.brokers_up(settings) == {1, 2, 3}
    deadline = time.monotonic() + 120  # the restarted broker catches up: every ISR full again
    while set(in_sync_replicas(settings).values()) != {3}:
        assert time.monotonic() < deadline, in_sync_replicas(settings)
        time.sleep(5)
    assert len(cluster_spark.alive_workers(cluster.profile)) == 2
    assert cluster_airflow.worker_ping(cluster.profile, settings) == set(cluster_airflow.WORKERS)

    # every scene once: MinIO, Delta scenes_raw and PostGIS hold the same keys, no duplicate
    raw = object_keys(settings, "/raw.tif")
    days = expected_scene_days()
    assert len(days) >= 3
    assert len(raw) == len(set(raw)) == len(days)
    assert {k.split("/")[3][:8] for k in raw} == {d.strftime("%Y%m%d") for d in days}
    assert delta_column(settings, "scenes_raw", "raw_key") == raw
    assert [r[0] for r in postgis_rows(settings, "SELECT raw_key FROM scenes")] == raw
    # and its COG once, beside it, recorded once
    cogs = [k.replace("/raw.tif", "/cog.tif") for k in raw]
    assert object_keys(settings, "/cog.tif") == cogs
    assert delta_column(settings, "scenes_cog", "cog_key") == cogs
    assert postgis_rows(settings, "SELECT raw_key, cog_key FROM scenes") == list(
        zip(raw, cogs, strict=True)
    )

    # every alert once: published, in Delta, in PostGIS
    published = published_alert_ids(settings)
    assert published, "the area has clearings the detector alerts on"
    delta_alerts = delta_column(settings, "alerts", "alert_id")
    assert delta_alerts == sorted(set(published))
    assert [r[0] for r in postgis_rows(settings, "SELECT alert_id FROM alerts")] == delta_alerts
    cluster.timings["scenes"] = len(raw)
    cluster.timings["alerts"] = len(delta_alerts)
