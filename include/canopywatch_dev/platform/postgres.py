"""PostgreSQL 15 + PostGIS 3 from Debian packages, one cluster under ``<home>/data/postgres``.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
``postgres`` system user and its processes run as that user. The cluster listens on
``127.0.0.1:<pg_port>`` only (sockets under ``<home>/run/postgres``), with scram-sha-256
authentication; its superuser (``settings.pg_user`` unless that names one of the platform's
roles, then the one recorded) has a password generated on first start into
``secrets/postgres.json`` and is used for bootstrapping only (``connection_params``, ``dsn``:
roles, databases, extensions). Databases: ``settings.pg_database`` (PostGIS) and
``settings.pg_airflow_database`` (Airflow metadata). The GIS side logs in with the roles of
:mod:`canopywatch_dev.platform.roles` (``cw_writer``, ``cw_reader``, ``cw_dbt``).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from canopywatch.settings import Settings
from canopywatch_dev.platform import process, roles
from canopywatch_dev.platform.credentials import load_or_create, new_password
from canopywatch_dev.platform.paths import ensure_layout, log_file, service_data_dir
from canopywatch_dev.platform.prerequisites import PG_BIN, require

NAME = "postgres"
PROCESSES = (NAME,)
COMPOSE_SERVICES = ("postgis",)
OS_USER = "postgres"
START_TIMEOUT = 60.0

log = logging.getLogger("canopywatch_dev.platform")


# -- connection ------------------------------------------------------------------------


DEFAULT_SUPERUSER = "canopywatch"


def superuser(settings: Settings) -> tuple[str, str]:
    """(name, password) of the cluster's superuser, for bootstrapping only: ``settings.pg_user``
    with ``settings.pg_password`` (or the generated one, stored 0600), unless ``pg_user`` is a
    platform role (``CANOPYWATCH_PG_USER=cw_writer``): then the superuser recorded in
    ``secrets/postgres.json``."""
    if settings.pg_user not in roles.ROLES:
        if settings.pg_password:
            return settings.pg_user, settings.pg_password
        values = load_or_create(
            settings, NAME, lambda: {"user": settings.pg_user, "password": new_password()}
        )
        return settings.pg_user, values["password"]
    values = load_or_create(
        settings, NAME, lambda: {"user": DEFAULT_SUPERUSER, "password": new_password()}
    )
    return values.get("user") or DEFAULT_SUPERUSER, values["password"]


def password(settings: Settings) -> str:
    """The password of ``settings.pg_user``: ``settings.pg_password`` when set, else the
    platform's: a role's from ``secrets/postgres-roles.json``, the superuser's otherwise."""
    if settings.pg_password:
        return settings.pg_password
    if settings.pg_user in roles.ROLES:
        return roles.passwords(settings)[settings.pg_user]
    return superuser(settings)[1]


def connection_params(settings: Settings, database: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` / ``psycopg2.connect``, as the superuser
    (bootstrapping and administration only)."""
    user, secret = superuser(settings)
    return {
        "host": settings.pg_host,
        "port": settings.pg_port,
        "user": user,
        "password": secret,
        "dbname": database or settings.pg_database,
    }


def role_params(settings: Settings, role: str, database: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` as one of the platform's roles."""
    user, secret = roles.login(settings, role)
    return connection_params(settings, database) | {"user": user, "password": secret}


def dsn(
    settings: Settings,
    database: str | None = None,
    driver: str | None = None,
    login: tuple[str, str] | None = None,
) -> str:
    """``postgresql[+driver]://user:password@host:port/database`` (holds the password);
    ``login``: (role, password) instead of the superuser's."""
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    user, secret = login or superuser(settings)
    return (
        f"{scheme}://{quote(user, safe='')}:{quote(secret, safe='')}"
        f"@{settings.pg_host}:{settings.pg_port}/{database or settings.pg_database}"
    )


def address(settings: Settings) -> str:
    return f"{settings.pg_host}:{settings.pg_port}"


# -- lifecycle -------------------------------------------------------------------------


def data_dir(settings: Settings) -> Path:
    return service_data_dir(settings, NAME)


def socket_dir(settings: Settings) -> Path:
    return settings.run_dir / NAME


def _run_as() -> str | None:
    """The system user that owns the cluster: ``postgres`` when we are root."""
    return OS_USER if os.geteuid() == 0 else None


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def healthy(settings: Settings) -> bool:
    if not process.port_open(settings.pg_host, settings.pg_port):
        return False
    import psycopg

    try:
        with psycopg.connect(**connection_params(settings, "postgres"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@process.locked
def up(settings: Settings) -> None:
    require(settings, "postgres")
    # a process on its way out (or hung) is waited for, or stopped, never taken as running
    pid = process.settle(settings, NAME, lambda: healthy(settings))
    if pid is not None:
        log.info("postgres: already running on %s (pid %d)", address(settings), pid)
        ensure_databases(settings)
        return
    if pid is None and process.port_open(settings.pg_host, settings.pg_port):
        raise process.PlatformError(
            f"postgres: port {address(settings)} is taken by another process; "
            "stop it or set CANOPYWATCH_PG_PORT"
        )
    if pid is None:
        _init_cluster(settings)
        pid = _start(settings)
    took = process.wait_healthy(
        settings, NAME, lambda: healthy(settings), pid=pid, timeout=START_TIMEOUT
    )
    log.info("postgres: started on %s (pid %d, %.1f s)", address(settings), pid, took)
    ensure_databases(settings)


def _init_cluster(settings: Settings) -> None:
    data = data_dir(settings)
    if (data / "PG_VERSION").exists():
        return
    ensure_layout(settings)
    user = _run_as()
    for directory in (settings.home, settings.data_dir):
        directory.chmod(directory.stat().st_mode | 0o755)  # the postgres user must traverse
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    _chown(data, user)
    pw_dir = Path(tempfile.mkdtemp(prefix="canopywatch-pg-"))
    try:
        _chown(pw_dir, user)
        pw_file = pw_dir / "pw"
        fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT, 0o600)
        name, secret = superuser(settings)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
        _chown(pw_file, user)
        log.info("postgres: initialising a new cluster in %s", data)
        with log_file(settings, NAME).open("ab") as out:
            result = subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D", str(data),
                    "-U", name,
                    f"--pwfile={pw_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E", "UTF8",
                    "--locale=C.UTF-8",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                check=False,
            )  # fmt: skip
    finally:
        shutil.rmtree(pw_dir, ignore_errors=True)
    if result.returncode != 0:
        raise process.PlatformError(
            f"postgres: initdb failed (exit {result.returncode}); see {log_file(settings, NAME)}"
        )


def _remove_stale_lock(settings: Settings) -> None:
    """Remove ``postmaster.pid`` left by a postmaster that was killed (or is a zombie)."""
    lock = data_dir(settings) / "postmaster.pid"
    try:
        pid = int(lock.read_text(encoding="ascii").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if not process.is_alive(pid):
        log.warning("postgres: removing stale %s (pid %d is gone)", lock, pid)
        lock.unlink(missing_ok=True)


def _start(settings: Settings) -> int:
    _remove_stale_lock(settings)
    user = _run_as()
    sockets = socket_dir(settings)
    sockets.mkdir(parents=True, exist_ok=True)
    _chown(sockets, user)
    argv: list[str | Path] = [
        PG_BIN / "postgres",
        "-D", data_dir(settings),
        "-c", f"listen_addresses={settings.pg_host}",
        "-c", f"port={settings.pg_port}",
        "-c", f"unix_socket_directories={sockets}",
        "-c", "max_connections=200",
        "-c", "logging_collector=off",
    ]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return process.start_daemon(settings, NAME, argv, env=env, cwd=data_dir(settings), user=user)


def ensure_databases(settings: Settings) -> None:
    """Create the GIS and Airflow databases, the PostGIS and btree_gist extensions and the
    least-privilege roles with their grants (idempotent)."""
    import psycopg
    from psycopg import sql

    def superuser(database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(**connection_params(settings, database), autocommit=True)

    roles.create_roles(settings, superuser)
    with superuser("postgres") as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        if settings.pg_database not in existing:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.pg_database)))
            log.info("postgres: created database %s", settings.pg_database)
        if settings.pg_airflow_database not in existing:
            # a fresh metadata database belongs to the Airflow role, which Airflow then uses
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(settings.pg_airflow_database), sql.Identifier(roles.AIRFLOW)
                )
            )
            roles.use_for_airflow(settings)
            log.info(
                "postgres: created database %s (owner %s)",
                settings.pg_airflow_database,
                roles.AIRFLOW,
            )
    with psycopg.connect(**connection_params(settings), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        # the catalog's DDL names both; cw_writer may not create extensions
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public")
    roles.ensure_roles(settings, superuser)


@process.locked
def down(settings: Settings) -> None:
    # SIGINT = "fast" shutdown: PostgreSQL does not wait for clients to disconnect
    if process.stop(settings, NAME, sig=signal.SIGINT, group=False):
        log.info("postgres: stopped")
    else:
        log.info("postgres: not running")


def status(settings: Settings) -> list[process.ProcessStatus]:
    return [process.single_status(settings, NAME, address(settings), lambda: healthy(settings))]
