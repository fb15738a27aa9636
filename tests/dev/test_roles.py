"""Least-privilege roles on a fresh PostgreSQL cluster of the test's own (temporary home and
port; the shared cluster is not touched): none is a superuser, each reaches only its part."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from canopywatch.catalog.schema import ensure_schema
from canopywatch.settings import Settings
from canopywatch_dev.platform import postgres, process, roles

pytestmark = [pytest.mark.slow, pytest.mark.service]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Settings]:
    # the postgres system user must traverse the home: not under pytest's 0700 tmp folders
    home = Path(tempfile.mkdtemp(prefix="cwtest-pg-"))
    home.chmod(0o755)
    settings = Settings.from_env(
        {**os.environ, "CANOPYWATCH_HOME": str(home), "CANOPYWATCH_PG_PORT": str(free_port())}
    )
    try:
        postgres.up(settings)  # initdb, start, databases, PostGIS, the roles
        yield settings
    finally:
        process.stop(settings, postgres.NAME, timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def login(settings: Settings, role: str, database: str) -> psycopg.Connection:
    params = {
        **postgres.connection_params(settings, database),
        "user": role,
        "password": roles.passwords(settings)[role],
    }
    return psycopg.connect(**params, autocommit=True)


def test_no_role_is_a_superuser(cluster):
    with psycopg.connect(**postgres.connection_params(cluster, "postgres")) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname = ANY(%s) ORDER BY rolname",
            (list(roles.ROLES),),
        ).fetchall()
    assert [r[0] for r in rows] == sorted(roles.ROLES)
    assert all(not any(r[1:]) for r in rows)
    assert (
        oct((Path(cluster.home) / "secrets" / "postgres-roles.json").stat().st_mode)[-3:] == "600"
    )


def test_airflow_reaches_its_metadata_database_only(cluster):
    with login(cluster, roles.AIRFLOW, cluster.pg_airflow_database) as conn:
        conn.execute("CREATE TABLE dag_probe (x int)")
        conn.execute("DROP TABLE dag_probe")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        login(cluster, roles.AIRFLOW, cluster.pg_database)


def test_writer_builds_the_catalog_reader_only_reads_dbt_builds_its_own(cluster):
    with login(cluster, roles.WRITER, cluster.pg_database) as conn:
        ensure_schema(conn)  # the catalog tables, as the sync creates them
        conn.execute(
            "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode, lake_uri)"
            " VALUES ('scenes_raw', 's3://b/lake/scenes_raw', 1, 'full', 's3://b/lake')"
        )
    with login(cluster, roles.READER, cluster.pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM lake_sync").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM lake_sync")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.probe (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA probe")
    with login(cluster, roles.DBT, cluster.pg_database) as conn:
        conn.execute("CREATE SCHEMA analytics_probe")
        conn.execute("CREATE TABLE analytics_probe.mart AS SELECT delta_table FROM lake_sync")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE lake_sync SET mode = 'x'")
    # the roles stay as they are when the platform starts again (idempotent)
    postgres.ensure_databases(cluster)
    with login(cluster, roles.READER, cluster.pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM lake_sync").fetchone() == (1,)


def test_airflow_migrates_its_fresh_metadata_database_as_its_own_role(cluster):
    from canopywatch_dev.platform import airflow_local

    with psycopg.connect(**postgres.connection_params(cluster, "postgres")) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (cluster.pg_airflow_database,),
        ).fetchone()
    assert owner == (roles.AIRFLOW,)
    assert roles.airflow_login(cluster) == (roles.AIRFLOW, roles.passwords(cluster)[roles.AIRFLOW])
    conn_url = airflow_local.airflow_environment(cluster)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert f"//{roles.AIRFLOW}:" in conn_url
    airflow_local.airflow_home(cluster).mkdir(parents=True, exist_ok=True)
    result = airflow_local.airflow_cli(cluster, "db", "migrate", check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with login(cluster, roles.AIRFLOW, cluster.pg_airflow_database) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
