"""500 mapped tiles in one ``deforestation_monitor`` run: does the scheduler keep up?

    .venv/bin/python benchmarks/mapped_tiles.py [--tiles 500] [--days 4] [--limit 900]
                                                [--quick] [--json OUT]

Issue 13 asks for "500 mapped tiles in one run without the scheduler stalling". This starts
a real Airflow 3 (api-server, scheduler, dag-processor, triggerer; LocalExecutor) on a
platform instance of its own (``canopywatch_dev.faults.instance``: PostgreSQL with the
metadata database, Kafka, MinIO and the local CDSE endpoint under a temporary home, free
ports; the user's platform is never touched and may be down), with
``CANOPYWATCH_MAX_REQUEST_PX`` set so that the instance's ~1.1 x 1.1 km area is cut into
about ``--tiles`` request tiles. It triggers ``deforestation_monitor`` over ``--days`` days of
it: ``search_tile`` and ``publish_requests`` are then mapped over every tile. Every second it
samples, from the metadata database, the task instances by task and state and the
scheduler job's ``latest_heartbeat``, and times ``GET /api/v2/monitor/health``. It reports:
when the mapped tasks were expanded, when the last of them finished, the mapped task
instances finished per minute, the largest age of the scheduler's heartbeat (Airflow's
``scheduler_heartbeat_sec`` is 5 s; ``scheduler_health_check_threshold`` 30 s marks it
unhealthy) and the slowest health answer, each beside the same figure sampled for 20 s
with the scheduler idle just before the run. A run that has not finished after ``--limit``
seconds is reported as far as it got (rates over the part measured) and left there; the
instance is stopped and removed either way.

``--quick``: about 100 tiles. ``--json OUT`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from canopywatch.settings import Settings

DAG_ID = "deforestation_monitor"
MAPPED = ("search_tile", "publish_requests")
HEARTBEAT_SEC = 5.0
UNHEALTHY_SEC = 30.0
IDLE_SAMPLES = 20


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def request_px_for(tiles: int, area_px: int) -> int:
    """A tile side (px) that cuts an ``area_px`` square into ``ceil(sqrt(tiles))`` tiles a
    side (``split_into_tiles`` makes ``ceil(area_px / side)``), so at least ``tiles``."""
    per_side = math.ceil(math.sqrt(tiles))
    return max(1, math.ceil(area_px / per_side))


def sample(conn: Any, run_id: str) -> tuple[Counter[tuple[str, str]], float | None]:
    """Task instances of the run by (task, state) and the running scheduler's heartbeat age."""
    rows = conn.execute(
        "SELECT task_id, coalesce(state, 'none'), count(*) FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s GROUP BY 1, 2",
        (DAG_ID, run_id),
    ).fetchall()
    beat = conn.execute(
        "SELECT extract(epoch FROM now() - max(latest_heartbeat)) FROM job "
        "WHERE job_type = 'SchedulerJob' AND state = 'running'"
    ).fetchone()
    counts: Counter[tuple[str, str]] = Counter({(r[0], r[1]): int(r[2]) for r in rows})
    return counts, (float(beat[0]) if beat and beat[0] is not None else None)


class Api:
    """The few Airflow 3 REST calls needed (``/api/v2``, a token from ``/auth/token``)."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base, self.user, self.password, self.token = base, user, password, ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests

        if not self.token:
            reply = requests.post(f"{self.base}/auth/token", timeout=60,
                                  json={"username": self.user, "password": self.password})  # fmt: skip
            reply.raise_for_status()
            self.token = str(reply.json()["access_token"])
        response = requests.request(method, f"{self.base}/api/v2{path}", json=body, timeout=60,
                                    headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", f"/dags/{dag_id}")
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3)


def health_seconds(base: str) -> float:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=60) as response:  # noqa: S310
            response.read()
    except OSError:
        return float("inf")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=500, help="request tiles to map over")
    parser.add_argument("--days", type=int, default=4, help="days of the run's window")
    parser.add_argument("--limit", type=float, default=900, help="seconds to follow the run")
    parser.add_argument("--quick", action="store_true", help="about 100 tiles")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.tiles = 100
    if not 1 <= args.tiles <= 5000 or args.days < 1:
        print("mapped_tiles.py: --tiles of 1..5000, --days >= 1", file=sys.stderr)
        return 2

    import psycopg

    from canopywatch.download import make_aoi, plan_tiles
    from canopywatch_dev.faults import airflow_run
    from canopywatch_dev.faults.instance import AREA, running
    from canopywatch_dev.platform import airflow_local, postgres

    base = Settings.from_env()
    bbox = [float(v) for v in cast(list[float], AREA["bbox"])]
    whole = plan_tiles(make_aoi(bbox, "m", base), base)[0]
    px = request_px_for(args.tiles, min(whole.width, whole.height))
    settings_base = replace(base, max_request_px=px)
    tiles = len(plan_tiles(make_aoi(bbox, "m", settings_base), settings_base))
    start = date(2024, 1, 10)
    conf = {
        "bbox": bbox,
        "aoi_name": "mapped-tiles",
        "start": start.isoformat(),
        "end": (start + timedelta(days=args.days - 1)).isoformat(),
        "max_cloud": 100,
    }
    console = Console(width=120)
    console.print(
        f"{tiles} request tiles of <= {px} px over {whole.width}x{whole.height} px; "
        f"load average {load_average()}"
    )
    figures: dict[str, Any] = {"tiles": tiles, "request_px": px, "conf": conf}
    timeline: list[dict[str, Any]] = []
    began = time.monotonic()
    with running(settings_base) as instance:
        settings = instance.settings
        figures["instance_up_s"] = round(time.monotonic() - began, 1)
        try:
            airflow_run.up(instance)
            api_base = airflow_local.api_url(settings)
            api = Api(api_base, *airflow_local.login(settings))
            api.wait_for_dag(DAG_ID)
            api.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
            figures["airflow_up_s"] = round(time.monotonic() - began - figures["instance_up_s"], 1)
            params = postgres.connection_params(settings, settings.pg_airflow_database)
            with psycopg.connect(**params, autocommit=True) as conn:
                idle = []  # the scheduler with nothing to do, beside the figures under load
                for _ in range(IDLE_SAMPLES):
                    _, beat = sample(conn, "")
                    idle.append((beat, health_seconds(api_base)))
                    time.sleep(1.0)
                idle_ages = [b for b, _ in idle if b is not None]
                figures["idle_heartbeat_age_max_s"] = (
                    round(max(idle_ages), 2) if idle_ages else None
                )
                figures["idle_health_max_s"] = round(max(h for _, h in idle), 3)
                run = api.call(
                    "POST", f"/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf}
                )
                run_id = str(run["dag_run_id"])
                t0 = time.monotonic()
                state = "queued"
                while time.monotonic() - t0 < args.limit:
                    counts, beat = sample(conn, run_id)
                    health = health_seconds(api_base)
                    timeline.append(
                        {
                            "t": round(time.monotonic() - t0, 2),
                            "heartbeat_age_s": None if beat is None else round(beat, 2),
                            "health_s": round(health, 3),
                            "counts": {f"{k[0]}/{k[1]}": v for k, v in counts.items()},
                        }
                    )
                    state = str(api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"])
                    if state in {"success", "failed"}:
                        break
                    time.sleep(1.0)
                figures["run_state"] = state
                figures["followed_s"] = round(time.monotonic() - t0, 1)
        finally:
            airflow_run.down(instance)
            figures["orphans_ended"] = len(airflow_run.end_orphans(instance))
    figures["load_average_after"] = load_average()

    def first(predicate: Any) -> float | None:
        return next((p["t"] for p in timeline if predicate(p["counts"])), None)

    def total(counts: dict[str, int], task: str, states: tuple[str, ...] | None = None) -> int:
        return sum(
            v
            for k, v in counts.items()
            if k.split("/")[0] == task and (states is None or k.split("/")[1] in states)
        )

    done_states = ("success", "failed", "skipped", "upstream_failed")
    table = Table(title=f"deforestation_monitor over {tiles} mapped tiles ({args.days} days)")
    for column in ("mapped task", "expanded at s", "all finished at s", "finished", "per min"):
        table.add_column(column, justify="right")
    last = timeline[-1]["counts"] if timeline else {}
    for task in MAPPED:
        expanded = first(lambda c, task=task: total(c, task) >= tiles)
        finished = first(lambda c, task=task: total(c, task, done_states) >= tiles)
        done = total(last, task, done_states)
        began_at = first(lambda c, task=task: total(c, task, done_states) > 0)
        end_at = finished if finished is not None else (timeline[-1]["t"] if timeline else None)
        rate = (
            60 * done / (end_at - began_at)
            if began_at is not None and end_at is not None and end_at > began_at
            else None
        )
        figures[task] = {
            "expanded_at_s": expanded,
            "all_finished_at_s": finished,
            "finished": done,
            "first_finished_at_s": began_at,
            "per_min": None if rate is None else round(rate, 1),
        }
        table.add_row(task, f"{expanded}" if expanded is not None else "-",
                      f"{finished}" if finished is not None else "not yet",
                      f"{done}/{tiles}", "-" if rate is None else f"{rate:.1f}")  # fmt: skip
    console.print(table)
    ages = [p["heartbeat_age_s"] for p in timeline if p["heartbeat_age_s"] is not None]
    answers = [p["health_s"] for p in timeline]
    figures["heartbeat_age_max_s"] = max(ages) if ages else None
    figures["heartbeat_age_p95_s"] = sorted(ages)[int(0.95 * (len(ages) - 1))] if ages else None
    figures["health_max_s"] = max(answers) if answers else None
    figures["samples"] = len(timeline)
    console.print(
        f"run {figures.get('run_state')} after {figures.get('followed_s')} s followed; "
        f"scheduler heartbeat age max {figures['heartbeat_age_max_s']} s "
        f"(p95 {figures['heartbeat_age_p95_s']} s; idle before the run: max "
        f"{figures['idle_heartbeat_age_max_s']} s; {HEARTBEAT_SEC:.0f} s nominal, "
        f"{UNHEALTHY_SEC:.0f} s = unhealthy), health endpoint slowest {figures['health_max_s']} s "
        f"(idle {figures['idle_health_max_s']} s), "
        f"{len(timeline)} samples; load average after {figures['load_average_after']}"
    )
    if args.json:
        args.json.write_text(json.dumps({**figures, "timeline": timeline}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
