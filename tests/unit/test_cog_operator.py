"""CogConvertOperator.execute: the pending rows worked out on the Airflow side and handed over
under ``_jobs/`` (spark-submit without Delta/S3A), nothing submitted when nothing is
pending, the hand-over deleted whatever the job's outcome, and the previous path kept.

Connections are environment variables, the lake a local Delta folder (real delta-rs), the
S3 client a boto3 client stubbed with S3's response shapes; spark-submit itself
(``SparkSubmitOperator.execute``) is replaced by a recorder of what it would run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from botocore.stub import ANY, Stubber

from canopywatch.airflow import cog as operator_module
from canopywatch.airflow.cog import CogConvertOperator
from canopywatch.cog import handover
from canopywatch.lake.rows import Provenance, scene_raw_row
from canopywatch.lake.tables import SCENES_RAW, Lake
from canopywatch.lake.writer import OffsetRow, write_exactly_once
from canopywatch.storage.objects import ObjectStore
from tests.unit.test_cog_handover import downloaded_scene

RUN_ID = "asset_triggered__2026-12-02T19:00:00+00:00"


@pytest.fixture
def world(monkeypatch, tmp_path) -> dict[str, Any]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MINIO_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "k", "password": "s",
                    "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
    )  # fmt: skip
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DEFAULT",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:9"}}),
    )
    monkeypatch.setenv("CANOPYWATCH_BUCKET", "canopywatch")
    lake = Lake.local(tmp_path / "lake")
    monkeypatch.setattr(Lake, "s3", classmethod(lambda cls, *a, **k: lake))
    client = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="k", aws_secret_access_key="s")  # fmt: skip
    monkeypatch.setattr(operator_module, "object_store", lambda _c, b: ObjectStore(client, b))
    monkeypatch.setattr(operator_module, "spark_jars", lambda _s: ["/lib/delta-spark_2.13.jar"])
    state: dict[str, Any] = {"lake": lake, "client": client, "submits": [], "fail": False}

    def submit(self: CogConvertOperator, context: Any) -> None:
        state["submits"].append(
            {"args": list(self.application_args), "conf": dict(self.conf), "jars": self.jars,
             "env": dict(self._runtime_env)}
        )  # fmt: skip
        if state["fail"]:
            raise RuntimeError("spark-submit exited 1")

    monkeypatch.setattr(SparkSubmitOperator, "execute", submit)
    return state


def _seed(lake: Lake, count: int) -> list[str]:
    now = datetime.now(UTC)
    scenes = [downloaded_scene(i) for i in range(count)]
    records = [
        OffsetRow("op", 0, n, scene_raw_row(m, Provenance("op", 0, n, now)))
        for n, m in enumerate(scenes)
    ]
    write_exactly_once(lake, SCENES_RAW, records)
    return sorted(m.scene_id for m in scenes)


def _context() -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="scene_curation", run_id=RUN_ID, task_id="convert_cogs",
                         try_number=1, map_index=-1)  # fmt: skip
    return {"ti": ti}


def _key() -> str:
    return handover.job_key("scene_curation", RUN_ID, "convert_cogs", 1)


def test_nothing_pending_submits_nothing(world):
    CogConvertOperator(task_id="convert_cogs").execute(_context())
    assert world["submits"] == []


def _expect_put_and_delete(stub: Stubber, captured: dict[str, bytes]) -> None:
    def keep(body: Any) -> bool:
        captured["body"] = body
        return True

    class Body:
        def __eq__(self, other: object) -> bool:
            return keep(other)

    stub.add_response(
        "put_object",
        {"ETag": '"9b2cf535f27731c974343645a3985328"'},
        {"Bucket": "canopywatch", "Key": _key(), "Body": Body(),
         "ContentType": "application/json", "Metadata": ANY},
    )  # fmt: skip
    stub.add_response("delete_object", {}, {"Bucket": "canopywatch", "Key": _key()})


def test_pending_rows_are_handed_over_and_spark_reads_no_delta(world):
    ids = _seed(world["lake"], 3)
    captured: dict[str, bytes] = {}
    with Stubber(world["client"]) as stub:
        _expect_put_and_delete(stub, captured)
        CogConvertOperator(task_id="convert_cogs").execute(_context())
        stub.assert_no_pending_responses()  # put before the job, deleted after it
    [submit] = world["submits"]
    args = submit["args"]
    assert args[args.index("--scenes-from") + 1] == f"s3://canopywatch/{_key()}"
    assert "--scene-ids" not in args
    assert not submit["jars"]
    assert "spark.sql.extensions" not in submit["conf"]
    assert not [k for k in submit["conf"] if "s3a" in k]
    assert submit["env"]["AWS_SECRET_ACCESS_KEY"] == "s"
    rows = handover.parse_handover(captured["body"])
    assert [r["scene_id"] for r in rows] == ids


def test_given_ids_become_the_handed_over_rows(world):
    ids = _seed(world["lake"], 3)
    captured: dict[str, bytes] = {}
    with Stubber(world["client"]) as stub:
        _expect_put_and_delete(stub, captured)
        CogConvertOperator(task_id="convert_cogs", scene_ids=f"{ids[2]},{ids[0]}").execute(
            _context()
        )
    assert [r["scene_id"] for r in handover.parse_handover(captured["body"])] == [ids[0], ids[2]]


def test_the_handover_is_deleted_when_the_job_fails(world):
    _seed(world["lake"], 1)
    world["fail"] = True
    with Stubber(world["client"]) as stub:
        _expect_put_and_delete(stub, {})
        with pytest.raises(RuntimeError, match="spark-submit exited 1"):
            CogConvertOperator(task_id="convert_cogs").execute(_context())
        stub.assert_no_pending_responses()


def test_without_handover_the_job_reads_delta_itself(world):
    ids = _seed(world["lake"], 2)
    CogConvertOperator(
        task_id="convert_cogs", scene_ids=ids[0], hand_over_scenes=False
    ).execute(_context())  # fmt: skip
    [submit] = world["submits"]
    assert submit["jars"] == "/lib/delta-spark_2.13.jar"
    assert submit["conf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert submit["args"][submit["args"].index("--scene-ids") + 1] == ids[0]
    assert "--scenes-from" not in submit["args"]
