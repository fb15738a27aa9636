"""The platform's restart policy: a watchdog brings back any wanted service that died.

``up`` records the services it started as *wanted* (``<home>/run/wanted.json``) and starts
the watchdog (process ``watchdog``, log ``<home>/logs/watchdog.log``); ``down`` removes
services from the wanted set (``down`` of everything stops the watchdog first), so a
service stopped on purpose stays stopped. Every ``INTERVAL_S`` seconds the watchdog looks
at each wanted service: one with a process gone is started again at once (``up`` of that
service, which also restarts a process that runs but is not healthy, see
``process.settle``); one that stays unhealthy for ``UNHEALTHY_CHECKS`` checks in a row is
restarted too. So the Airflow scheduler comes back after a PostgreSQL restart, and Kafka or
MinIO after a ``kill -9`` (the same as ``restart: unless-stopped`` in docker-compose.yaml).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

from canopywatch.settings import Settings
from canopywatch_dev.platform import SERVICES, process
from canopywatch_dev.platform.paths import ensure_layout, log_file

log = logging.getLogger("canopywatch_dev.platform")

NAME = "watchdog"
INTERVAL_S = 10.0
UNHEALTHY_CHECKS = 3


# ------------------------------------------------------------------ the wanted set
def _wanted_file(settings: Settings) -> Path:
    return settings.run_dir / "wanted.json"


def wanted(settings: Settings) -> list[str]:
    try:
        names = json.loads(_wanted_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [name for name in SERVICES if name in set(names)]


def _write(settings: Settings, names: Iterable[str]) -> None:
    ensure_layout(settings)
    chosen = set(names)
    path = _wanted_file(settings)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([n for n in SERVICES if n in chosen]) + "\n", "utf-8")
    temporary.replace(path)


def want(settings: Settings, names: Iterable[str]) -> None:
    with process.platform_lock(settings):
        _write(settings, {*wanted(settings), *names})


def unwant(settings: Settings, names: Iterable[str]) -> None:
    with process.platform_lock(settings):
        _write(settings, set(wanted(settings)) - set(names))


# ------------------------------------------------------------------ one check
StatusOf = Callable[[Settings, str], list[process.ProcessStatus]]
Restart = Callable[[Settings, str], None]


def check_once(
    settings: Settings, strikes: dict[str, int], status_of: StatusOf, restart: Restart
) -> list[str]:
    """Look at every wanted service once; returns the services restarted."""
    restarted = []
    for name in wanted(settings):
        states = {row.state for row in status_of(settings, name)}
        if "stopped" in states:
            reason = "a process is gone"
        elif "unhealthy" in states:
            strikes[name] = strikes.get(name, 0) + 1
            if strikes[name] < UNHEALTHY_CHECKS:
                continue
            reason = f"unhealthy for {strikes[name]} checks"
        else:
            strikes.pop(name, None)
            continue
        log.warning("watchdog: %s: %s; starting it again", name, reason)
        try:
            restart(settings, name)
        except process.PlatformError as exc:
            log.error("watchdog: %s did not come back: %s", name, exc)
            continue
        strikes.pop(name, None)
        restarted.append(name)
    return restarted


def _status_of(settings: Settings, name: str) -> list[process.ProcessStatus]:
    from canopywatch_dev.platform import stack

    return stack.service(name).status(settings)


def _restart(settings: Settings, name: str) -> None:
    from canopywatch_dev.platform import stack

    stack.service(name).up(settings)


def run(settings: Settings, *, interval: float = INTERVAL_S) -> None:
    """Check the wanted services every ``interval`` seconds until SIGTERM."""
    stopping = False

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    strikes: dict[str, int] = {}
    log.info(
        "watchdog: watching %s every %.0f s", ", ".join(wanted(settings)) or "nothing", interval
    )
    while not stopping:
        try:
            check_once(settings, strikes, _status_of, _restart)
        except Exception:  # a watchdog that dies protects nothing: log and go on
            log.exception("watchdog: check failed")
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.5)
    log.info("watchdog: stopped")


# ------------------------------------------------------------------ the process
def start(settings: Settings) -> int:
    """Start the watchdog unless it runs; returns its pid."""
    with process.platform_lock(settings):
        pid = process.read_pid(settings, NAME)
        if pid is not None:
            return pid
        argv = [sys.executable, "-m", "canopywatch_dev.platform", "watch"]
        pid = process.start_daemon(settings, NAME, argv, env=dict(os.environ))
    log.info("watchdog: started (pid %d, log %s)", pid, log_file(settings, NAME))
    return pid


def stop(settings: Settings) -> bool:
    with process.platform_lock(settings):
        return process.stop(settings, NAME, group=False, timeout=30)


def status(settings: Settings) -> process.ProcessStatus:
    pid = process.read_pid(settings, NAME)
    return process.ProcessStatus(
        NAME,
        NAME,
        "stopped" if pid is None else "running",
        ", ".join(wanted(settings)),
        pid,
        log_file(settings, NAME),
    )
