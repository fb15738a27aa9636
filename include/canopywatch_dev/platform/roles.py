"""Least-privilege PostgreSQL roles of the local platform, none of them a superuser.

- ``cw_airflow``: the Airflow metadata database only (it cannot connect to the GIS one);
- ``cw_writer``: the product schema of the GIS database (catalog tables, sync, areas);
- ``cw_reader``: queries and the API: ``SELECT`` on the product tables, nothing else;
- ``cw_dbt``: reads the product tables, builds its own schemas (``analytics_*``).

``ensure_roles`` creates them (passwords generated into ``secrets/postgres-roles.json``,
0600) and grants exactly that; ``CONNECT`` on both databases is revoked from ``PUBLIC``.
It is additive: the cluster's superuser (``settings.pg_user``) keeps working, so a running
platform is not disturbed. On a fresh cluster the Airflow metadata database is created owned
by ``cw_airflow`` and Airflow logs in as that role (``airflow_login``); the GIS side (CLI,
DAG connections, API, dbt) still logs in as the superuser.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from canopywatch.settings import Settings
from canopywatch_dev.platform.credentials import (
    load_or_create,
    new_password,
    secret_file,
    write_private,
)

AIRFLOW, WRITER, READER, DBT = "cw_airflow", "cw_writer", "cw_reader", "cw_dbt"
ROLES = (AIRFLOW, WRITER, READER, DBT)
SECRETS_FILE = "postgres-roles"  # secrets/postgres-roles.json


def passwords(settings: Settings) -> dict[str, str]:
    values: dict[str, str] = load_or_create(
        settings, SECRETS_FILE, lambda: {role: new_password() for role in ROLES}
    )
    return values


def _ident(*names: str) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


IN_USE_FILE = "postgres-roles-in-use"  # which services log in with their role


def create_roles(settings: Settings, connect: Any) -> None:
    """Create the roles (or reset their passwords to the secrets file's); idempotent."""
    secret = passwords(settings)
    with connect("postgres") as conn:
        existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        for role in ROLES:
            verb = "ALTER" if role in existing else "CREATE"
            conn.execute(
                sql.SQL(
                    verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD {}"
                ).format(sql.Identifier(role), sql.Literal(secret[role]))
            )


def use_for_airflow(settings: Settings) -> None:
    """Record that Airflow logs in as ``cw_airflow`` (its metadata database was created
    owned by that role: only on a fresh cluster, a running platform keeps its login)."""
    write_private(secret_file(settings, IN_USE_FILE), json.dumps({"airflow": AIRFLOW}) + "\n")


def airflow_login(settings: Settings) -> tuple[str, str] | None:
    """(role, password) Airflow logs in with, or None: the cluster's superuser."""
    path = secret_file(settings, IN_USE_FILE)
    if not path.exists():
        return None
    role = json.loads(path.read_text(encoding="utf-8")).get("airflow")
    return (role, passwords(settings)[role]) if role == AIRFLOW else None


def ensure_roles(settings: Settings, connect: Any) -> None:
    """Create the roles and their grants (idempotent). ``connect(database)`` opens an
    autocommit superuser connection to ``database``."""
    create_roles(settings, connect)
    gis, meta = settings.pg_database, settings.pg_airflow_database
    with connect("postgres") as conn:
        for database in (gis, meta):
            conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(database)
                )
            )
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(meta), sql.Identifier(AIRFLOW)
            )
        )
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(gis), _ident(WRITER, READER, DBT)
            )
        )
        # schemas of their own: the writer for CANOPYWATCH_PG_SCHEMA, dbt for its marts
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(gis), _ident(WRITER, DBT)
            )
        )
    with connect(meta) as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(_ident(AIRFLOW)))
    with connect(gis) as conn:
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(_ident(WRITER)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(_ident(READER, DBT)))
        conn.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(_ident(WRITER))
        )
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(_ident(READER, DBT))
        )
        for grant in ("GRANT SELECT ON TABLES", "GRANT USAGE ON SCHEMAS"):
            conn.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} " + grant + " TO {}").format(
                    sql.Identifier(WRITER), _ident(READER, DBT)
                )
            )
