"""Delta on the real MinIO and the catalog on the real PostGIS, fed with in-memory messages.

No broker here: batches of ``StaticMessage`` (what a consumer would hand over) go straight
into the lake writers, so these tests cover the Delta tables, the PostGIS sync, the query
plans and the export, not Kafka delivery or offsets; those are in ``test_lake_pipeline.py``
(the real broker). Each test has its own lake prefix in the session bucket and the
``test_lake_pipeline`` PostGIS schema (tables emptied before each test).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from canopywatch.catalog import queries
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.catalog.sync import sync_catalog, sync_table
from canopywatch.lake.consume import write_converted_batch, write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, Lake, open_table
from canopywatch.messages import SceneConverted
from canopywatch.settings import Settings
from tests.integration.test_lake_pipeline import (  # fixtures and helpers shared with it
    catalog,
    delta_ids,
    lake,
    pg_rows,
    pg_schema,
    scene_payloads,
)

pytestmark = pytest.mark.service

__all__ = ["catalog", "lake", "pg_schema"]  # fixtures used by name


def test_sync_from_scratch_equals_incremental_sync(
    platform: Settings, lake: Lake, catalog: psycopg.Connection[Any], pg_schema: str
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(12))], lake=lake, dlq=FakeProducer()
    )
    sync_catalog(catalog, lake)
    write_scene_batch(
        [FakeMessage(p, 12 + n) for n, p in enumerate(scene_payloads(6, 12))],
        lake=lake,
        dlq=FakeProducer(),
    )
    key = "sentinel_hub/s2l2a_bands/6vjyn/20240301T000000Z/bbox_-55.400000_-7.100000_-55.380000_-7.080000/cog.tif"
    cogs = [
        SceneConverted(scene_id=f"scene-{n:05d}", cog_key=key, valid=n % 2 == 0) for n in range(8)
    ]
    write_converted_batch(
        [FakeMessage(c.to_bytes(), n, "t.cog") for n, c in enumerate(cogs)],
        lake=lake,
        dlq=FakeProducer(),
    )
    sync_catalog(catalog, lake)
    open_table(lake, SCENES_RAW).delete("scene_id = 'scene-00003'")  # a correction in the lake
    fixed = SceneConverted(scene_id="scene-00001", cog_key=key, valid=True)
    write_converted_batch(
        [FakeMessage(fixed.to_bytes(), 8, "t.cog")], lake=lake, dlq=FakeProducer()
    )
    results = sync_catalog(catalog, lake)
    assert [r.mode for r in results[:2]] == ["incremental", "incremental"]
    incremental = pg_rows(catalog), pg_rows(catalog, "scene_cogs")
    assert len(incremental[0]) == 17

    rebuilt = sync_catalog(catalog, lake, rebuild=True)
    assert {r.mode for r in rebuilt[:2]} == {"full"}
    assert (pg_rows(catalog), pg_rows(catalog, "scene_cogs")) == incremental

    # and in a fresh schema, from nothing
    other = f"{pg_schema}_b"
    with connect(platform, schema=other) as fresh:
        sync_catalog(fresh, lake)
        assert (pg_rows(fresh), pg_rows(fresh, "scene_cogs")) == incremental
        drop_schema(fresh, other)


def test_new_delta_column_does_not_break_the_sync(
    lake: Lake, catalog: psycopg.Connection[Any]
) -> None:
    from deltalake.schema import Field, PrimitiveType

    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(3))], lake=lake, dlq=FakeProducer()
    )
    open_table(lake, SCENES_RAW).alter.add_columns(
        [Field("sun_elevation", PrimitiveType("double"), nullable=True)]
    )
    write_scene_batch(
        [FakeMessage(p, 3 + n) for n, p in enumerate(scene_payloads(2, 3))],
        lake=lake,
        dlq=FakeProducer(),
    )
    sync_catalog(catalog, lake)
    assert len(pg_rows(catalog)) == 5


def test_minio_unreachable_for_a_whole_batch_raises_and_the_retry_loses_nothing(
    platform: Settings, lake: Lake
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    batch = [FakeMessage(p, n) for n, p in enumerate(scene_payloads(10))]
    write_scene_batch(batch[:4], lake=lake, dlq=FakeProducer())
    # the lake's endpoint is a dead port for this whole batch (not a failure part-way through)
    down = Lake(
        lake.root, {**lake.options(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "max_retries": "1"}
    )
    with pytest.raises(OSError):
        write_scene_batch(batch, lake=down, dlq=FakeProducer())
    retry = write_scene_batch(batch, lake=lake, dlq=FakeProducer())  # the task retry: whole batch
    assert (retry.commit.inserted, retry.commit.replayed) == (6, 4)
    assert (
        sorted(delta_ids(lake)) == sorted({s for s in delta_ids(lake)})
        and len(delta_ids(lake)) == 10
    )


def test_postgis_lost_during_a_sync_raises_and_the_next_sync_is_complete(
    platform: Settings, lake: Lake, catalog: psycopg.Connection[Any], pg_schema: str
) -> None:
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(8))], lake=lake, dlq=FakeProducer()
    )
    with (
        connect(platform, schema=pg_schema) as holder,
        connect(platform, schema=pg_schema) as victim,
    ):
        with holder.cursor() as cur:  # hold the sync lock so the victim's sync waits inside
            cur.execute("SELECT pg_advisory_lock(%s)", (0x63_77_73_00,))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                sync_table(victim, lake, SCENES_RAW)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.0)
        with holder.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
            cur.execute("SELECT pg_advisory_unlock(%s)", (0x63_77_73_00,))
        holder.commit()
        worker.join(30)
    assert errors and isinstance(errors[0], psycopg.OperationalError)
    assert pg_rows(catalog) == []
    with pytest.raises(psycopg.OperationalError):
        sync_catalog(psycopg.connect(host="127.0.0.1", port=9, connect_timeout=2), lake)  # down

    sync_catalog(catalog, lake)
    assert len(pg_rows(catalog)) == 8


def test_bbox_time_query_plans_use_the_gist_and_time_indexes(
    platform: Settings, pg_schema: str
) -> None:
    from canopywatch_dev.synthetic_catalog import load_synthetic_scenes

    schema = f"{pg_schema}_q"
    with connect(platform, schema=schema) as conn:
        ensure_schema(conn)
        load_synthetic_scenes(conn, 20_000)
        query = queries.Query.parse("-60,-10,-59.5,-9.5", "2024-03-01", "2024-03-31")
        plan = queries.explain(conn, queries.SCENES_SQL, query)
        # one GiST over footprint and time (benchmarks/catalog_query.py)
        assert "scenes_footprint_time_gix" in plan and "Seq Scan" not in plan, plan
        hits = queries.scenes_in(conn, query)
        assert all(query.window.start <= h["acquired_at"] <= query.window.end for h in hits)
        with conn.cursor() as cur:
            cur.execute(
                """INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence,
                       confidence_level, status, area_ha, method, model_version, geohash, geom)
                   SELECT 'a' || scene_id, 'syn', acquired_at, cloud_cover / 100, 'low', 'low', 1,
                          'harmonic', 'm', geohash, ST_Multi(footprint) FROM scenes"""
            )
            cur.execute("ANALYZE alerts")
        conn.commit()
        alert_query = queries.Query.parse(
            "-60,-10,-59.5,-9.5", "2024-03-01", "2024-03-31", min_confidence=0.5
        )
        alert_plan = queries.explain(conn, queries.ALERTS_SQL, alert_query)
        assert "alerts_geom_gix" in alert_plan and "Seq Scan" not in alert_plan, alert_plan
        assert all(a["confidence"] >= 0.5 for a in queries.alerts_in(conn, alert_query))
        drop_schema(conn, schema)


def test_geopackage_export_of_a_run_to_minio_and_disk(
    platform: Settings, lake: Lake, tmp_path: Path
) -> None:
    import pyogrio

    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER, export_new_since
    from canopywatch.lake.tables import current_versions
    from canopywatch.storage.objects import ObjectStore
    from canopywatch_dev.platform import minio
    from tests.unit.test_lake_writer import FakeMessage, FakeProducer

    write_scene_batch(
        [FakeMessage(p, n) for n, p in enumerate(scene_payloads(3))], lake=lake, dlq=FakeProducer()
    )
    before = current_versions(lake)
    write_scene_batch(
        [FakeMessage(p, 3 + n) for n, p in enumerate(scene_payloads(4, 3))],
        lake=lake,
        dlq=FakeProducer(),
    )
    store = ObjectStore(minio.s3_client(platform), platform.exports_bucket)
    result = export_new_since(
        lake, before, label="manual__2024-05-01T00:00:00+00:00", out_dir=tmp_path, store=store
    )
    assert (result.scenes, result.alerts) == (4, 0)
    layers = {name for name, _ in pyogrio.list_layers(result.path)}
    assert layers == {SCENE_LAYER, ALERT_LAYER}
    frame = pyogrio.read_dataframe(result.path, layer=SCENE_LAYER)
    assert {"scene_id", "acquired_utc", "cloud_cover_pct", "raw_object_key"} <= set(frame.columns)
    assert store.head(result.key or "") is not None
    assert len(frame) == result.scenes
