"""The typed task hand-offs: JSON in XCom, the same objects out, bad JSON refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from canopywatch.airflow.monitor import tile_jobs
from canopywatch.airflow.payloads import (
    AreaDetection,
    AreaJob,
    CatalogSync,
    ExportedFile,
    LakeVersions,
    TableSync,
    TileJob,
    TileSearch,
)
from canopywatch.download import Aoi, Window, plan_tiles
from canopywatch.geo import BBox, RequestTile
from canopywatch.settings import Settings

SETTINGS = Settings(max_request_px=400)  # 0.05 x 0.05 deg at 10 m: 2 x 2 tiles
AREA = AreaJob(
    aoi=Aoi("tapajos-1", "Tapajós 1", BBox(-55.40, -7.10, -55.35, -7.05)),
    window=Window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)),
    function="s2l2a_bands",
    max_cloud=60.0,
)


def test_an_area_job_survives_xcom_as_the_same_object():
    text = AREA.to_json()
    assert json.loads(text)["aoi"]["bbox"] == {
        "minx": -55.40,
        "miny": -7.10,
        "maxx": -55.35,
        "maxy": -7.05,
    }
    assert AreaJob.from_json(text) == AREA


def test_tile_jobs_carry_the_planned_request_tiles_unchanged():
    jobs = tile_jobs([AREA], SETTINGS)
    planned = plan_tiles(AREA.aoi, SETTINGS)
    assert len(jobs) == len(planned) == 4
    assert [job.label for job in jobs] == [f"tapajos-1/{t.tile_id}" for t in planned]
    for job, tile in zip(jobs, planned, strict=True):
        back = TileJob.from_json(job.to_json())
        assert back == job and back.tile == tile
        assert isinstance(back.tile, RequestTile) and isinstance(back.tile.bbox, BBox)
        assert back.tile.epsg == 32721 and back.tile.width <= 400


def test_a_payload_with_a_bad_value_is_refused_on_the_way_in():
    text = AREA.to_json()
    reversed_bbox = text.replace('"maxx":-55.35', '"maxx":-56.35')
    with pytest.raises(ValidationError, match="must be smaller than maxx"):
        AreaJob.from_json(reversed_bbox)
    empty_window = text.replace("2024-03-31T23:59:59Z", "2023-12-01T00:00:00Z")
    with pytest.raises(ValidationError, match="empty or reversed"):
        AreaJob.from_json(empty_window)
    with pytest.raises(ValidationError):
        TileSearch.from_json('{"requests": []}')  # no label


def test_results_round_trip():
    search = TileSearch(label="tapajos-1/r0c0", requests=())
    assert TileSearch.from_json(search.producer_kwargs()["search"]) == search
    assert search.producer_kwargs()["label"] == "tapajos-1/r0c0"
    versions = LakeVersions({"scenes_raw": 3, "alerts": -1})
    assert LakeVersions.from_json(versions.to_json()).versions == {"scenes_raw": 3, "alerts": -1}
    sync = CatalogSync({"scenes_raw": TableSync(version=4, upserted=2, deleted=0, mode="cdf")})
    assert CatalogSync.from_json(sync.to_json()) == sync
    detection = AreaDetection(
        aoi_id="tapajos-1",
        scenes=12,
        alerts=2,
        high_confidence=1,
        area_ha=1.5,
        outputs=(ExportedFile(local="/tmp/a.gpkg", uri="s3://exports/a.gpkg"),),
    )
    back = AreaDetection.from_json(detection.to_json())
    assert back == detection and back.outputs[0].uri == "s3://exports/a.gpkg"
