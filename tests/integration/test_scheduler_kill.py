"""``kill -9`` of the Airflow scheduler during a real ``deforestation_monitor`` run (issue 10,
item 9): nothing lost or duplicated, no canary in task logs, XCom or rendered fields.

The run is the real DAG on a real Airflow 3 (api-server, scheduler, dag-processor, triggerer;
LocalExecutor) of a platform instance of its own (``canopywatch_dev.faults.instance``: its
own home under /tmp, free ports, its own PostgreSQL holding the Airflow metadata database,
Kafka, MinIO and the CDSE endpoint, canary credentials in every connection); the running
platform is never touched. At a random moment of a random task (the seed decides; replay with
``CANOPYWATCH_FAULTS_SEED=<seed>``) the scheduler's whole process group gets ``kill -9``; after
a random 1-6 s it is restarted as ``platform up airflow`` (and the watchdog) does. The
restarted scheduler resets the task instances the dead one left running, and they run again
as a new try (a run that still fails is re-run: the documented repair). Then the campaign's
checker counts every scene the run's window holds (planned independently, by the library's
``plan`` step) in MinIO, Delta ``scenes_raw`` and PostGIS ``scenes``, and the canary scan
reads the task and service logs, the metadata database's ``xcom.value`` and
``rendered_task_instance_fields.rendered_fields``, Delta, Kafka and every stored object,
each scan first finding a control canary planted for it.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from canopywatch_dev.faults import airflow_run
from canopywatch_dev.faults.checker import (
    CONTROL_KEY,
    _objects,
    check,
    expected_scene_keys,
    file_canary_hits,
    metadata_canary_hits,
    metadata_counts,
)
from canopywatch_dev.faults.driver import Campaign
from canopywatch_dev.faults.instance import running
from canopywatch_dev.platform import airflow_local
from tests.cluster.airflow_api import AirflowApi

pytestmark = [pytest.mark.service, pytest.mark.slow]

DAG_ID = "deforestation_monitor"
# the tasks the kill may fall in (every one retried by the DAG; resolve_areas and
# estimate_cost are not: bad input fails at once)
TARGETS = (
    "plan_tiles",
    "search_tile",
    "publish_requests",
    "download_scenes",
    "summarize",
    "reconcile_lake",
    "lake_versions",
    "record_scenes",
    "sync_catalog",
    "export_review",
)
RUN_TIMEOUT_S = 420
POLL_S = 0.5


def _seed() -> int:
    value = os.environ.get("CANOPYWATCH_FAULTS_SEED")
    return int(value) if value else random.SystemRandom().randrange(10**6)


def _running(api: AirflowApi, run_id: str) -> list[dict[str, Any]]:
    return [t for t in api.task_instances(DAG_ID, run_id) if t["state"] == "running"]


def _kill_during(api: AirflowApi, instance, run_id: str, target: str, delay: float):
    """Wait for ``target`` to run, ``delay`` s more, then ``kill -9`` the scheduler's process
    group while a task runs (the next one to run if ``target`` ended meanwhile): the task
    instances running at that moment."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(t["task_id"] == target for t in _running(api, run_id)):
        state = api.run_state(DAG_ID, run_id)
        assert state not in {"success", "failed"}, f"the run ended ({state}) before {target} ran"
        assert time.monotonic() < deadline, f"{target} never ran"
        time.sleep(POLL_S)
    time.sleep(delay)
    while True:
        now = _running(api, run_id)
        if now:
            airflow_run.kill_scheduler(instance)
            return now
        assert api.run_state(DAG_ID, run_id) not in {"success", "failed"}, "no task ran again"
        assert time.monotonic() < deadline, "no task ran after the moment"
        time.sleep(0.1)


def _controlled(hits: list[str], marker: str, expected: int, place: str) -> list[str]:
    """The hits without the control ones; there must be ``expected`` of those."""
    control = [h for h in hits if marker in h]
    assert len(control) == expected, f"the {place} scan did not find its control canary: {hits}"
    return [h for h in hits if marker not in h]


def test_kill_9_of_the_scheduler_loses_duplicates_and_leaks_nothing(tmp_path):
    seed = _seed()
    print(f"scheduler kill seed {seed} (replay: CANOPYWATCH_FAULTS_SEED={seed})")
    replay = f"seed {seed}"
    began = time.monotonic()
    figures: dict[str, float] = {}
    with running() as instance:
        settings, canaries = instance.settings, instance.canaries
        state = tmp_path / "state"
        driver = Campaign(instance, state, seed)  # the campaign's window and plan step
        rng = driver.rng
        conf = driver._conf()
        target, delay, downtime = rng.choice(TARGETS), rng.uniform(0.0, 1.5), rng.uniform(1, 6)
        if target == TARGETS[-1]:
            # the run's last task has no successor: a delay that outlasts it would leave no
            # task to kill the scheduler during, so the kill falls at its start
            delay = 0.0
        print(f"{replay}: kill -9 scheduler during {target} (+{delay:.1f} s, down "
              f"{downtime:.1f} s), conf {conf}")  # fmt: skip
        # what the window holds, planned by the library outside Airflow (state/plan/plan.json)
        assert driver._attempt("plan", "plan", conf, 1) == 0, replay
        figures["instance_s"] = time.monotonic() - began
        try:
            airflow_run.up(instance)
            api = AirflowApi(airflow_local.api_url(settings), *airflow_local.login(settings))
            api.wait_for_dag(DAG_ID)
            figures["airflow_up_s"] = time.monotonic() - began - figures["instance_s"]
            api.unpause(DAG_ID)
            run_started = time.monotonic()
            run_id = api.trigger(DAG_ID, conf)
            killed = _kill_during(api, instance, run_id, target, delay)
            killed_at = time.monotonic()
            time.sleep(downtime)
            airflow_run.up(instance)  # as `platform up airflow` and the watchdog do
            figures["scheduler_back_s"] = time.monotonic() - killed_at
            outcome = api.wait_finished(DAG_ID, run_id, RUN_TIMEOUT_S)
            figures["run_s"] = time.monotonic() - run_started
            tries = {
                (t["task_id"], t["map_index"]): int(t["try_number"])
                for t in api.task_instances(DAG_ID, run_id)
            }
            result = check(settings, state)
            rerun = outcome != "success" or result.total.lost > 0
            if rerun:  # the documented repair: the same run again
                second = api.trigger(DAG_ID, conf)
                outcome = api.wait_finished(DAG_ID, second, RUN_TIMEOUT_S)
                result = check(settings, state)
            left_running = airflow_run.orphans(instance)
        finally:
            airflow_run.down(instance)
            orphans = airflow_run.end_orphans(instance)
        names = [f"{t['task_id']}[{t['map_index']}] try {t['try_number']}" for t in killed]
        print(f"{replay}: killed during {', '.join(names)}; run {outcome}; tries {tries}; "
              f"{result.describe()}; {len(orphans)} orphaned process(es) after down "
              f"({len(left_running)} processes of the instance's Airflow at the end)")  # fmt: skip

        # -- nothing lost, nothing duplicated ------------------------------------------
        assert outcome == "success", (replay, tries)
        assert result.expected_scenes > 0, (replay, conf)
        assert result.total.lost == 0 and result.total.duplicated == 0, (
            replay,
            result.describe(),
        )
        stored = {k for k in _objects(settings, settings.bucket) if k.endswith("/raw.tif")}
        assert stored == expected_scene_keys(state), replay  # nothing else either
        # a task instance running at the kill ran again as a new try, unless it had
        # reported its end just before (its state was in; only the acknowledgement was lost)
        again = [t for t in killed if tries[t["task_id"], t["map_index"]] > int(t["try_number"])]

        # -- canaries --------------------------------------------------------------------
        control = f"control {canaries.pg_password}"
        roots = airflow_run.log_roots(instance)
        task_logs = list((roots[0]).rglob("attempt=*.log"))
        assert len(task_logs) >= len(tries), (replay, len(task_logs))
        marker = roots[0] / "canary-control.log"
        marker.write_text(control + "\n", encoding="utf-8")
        try:
            log_hits = file_canary_hits(roots, canaries.values())
        finally:
            marker.unlink()
        log_hits = _controlled(log_hits, marker.name, 1, "log")
        counts = metadata_counts(settings)
        assert counts["xcom"] > 0 and counts["rendered_task_instance_fields"] > 0, counts
        db_hits = metadata_canary_hits(settings, canaries.values(), control=control)
        db_hits = _controlled(db_hits, f" {CONTROL_KEY}:", 2, "metadata database")
        assert metadata_canary_hits(settings, canaries.values()) == db_hits  # rolled back
        other_hits = driver.canaries()  # state files, Delta, Kafka, objects, exports
    took = time.monotonic() - began
    recovery = "re-run" if rerun else "task reset, new try" if again else "none needed"
    print(
        "\n| fault (kill -9) | runs | lost | duplicated | recovery |\n|---|---|---|---|---|\n"
        f"| Airflow scheduler (process group) | 1 (monitoring, real DAG) "
        f"| {result.total.lost} | {result.total.duplicated} | {recovery} 1 |\n"
        f"{result.expected_scenes} scenes checked; {len(task_logs)} task logs, "
        f"{counts['xcom']} XComs, {counts['rendered_task_instance_fields']} rendered-field "
        f"rows scanned; canary hits: logs {len(log_hits)}, metadata {len(db_hits)}, "
        f"lake/Kafka/objects {len(other_hits)}; {took:.0f} s ({figures})"
    )
    assert log_hits == [], (replay, log_hits)
    assert db_hits == [], (replay, db_hits)
    assert other_hits == [], (replay, other_hits)
