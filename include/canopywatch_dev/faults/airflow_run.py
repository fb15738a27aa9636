"""The real Airflow 3 of a campaign instance: api-server, scheduler, dag-processor and
triggerer (LocalExecutor) with the instance's home, metadata database (in the instance's own
PostgreSQL) and ports, and the instance's canary credentials in its connections.

Airflow is started and restarted exactly as ``python -m canopywatch_dev.platform up airflow``
does (``stack.up``), with every ``CANOPYWATCH_*`` variable of the instance and none of the
calling process's ``AIRFLOW*`` or ``CANOPYWATCH_*`` variables, so nothing of the user's
platform reaches it. Two settings differ from the platform's, both for the test's bounds:

- ``[scheduler] use_job_schedule = False``: only the runs the test triggers run (no daily
  run over the registered areas);
- ``[scheduler] orphaned_tasks_check_interval = 15`` (the platform keeps Airflow's 300): a
  restarted scheduler resets the task instances of the killed one once that one's last
  heartbeat is older than ``scheduler_health_check_threshold`` (30 s); the reset task then
  runs again as a new try.

``kill_scheduler`` is ``kill -9`` of the scheduler's process group (the scheduler, its
LocalExecutor workers and their task supervisors; a task runner is in a group of its own and
is orphaned). ``orphans`` finds what is left of the instance's processes after ``down``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from canopywatch.settings import PREFIX
from canopywatch_dev.faults.instance import Instance
from canopywatch_dev.platform import airflow_local, process, stack

SCHEDULER = "airflow-scheduler"
ORPHAN_CHECK_S = 15
OVERRIDES = {
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_S),
}


@contextlib.contextmanager
def environment(instance: Instance) -> Iterator[None]:
    """``os.environ`` as the instance's Airflow processes get it (``airflow_local`` starts
    them with ``os.environ | airflow_environment``); restored afterwards."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith(("AIRFLOW", PREFIX))]:
            del os.environ[key]
        os.environ.update(instance.env())
        os.environ.update(OVERRIDES)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def up(instance: Instance) -> None:
    """Start (or restart what died of) the instance's Airflow: ``platform up airflow``."""
    with environment(instance):
        stack.up(instance.settings, ["airflow"])


def down(instance: Instance) -> None:
    stack.down(instance.settings, ["airflow"])


def kill_scheduler(instance: Instance, timeout: float = 30.0) -> int:
    """``kill -9`` of the scheduler's whole process group; its pid once it is gone."""
    pid = process.read_pid(instance.settings, SCHEDULER)
    if pid is None:
        raise RuntimeError("the instance's scheduler is not running")
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while process.is_alive(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the scheduler (pid {pid}) survived kill -9")
        time.sleep(0.1)
    return pid


def home(instance: Instance) -> Path:
    return airflow_local.airflow_home(instance.settings)


def log_roots(instance: Instance) -> list[Path]:
    """Where the instance's Airflow writes logs: task and DAG-processor logs (its home's
    ``logs``) and each process's own output (``<home>/logs/airflow-*.log``)."""
    return [home(instance) / "logs", instance.settings.log_dir]


def orphans(instance: Instance) -> list[int]:
    """Pids of processes started with this instance's Airflow home still running (a task
    runner orphaned by the kill, in a process group of its own)."""
    import psutil

    marker = str(home(instance))
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get("AIRFLOW_HOME") == marker:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def end_orphans(instance: Instance) -> list[int]:
    """SIGKILL every orphan of the instance (only its own processes: matched by its home)."""
    pids = orphans(instance)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids
