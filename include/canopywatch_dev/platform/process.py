"""Background processes of the local platform: start, find, wait for health, stop.

Each process has a name (``postgres``, ``airflow-scheduler``...), a log file
``<home>/logs/<name>.log`` that receives its stdout and stderr, and a pid file
``<home>/run/<name>.pid`` holding ``<pid> <start time>`` (the start time from
``/proc`` guards against a recycled pid). Processes run in their own session, so
they outlive the command that started them and can be stopped as a group.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from canopywatch.settings import Settings
from canopywatch_dev.platform.paths import ensure_layout, log_file, pid_file

log = logging.getLogger("canopywatch_dev.platform")

# Popen handles of children started by this interpreter, kept so they can be reaped
_children: dict[int, subprocess.Popen[bytes]] = {}


class PlatformError(RuntimeError):
    """A service could not be installed, started, checked or stopped; the message says why."""


@dataclass(frozen=True)
class ProcessStatus:
    """One row of ``python -m canopywatch_dev.platform status``."""

    service: str
    process: str
    state: str  # running | unhealthy | stopped
    address: str
    pid: int | None
    log_file: Path


def single_status(
    settings: Settings, name: str, address: str, healthy: Callable[[], bool]
) -> ProcessStatus:
    """Status of a service that is one process of the same name."""
    pid = read_pid(settings, name)
    state = "stopped" if pid is None else "running" if healthy() else "unhealthy"
    return ProcessStatus(name, name, state, address, pid, log_file(settings, name))


# -- pids ------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return fields[19]


def is_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    return _start_time(pid) is not None


def read_pid(settings: Settings, name: str) -> int | None:
    """The pid of process ``name`` if it is running; a stale pid file is removed."""
    path = pid_file(settings, name)
    try:
        pid_text, _, started = path.read_text(encoding="ascii").strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if is_alive(pid) and (not started or _start_time(pid) == started):
        return pid
    path.unlink(missing_ok=True)
    return None


def write_pid(settings: Settings, name: str, pid: int) -> None:
    pid_file(settings, name).write_text(f"{pid} {_start_time(pid) or ''}\n", encoding="ascii")


# -- one change at a time ---------------------------------------------------------------

_lock_depth = 0


@contextlib.contextmanager
def platform_lock(settings: Settings) -> Iterator[None]:
    """Serialise start/stop across processes (two sessions running ``up`` at once)."""
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    ensure_layout(settings)
    with (settings.run_dir / "platform.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def locked(action: Callable[[Settings], None]) -> Callable[[Settings], None]:
    """Decorator for a service's ``up``/``down``: runs it under :func:`platform_lock`."""

    @functools.wraps(action)
    def wrapper(settings: Settings) -> None:
        with platform_lock(settings):
            action(settings)

    return wrapper


# -- start / wait / stop ---------------------------------------------------------------


def start_daemon(
    settings: Settings,
    name: str,
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` in the background (own session), output appended to its log file.

    ``env`` replaces the environment (pass ``os.environ | extra``); ``user`` runs the
    process as that system user (root only). Returns the pid, also written to the pid file.
    """
    ensure_layout(settings)
    logfile = log_file(settings, name)
    with logfile.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        except OSError as exc:
            raise PlatformError(f"{name}: cannot start {argv[0]}: {exc}") from exc
    _children[proc.pid] = proc
    write_pid(settings, name, proc.pid)
    return proc.pid


def wait_healthy(
    settings: Settings,
    name: str,
    check: Callable[[], bool],
    *,
    pid: int | None,
    timeout: float,
    interval: float = 0.5,
) -> float:
    """Poll ``check`` until it returns True; returns the seconds it took.

    Fails early if process ``pid`` exits, and after ``timeout`` seconds, with a message
    that names the log file and quotes its last lines.
    """
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if pid is not None and not is_alive(pid):
            raise PlatformError(
                f"{name} exited during start-up; see {log_file(settings, name)}"
                + _tail(log_file(settings, name))
            )
        if time.monotonic() - started > timeout:
            raise PlatformError(
                f"{name} did not become healthy within {timeout:.0f} s; "
                f"see {log_file(settings, name)}" + _tail(log_file(settings, name))
            )
        time.sleep(interval)


def stop(
    settings: Settings,
    name: str,
    *,
    sig: signal.Signals = signal.SIGTERM,
    group: bool = True,
    timeout: float = 60.0,
) -> bool:
    """Stop process ``name``: ``sig``, then SIGKILL after ``timeout``. False if not running."""
    pid = read_pid(settings, name)
    if pid is None:
        return False
    _signal(pid, sig, group)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_alive(pid):
        log.warning("%s did not stop within %.0f s; killing it", name, timeout)
        _signal(pid, signal.SIGKILL, True)
        while is_alive(pid) and time.monotonic() < deadline + 10:
            time.sleep(0.2)
    elif group:
        # leftovers of the group (workers, task processes) go too
        _signal(pid, signal.SIGKILL, True)
    pid_file(settings, name).unlink(missing_ok=True)
    _children.pop(pid, None)
    return True


def processes_in(directory: Path) -> list[psutil.Process]:
    """The processes whose working directory is ``directory`` or below it, except this
    process and its ancestors."""
    root = directory.resolve()
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        cwd = proc.info.get("cwd")
        if proc.info["pid"] not in spared and cwd and Path(cwd).is_relative_to(root):
            found.append(proc)
    return found


def stop_orphans(directory: Path, title_prefix: str = "airflow") -> list[int]:
    """SIGKILL the processes titled ``title_prefix...`` that run in ``directory`` (or below):
    Airflow 3 starts each task in a process group of its own, so a ``kill -9`` of a worker's
    or scheduler's group leaves its task processes running, orphaned; stopping the group
    does not reach them. Never this process or its ancestors. Returns the pids killed."""
    killed: list[psutil.Process] = []
    for proc in processes_in(directory):
        cmdline = proc.info.get("cmdline") or []
        if not cmdline or not cmdline[0].startswith(title_prefix):
            continue
        with contextlib.suppress(psutil.Error):
            proc.kill()
            killed.append(proc)
    if killed:
        psutil.wait_procs(killed, timeout=10)
        log.info("stopped %d orphaned Airflow process(es) in %s", len(killed), directory)
    return [proc.pid for proc in killed]


SETTLE_GRACE_S = 30.0


def settle(
    settings: Settings,
    name: str,
    healthy: Callable[[], bool],
    *,
    grace: float = SETTLE_GRACE_S,
    interval: float = 0.5,
) -> int | None:
    """The pid of a healthy process ``name``, or None once none runs (so it can be started).

    A process that is alive but unhealthy is shutting down (a scheduler after its database
    went away), still starting, or hung: it gets ``grace`` seconds to become healthy or to
    exit, and is then stopped (SIGTERM, then SIGKILL). ``up`` never takes a process that
    is on its way out for a running one.
    """
    pid = read_pid(settings, name)
    if pid is None:
        return None
    deadline = time.monotonic() + grace
    while is_alive(pid):
        if healthy():
            return pid
        if time.monotonic() > deadline:
            log.warning(
                "%s (pid %d) is running but not healthy after %.0f s; stopping it to start it again",
                name,
                pid,
                grace,
            )
            stop(settings, name, timeout=30)
            return None
        time.sleep(interval)
    log.info("%s (pid %d) exited (it was shutting down); starting it again", name, pid)
    pid_file(settings, name).unlink(missing_ok=True)
    _children.pop(pid, None)
    return None


def _signal(pid: int, sig: signal.Signals, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n  last lines:\n    " + "\n    ".join(text) if text else ""


# -- probes ----------------------------------------------------------------------------


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 3.0) -> bool:
    """True if GET ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def up_single(
    settings: Settings,
    name: str,
    *,
    address: str,
    port_setting: str,
    healthy: Callable[[], bool],
    launch: Callable[[], int],
    timeout: float,
) -> tuple[int, float] | None:
    """``up`` of a one-process service on one port: a healthy one is kept (None), one on its
    way out is settled, a port held by another process is an error naming ``port_setting``,
    else ``launch()`` starts it (returns its pid) and it is waited for: (pid, seconds)."""
    pid = settle(settings, name, healthy)
    if pid is not None:
        log.info("%s: already running on %s (pid %d)", name, address, pid)
        return None
    if port_open(*split_host_port(address)):
        raise PlatformError(
            f"{name}: port {address} is taken by another process; stop it or set {port_setting}"
        )
    pid = launch()
    return pid, wait_healthy(settings, name, healthy, pid=pid, timeout=timeout)


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
