"""Least privilege on the real PostGIS of the platform: every GIS login the platform hands
out (the CLI's env.sh, the Airflow connections, the API, dbt) and Airflow's metadata login
are roles that are not superusers, and each reaches only its part.

Only PostgreSQL is needed. The catalog lives in a schema of this module (``cwtest_lp_*``),
made by the CLI's login as the sync makes it, dropped afterwards; ``public`` is not written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.service

DBT = Path(sys.executable).with_name("dbt")
ROLE_OF = "SELECT current_user::text, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
ROLE_OF += "WHERE rolname = current_user"


@pytest.fixture(scope="module")
def pg() -> Iterator[Settings]:
    from canopywatch_dev.platform import stack

    base = Settings.from_env()
    stack.up(base, ["postgres"])  # raises PlatformError: the test errors, never skips
    settings = replace(base, pg_schema=f"cwtest_lp_{uuid.uuid4().hex[:8]}")
    with connect(cli_settings(settings)) as conn:  # the schema and tables, as the CLI makes them
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode, lake_uri)"
            " VALUES ('scenes_raw', 's3://b/lake/scenes_raw', 1, 'full', 's3://b/lake')"
        )
        conn.commit()
    yield settings
    with connect(base) as conn:
        drop_schema(conn, settings.pg_schema)
        drop_schema(conn, f"{settings.pg_schema}_analytics_probe")


def platform_env(settings: Settings) -> dict[str, str]:
    """What ``source .platform/airflow/env.sh`` exports (the CLI's and Airflow's environment)."""
    from canopywatch_dev.platform import airflow_local

    return airflow_local.airflow_environment(settings)


def cli_settings(settings: Settings) -> Settings:
    """Settings of the ``canopywatch`` CLI after ``source .platform/airflow/env.sh``."""
    env = {**os.environ, **platform_env(settings)}
    return replace(Settings.from_env(env), pg_schema=settings.pg_schema)


def api_settings(settings: Settings) -> Settings:
    """Settings of the API process ``platform up api`` starts (its environment)."""
    from canopywatch_dev.platform.environment import credential_env

    env = {**os.environ, **credential_env(settings)}
    return replace(Settings.from_env(env), pg_schema=settings.pg_schema)


def from_connection(conn: dict[str, Any]) -> dict[str, Any]:
    """psycopg arguments of an Airflow ``conn_type: postgres`` connection."""
    params = {
        "host": conn["host"],
        "port": conn["port"],
        "user": conn["login"],
        "password": conn["password"],
        "dbname": conn["schema"],
    }
    options = conn.get("extra", {}).get("options")
    return params | ({"options": options} if options else {})


def as_role(settings: Settings, role: str) -> psycopg.Connection[Any]:
    from canopywatch_dev.platform import postgres

    params = postgres.role_params(settings, role)
    return psycopg.connect(
        **params, options=f"-c search_path={settings.pg_schema},public", autocommit=True
    )


def logged_in_as(**params: Any) -> tuple[Any, ...]:
    with psycopg.connect(**params, connect_timeout=10) as conn:
        row = conn.execute(ROLE_OF).fetchone()
    assert row is not None
    return tuple(row)


def test_every_login_the_platform_hands_out_is_a_role_not_a_superuser(pg):
    from canopywatch.airflow import ids
    from canopywatch.api.features import database_url
    from canopywatch_dev.platform import roles

    env = platform_env(pg)
    connections = {
        k.removeprefix("AIRFLOW_CONN_").lower(): json.loads(v)
        for k, v in env.items()
        if k.startswith("AIRFLOW_CONN_")
    }
    metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("://", 1)[1]
    api = api_settings(pg)
    found = {
        "CLI (env.sh)": logged_in_as(**cli_settings(pg).postgres_params()),
        "postgis_default": logged_in_as(**from_connection(connections[ids.POSTGIS_CONN])),
        "postgis_dbt (Cosmos)": logged_in_as(**from_connection(connections[ids.POSTGIS_DBT_CONN])),
        "API features (tipg)": logged_in_as(conninfo=database_url(api)),
        "API catalog routes": logged_in_as(**api.postgres_params()),
        "dbt (profiles.yml)": logged_in_as(
            **pg.postgres_params()
            | {"user": env["CANOPYWATCH_DBT_USER"], "password": env["CANOPYWATCH_DBT_PASSWORD"]}
        ),
        "Airflow metadata": logged_in_as(conninfo="postgresql://" + metadata),
    }
    expected = {
        "CLI (env.sh)": roles.WRITER,
        "postgis_default": roles.WRITER,
        "postgis_dbt (Cosmos)": roles.DBT,
        "API features (tipg)": roles.READER,
        "API catalog routes": roles.WRITER,
        "dbt (profiles.yml)": roles.DBT,
        "Airflow metadata": roles.AIRFLOW,
    }
    assert found == {name: (role, False, False, False) for name, role in expected.items()}, (
        "a login is a superuser (or another role than its own); a metadata database made "
        "before the roles keeps the superuser: see README 'Credentials'"
    )


def test_dbt_profile_logs_in_as_cw_dbt(pg, tmp_path):
    env = {**os.environ, **platform_env(pg), "CANOPYWATCH_PG_SCHEMA": pg.pg_schema}
    project = REPO_ROOT / "dbt"
    result = subprocess.run(
        [str(DBT), "debug", "--project-dir", str(project), "--profiles-dir", str(project),
         "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "user: cw_dbt" in result.stdout
    assert "OK connection ok" in result.stdout
    assert env["CANOPYWATCH_DBT_PASSWORD"] not in result.stdout + result.stderr


def test_reader_reads_the_catalog_and_writes_nothing(pg):
    from canopywatch_dev.platform import roles

    with as_role(pg, roles.READER) as conn:
        assert conn.execute("SELECT count(*) FROM lake_sync").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM scenes").fetchone() == (0,)
        for statement in (
            "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode)"
            " VALUES ('x', 'y', 1, 'full')",
            "DELETE FROM lake_sync",
            "UPDATE lake_sync SET mode = 'x'",
            "DELETE FROM scenes",
            "TRUNCATE alerts",
            "CREATE TABLE probe (x int)",
            "DROP TABLE scenes",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM lake_sync").fetchone() == (1,)


def test_writer_writes_and_migrates_the_catalog(pg):
    from canopywatch.geo import BBox
    from canopywatch.storage import aois

    with connect(cli_settings(pg)) as conn:
        conn.execute(
            "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode, lake_uri)"
            " VALUES ('cogs', 's3://b/lake/cogs', 2, 'full', 's3://b/lake')"
        )
        conn.execute("UPDATE lake_sync SET delta_version = 3 WHERE delta_table = 'cogs'")
        version = "SELECT delta_version FROM lake_sync WHERE delta_table = 'cogs'"
        assert conn.execute(version).fetchone() == (3,)
        conn.execute("DELETE FROM lake_sync WHERE delta_table = 'cogs'")
        conn.commit()
        ensure_schema(conn)  # DDL again: ALTER TABLE ... ADD COLUMN IF NOT EXISTS, indexes
        aois.register(
            conn, aois.RegisteredAoi("lp-area", "lp-area", BBox(-55.4, -7.1, -55.3, -7.0))
        )
        assert [a.aoi_id for a in aois.list_areas(conn)] == ["lp-area"]
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            (pg.pg_schema,),
        ).fetchall()
    assert owners == [("cw_writer",)]


def test_dbt_reads_the_catalog_builds_its_own_schema_and_writes_no_catalog_table(pg):
    from canopywatch_dev.platform import roles

    probe = f"{pg.pg_schema}_analytics_probe"
    with as_role(pg, roles.DBT) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(probe)))
        conn.execute(
            sql.SQL("CREATE TABLE {}.mart AS SELECT delta_table FROM lake_sync").format(
                sql.Identifier(probe)
            )
        )
        mart = sql.SQL("SELECT count(*) FROM {}.mart").format(sql.Identifier(probe))
        assert conn.execute(mart).fetchone() == (1,)
        for statement in (
            "INSERT INTO scenes (scene_id) VALUES ('x')",
            "UPDATE lake_sync SET mode = 'x'",
            "DELETE FROM lake_sync",
            "TRUNCATE lake_sync",
            "ALTER TABLE lake_sync ADD COLUMN probe int",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with as_role(pg, roles.READER) as conn:  # the marts are there for queries
        assert conn.execute(mart).fetchone() == (1,)


def test_airflow_role_cannot_connect_to_the_gis_database(pg):
    from canopywatch_dev.platform import postgres, roles

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(**postgres.role_params(pg, roles.AIRFLOW), connect_timeout=10)


def test_objects_the_superuser_made_before_the_roles_are_handed_over_at_start(pg):
    """A platform made before the roles: its superuser owns the catalog and dbt's marts.
    The platform's start gives them to cw_writer and cw_dbt, twice without harm."""
    from canopywatch_dev.platform import postgres, roles

    old, marts = f"{pg.pg_schema}_old", f"{pg.pg_schema}_old_analytics_marts"
    admin = psycopg.connect(**postgres.connection_params(pg), autocommit=True)
    try:
        for schema in (old, marts):
            admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        admin.execute(
            sql.SQL("CREATE TABLE {}.scenes (id serial PRIMARY KEY, v text)").format(
                sql.Identifier(old)
            )
        )
        admin.execute(
            sql.SQL("INSERT INTO {}.scenes (v) VALUES ('made by the superuser')").format(
                sql.Identifier(old)
            )
        )
        admin.execute(
            sql.SQL("CREATE VIEW {}.scene_ids AS SELECT id FROM {}.scenes").format(
                sql.Identifier(old), sql.Identifier(old)
            )
        )
        admin.execute(
            sql.SQL("CREATE TABLE {}.mart AS SELECT v FROM {}.scenes").format(
                sql.Identifier(marts), sql.Identifier(old)
            )
        )
        for _ in range(2):
            postgres.ensure_databases(pg)
        owners = admin.execute(
            "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), pg_get_userbyid(n.nspowner)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'S') ORDER BY 1, 2",
            ([old, marts],),
        ).fetchall()
        assert owners == [
            (old, "scene_ids", roles.WRITER, roles.WRITER),
            (old, "scenes", roles.WRITER, roles.WRITER),
            (old, "scenes_id_seq", roles.WRITER, roles.WRITER),
            (marts, "mart", roles.DBT, roles.DBT),
        ]
        writer = psycopg.connect(**postgres.role_params(pg, roles.WRITER), autocommit=True)
        with writer:
            table = sql.Identifier(old, "scenes")
            writer.execute(sql.SQL("INSERT INTO {} (v) VALUES ('the writer')").format(table))
            writer.execute(sql.SQL("ALTER TABLE {} ADD COLUMN w int").format(table))
        with psycopg.connect(**postgres.role_params(pg, roles.READER)) as reader:
            count = reader.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
            assert count == (2,)
            mart = sql.Identifier(marts, "mart")
            assert reader.execute(sql.SQL("SELECT v FROM {}").format(mart)).fetchall() == [
                ("made by the superuser",)
            ]
    finally:
        for schema in (marts, old):
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
        admin.close()
