"""PostGIS tables of the query-serving layer and the sync bookkeeping.

``scenes`` (one row per scene: footprint, acquisition time, cloud cover, raw and COG
keys), ``scene_cogs`` (the COG side as synced from Delta ``scenes_cog``, kept apart so
a COG synced before its raw scene is not lost), ``alerts`` and ``lake_sync`` (the Delta
version each table reflects). GiST indexes on the geometries and B-tree indexes on
the times serve the bbox + time queries.

Tables are created unqualified, in the first schema of the connection's
``search_path`` (``connect(settings, schema=...)`` sets it), so tests and benchmarks
can work in a schema of their own.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from canopywatch.catalog import alert_table
from canopywatch.settings import Settings

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# one DDL run at a time: CREATE ... IF NOT EXISTS races on the catalog otherwise
_DDL_LOCK = 0x63_77_64_64  # "cwdd"

DDL = """
CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public;

CREATE TABLE IF NOT EXISTS scenes (
    scene_id     text PRIMARY KEY,
    request_id   text NOT NULL,
    aoi_id       text NOT NULL,
    source       text NOT NULL,
    function     text NOT NULL,
    geohash      text NOT NULL,
    acquired_at  timestamptz NOT NULL,
    cloud_cover  double precision CHECK (cloud_cover BETWEEN 0 AND 100),
    crs          text NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    bands        text[] NOT NULL,
    bucket       text NOT NULL,
    raw_key      text NOT NULL,
    checksum     text NOT NULL,
    size_bytes   bigint NOT NULL,
    cog_key      text,
    cog_valid    boolean,
    footprint    geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX IF NOT EXISTS scenes_footprint_gix ON scenes USING gist (footprint);
CREATE INDEX IF NOT EXISTS scenes_acquired_at_idx ON scenes (acquired_at);
CREATE INDEX IF NOT EXISTS scenes_aoi_idx ON scenes (aoi_id, acquired_at);
-- bbox + time in one index scan: footprint and acquisition time in one GiST (btree_gist
-- gives timestamptz its GiST operators), so only the rows of both ranges reach the heap
-- (benchmarks/catalog_query.py); added to catalogs made before it by the same DDL
CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public;
CREATE INDEX IF NOT EXISTS scenes_footprint_time_gix ON scenes USING gist (footprint, acquired_at);

CREATE TABLE IF NOT EXISTS scene_cogs (
    scene_id             text PRIMARY KEY,
    cog_key              text NOT NULL,
    valid                boolean NOT NULL,
    validation_errors    text[] NOT NULL,
    validation_warnings  text[] NOT NULL
);

CREATE TABLE IF NOT EXISTS lake_sync (
    delta_table    text PRIMARY KEY,
    table_uri      text NOT NULL,
    delta_version  bigint NOT NULL,
    rows_upserted  bigint NOT NULL DEFAULT 0,
    rows_deleted   bigint NOT NULL DEFAULT 0,
    mode           text NOT NULL,
    synced_at      timestamptz NOT NULL DEFAULT now(),
    lake_uri       text
);
-- the lake a table's version belongs to (catalogs made before it had only table_uri)
ALTER TABLE lake_sync ADD COLUMN IF NOT EXISTS lake_uri text;
UPDATE lake_sync SET lake_uri = regexp_replace(table_uri, '/[^/]+$', '') WHERE lake_uri IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS lake_sync_lake_table_idx ON lake_sync (lake_uri, delta_table);
"""
DDL += alert_table.DDL  # the alerts table, built from the alert schema

CATALOG_TABLES = ("scenes", "scene_cogs", "alerts", "lake_sync")


def check_schema_name(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"schema name {name!r} must match {_SCHEMA_NAME.pattern}")
    return name


def connect(
    settings: Settings, *, schema: str | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A psycopg connection to the PostGIS database of ``settings``, in ``schema`` when given."""
    params = settings.postgres_params()
    if schema is None and settings.pg_schema != "public":
        schema = settings.pg_schema
    if schema:
        params["options"] = f"-c search_path={check_schema_name(schema)},public"
    conn: psycopg.Connection[Any] = psycopg.connect(**params, **kwargs)
    if schema:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.commit()
    return conn


class CatalogSchemaError(RuntimeError):
    """The catalog's schema cannot be used as configured; the message is meant for users."""


def search_path_schema(conn: psycopg.Connection[Any]) -> str:
    """The first schema the connection's ``search_path`` names (``$user`` skipped), whether
    or not it exists yet (PostgreSQL would silently fall through to the next one)."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('search_path')")
        row = cur.fetchone()
    for entry in str(row[0] if row else "").split(","):
        name = entry.strip().strip('"')
        if name and name != "$user":
            return name
    return "public"


def use_schema(conn: psycopg.Connection[Any], schema: str | None = None) -> str:
    """Make ``schema`` (default: the first on the connection's search_path) the catalog's:
    created when missing, first on the search_path (then ``public`` for PostGIS); returns it."""
    name = check_schema_name(schema or search_path_schema(conn))
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        path = [sql.Identifier(name)] + ([sql.Identifier("public")] if name != "public" else [])
        cur.execute(sql.SQL("SET search_path TO {}").format(sql.SQL(", ").join(path)))
        cur.execute("SELECT current_schema()")
        row = cur.fetchone()
    conn.commit()
    if row is None or row[0] != name:
        raise CatalogSchemaError(f"schema {name!r} is not usable (current schema {row})")
    return name


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the catalog tables and indexes if missing (idempotent, safe concurrently)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        cur.execute(DDL)
    conn.commit()


def drop_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(check_schema_name(schema))
            )
        )
    conn.commit()
