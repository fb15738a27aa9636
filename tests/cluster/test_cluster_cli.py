"""The cluster profile's command line and port plan (no services: runs in ``make test``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from canopywatch.settings import REPO_ROOT, Settings
from canopywatch_dev.platform import stack as local_stack
from canopywatch_dev.platform.cluster.profile import DEFAULT_HOME, Profile, ProfileError


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canopywatch_dev.platform.cluster", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT / "include"), **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("up", "zookeeper"), {}, "unknown service 'zookeeper'"),
        (("restart",), {}, "invalid choice: 'restart'"),
        (("status",), {"CANOPYWATCH_CLUSTER_PORT_BASE": "many"}, "is not a port"),
        (("status",), {"CANOPYWATCH_CLUSTER_PORT_BASE": "80"}, "is not in 1024-64000"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...], env: dict[str, str],
                                          message: str) -> None:  # fmt: skip
    result = cli(*args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_every_port_is_its_own_and_none_is_the_local_profiles() -> None:
    ports = [p for group in Profile().ports().values() for p in group]
    assert len(ports) == len(set(ports))
    local = {p for group in local_stack.published_ports(Settings()).values() for p in group}
    local.add(Settings().kafka_controller_port)
    assert local.isdisjoint(ports)
    # the test's instance (base 31000) meets neither
    test_ports = [p for group in Profile(port_base=31000).ports().values() for p in group]
    assert set(test_ports).isdisjoint(ports) and local.isdisjoint(test_ports)


def test_settings_point_at_the_cluster_and_carry_no_local_credentials() -> None:
    env = {"CANOPYWATCH_PG_PASSWORD": "local-secret", "CANOPYWATCH_S3_SECRET_KEY": "local-key"}
    settings = Profile().settings(env)
    assert settings.home == DEFAULT_HOME
    assert settings.kafka_bootstrap == "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292"
    assert (settings.pg_port, settings.airflow_port) == (29432, 29080)
    assert settings.s3_endpoint == "http://127.0.0.1:29000"
    assert settings.sh_base_url == "http://127.0.0.1:29500"
    assert settings.pg_password == "" and settings.s3_secret_key == ""


def test_profile_from_env() -> None:
    profile = Profile.from_env({"CANOPYWATCH_CLUSTER_PORT_BASE": "33000",
                                "CANOPYWATCH_CLUSTER_HOME": "/tmp/cw-cluster"})  # fmt: skip
    assert profile.port_base == 33000 and str(profile.home) == "/tmp/cw-cluster"
    assert profile.kafka_port(3) == 33292
    with pytest.raises(ProfileError):
        Profile.from_env({"CANOPYWATCH_CLUSTER_PORT_BASE": "x"})
