"""``scene_curation`` run with ``dag.test()`` (``airflow dags test``) on the real services,
over the scenes the session's monitoring run stored: ``CogConvertOperator.execute`` (Spark
``local[*]`` + rio-cogeo), the Kafka -> Delta recorder, the sync and the dbt task group.

The dbt schemas it builds (``<session schema>_analytics*``) are dropped afterwards.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import rasterio
from psycopg import sql
from rio_cogeo.cogeo import cog_validate

from canopywatch.catalog.schema import connect
from canopywatch.lake.tables import SCENES_COG, lake_from_settings, open_table
from canopywatch.settings import Settings
from canopywatch_dev.platform import minio
from tests.integration.conftest import CONF, airflow_dags_test
from tests.integration.test_catalog_sync_dag import COGS, output_of, rows

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def curation_run(first_run):
    env, monitor, _ = first_run
    assert monitor.returncode == 0, output_of(monitor)[-4000:]
    analytics = f"{env.settings.pg_schema}_analytics"
    result = airflow_dags_test(env, {}, dag_id="scene_curation")
    yield env, result
    with connect(env.settings) as conn, conn.cursor() as cur:
        for schema in (analytics, f"{analytics}_staging", f"{analytics}_marts"):
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.commit()


def raw_keys(settings: Settings) -> list[str]:
    s3 = minio.s3_client(settings)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix="sentinel_hub/"
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/raw.tif")]
    return sorted(keys)


def test_scene_curation_converts_every_stored_scene_to_a_valid_cog(curation_run):
    env, result = curation_run
    output = output_of(result)
    assert result.returncode == 0, output[-6000:]
    settings = env.settings
    # CogConvertOperator.execute ran spark-submit with the session's bucket and topic
    assert re.search(rf"to COGs in s3://{settings.bucket} \(profile canopywatch-deflate\)", output)
    _, secret = minio.credentials(settings)
    assert secret not in output, "the S3 secret key reached the task log"
    keys = raw_keys(settings)
    assert len(keys) >= 3
    s3 = minio.s3_client(settings)
    folder = Path(tempfile.mkdtemp(prefix="cw-cogs-"))
    for n, raw_key in enumerate(keys):
        cog_key = raw_key.replace("/raw.tif", "/cog.tif")
        path = folder / f"{n}.tif"
        path.write_bytes(s3.get_object(Bucket=settings.bucket, Key=cog_key)["Body"].read())
        valid, errors, _warnings = cog_validate(str(path))
        assert valid and not errors, (cog_key, errors)
        with rasterio.open(path) as cog:
            assert cog.count == 7 and cog.dtypes[0] == "uint16"  # six bands + SCL, mask
            assert cog.crs.to_epsg() == 32721
            assert cog.descriptions[:4] == ("B02", "B03", "B04", "B08")


def test_scene_curation_records_cogs_in_delta_and_postgis_once(curation_run):
    env, result = curation_run
    assert result.returncode == 0, output_of(result)[-4000:]
    settings = env.settings
    keys = raw_keys(settings)
    expected = sorted(k.replace("/raw.tif", "/cog.tif") for k in keys)
    cogs = open_table(lake_from_settings(settings), SCENES_COG).to_pyarrow_table().to_pylist()
    assert sorted(r["cog_key"] for r in cogs) == expected
    assert all(r["valid"] for r in cogs)
    assert sorted(r[1] for r in rows(settings, COGS)) == expected
    scene_cogs = rows(settings, "SELECT raw_key, cog_key FROM scenes ORDER BY raw_key")
    assert [(raw, cog) for raw, cog in scene_cogs] == [
        (k, k.replace("/raw.tif", "/cog.tif")) for k in keys
    ]


def test_scene_curation_builds_the_dbt_marts_over_the_session_catalog(curation_run):
    env, result = curation_run
    assert result.returncode == 0, output_of(result)[-4000:]
    marts = sql.Identifier(f"{env.settings.pg_schema}_analytics_marts")
    aoi = CONF["aoi_name"]
    keys = raw_keys(env.settings)
    with connect(env.settings) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT sum(scenes)::int, sum(scenes_with_cog)::int"
                " FROM {}.mart_area_observation_coverage WHERE aoi_id = %s"
            ).format(marts),
            (aoi,),
        )
        assert cur.fetchone() == (len(keys), len(keys))
        # the latest scene with a valid COG and cloud cover <= usable_max_cloud (40)
        cur.execute(
            "SELECT scene_id, cog_key FROM scenes WHERE aoi_id = %s AND cloud_cover <= 40"
            " ORDER BY acquired_at DESC, scene_id LIMIT 1",
            (aoi,),
        )
        expected = cur.fetchall()
        cur.execute(
            sql.SQL(
                "SELECT scene_id, cog_key FROM {}.mart_latest_usable_scene WHERE aoi_id = %s"
            ).format(marts),
            (aoi,),
        )
        assert cur.fetchall() == expected and len(expected) == 1
