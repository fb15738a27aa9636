"""Least-privilege PostgreSQL roles of the local platform, none of them a superuser.

- ``cw_airflow``: the Airflow metadata database only (it cannot connect to the GIS one);
- ``cw_writer``: owns the product schemas of the GIS database (catalog tables, sync, areas,
  alerts, sensors); the CLI, the ``postgis_default`` connection and the API's writes use it;
- ``cw_reader``: queries and the API's OGC features: ``SELECT`` on the product tables only;
- ``cw_dbt``: reads the product tables, builds its own schemas (``analytics*``,
  ``<schema>_analytics*``); the ``postgis_dbt`` connection (Cosmos) and ``dbt`` use it.

``ensure_roles`` creates them (passwords generated into ``secrets/postgres-roles.json``,
0600) and grants exactly that; ``CONNECT`` on both databases is revoked from ``PUBLIC``.
Tables ``cw_writer`` creates later are readable by ``cw_reader`` and ``cw_dbt`` (default
privileges), ``cw_dbt``'s by ``cw_reader``. It is additive and idempotent: on a platform
made before the roles, the GIS objects the superuser owns are handed to ``cw_writer`` (dbt's
schemas to ``cw_dbt``) at every start. The cluster's superuser stays for bootstrapping only
(roles, databases, extensions). On a fresh cluster the Airflow metadata database is created
owned by ``cw_airflow`` and Airflow logs in as that role (``airflow_login``).
"""

from __future__ import annotations

import json
import re
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
# dbt's schemas (canopywatch.airflow.dbt.dbt_schema and the CANOPYWATCH_DBT_SCHEMA of the
# tests), each with its _staging and _marts
_DBT_SCHEMA = re.compile(r"^(analytics|.+_analytics|.+_dbt|.+_sdbt)(_staging|_marts)?$")
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def passwords(settings: Settings) -> dict[str, str]:
    """Every role's password; made once. A password set for a role in ``settings``
    (``CANOPYWATCH_PG_USER=cw_writer`` + ``CANOPYWATCH_PG_PASSWORD``) is the one it gets."""

    def fresh() -> dict[str, str]:
        return {
            role: settings.pg_password
            if role == settings.pg_user and settings.pg_password
            else new_password()
            for role in ROLES
        }

    values: dict[str, str] = load_or_create(settings, SECRETS_FILE, fresh)
    return values


def login(settings: Settings, role: str) -> tuple[str, str]:
    """(role, password) a service logs in with on the GIS database."""
    if role == settings.pg_user and settings.pg_password:
        return role, settings.pg_password
    return role, passwords(settings)[role]


def is_dbt_schema(name: str) -> bool:
    return bool(_DBT_SCHEMA.match(name))


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


# relation kinds handed over (indexes and owned sequences follow their table)
_ALTER = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
_SUPERUSER_SCHEMAS = """
SELECT n.nspname FROM pg_namespace n
WHERE n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1
"""
_SUPERUSER_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
  AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
ORDER BY 1, 2
"""


def _hand_over(conn: Any) -> None:
    """Give the superuser's GIS objects to the roles: dbt's schemas (and what is in them) to
    ``cw_dbt``, every other schema, table, view and sequence to ``cw_writer``. Extension
    objects (PostGIS' ``spatial_ref_sys``) and ``public`` itself stay."""
    schemas = [r[0] for r in conn.execute(_SUPERUSER_SCHEMAS, (list(_SYSTEM_SCHEMAS),))]
    for schema in schemas:
        if schema == "public":
            continue
        owner = DBT if is_dbt_schema(schema) else WRITER
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
    for schema, name, kind in conn.execute(_SUPERUSER_RELATIONS, (list(_SYSTEM_SCHEMAS),)):
        owner = DBT if is_dbt_schema(schema) else WRITER
        verb = "SEQUENCE" if kind == "S" else _ALTER[kind]
        conn.execute(
            sql.SQL("ALTER " + verb + " {}.{} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(name), sql.Identifier(owner)
            )
        )


def _grant_reads(conn: Any) -> None:
    """``SELECT`` on what exists: the writer's schemas to cw_reader and cw_dbt, dbt's to
    cw_reader (what is made later gets it from the default privileges)."""
    rows = conn.execute(
        "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
        "WHERE pg_get_userbyid(nspowner) = ANY(%s) OR nspname = 'public'",
        ([WRITER, DBT],),
    ).fetchall()
    for schema, owner in rows:
        readers = (READER,) if owner == DBT else (READER, DBT)
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), _ident(*readers)
            )
        )
        if owner != DBT:
            # dbt's on-run-start creates its empty sensor source in the product schema
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(
                    sql.Identifier(schema), sql.Identifier(DBT)
                )
            )
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), _ident(*readers)
            )
        )


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
        # the writer may drop dbt's schemas built on its tables (DROP SCHEMA ... CASCADE of a
        # catalog schema) and write the sensor source dbt created; dbt gains nothing from it
        conn.execute(sql.SQL("GRANT {} TO {}").format(_ident(DBT), _ident(WRITER)))
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
        _hand_over(conn)
        _grant_reads(conn)
        for owner, readers in ((WRITER, (READER, DBT)), (DBT, (READER,))):
            for grant in ("GRANT SELECT ON TABLES", "GRANT USAGE ON SCHEMAS"):
                conn.execute(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} " + grant + " TO {}").format(
                        sql.Identifier(owner), _ident(*readers)
                    )
                )
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT CREATE ON SCHEMAS TO {}").format(
                sql.Identifier(WRITER), sql.Identifier(DBT)
            )
        )
