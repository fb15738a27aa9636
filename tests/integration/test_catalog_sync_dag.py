"""``catalog_sync`` run with ``dag.test()`` (``airflow dags test``) on the real services:
incremental, then ``rebuild=true`` after PostGIS drifted from the lake.

It works in a bucket and a PostGIS schema of its own (its hand-made lake rows never reach the
session schema the weekly run reads), both removed afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canopywatch.catalog.schema import connect, drop_schema
from canopywatch.lake.consume import write_converted_batch, write_scene_batch
from canopywatch.lake.tables import SCENES_COG, SCENES_RAW, lake_from_settings, open_table
from canopywatch.messages import SceneConverted
from canopywatch.settings import Settings
from canopywatch_dev.platform import minio
from tests.integration.conftest import AirflowEnv, airflow_dags_test
from tests.unit.test_lake_writer import FakeMessage, FakeProducer, scene

pytestmark = [pytest.mark.service, pytest.mark.slow]


def output_of(result: Any) -> str:
    return str(result.stdout) + str(result.stderr)


def rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(query)  # test-only fixed statements
        return [tuple(row) for row in cur.fetchall()]


def empty_bucket(settings: Settings, bucket: str) -> None:
    s3 = minio.s3_client(settings)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def sync_env(airflow_env: AirflowEnv):
    """The session's Airflow env with a bucket and a PostGIS schema of this module's own."""
    base = airflow_env.settings
    own = replace(
        base,
        bucket=f"{base.bucket}-sync",
        exports_bucket=f"{base.bucket}-sync-x",
        pg_schema=f"{base.pg_schema}_sync",
    )
    minio.ensure_buckets(own)
    connect(own).close()  # creates the schema; the DAG's sync creates the tables
    variables = {
        **airflow_env.variables,
        "CANOPYWATCH_BUCKET": own.bucket,
        "CANOPYWATCH_EXPORTS_BUCKET": own.exports_bucket,
        "CANOPYWATCH_PG_SCHEMA": own.pg_schema,
    }
    yield AirflowEnv(own, variables)
    with connect(base) as conn:
        drop_schema(conn, own.pg_schema)
    for bucket in (own.bucket, own.exports_bucket):
        empty_bucket(own, bucket)


SCENES = "SELECT scene_id, cloud_cover, raw_key, cog_key FROM scenes ORDER BY scene_id"
COGS = "SELECT scene_id, cog_key, valid FROM scene_cogs ORDER BY scene_id"
MODES = "SELECT delta_table, mode FROM lake_sync ORDER BY delta_table"
COG_KEY = (
    "sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/"
    "bbox_-55.400000_-7.100000_-55.380000_-7.080000/cog.tif"
)


def test_catalog_sync_dag_applies_delta_to_postgis_incrementally_and_rebuilds(sync_env):
    settings = sync_env.settings
    lake = lake_from_settings(settings)
    payloads = [scene(n).to_bytes() for n in range(12)]
    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(payloads)], lake=lake, dlq=FakeProducer()
    )
    cogs = [
        SceneConverted(scene_id=f"scene-{n:05d}", cog_key=COG_KEY, valid=n % 2 == 0)
        for n in range(8)
    ]
    write_converted_batch(
        [FakeMessage(c.to_bytes(), n, "t.cog") for n, c in enumerate(cogs)],
        lake=lake,
        dlq=FakeProducer(),
    )

    first = airflow_dags_test(sync_env, {}, dag_id="catalog_sync")
    assert first.returncode == 0, output_of(first)[-4000:]
    assert len(rows(settings, SCENES)) == 12
    assert rows(settings, COGS) == [(f"scene-{n:05d}", COG_KEY, n % 2 == 0) for n in range(8)]
    assert dict(rows(settings, MODES))["scenes_raw"] == "full"  # nothing synced before

    # new writes elsewhere: 6 more scenes, one deleted in the lake, one COG corrected
    write_scene_batch(
        [FakeMessage(scene(n).to_bytes(), n) for n in range(12, 18)],
        lake=lake,
        dlq=FakeProducer(),
    )
    open_table(lake, SCENES_RAW).delete("scene_id = 'scene-00003'")
    write_converted_batch(
        [
            FakeMessage(
                SceneConverted(scene_id="scene-00001", cog_key=COG_KEY, valid=True).to_bytes(),
                8,
                "t.cog",
            )
        ],
        lake=lake,
        dlq=FakeProducer(),
    )
    second = airflow_dags_test(sync_env, {}, dag_id="catalog_sync")
    assert second.returncode == 0, output_of(second)[-4000:]
    synced = rows(settings, SCENES), rows(settings, COGS)
    ids = [row[0] for row in synced[0]]
    assert len(ids) == 17 and "scene-00003" not in ids and "scene-00017" in ids
    assert ("scene-00001", COG_KEY, True) in synced[1]
    assert dict(rows(settings, MODES)) == {"scenes_cog": "incremental", "scenes_raw": "incremental"}
    versions = {table.name: open_table(lake, table).version() for table in (SCENES_RAW, SCENES_COG)}

    # PostGIS drifts from the lake (a row lost, a value changed by hand); the lake does not
    # change, so only a rebuild repairs it, to exactly what the incremental syncs gave
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM scenes WHERE scene_id = 'scene-00010'")
        cur.execute("UPDATE scenes SET cloud_cover = 99 WHERE scene_id = 'scene-00011'")
        conn.commit()
    rebuilt = airflow_dags_test(sync_env, {"rebuild": True}, dag_id="catalog_sync")
    assert rebuilt.returncode == 0, output_of(rebuilt)[-4000:]
    assert (rows(settings, SCENES), rows(settings, COGS)) == synced
    assert dict(rows(settings, MODES)) == {"scenes_cog": "full", "scenes_raw": "full"}
    assert {
        table.name: open_table(lake, table).version() for table in (SCENES_RAW, SCENES_COG)
    } == versions  # a rebuild reads the lake, never writes it
