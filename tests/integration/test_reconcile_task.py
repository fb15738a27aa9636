"""The reconcile path inside the real task: a ``deforestation_monitor`` run (dag.test() on
Airflow, real Kafka, MinIO, PostGIS and the CDSE endpoint) whose lake lost a scene's row
announces that scene again from its ``reconcile_lake`` task, ``record_scenes`` writes it back,
and nothing is downloaded twice.

The runs store, announce and record in a bucket, topics and catalog schema of this module's
own, so the session's other DAG-run tests never see the lost and re-announced scene.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from deltalake import DeltaTable

from canopywatch.lake.tables import SCENES_RAW, lake_from_settings, open_table
from canopywatch.messages import SceneDownloaded
from canopywatch.settings import Settings
from tests.integration.conftest import (
    CONF,
    AirflowEnv,
    Cdse,
    _airflow_env,
    airflow_dags_test,
    bucket_of_its_own,
    topics_of_their_own,
)
from tests.integration.test_monitor_dag import drain, stored_objects

pytestmark = [pytest.mark.service, pytest.mark.slow]

RUN = {**CONF, "start": "2024-01-01", "end": "2024-02-29", "aoi_name": "it-reconcile"}


@pytest.fixture(scope="module")
def env(platform: Settings, cdse: Cdse) -> Iterator[AirflowEnv]:
    from canopywatch.catalog.schema import connect, drop_schema

    with (
        bucket_of_its_own(platform, "recon") as stored,
        topics_of_their_own(stored, "recon") as mine,
    ):
        own = replace(mine, pg_schema=f"{platform.pg_schema}_recon")
        connect(own).close()  # creates the schema
        yield _airflow_env(own, cdse)
        with connect(platform) as conn:
            drop_schema(conn, own.pg_schema)


def _lake_rows(settings: Settings) -> list[dict[str, Any]]:
    table = open_table(lake_from_settings(settings), SCENES_RAW, create=False)
    return table.to_pyarrow_table(columns=["scene_id", "raw_key"]).to_pylist()


def _announced(settings: Settings) -> list[SceneDownloaded]:
    return [
        SceneDownloaded.from_json(v)
        for _, v in drain(settings, settings.topic("scenes-downloaded"))
    ]


def test_a_scene_the_lake_lost_is_announced_again_by_the_reconcile_task(
    env: AirflowEnv, cdse: Cdse
) -> None:
    settings = env.settings
    first = airflow_dags_test(env, RUN)
    assert first.returncode == 0, first.stdout[-4000:]
    objects = sorted(stored_objects(settings))
    rows = _lake_rows(settings)
    assert sorted(r["raw_key"] for r in rows) == objects and len(objects) >= 2
    announced = _announced(settings)
    assert len(announced) == len(objects)

    # the lake loses one scene's row (as if its announcement had never been recorded)
    lost = rows[0]
    lake = lake_from_settings(settings)
    DeltaTable(lake.uri(SCENES_RAW), storage_options=lake.options()).delete(
        f"scene_id = '{lost['scene_id']}'"
    )
    assert lost["raw_key"] not in {r["raw_key"] for r in _lake_rows(settings)}

    process_before = cdse.emulator.stats.count("process")
    stored_before = stored_objects(settings)
    second = airflow_dags_test(env, RUN)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    # the task itself said so, with the counts of the run
    line = re.search(r"\d+ planned scene\(s\): .*announced again", output)
    assert line is not None, output[-4000:]
    assert f"{len(objects) - 1} in the lake" in line.group(0)
    assert "1 stored but missing from the lake and announced again" in line.group(0)
    # exactly one new announcement, for the lost scene; nothing downloaded again
    again = _announced(settings)
    assert len(again) == len(objects) + 1
    extra = [m for m in again if m.raw_key == lost["raw_key"]]
    assert len(extra) == 2 and extra[-1].scene_id == lost["scene_id"]
    assert cdse.emulator.stats.count("process") == process_before
    # record_scenes wrote it back: every stored scene in the lake once
    assert sorted(r["raw_key"] for r in _lake_rows(settings)) == objects
    assert stored_objects(settings) == stored_before  # no object written again
