"""Apache Airflow 3 on the local platform: LocalExecutor, metadata in PostgreSQL.

Configuration is entirely environment (:func:`airflow_environment`), also written to
``<home>/airflow/env.sh`` (0600) for people: ``source .platform/airflow/env.sh``.
Four background processes: api-server, scheduler, dag-processor and triggerer.
Connections are ``AIRFLOW_CONN_*`` JSON variables; the ``cdse_api`` pool and the
database schema are created once. The UI user is ``admin`` with a generated password
(``python -m canopywatch_dev.platform login`` prints it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import urlsafe_b64encode
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import urlsplit

from canopywatch.airflow import ids  # the connection ids and the pool (imports no Airflow)
from canopywatch.settings import REPO_ROOT, Settings
from canopywatch_dev.platform import emulator, minio, postgres, process, roles
from canopywatch_dev.platform.credentials import load_or_create, new_password, write_private
from canopywatch_dev.platform.paths import ensure_layout, log_file, secrets_dir
from canopywatch_dev.platform.prerequisites import airflow_binary, require

NAME = "airflow"
PROCESSES = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
COMPOSE_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
DEPENDS = ("postgres",)
ADMIN_USER = "admin"
POOL = (ids.CDSE_POOL, ids.CDSE_POOL_SLOTS, "Concurrent requests to the Copernicus Data Space APIs")
START_TIMEOUT = 240.0
# health components reported by GET /api/v2/monitor/health, per process
_HEALTH_KEYS = {
    "airflow-api-server": "metadatabase",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag_processor",
    "airflow-triggerer": "triggerer",
}

log = logging.getLogger("canopywatch_dev.platform")
DEFAULT_METADATA_DATABASE = "airflow"


def airflow_home(settings: Settings) -> Path:
    """The Airflow home of this metadata database: the platform's ``airflow/``, or its own
    folder for another database (the test suite's), so tests never share the running
    platform's configuration, runs or asset events."""
    if settings.pg_airflow_database == DEFAULT_METADATA_DATABASE:
        return settings.home / "airflow"
    return settings.home / f"airflow-{settings.pg_airflow_database}"


def ensure_metadata_database(settings: Settings) -> None:
    """Create ``settings.pg_airflow_database`` if missing, owned by the role Airflow logs in
    as (so a second metadata database works with the platform's Airflow login)."""
    import psycopg
    from psycopg import sql

    from canopywatch_dev.platform import roles

    login = roles.airflow_login(settings)
    owner = login[0] if login is not None else None
    with psycopg.connect(
        **postgres.connection_params(settings, "postgres"), autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_airflow_database,)
        ).fetchone()
        if exists:
            return
        statement = sql.SQL("CREATE DATABASE {}").format(
            sql.Identifier(settings.pg_airflow_database)
        )
        if owner is not None:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        conn.execute(statement)
        log.info("postgres: created database %s", settings.pg_airflow_database)


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.airflow_port}"


def address(settings: Settings) -> str:
    return f"127.0.0.1:{settings.airflow_port}"


def _secrets(settings: Settings) -> dict[str, str]:
    return load_or_create(
        settings,
        NAME,
        lambda: {
            "admin_user": ADMIN_USER,
            "admin_password": new_password(20),
            "fernet_key": urlsafe_b64encode(os.urandom(32)).decode(),
            "api_secret_key": new_password(48),
            "jwt_secret": new_password(48),
        },
    )


def login(settings: Settings) -> tuple[str, str]:
    """``(user, password)`` for the Airflow UI."""
    values = _secrets(settings)
    return values["admin_user"], values["admin_password"]


def _passwords_file(settings: Settings) -> Path:
    """SimpleAuthManager's password file, written by us so it never generates (and logs) one."""
    path = secrets_dir(settings) / "airflow-passwords.json"
    user, password = login(settings)
    if not path.exists() or json.loads(path.read_text(encoding="utf-8")).get(user) != password:
        write_private(path, json.dumps({user: password}) + "\n")
    return path


def sql_alchemy_driver() -> str:
    """The installed PostgreSQL driver for SQLAlchemy: psycopg2 if present, else psycopg 3."""
    if importlib.util.find_spec("psycopg2") is not None:
        return "psycopg2"
    return "psycopg"


def _is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}


def _postgis(settings: Settings, role: str) -> dict[str, Any]:
    """A postgres connection to the GIS database as one of the platform's roles."""
    user, password = roles.login(settings, role)
    return {
        "conn_type": "postgres",
        "host": settings.pg_host,
        "port": settings.pg_port,
        "login": user,
        "password": password,
        "schema": settings.pg_database,
        **(
            {"extra": {"options": f"-c search_path={settings.pg_schema},public"}}
            if settings.pg_schema != "public"
            else {}
        ),
    }


def connections(settings: Settings) -> dict[str, dict[str, Any]]:
    """The Airflow connections, by connection id (values hold credentials)."""
    access_key, secret_key = minio.credentials(settings)
    cdse_id, cdse_secret = settings.cdse_client_id, settings.cdse_client_secret
    if not (cdse_id and cdse_secret) and _is_loopback_http(settings.sh_base_url):
        cdse_id, cdse_secret = emulator.credentials(settings)
    return {
        ids.KAFKA_CONN: {
            "conn_type": "kafka",
            "extra": {
                "bootstrap.servers": settings.kafka_bootstrap,
                # per topic prefix, so concurrent test sessions never share a consumer group
                # (a rebalance waits for every member); "canopywatch-downloader" by default
                "group.id": f"{settings.topic_prefix}-downloader",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            },
        },
        # producers get only the bootstrap (consumer properties make librdkafka warn on stderr)
        ids.KAFKA_PRODUCER_CONN: {
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": settings.kafka_bootstrap},
        },
        # the lake writer reads scenes-downloaded in a consumer group of its own
        ids.KAFKA_LAKE_CONN: {
            "conn_type": "kafka",
            "extra": {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"{settings.topic_prefix}-lake",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            },
        },
        ids.S3_CONN: {
            "conn_type": "aws",
            "login": access_key,
            "password": secret_key,
            "extra": {
                "endpoint_url": settings.s3_endpoint,
                "region_name": minio.REGION,
                "config_kwargs": {"s3": {"addressing_style": "path"}},
            },
        },
        # the catalog writers (sync, areas, alerts) log in as cw_writer, dbt as cw_dbt
        ids.POSTGIS_CONN: _postgis(settings, roles.WRITER),
        ids.POSTGIS_DBT_CONN: _postgis(settings, roles.DBT),
        ids.SPARK_CONN: {"conn_type": "spark", "host": "local[*]"},
        ids.CDSE_CONN: {
            "conn_type": "generic",
            "login": cdse_id,
            "password": cdse_secret,
            "extra": {"sh_base_url": settings.sh_base_url, "sh_token_url": settings.sh_token_url},
        },
    }


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Every variable Airflow needs (merge into ``os.environ``); holds credentials."""
    from canopywatch.airflow.log_levels import namespace_levels

    secrets = _secrets(settings)
    venv_bin = str(Path(sys.executable).parent)
    include = str(REPO_ROOT / "include")
    inherited = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    pythonpath = os.pathsep.join([include, *(p for p in inherited if p and p != include)])
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if venv_bin not in path.split(os.pathsep):
        path = venv_bin + os.pathsep + path
    env = {
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{secrets['admin_user']}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_passwords_file(settings)),
        # cw_airflow on a fresh cluster (its own metadata database only), else the superuser
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.dsn(
            settings,
            settings.pg_airflow_database,
            driver=sql_alchemy_driver(),
            login=roles.airflow_login(settings),
        ),
        "AIRFLOW__API__BASE_URL": api_url(settings),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__COSMOS__CACHE_DIR": str(airflow_home(settings) / "cosmos"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",  # the platform is offline
        # library noise silenced at its logger; matplotlib's font cache built once, not per task
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": namespace_levels(),
        "MPLCONFIGDIR": str(airflow_home(settings) / "matplotlib"),
        "CANOPYWATCH_HOME": str(settings.home),
        "PYTHONPATH": pythonpath,
        "PATH": path,
    }
    for conn_id, conn in connections(settings).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    # the same logins for code that reads Settings (the canopywatch CLI after
    # ``source .platform/airflow/env.sh``: cw_writer) and for ``dbt`` (cw_dbt)
    from canopywatch_dev.platform.environment import credential_env

    env.update(credential_env(settings))
    if _is_loopback_http(settings.sh_token_url):
        env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    return env


def write_env_file(settings: Settings) -> Path:
    """``<home>/airflow/env.sh`` (0600): ``source`` it to use the ``airflow`` CLI by hand."""
    lines = [
        "# generated by canopywatch_dev.platform (holds credentials): source .platform/airflow/env.sh",
        *(f"export {k}={shlex.quote(v)}" for k, v in sorted(airflow_environment(settings).items())),
    ]
    path = airflow_home(settings) / "env.sh"
    write_private(path, "\n".join(lines) + "\n")
    return path


def airflow_cli(
    settings: Settings, *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``airflow <args>`` with the platform's environment; output is captured."""
    require(settings, "airflow")
    result = subprocess.run(
        [str(airflow_binary()), *args],
        env=os.environ | airflow_environment(settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=airflow_home(settings),
    )
    if check and result.returncode != 0:
        raise process.PlatformError(
            f"airflow {' '.join(args)} failed (exit {result.returncode}): "
            + (result.stderr.strip().splitlines() or ["no output"])[-1]
        )
    return result


def health(settings: Settings) -> dict[str, Any] | None:
    """The JSON of GET /api/v2/monitor/health, or None if the API server does not answer."""
    try:
        with urllib.request.urlopen(  # noqa: S310
            api_url(settings) + "/api/v2/monitor/health", timeout=5
        ) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _component_ok(report: dict[str, Any] | None, key: str) -> bool:
    if report is None:
        return False
    entry = report.get(key)
    return isinstance(entry, dict) and entry.get("status") == "healthy"


def _beat_since(report: dict[str, Any] | None, key: str, since: datetime) -> bool:
    """True if component ``key`` has no heartbeat field or its last beat is after ``since``."""
    entry = (report or {}).get(key) or {}
    beat = entry.get(f"latest_{key}_heartbeat") if isinstance(entry, dict) else None
    if key == "metadatabase":
        return True
    if not beat:
        return False
    return datetime.fromisoformat(str(beat)) >= since


def healthy(settings: Settings) -> bool:
    report = health(settings)
    return all(_component_ok(report, key) for key in _HEALTH_KEYS.values())


# -- lifecycle -------------------------------------------------------------------------


def _query_airflow_db(
    settings: Settings, query: LiteralString, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]] | None:
    """Rows of a read-only query on the metadata DB, None if the table is missing."""
    import psycopg

    params_db = postgres.connection_params(settings, settings.pg_airflow_database)
    try:
        with psycopg.connect(**params_db) as conn:
            return list(conn.execute(query, params).fetchall())
    except psycopg.errors.UndefinedTable:
        return None


def initialise(settings: Settings) -> None:
    """``airflow db migrate`` and the ``cdse_api`` pool, each only when needed."""
    version = importlib.metadata.version("apache-airflow")
    stamp = airflow_home(settings) / "db-migrated"
    migrated = stamp.exists() and stamp.read_text(encoding="utf-8").strip() == version
    if not migrated or not _query_airflow_db(settings, "SELECT version_num FROM alembic_version"):
        log.info("airflow: migrating the metadata database (airflow db migrate)")
        result = airflow_cli(settings, "db", "migrate", check=False)
        _append_log(settings, "airflow-init", result)
        if result.returncode != 0:
            raise process.PlatformError(
                f"airflow: db migrate failed (exit {result.returncode}); "
                f"see {log_file(settings, 'airflow-init')}"
            )
        stamp.write_text(version + "\n", encoding="utf-8")
    name, slots, description = POOL
    rows = _query_airflow_db(settings, "SELECT slots FROM slot_pool WHERE pool = %s", (name,))
    if rows != [(slots,)]:
        result = airflow_cli(settings, "pools", "set", name, str(slots), description, check=False)
        _append_log(settings, "airflow-init", result)
        if result.returncode != 0:
            raise process.PlatformError(
                f"airflow: creating pool {name} failed; see {log_file(settings, 'airflow-init')}"
            )
        log.info("airflow: pool %s set to %d slots", name, slots)


def _append_log(settings: Settings, name: str, result: subprocess.CompletedProcess[str]) -> None:
    with log_file(settings, name).open("a", encoding="utf-8") as out:
        out.write(f"\n=== airflow {' '.join(result.args[1:])} (exit {result.returncode})\n")
        out.write(result.stdout)
        out.write(result.stderr)


def _settle(settings: Settings, pids: dict[str, int | None]) -> None:
    """Processes that run but are not healthy (a scheduler shutting down after PostgreSQL
    went away) are waited for or stopped, so that ``up`` starts them again."""
    api_server = "airflow-api-server"
    if pids[api_server] is not None and health(settings) is None:
        pids[api_server] = process.settle(
            settings, api_server, lambda: health(settings) is not None
        )
    if pids[api_server] is None:
        return  # the others' health is read through the API server: judged once it runs
    for proc in PROCESSES:
        if proc != api_server and pids[proc] is not None:
            pids[proc] = process.settle(settings, proc, _component_check(settings, proc))


def _component_check(settings: Settings, proc: str) -> Callable[[], bool]:
    key = _HEALTH_KEYS[proc]
    return lambda: _component_ok(health(settings), key)


# the scheduler and the triggerer serve task logs over HTTP (0.0.0.0:8793 and :8794) only for
# workers on other machines; here the API server reads the log files directly
_NO_LOG_SERVER = {"airflow-scheduler", "airflow-triggerer"}


def _argv(proc: str) -> list[str]:
    command = proc.removeprefix("airflow-")
    extra = ["--skip-serve-logs"] if proc in _NO_LOG_SERVER else []
    return [str(airflow_binary()), command, *extra]


@process.locked
def up(settings: Settings) -> None:
    require(settings, "airflow")
    if not postgres.healthy(settings):
        raise process.PlatformError(
            "airflow: PostgreSQL is not running; start it first "
            "(python -m canopywatch_dev.platform up postgres)"
        )
    pids = {p: process.read_pid(settings, p) for p in PROCESSES}
    fingerprint = _environment_fingerprint(settings)
    if any(pids.values()) and _running_fingerprint(settings) != fingerprint:
        # connections and settings are fixed at process start: restart to apply new ones
        log.info("airflow: configuration changed (connections or settings); restarting")
        for proc in reversed(PROCESSES):
            process.stop(settings, proc, timeout=60)
        pids = dict.fromkeys(PROCESSES)
    if all(pids.values()) and healthy(settings):
        log.info(
            "airflow: already running on %s (pids %s)",
            address(settings),
            ", ".join(str(p) for p in pids.values()),
        )
        return
    _settle(settings, pids)
    ensure_layout(settings)
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    initialise(settings)
    write_env_file(settings)
    if pids["airflow-api-server"] is None and process.port_open("127.0.0.1", settings.airflow_port):
        raise process.PlatformError(
            f"airflow: port {address(settings)} is taken by another process; "
            "stop it or set CANOPYWATCH_AIRFLOW_PORT"
        )
    env = os.environ | airflow_environment(settings)
    _fingerprint_file(settings).write_text(fingerprint + "\n", encoding="utf-8")
    started_at = datetime.now(UTC)
    started = []
    for proc, pid in pids.items():
        if pid is None:
            pids[proc] = process.start_daemon(settings, proc, _argv(proc), env=env, cwd=home)
            started.append(proc)
            log.info("airflow: started %s (pid %d)", proc, pids[proc])

    def all_healthy() -> bool:
        for proc, pid in pids.items():
            if pid is not None and not process.is_alive(pid):
                raise process.PlatformError(
                    f"airflow: {proc} exited during start-up; see {log_file(settings, proc)}"
                )
        report = health(settings)
        if not all(_component_ok(report, key) for key in _HEALTH_KEYS.values()):
            return False
        # a heartbeat from before this start belongs to a process that is gone
        return all(_beat_since(report, _HEALTH_KEYS[proc], started_at) for proc in started)

    took = process.wait_healthy(
        settings, "airflow-api-server", all_healthy, pid=None, timeout=START_TIMEOUT, interval=2
    )
    user, _ = login(settings)
    log.info(
        "airflow: healthy on %s after %.0f s (user %s; password: python -m canopywatch_dev.platform login)",
        api_url(settings),
        took,
        user,
    )


def _fingerprint_file(settings: Settings) -> Path:
    return settings.run_dir / "airflow.env.sha256"


def _environment_fingerprint(settings: Settings) -> str:
    """A hash of the environment Airflow is started with (holds no secret itself)."""
    # PATH and PYTHONPATH depend on the calling shell, not on the platform's configuration
    env = {
        k: v for k, v in airflow_environment(settings).items() if k not in {"PATH", "PYTHONPATH"}
    }
    text = json.dumps(env, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _running_fingerprint(settings: Settings) -> str | None:
    path = _fingerprint_file(settings)
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


@process.locked
def down(settings: Settings) -> None:
    stopped = [p for p in reversed(PROCESSES) if process.stop(settings, p, timeout=60)]
    process.stop_orphans(airflow_home(settings))
    log.info("airflow: stopped %s", ", ".join(stopped) if stopped else "nothing (not running)")


def status(settings: Settings) -> list[process.ProcessStatus]:
    report = health(settings)
    rows = []
    for proc in PROCESSES:
        pid = process.read_pid(settings, proc)
        if pid is None:
            state = "stopped"
        elif _component_ok(report, _HEALTH_KEYS[proc]):
            state = "running"
        else:
            state = "unhealthy"
        where = api_url(settings) if proc == "airflow-api-server" else ""
        rows.append(process.ProcessStatus(NAME, proc, state, where, pid, log_file(settings, proc)))
    return rows
