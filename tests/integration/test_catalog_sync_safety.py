"""The catalog sync on the real PostGIS: its own schema on every path, one lake per catalog.

Only PostgreSQL is needed: the lakes are local Delta folders. Every test works in schemas
of its own (``cwtest_*``), dropped afterwards; ``public`` is only read, never written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from canopywatch.catalog import sync as catalog_sync
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema, use_schema
from canopywatch.catalog.sync import ForeignLakeError, sync_catalog
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import Lake
from canopywatch.settings import Settings
from tests.unit.test_lake_writer import FakeMessage, FakeProducer, scene

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def pg() -> Settings:
    from canopywatch_dev.platform import stack

    settings = Settings.from_env()
    stack.up(settings, ["postgres"])
    return settings


@pytest.fixture
def schemas(pg: Settings) -> Iterator[list[str]]:
    """Names of fresh schemas (not created); all dropped afterwards."""
    names = [f"cwtest_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    yield names
    with connect(pg) as conn:
        for name in names:
            drop_schema(conn, name)


def lake_with_scenes(path, numbers) -> Lake:
    lake = Lake.local(path)
    write_scene_batch(
        [FakeMessage(scene(n).to_bytes(), i) for i, n in enumerate(numbers)],
        lake=lake,
        dlq=FakeProducer(),
    )
    return lake


def count(conn: psycopg.Connection[Any], schema: str, table: str) -> int | None:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",))
        row = cur.fetchone()
        if row is None or row[0] is None:
            return None
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
        found = cur.fetchone()
    return int(found[0]) if found else None


def test_a_search_path_schema_that_does_not_exist_is_created_not_fallen_through(
    pg, schemas, tmp_path
):
    """The Airflow connection path: only ``options=-c search_path=<schema>,public``."""
    lake = lake_with_scenes(tmp_path / "lake", range(5))
    target = schemas[0]
    params = {**pg.postgres_params(), "options": f"-c search_path={target},public"}
    with psycopg.connect(**params) as conn:
        public_before = count(conn, "public", "scenes")
        results = sync_catalog(conn, lake)
        assert results[0].upserted == 5
        assert count(conn, target, "scenes") == 5
        assert count(conn, "public", "scenes") == public_before  # nothing landed in public
        with conn.cursor() as cur:
            cur.execute(
                "SELECT lake_uri, table_uri FROM lake_sync WHERE delta_table = 'scenes_raw'"
            )
            assert cur.fetchone() == (lake.root, lake.uri("scenes_raw"))


def test_an_explicit_schema_wins_over_the_search_path(pg, schemas, tmp_path):
    lake = lake_with_scenes(tmp_path / "lake", range(3))
    with psycopg.connect(**pg.postgres_params()) as conn:
        sync_catalog(conn, lake, schema=schemas[1])
        assert count(conn, schemas[1], "scenes") == 3


def test_a_catalog_of_another_lake_is_refused_and_left_intact(pg, schemas, tmp_path):
    first = lake_with_scenes(tmp_path / "first", range(6))
    other = lake_with_scenes(tmp_path / "other", range(100, 102))
    with psycopg.connect(**pg.postgres_params()) as conn:
        sync_catalog(conn, first, schema=schemas[0])
        for rebuild in (False, True):  # a rebuild would have cleared the tables first
            with pytest.raises(ForeignLakeError, match=r"reflects the lake .*first.*, not .*other"):
                sync_catalog(conn, other, schema=schemas[0], rebuild=rebuild)
        assert count(conn, schemas[0], "scenes") == 6
        # the same lake again is fine, and so is the other lake in a schema of its own
        assert sync_catalog(conn, first, schema=schemas[0])[0].mode == "unchanged"
        assert sync_catalog(conn, other, schema=schemas[1])[0].upserted == 2


def test_destructive_statements_never_fall_through_to_another_schema(pg, schemas):
    empty, victim = schemas[0], schemas[1]
    with psycopg.connect(**pg.postgres_params()) as conn:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(victim)))
            cur.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(victim, "scenes")))
            cur.execute(
                sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(victim, "scenes"))
            )
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(empty)))
            cur.execute(sql.SQL("SET search_path TO {}, {}").format(
                sql.Identifier(empty), sql.Identifier(victim)))  # fmt: skip
        conn.commit()
        with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction(), conn.cursor() as cur:
            catalog_sync._scoped(cur, empty, "DELETE FROM scenes")
        assert count(conn, victim, "scenes") == 1


def test_bookkeeping_of_an_older_catalog_is_keyed_by_its_lake(pg, schemas):
    """lake_sync rows written before ``lake_uri`` existed get it from their table URI."""
    name = schemas[2]
    with psycopg.connect(**pg.postgres_params()) as conn:
        use_schema(conn, name)
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE lake_sync (delta_table text PRIMARY KEY, table_uri text NOT NULL,"
                " delta_version bigint NOT NULL, rows_upserted bigint NOT NULL DEFAULT 0,"
                " rows_deleted bigint NOT NULL DEFAULT 0, mode text NOT NULL,"
                " synced_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(
                "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode)"
                " VALUES ('scenes_raw', 's3://old-bucket/lake/scenes_raw', 7, 'full')"
            )
        conn.commit()
        ensure_schema(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT lake_uri FROM lake_sync")
            assert cur.fetchall() == [("s3://old-bucket/lake",)]


def test_the_sync_command_refuses_another_lake_in_one_line(pg, schemas, tmp_path, capsys):
    first = lake_with_scenes(tmp_path / "first", range(2))
    other = lake_with_scenes(tmp_path / "other", range(10, 12))
    assert catalog_sync.main(["--lake", first.root, "--schema", schemas[0]]) == 0
    capsys.readouterr()
    assert catalog_sync.main(["--lake", other.root, "--schema", schemas[0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("canopywatch sync: the catalog in schema")
