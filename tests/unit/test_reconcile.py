"""Reconcile: stored scenes whose announcement was lost reach the lake on the next run, once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from canopywatch.download import download_scene, make_aoi, plan_requests, plan_tiles
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, Lake, open_table
from canopywatch.messages import SceneDownloaded
from canopywatch.reconcile import reconcile_scenes, unrecorded_scenes
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import AcquisitionDay
from canopywatch.transport import UndeliveredError
from tests.unit.test_download import geotiff
from tests.unit.test_lake_writer import FakeMessage, FakeProducer
from tests.unit.test_transport import MemoryStore, Producer

SETTINGS = Settings.from_env({})
TOPIC = "cw.scenes-downloaded"


def planned(run_id: str):
    aoi = make_aoi([-55.1, -10.05, -55.09, -10.04], "demo", SETTINGS)
    tile = plan_tiles(aoi, SETTINGS)[0]
    days = [
        AcquisitionDay(
            date(2024, m, 5), datetime(2024, m, 5, 13, 51, tzinfo=UTC), 10.0, (f"S2A_{m}",)
        )
        for m in (1, 2, 3, 4)
    ]
    return plan_requests(
        aoi, tile, days, function="s2l2a_bands", max_cloud=50, resolution=10, run_id=run_id
    )


def fetch(request, function):
    return geotiff(width=request.width, height=request.height)


def lake_ids(lake: Lake) -> list[str]:
    return sorted(open_table(lake, SCENES_RAW).to_pyarrow_table().column("scene_id").to_pylist())


@pytest.fixture
def first_run(tmp_path):
    """Run 1 stores 4 scenes, but only 2 of its announcements reach the lake."""
    store, lake = MemoryStore(), Lake.local(tmp_path / "lake")
    outcomes = [download_scene(r, fetch, store) for r in planned("run-1")]
    announced = [o.message for o in outcomes]
    assert all(isinstance(m, SceneDownloaded) for m in announced)
    write_scene_batch(
        [FakeMessage(m.to_bytes(), i) for i, m in enumerate(announced[:2])],
        lake=lake,
        dlq=FakeProducer(),
    )
    return store, lake, announced


def test_a_rerun_announces_exactly_the_stored_scenes_missing_from_the_lake(first_run):
    store, lake, announced = first_run
    assert len(lake_ids(lake)) == 2
    # run 2 of the same window: every scene is already stored, so download announces nothing
    requests = planned("run-2")
    assert all(download_scene(r, fetch, store).message is None for r in requests)

    producer = Producer()
    outcome = reconcile_scenes(requests, store, lake, producer, TOPIC, run_id="run-2")
    assert (outcome.planned, outcome.in_lake, outcome.not_stored, outcome.this_run) == (4, 2, 0, 0)
    again = [SceneDownloaded.from_json(value) for _, value, _ in producer.sent]
    assert sorted(m.scene_id for m in again) == sorted(m.scene_id for m in announced[2:])
    assert list(outcome.announced) == [m.raw_key for m in again]
    assert all(m.skipped and m.checksum and m.cloud_cover == 10.0 for m in again)

    write_scene_batch(
        [FakeMessage(v, 2 + i) for i, (_, v, _) in enumerate(producer.sent)],
        lake=lake,
        dlq=FakeProducer(),
    )
    assert lake_ids(lake) == sorted(m.scene_id for m in announced)  # 4 rows, none twice

    # a third run finds nothing to repair
    quiet = Producer()
    outcome = reconcile_scenes(planned("run-3"), store, lake, quiet, TOPIC, run_id="run-3")
    assert quiet.sent == [] and outcome.in_lake == 4 and outcome.announced == ()


def test_a_late_duplicate_announcement_still_gives_one_row(first_run):
    store, lake, announced = first_run
    producer = Producer()
    reconcile_scenes(planned("run-2"), store, lake, producer, TOPIC, run_id="run-2")
    # the "lost" announcements were only late: they arrive after the re-announcements
    late = [m.to_bytes() for m in announced[2:]]
    batch = [v for _, v, _ in producer.sent] + late
    write_scene_batch(
        [FakeMessage(v, 2 + i) for i, v in enumerate(batch)], lake=lake, dlq=FakeProducer()
    )
    assert lake_ids(lake) == sorted(m.scene_id for m in announced)


def test_scenes_of_this_run_are_left_to_its_own_announcements(first_run):
    store, lake, _ = first_run
    missing, outcome = unrecorded_scenes(planned("run-1"), store, lake, run_id="run-1")
    assert missing == [] and outcome.this_run == 4


def test_scenes_not_stored_are_counted_not_announced(tmp_path):
    store, lake = MemoryStore(), Lake.local(tmp_path / "lake")  # no table yet either
    requests = planned("run-1")
    download_scene(requests[0], fetch, store)
    missing, outcome = unrecorded_scenes(requests, store, lake, run_id="run-2")
    assert [m.request_id for m in missing] == [requests[0].request_id]
    assert outcome.not_stored == 3


@pytest.mark.parametrize("refusing", [Producer(queued=True), Producer(error="MSG_TIMED_OUT")])
def test_undelivered_reannouncements_fail_the_task(first_run, refusing):
    store, lake, _ = first_run
    with pytest.raises(UndeliveredError, match="re-announcement"):
        reconcile_scenes(planned("run-2"), store, lake, refusing, TOPIC, run_id="run-2")


def test_the_lake_lookup_works_on_a_table_of_many_files(tmp_path):
    """Several commits give several files with statistics: a pyarrow dataset filter on them
    failed (string vs string_view) in the first DAG run that re-ran an interval."""
    from canopywatch.reconcile import recorded_scene_ids
    from tests.unit.test_lake_writer import scene

    lake = Lake.local(tmp_path / "lake")
    for batch in range(4):
        numbers = range(batch * 10, batch * 10 + 10)
        write_scene_batch(
            [FakeMessage(scene(n).to_bytes(), n) for n in numbers], lake=lake, dlq=FakeProducer()
        )
    assert len(open_table(lake, SCENES_RAW).file_uris()) >= 4
    wanted = [scene(1), scene(31), scene(99)]  # 99 was never written
    assert recorded_scene_ids(lake, wanted) == {"scene-00001", "scene-00031"}
