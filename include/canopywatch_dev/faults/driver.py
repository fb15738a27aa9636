"""The campaign: randomised runs, one ``kill -9`` each, the documented recovery, the count.

Each run is a monitoring run (a random window of the simulated area's year) or, once the
catalog holds scenes, a weekly run. Its tasks (``steps``) run one after another, each
attempt a process of its own, with up to ``RETRIES`` retries ``RETRY_DELAY_S`` apart (the
DAGs' task retries). One fault per run: at a random moment of a random task, ``kill -9``
of Kafka, MinIO or PostgreSQL (brought back after a random 1-6 s, as the platform's
watchdog does), or of the running consumer task itself (download_scenes, record_scenes,
record_alerts). When the run still failed, or the
checker finds anything missing, the run is re-run once (the documented repair: reconcile
announces what the store holds and the lake lacks; the weekly run republishes its alerts).
Then the checker counts everything the campaign planned and published so far.

The seed decides every choice (kinds, windows, faults, tasks, moments, downtimes), so a
failing campaign is replayed with ``--seed``; timings of the services themselves vary.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from canopywatch_dev.faults import steps as task_steps
from canopywatch_dev.faults.checker import Check, canary_hits, check
from canopywatch_dev.faults.instance import AREA, Instance

log = logging.getLogger("canopywatch_dev.faults")

SERVICE_FAULTS = ("kafka", "minio", "postgres")
FAULTS = (*SERVICE_FAULTS, "consumer")
RETRIES = 2
RETRY_DELAY_S = 2.0
TASK_TIMEOUT_S = 240.0
WINDOW_DAYS = (30, 60)

# each task attempt is a process of its own, forked from a server that imported the product
# once (a task starts in milliseconds, not seconds; a kill -9 still kills just that task)
_TASKS = multiprocessing.get_context("forkserver")
_TASKS.set_forkserver_preload(["canopywatch_dev.faults.preload"])


@dataclass
class RunResult:
    index: int
    kind: str  # monitoring | weekly
    fault: str
    killed: str  # "<task> attempt <n>" or "" when the run ended before the moment came
    first_ok: bool
    retries: int
    rerun: bool
    check: Check

    @property
    def recovery(self) -> str:
        if self.rerun:
            return "re-run"
        return "task retry" if self.retries else "none needed"


@dataclass
class _Current:
    """The task attempt running now (the consumer fault kills it)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    step: str = ""
    attempt: int = 0
    process: BaseProcess | None = None
    started: threading.Condition = field(default_factory=threading.Condition)


class Campaign:
    def __init__(self, instance: Instance, state: Path, seed: int) -> None:
        self.instance = instance
        self.state = state
        self.seed = seed
        self.rng = random.Random(seed)
        self.current = _Current()
        self.results: list[RunResult] = []
        state.mkdir(parents=True, exist_ok=True)

    # -- tasks ---------------------------------------------------------------------------
    def _attempt(self, run: str, step: str, conf: dict[str, Any], attempt: int) -> int:
        logs = self.state / "logs" / run
        logs.mkdir(parents=True, exist_ok=True)
        env = {**self.instance.env(), task_steps.ATTEMPT_ENV: f"{run}/{step}/{attempt}"}
        argv = [step, "--run", run, "--state", str(self.state), "--conf", json.dumps(conf)]
        child = _TASKS.Process(
            target=task_steps.run_attempt,
            args=(argv, env, str(logs / f"{step}.{attempt}.log")),
            name=f"{run}.{step}.{attempt}",
        )
        child.start()
        with self.current.started:
            self.current.step, self.current.attempt, self.current.process = step, attempt, child
            self.current.started.notify_all()
        try:
            child.join(TASK_TIMEOUT_S)
            if child.exitcode is None:
                child.kill()
                child.join()
            return int(child.exitcode or 0)
        finally:
            with self.current.started:
                self.current.process = None

    def _run(self, run: str, kind: str, conf: dict[str, Any]) -> tuple[bool, int]:
        """Every task of the run with its retries: (succeeded, retries used)."""
        retries = 0
        for step in task_steps.MONITORING if kind == "monitoring" else task_steps.WEEKLY:
            for attempt in range(1, RETRIES + 2):
                code = self._attempt(run, step, conf, attempt)
                if code == 0:
                    break
                log.info("%s %s attempt %d failed (exit %d)", run, step, attempt, code)
                if attempt == RETRIES + 1:
                    return False, retries
                retries += 1
                time.sleep(RETRY_DELAY_S)
        return True, retries

    # -- faults --------------------------------------------------------------------------
    def _wait_for(self, step: str, done: threading.Event) -> int | None:
        """Block until ``step`` is running; its pid (None when the run ended first)."""
        with self.current.started:
            while not done.is_set():
                child = self.current.process
                if child is not None and self.current.step == step and child.is_alive():
                    return child.pid
                self.current.started.wait(0.2)
        return None

    def _inject(
        self, fault: str, step: str, delay: float, downtime: float, done: threading.Event
    ) -> list[str]:
        killed: list[str] = []
        pid = self._wait_for(step, done)
        if pid is None or done.wait(delay):
            return killed
        with self.current.started:  # the task running now (the chosen one may be over)
            attempt, child, now = self.current.attempt, self.current.process, self.current.step
        if fault == "consumer":
            if child is not None and child.is_alive() and child.pid and now == step:
                os.kill(child.pid, signal.SIGKILL)
                killed.append(f"{step} attempt {attempt}")
            return killed
        target = self.instance.pid(fault)
        if target is None:
            return killed
        os.kill(target, signal.SIGKILL)
        killed.append(f"{now} attempt {attempt}")
        time.sleep(downtime)
        _bring_back(self.instance, fault)
        return killed

    # -- runs ----------------------------------------------------------------------------
    def _conf(self) -> dict[str, Any]:
        first, last = date.fromisoformat(str(AREA["start"])), date.fromisoformat(str(AREA["end"]))
        days = self.rng.randint(*WINDOW_DAYS)
        start = first + timedelta(days=self.rng.randint(0, (last - first).days - days))
        return {
            "bbox": AREA["bbox"],
            "aoi_name": AREA["name"],
            "start": start.isoformat(),
            "end": (start + timedelta(days=days)).isoformat(),
            "max_cloud": 80,
        }

    def schedule(self, runs: int) -> list[tuple[str, str]]:
        """(kind, fault) of each run: every fault about as often as the others, a weekly run
        in about one of four, the first run a monitoring one (the catalog is empty)."""
        faults = [FAULTS[n % len(FAULTS)] for n in range(runs)]
        self.rng.shuffle(faults)
        weekly = max(1, runs // 4) if runs > 1 else 0
        kinds = ["weekly"] * weekly + ["monitoring"] * (runs - 1 - weekly)
        self.rng.shuffle(kinds)
        return list(zip(["monitoring", *kinds], faults, strict=True))

    def run(self, index: int, kind: str, fault: str) -> RunResult:
        rng = self.rng
        conf = self._conf()
        tasks = task_steps.MONITORING if kind == "monitoring" else task_steps.WEEKLY
        consumers = [s for s in tasks if s in task_steps.CONSUMERS]
        # a service dies at a moment of a task with at least one consumer task after it or
        # running (so the run is still going when the moment comes)
        last_consumer = max(tasks.index(c) for c in consumers)
        step = rng.choice(consumers if fault == "consumer" else tasks[: last_consumer + 1])
        delay, downtime = rng.uniform(0.0, 1.5), rng.uniform(1.0, 6.0)
        run_id = f"run{index:02d}-{kind}"
        log.info(
            "%s: kill -9 %s during %s (+%.1f s, down %.1f s), conf %s",
            run_id, fault, step, delay, downtime, conf,
        )  # fmt: skip
        done = threading.Event()
        killed: list[str] = []
        thread = threading.Thread(
            target=lambda: killed.extend(self._inject(fault, step, delay, downtime, done)),
            daemon=True,
        )
        thread.start()
        ok, retries = self._run(run_id, kind, conf)
        done.set()
        thread.join(60)
        self.instance.up()  # whatever the watchdog would have brought back by now
        result = check(self.instance.settings, self.state)
        rerun = not ok or result.total.lost > 0
        if rerun:
            again, more = self._run(f"{run_id}-rerun", kind, conf)
            retries += more
            if not again:
                log.warning("%s: the re-run failed too", run_id)
            result = check(self.instance.settings, self.state)
        outcome = RunResult(index, kind, fault, ", ".join(killed), ok, retries, rerun, result)
        log.info("%s: %s; %s", run_id, outcome.recovery, result.describe())
        self.results.append(outcome)
        return outcome

    def canaries(self) -> list[str]:
        """Where a planted credential shows up; the scan first proves it finds one (a control
        file holding a canary must be its one hit outside what the runs wrote)."""
        control = self.state / "canary-control.txt"
        control.write_text(f"control {self.instance.canaries.pg_password}\n", encoding="utf-8")
        try:
            hits = canary_hits(self.instance.settings, self.state, self.instance.canaries.values())
        finally:
            control.unlink()
        found = [h for h in hits if h.startswith(control.name + ":")]
        if not found:
            raise RuntimeError("the canary scan did not find the control canary")
        return [h for h in hits if h not in found]


def _bring_back(instance: Instance, service: str, timeout: float = 90.0) -> None:
    """Start ``service`` again (what the watchdog does), trying until it is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            instance.up((service,))
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.info("%s not back yet (%s); trying again", service, exc)
            time.sleep(2)


def table(results: list[RunResult]) -> str:
    """The campaign's table: fault, runs, lost, duplicated, recovery (Markdown)."""
    lines = [
        "| fault (kill -9) | runs | lost | duplicated | recovery |",
        "|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        mine = [r for r in results if r.fault == fault]
        if not mine:
            continue
        kinds = sorted({r.kind for r in mine})
        ways: dict[str, int] = {}
        for r in mine:
            ways[r.recovery] = ways.get(r.recovery, 0) + 1
        lines.append(
            f"| {fault} | {len(mine)} ({', '.join(kinds)}) "
            f"| {sum(r.check.total.lost for r in mine)} "
            f"| {sum(r.check.total.duplicated for r in mine)} "
            f"| {', '.join(f'{way} {n}' for way, n in sorted(ways.items()))} |"
        )
    return "\n".join(lines)


def campaign(
    runs: int,
    seed: int,
    *,
    state: Path,
    report: Callable[[str], None] = print,
) -> tuple[list[RunResult], list[str]]:
    """Start an instance, run ``runs`` faulted runs, scan for canaries, tear it down."""
    from canopywatch_dev.faults.instance import running

    report(f"fault campaign: {runs} run(s), seed {seed} (replay: --seed {seed})")
    with running() as instance:
        driver = Campaign(instance, state, seed)
        for index, (kind, fault) in enumerate(driver.schedule(runs)):
            driver.run(index, kind, fault)
        hits = driver.canaries()
    report(table(driver.results))
    if driver.results:
        last = driver.results[-1].check
        report(
            f"checked: {last.expected_scenes} scenes (MinIO, Delta, PostGIS), "
            f"{last.expected_alerts} alerts (Kafka, Delta, PostGIS); "
            f"{sum(1 for r in driver.results if r.killed)} of {len(driver.results)} runs "
            "had their kill -9"
        )
    report(f"canary scan: {len(hits)} hit(s)" + (": " + "; ".join(hits[:5]) if hits else ""))
    return driver.results, hits
