"""The local platform, started for real: PostgreSQL/PostGIS, Kafka, MinIO (and Airflow).

These tests start the services themselves (``canopywatch_dev.platform.stack.up``) and fail,
never skip, when a service cannot start. They leave the services running for the
integration tests that follow; ``python -m canopywatch_dev.platform down`` stops them.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from canopywatch.settings import REPO_ROOT, Settings
from canopywatch_dev.platform import (
    airflow_local,
    emulator,
    kafka,
    minio,
    paths,
    postgres,
    prerequisites,
    stack,
)
from canopywatch_dev.platform.credentials import secret_file
from canopywatch_dev.platform.process import PlatformError

pytestmark = pytest.mark.service
CORE = ("postgres", "kafka", "minio")


@pytest.fixture(scope="module")
def settings() -> Settings:
    settings = Settings.from_env()
    stack.up(settings, CORE)
    return settings


def _pids(settings: Settings) -> dict[str, int | None]:
    return {row.process: row.pid for row in stack.status(settings, CORE)}


def test_core_services_are_healthy(settings: Settings) -> None:
    assert postgres.healthy(settings)
    assert kafka.healthy(settings)
    assert minio.healthy(settings)
    rows = stack.status(settings, CORE)
    assert [r.service for r in rows] == list(CORE)
    for row in rows:
        assert row.state == "running", row
        assert row.pid is not None
        assert row.log_file.exists()


def test_up_twice_is_idempotent(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    before = _pids(settings)
    with caplog.at_level(logging.INFO, logger="canopywatch_dev.platform"):
        stack.up(settings, CORE)
    assert _pids(settings) == before
    for name in CORE:
        assert f"{name}: already running" in caplog.text


def test_postgis_extension_and_databases(settings: Settings) -> None:
    import psycopg

    with psycopg.connect(**postgres.connection_params(settings)) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
        ).fetchone()
        assert row is not None and row[0].startswith("3.")
        point = conn.execute("SELECT ST_AsText(ST_SetSRID(ST_MakePoint(1, 2), 4326))").fetchone()
        assert point == ("POINT(1 2)",)
    with psycopg.connect(postgres.dsn(settings, settings.pg_airflow_database)) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (
            settings.pg_airflow_database,
        )


def test_postgres_listens_on_loopback_with_scram(settings: Settings) -> None:
    import psycopg

    with psycopg.connect(**postgres.connection_params(settings, "postgres")) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == (settings.pg_host,)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
    wrong = postgres.connection_params(settings) | {"password": "not-the-password"}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**wrong, connect_timeout=3)


def test_topics_exist(settings: Settings) -> None:
    metadata = kafka.admin_client(settings).list_topics(timeout=10)
    for name, partitions in kafka.TOPICS.items():
        topic = settings.topic(name)
        assert topic in metadata.topics, topic
        assert len(metadata.topics[topic].partitions) == partitions, topic
    assert len(metadata.topics[settings.topic("download-requests")].partitions) == 4
    assert kafka.ensure_topics(settings) == []


def test_buckets_exist(settings: Settings) -> None:
    client = minio.s3_client(settings)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert {settings.bucket, settings.exports_bucket} <= names
    client.put_object(Bucket=settings.bucket, Key="tests/platform.txt", Body=b"ok")
    body = client.get_object(Bucket=settings.bucket, Key="tests/platform.txt")["Body"].read()
    assert body == b"ok"
    client.delete_object(Bucket=settings.bucket, Key="tests/platform.txt")
    assert minio.ensure_buckets(settings) == []


def test_secrets_are_private_and_not_logged(settings: Settings) -> None:
    assert stat.S_IMODE(paths.secrets_dir(settings).stat().st_mode) == 0o700
    for name in ("minio", "postgres"):
        assert stat.S_IMODE(secret_file(settings, name).stat().st_mode) == 0o600, name
    _, secret_key = minio.credentials(settings)
    for log in settings.log_dir.glob("*.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        assert secret_key not in text, log
        assert postgres.password(settings) not in text, log


def test_minio_restarts(settings: Settings) -> None:
    minio.down(settings)
    assert not minio.healthy(settings)
    assert stack.status(settings, ["minio"])[0].state == "stopped"
    minio.up(settings)
    assert minio.healthy(settings)


def test_cli_status(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "canopywatch_dev.platform", "status", *CORE],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("running") == len(CORE)


def test_cli_bad_usage_exits_2() -> None:
    for args in (["restart"], ["up", "no-such-service"]):
        result = subprocess.run(
            [sys.executable, "-m", "canopywatch_dev.platform", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_prerequisite_is_reported(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, mvn, go, minio here
    with pytest.raises(prerequisites.PrerequisiteError, match="java not found on PATH"):
        kafka.up(settings)
    assert any("mvn" in p for p in prerequisites.problems(settings, "mvn", "go"))
    result = subprocess.run(
        [sys.executable, "-m", "canopywatch_dev.platform", "up", "kafka"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PATH": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "java not found on PATH" in result.stderr


def test_bootstrap_reports_missing_tool(tmp_path: Path) -> None:
    result = subprocess.run(
        ["/bin/bash", str(REPO_ROOT / "scripts" / "bootstrap.sh"), "minio"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CANOPYWATCH_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 1
    assert "go not found on PATH" in result.stderr


@pytest.mark.slow
def test_airflow_starts_and_is_healthy(settings: Settings) -> None:
    stack.up(settings, ["airflow"])
    report = airflow_local.health(settings)
    assert report is not None
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert report[component]["status"] == "healthy", report
    user, password = airflow_local.login(settings)
    request = urllib.request.Request(  # noqa: S310
        airflow_local.api_url(settings) + "/auth/token",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["access_token"]
    pools = airflow_local.airflow_cli(settings, "pools", "get", "cdse_api", "-o", "json")
    assert json.loads(pools.stdout)[0]["slots"] in (4, "4")
    conn = airflow_local.airflow_cli(settings, "connections", "get", "kafka_default", "-o", "json")
    assert "canopywatch-downloader" in conn.stdout
    env_file = airflow_local.airflow_home(settings) / "env.sh"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_airflow_refuses_without_postgres(tmp_path: Path) -> None:
    other = Settings(home=tmp_path / "home", pg_port=1)  # nothing listens on port 1
    with pytest.raises(PlatformError, match="PostgreSQL is not running"):
        airflow_local.up(other)


def test_emulator_serves_tokens(settings: Settings) -> None:
    stack.up(settings, ["emulator"])
    assert emulator.healthy(settings)
    client_id, client_secret = emulator.credentials(settings)
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    ).encode()
    request = urllib.request.Request(emulator.token_url(settings), data=form, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["access_token"].count(".") == 2
    assert stat.S_IMODE(secret_file(settings, "emulator").stat().st_mode) == 0o600
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert client_secret not in ps.stdout


def test_airflow_environment_follows_the_cdse_endpoint(tmp_path: Path) -> None:
    real = Settings(home=tmp_path / "home")
    env = airflow_local.airflow_environment(real)
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in env
    cdse = json.loads(env["AIRFLOW_CONN_CDSE_DEFAULT"])
    assert cdse["extra"]["sh_base_url"] == "https://sh.dataspace.copernicus.eu"
    assert cdse["login"] == ""
    local = Settings(
        home=tmp_path / "home",
        sh_base_url=emulator.base_url(real),
        sh_token_url=emulator.token_url(real),
    )
    env = airflow_local.airflow_environment(local)
    assert env["OAUTHLIB_INSECURE_TRANSPORT"] == "1"
    cdse = json.loads(env["AIRFLOW_CONN_CDSE_DEFAULT"])
    assert (cdse["login"], cdse["password"]) == emulator.credentials(local)
    assert env["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{local.airflow_port}"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT / "include")
    kafka_conn = json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])
    assert kafka_conn["extra"]["enable.auto.commit"] is False
