"""Delta -> PostGIS: apply each table's changes since the version the catalog reflects.

For every lake table the catalog remembers (``lake_sync``) the Delta version it
reflects. A sync reads the change data feed from the next version to the latest,
reduces it to the net change per id (the last change wins), upserts and deletes,
and records the new version, all in one PostgreSQL transaction per table: a crash
leaves the catalog at the old version, and the next sync applies the same changes
again (upserts are idempotent). Without bookkeeping, or when the change feed is
not available (vacuumed history, a replaced table), the table is reloaded from the
snapshot at the latest version; ``rebuild=True`` does that for every table and gives
the same rows as the incremental path.

Entry point: ``python -m canopywatch.catalog.sync [--rebuild] [--lake URI] [--schema S]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from psycopg import sql

from canopywatch.catalog import alert_table
from canopywatch.catalog.schema import CatalogSchemaError, ensure_schema, use_schema
from canopywatch.lake.changes import known_columns, net_changes
from canopywatch.lake.tables import ALERTS, SCENES_COG, SCENES_RAW, Lake, TableSpec

log = logging.getLogger(__name__)

# the order matters only for speed: COG keys land on scenes already there
SYNC_ORDER = (SCENES_RAW, SCENES_COG, ALERTS)
_SYNC_LOCK_BASE = 0x63_77_73_00  # "cws" + table index


@dataclass(frozen=True)
class TableSync:
    table: str
    from_version: int | None
    to_version: int | None
    upserted: int
    deleted: int
    mode: str  # "incremental" | "full" | "unchanged" | "missing"


# ------------------------------------------------------------------ appliers (SQL)
@dataclass(frozen=True)
class _Target:
    stage_ddl: str
    stage_columns: tuple[str, ...]
    upsert_sql: str
    delete_sql: str
    clear_sql: tuple[str, ...]
    after_sql: tuple[str, ...] = ()  # run after upserts/deletes with the changed ids


_SCENE_STAGE = (
    "scene_id", "request_id", "aoi_id", "source", "function", "geohash", "acquired_at",
    "cloud_cover", "crs", "width", "height", "bands", "bucket", "raw_key", "checksum",
    "size_bytes", "footprint_geojson",
)  # fmt: skip
_COG_STAGE = ("scene_id", "cog_key", "valid", "validation_errors", "validation_warnings")

TARGETS: dict[str, _Target] = {
    "scenes_raw": _Target(
        stage_ddl="""CREATE TEMP TABLE stage (
            scene_id text, request_id text, aoi_id text, source text, function text,
            geohash text, acquired_at timestamptz, cloud_cover double precision, crs text,
            width integer, height integer, bands text[], bucket text, raw_key text,
            checksum text, size_bytes bigint, footprint_geojson text) ON COMMIT DROP""",
        stage_columns=_SCENE_STAGE,
        upsert_sql="""
            INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key, checksum,
                size_bytes, cog_key, cog_valid, footprint)
            SELECT s.scene_id, s.request_id, s.aoi_id, s.source, s.function, s.geohash,
                s.acquired_at, s.cloud_cover, s.crs, s.width, s.height, s.bands, s.bucket,
                s.raw_key, s.checksum, s.size_bytes, c.cog_key, c.valid,
                ST_SetSRID(ST_GeomFromGeoJSON(s.footprint_geojson), 4326)
            FROM stage s LEFT JOIN scene_cogs c USING (scene_id)
            ON CONFLICT (scene_id) DO UPDATE SET
                request_id = EXCLUDED.request_id, aoi_id = EXCLUDED.aoi_id,
                source = EXCLUDED.source, function = EXCLUDED.function,
                geohash = EXCLUDED.geohash, acquired_at = EXCLUDED.acquired_at,
                cloud_cover = EXCLUDED.cloud_cover, crs = EXCLUDED.crs, width = EXCLUDED.width,
                height = EXCLUDED.height, bands = EXCLUDED.bands, bucket = EXCLUDED.bucket,
                raw_key = EXCLUDED.raw_key, checksum = EXCLUDED.checksum,
                size_bytes = EXCLUDED.size_bytes, footprint = EXCLUDED.footprint,
                cog_key = EXCLUDED.cog_key, cog_valid = EXCLUDED.cog_valid""",
        delete_sql="DELETE FROM scenes WHERE scene_id = ANY(%s)",
        clear_sql=("DELETE FROM scenes",),
    ),
    "scenes_cog": _Target(
        stage_ddl="""CREATE TEMP TABLE stage (
            scene_id text, cog_key text, valid boolean, validation_errors text[],
            validation_warnings text[]) ON COMMIT DROP""",
        stage_columns=_COG_STAGE,
        upsert_sql="""
            INSERT INTO scene_cogs (scene_id, cog_key, valid, validation_errors,
                validation_warnings)
            SELECT scene_id, cog_key, valid, validation_errors, validation_warnings FROM stage
            ON CONFLICT (scene_id) DO UPDATE SET cog_key = EXCLUDED.cog_key,
                valid = EXCLUDED.valid, validation_errors = EXCLUDED.validation_errors,
                validation_warnings = EXCLUDED.validation_warnings""",
        delete_sql="DELETE FROM scene_cogs WHERE scene_id = ANY(%s)",
        clear_sql=("DELETE FROM scene_cogs",),
        after_sql=(
            """UPDATE scenes s SET cog_key = c.cog_key, cog_valid = c.valid
               FROM (SELECT i.scene_id, sc.cog_key, sc.valid
                     FROM unnest(%s::text[]) AS i(scene_id)
                     LEFT JOIN scene_cogs sc USING (scene_id)) c
               WHERE s.scene_id = c.scene_id
                 AND (s.cog_key, s.cog_valid) IS DISTINCT FROM (c.cog_key, c.valid)""",
        ),
    ),
    "alerts": _Target(
        stage_ddl=alert_table.STAGE_DDL,
        stage_columns=alert_table.STAGE_COLUMNS,
        upsert_sql=alert_table.UPSERT_SQL,
        delete_sql="DELETE FROM alerts WHERE alert_id = ANY(%s)",
        clear_sql=("DELETE FROM alerts",),
    ),
}


def _apply(
    cur: psycopg.Cursor[Any],
    target: _Target,
    upserts: Sequence[Mapping[str, Any]],
    deletes: Sequence[Any],
    key: str,
) -> None:
    if upserts:
        cur.execute(target.stage_ddl)
        columns = ", ".join(target.stage_columns)
        with cur.copy(f"COPY stage ({columns}) FROM STDIN") as copy:
            for row in upserts:
                copy.write_row(tuple(row[c] for c in target.stage_columns))
        cur.execute(target.upsert_sql)
        cur.execute("DROP TABLE stage")
    if deletes:
        cur.execute(target.delete_sql, (list(deletes),))  # tables exist in the catalog schema
    changed = [r[key] for r in upserts] + list(deletes)
    for statement in target.after_sql:
        if changed:
            cur.execute(statement, (changed,))


# ------------------------------------------------------------------ sync
class ForeignLakeError(RuntimeError):
    """The catalog reflects another lake; syncing this one into it would mix or erase rows."""


def check_lake(cur: psycopg.Cursor[Any], lake: Lake, schema: str) -> None:
    """Refuse a catalog whose bookkeeping (``lake_sync``) belongs to another lake."""
    cur.execute(
        "SELECT DISTINCT lake_uri FROM lake_sync WHERE lake_uri IS DISTINCT FROM %s", (lake.root,)
    )
    others = sorted(str(r[0]) for r in cur.fetchall())
    if others:
        raise ForeignLakeError(
            f"the catalog in schema {schema!r} reflects the lake {', '.join(others)}, "
            f"not {lake.root}; sync this lake into another schema (CANOPYWATCH_PG_SCHEMA)"
        )


def _scoped(cur: psycopg.Cursor[Any], schema: str, statement: str) -> None:
    """A destructive statement that can only reach tables of ``schema`` (no search_path
    fall-through to ``public``)."""
    cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
    cur.execute(statement)
    restore = [sql.Identifier(schema)] + ([sql.Identifier("public")] if schema != "public" else [])
    cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.SQL(", ").join(restore)))


def _open(lake: Lake, spec: TableSpec) -> DeltaTable | None:
    try:
        return DeltaTable(lake.uri(spec), storage_options=lake.options())
    except TableNotFoundError:
        return None


def sync_table(
    conn: psycopg.Connection[Any],
    lake: Lake,
    spec: TableSpec,
    *,
    rebuild: bool = False,
    schema: str | None = None,
) -> TableSync:
    """Bring the catalog's copy of one Delta table to the table's latest version."""
    target = TARGETS[spec.name]
    lock = _SYNC_LOCK_BASE + list(TARGETS).index(spec.name)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        if schema is None:
            cur.execute("SELECT current_schema()")
            row = cur.fetchone()
            schema = str(row[0]) if row else "public"
        check_lake(cur, lake, schema)
        cur.execute(
            "SELECT delta_version FROM lake_sync WHERE delta_table = %s AND lake_uri = %s",
            (spec.name, lake.root),
        )
        found = cur.fetchone()
        applied: int | None = None if found is None else int(found[0])
        delta = _open(lake, spec)
        if delta is None:
            log.info("%s: no Delta table at %s yet; nothing to sync", spec.name, lake.uri(spec))
            return TableSync(spec.name, applied, None, 0, 0, "missing")
        latest = delta.version()
        if applied == latest and not rebuild:
            log.info("%s: catalog already at Delta version %d", spec.name, latest)
            return TableSync(spec.name, applied, latest, 0, 0, "unchanged")

        mode = "full"
        if not rebuild and applied is not None and applied < latest:
            try:
                changes = pa.table(
                    delta.load_cdf(starting_version=applied + 1, ending_version=latest)
                )
                upserts, deletes = net_changes(known_columns(changes, spec), spec.key)
                mode = "incremental"
            except Exception as exc:  # vacuumed or rewritten history: reload instead
                log.warning(
                    "%s: change data feed %d..%d not readable (%s); reloading the snapshot",
                    spec.name,
                    applied + 1,
                    latest,
                    exc,
                )
        if mode == "full":
            snapshot = DeltaTable(lake.uri(spec), version=latest, storage_options=lake.options())
            upserts, deletes = known_columns(snapshot.to_pyarrow_table(), spec), []
            for statement in target.clear_sql:
                _scoped(cur, schema, statement)
            if spec.name == "scenes_cog":
                _scoped(cur, schema, "UPDATE scenes SET cog_key = NULL, cog_valid = NULL")
        _apply(cur, target, upserts, deletes, spec.key)
        if mode == "full" and spec.name == "scenes_cog":
            cur.execute(
                "UPDATE scenes s SET cog_key = c.cog_key, cog_valid = c.valid "
                "FROM scene_cogs c WHERE c.scene_id = s.scene_id"
            )
        cur.execute(
            """
            INSERT INTO lake_sync (delta_table, lake_uri, table_uri, delta_version,
                rows_upserted, rows_deleted, mode, synced_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (delta_table) DO UPDATE SET lake_uri = EXCLUDED.lake_uri,
                table_uri = EXCLUDED.table_uri,
                delta_version = EXCLUDED.delta_version, rows_upserted = EXCLUDED.rows_upserted,
                rows_deleted = EXCLUDED.rows_deleted, mode = EXCLUDED.mode, synced_at = now()
            """,
            (spec.name, lake.root, lake.uri(spec), latest, len(upserts), len(deletes), mode),
        )
    log.info(
        "%s: Delta v%s -> v%d (%s): %d row(s) upserted, %d deleted",
        spec.name,
        "-" if applied is None else applied,
        latest,
        mode,
        len(upserts),
        len(deletes),
    )
    return TableSync(spec.name, applied, latest, len(upserts), len(deletes), mode)


def sync_catalog(
    conn: psycopg.Connection[Any], lake: Lake, *, rebuild: bool = False, schema: str | None = None
) -> list[TableSync]:
    """Sync every lake table into PostGIS, in ``schema`` (default: the first schema on the
    connection's search_path), creating the schema and the catalog tables if needed.

    Raises ``ForeignLakeError`` when the catalog reflects another lake."""
    name = use_schema(conn, schema)
    ensure_schema(conn)
    with conn.cursor() as cur:
        check_lake(cur, lake, name)
    conn.commit()
    return [sync_table(conn, lake, spec, rebuild=rebuild, schema=name) for spec in SYNC_ORDER]


# ------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    from canopywatch.catalog.schema import connect
    from canopywatch.lake.tables import lake_from_settings
    from canopywatch.settings import Settings

    parser = argparse.ArgumentParser(
        prog="python -m canopywatch.catalog.sync",
        description="Apply Delta lake changes to the PostGIS catalog",
    )
    parser.add_argument("--rebuild", action="store_true", help="reload every table from Delta")
    parser.add_argument("--lake", help="lake root: s3://bucket/prefix or a folder (default: MinIO)")
    parser.add_argument("--schema", help="PostGIS schema (default: CANOPYWATCH_PG_SCHEMA)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    lake = Lake.parse(args.lake, settings) if args.lake else lake_from_settings(settings)
    try:
        with connect(settings, schema=args.schema) as conn:
            results = sync_catalog(conn, lake, rebuild=args.rebuild, schema=args.schema)
    except (ForeignLakeError, CatalogSchemaError, ValueError) as exc:
        print(f"canopywatch sync: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    except (psycopg.OperationalError, OSError) as exc:
        print(f"canopywatch sync: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.table}: v{r.to_version} {r.mode}, {r.upserted} upserted, {r.deleted} deleted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
