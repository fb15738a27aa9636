"""Supervision of the local platform, in a platform home of the test's own (tmp_path).

``process.settle``: a process on its way out is waited for, a hung one stopped, a healthy
one kept; the watchdog restarts a wanted service whose process died (at once) or that
stays unhealthy (after three checks), never one that was stopped on purpose; the Airflow
scheduler and triggerer run without their 0.0.0.0 log servers. The shared platform is not
touched: the end-to-end case runs its own emulator on a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from canopywatch.settings import Settings
from canopywatch_dev.platform import airflow_local, emulator, process, watchdog


@pytest.fixture
def home(tmp_path) -> Settings:
    return Settings.from_env({"CANOPYWATCH_HOME": str(tmp_path / "home")})


def sleeper(settings: Settings, name: str, code: str) -> int:
    return process.start_daemon(settings, name, [sys.executable, "-c", code])


def test_settle_keeps_a_healthy_process(home):
    pid = sleeper(home, "ok", "import time; time.sleep(30)")
    try:
        assert process.settle(home, "ok", lambda: True, grace=1) == pid
    finally:
        process.stop(home, "ok", timeout=5)


def test_settle_waits_for_a_process_on_its_way_out(home):
    """Like a scheduler shutting down after PostgreSQL went away: alive, unhealthy, exiting."""
    pid = sleeper(home, "leaving", "import time; time.sleep(1.5)")
    started = time.monotonic()
    assert process.settle(home, "leaving", lambda: False, grace=20) is None
    assert time.monotonic() - started < 10  # it exited by itself: not stopped at the deadline
    assert not process.is_alive(pid) and process.read_pid(home, "leaving") is None


def test_settle_stops_a_hung_process(home):
    pid = sleeper(home, "hung", "import time; time.sleep(300)")
    assert process.settle(home, "hung", lambda: False, grace=1) is None
    assert not process.is_alive(pid)


def row(name, state):
    return process.ProcessStatus(name, name, state, "", None, home_log(name))


def home_log(name):
    from pathlib import Path

    return Path(f"/tmp/{name}.log")


def test_stop_orphans_kills_only_airflow_titled_processes_in_the_home(tmp_path):
    """A task process that outlived its killed worker (its own process group) is stopped;
    a process of another title in the same folder, or of that title elsewhere, is not."""
    inside, outside = tmp_path / "airflow", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()

    def spawn(title: str, cwd) -> subprocess.Popen[bytes]:
        # exec -a: the title an Airflow task process gets from setproctitle, in argv[0]
        return subprocess.Popen(
            ["bash", "-c", f"exec -a '{title}' sleep 60"], cwd=cwd, start_new_session=True
        )

    orphan = spawn("airflow worker -- 0199", inside)
    other_title = spawn("sleep", inside)
    other_place = spawn("airflow worker -- 0200", outside)
    time.sleep(0.5)
    try:
        assert process.stop_orphans(inside) == [orphan.pid]
        orphan.wait(timeout=10)  # gone (psutil reaped it: no return code left to read)
        assert other_title.poll() is None and other_place.poll() is None
        assert process.stop_orphans(inside) == []
    finally:
        for proc in (orphan, other_title, other_place):
            proc.kill()
            proc.wait()


def test_watchdog_restarts_dead_at_once_and_unhealthy_after_three_checks(home):
    watchdog.want(home, ["kafka", "minio", "emulator"])
    states = {"kafka": "stopped", "minio": "unhealthy", "emulator": "running", "airflow": "stopped"}
    restarted = []

    def restart(settings, name):
        restarted.append(name)
        states[name] = "running"

    strikes: dict[str, int] = {}
    status_of = lambda settings, name: [row(name, states[name])]  # noqa: E731
    assert watchdog.check_once(home, strikes, status_of, restart) == ["kafka"]
    assert watchdog.check_once(home, strikes, status_of, restart) == []
    assert watchdog.check_once(home, strikes, status_of, restart) == ["minio"]
    # airflow is not wanted (never started with up, or stopped with down): left alone
    assert restarted == ["kafka", "minio"] and states["airflow"] == "stopped"
    watchdog.unwant(home, ["kafka"])
    states["kafka"] = "stopped"
    assert watchdog.check_once(home, strikes, status_of, restart) == []
    assert watchdog.wanted(home) == ["minio", "emulator"]


def test_a_restart_that_fails_is_logged_and_the_others_still_run(home, caplog):
    watchdog.want(home, ["kafka", "minio"])

    def restart(settings, name):
        if name == "kafka":
            raise process.PlatformError("kafka exited during start-up; see kafka.log")

    status_of = lambda settings, name: [row(name, "stopped")]  # noqa: E731
    assert watchdog.check_once(home, {}, status_of, restart) == ["minio"]
    assert "kafka did not come back" in caplog.text


def test_airflow_log_servers_are_not_started():
    assert airflow_local._argv("airflow-scheduler")[1:] == ["scheduler", "--skip-serve-logs"]
    assert airflow_local._argv("airflow-triggerer")[1:] == ["triggerer", "--skip-serve-logs"]
    assert airflow_local._argv("airflow-api-server")[1:] == ["api-server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_watchdog_brings_back_a_killed_service(tmp_path):
    """End to end with the real watchdog process and a real emulator (own home and port)."""
    env = {
        **os.environ,
        "CANOPYWATCH_HOME": str(tmp_path / "home"),
        "CANOPYWATCH_EMULATOR_PORT": str(free_port()),
    }
    settings = Settings.from_env(env)
    platform = [sys.executable, "-m", "canopywatch_dev.platform"]
    try:
        up = subprocess.run(
            [*platform, "up", "emulator"], env=env, capture_output=True, timeout=120
        )
        assert up.returncode == 0, up.stderr.decode()[-2000:]
        first = process.read_pid(settings, emulator.NAME)
        assert first is not None and process.read_pid(settings, watchdog.NAME) is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 90
        second = None
        while time.monotonic() < deadline:
            second = process.read_pid(settings, emulator.NAME)
            if second not in (None, first) and emulator.healthy(settings):
                break
            time.sleep(1)
        assert second not in (None, first) and emulator.healthy(settings)
        # down stops the watchdog first: nothing comes back afterwards
        down = subprocess.run([*platform, "down"], env=env, capture_output=True, timeout=120)
        assert down.returncode == 0
        time.sleep(watchdog.INTERVAL_S + 2)
        assert process.read_pid(settings, emulator.NAME) is None
        assert process.read_pid(settings, watchdog.NAME) is None
    finally:
        for name in (watchdog.NAME, emulator.NAME):
            process.stop(settings, name, timeout=10)
