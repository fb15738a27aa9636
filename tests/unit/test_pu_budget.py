"""The monitoring run's cost step: the processing-unit estimate of the planned requests
(stored scenes free), logged, and a run over CANOPYWATCH_PU_BUDGET refused."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canopywatch.airflow import budget
from canopywatch.airflow.payloads import TileSearch
from canopywatch.download import download_scene, make_aoi, plan_requests, plan_tiles, scene_key
from canopywatch.evalscripts import get_function
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import AcquisitionDay
from canopywatch.sources.units import BudgetError, request_units
from canopywatch.storage.folder import FolderStore


def _searches(settings: Settings) -> list[TileSearch]:
    aoi = make_aoi("-55.40,-7.10,-55.30,-7.00", "budget-test", settings)
    days = [
        AcquisitionDay(
            day=datetime(2024, 1, d, tzinfo=UTC).date(),
            acquired_at=datetime(2024, 1, d, 13, 40, tzinfo=UTC),
            cloud_cover=10.0,
            product_ids=(f"S2A_{d}",),
        )
        for d in (3, 8, 13)
    ]
    searches = []
    for tile in plan_tiles(aoi, settings):
        requests = plan_requests(
            aoi, tile, days, function="s2l2a_bands", max_cloud=80, resolution=10.0
        )
        searches.append(
            TileSearch(label=tile.tile_id, requests=tuple(r.to_json() for r in requests))
        )
    return searches


def test_estimate_logs_the_cost_skips_stored_scenes_and_refuses_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(Settings.from_env({}), pu_budget=0.0)
    store = FolderStore(tmp_path)
    monkeypatch.setattr(budget, "object_store", lambda conn_id, bucket: store)
    searches = _searches(settings)
    planned = [r for s in searches for r in s.download_requests()]
    per_request = request_units(get_function("s2l2a_bands"), planned[0].width, planned[0].height)
    assert len(planned) == 3

    with caplog.at_level(logging.INFO, logger="canopywatch.airflow.budget"):
        spend = budget.estimate_cost(searches, aws_conn_id="minio_default", settings=settings)
    assert (spend.requests, spend.already_stored) == (3, 0)
    assert spend.processing_units == pytest.approx(3 * per_request, rel=1e-6)
    assert "cost estimate: 3 Process API request(s)" in caplog.text
    assert "budget unlimited" in caplog.text

    # a stored scene is not fetched again: it costs nothing
    download_scene(planned[0], lambda request, function: _tiff(request), store)
    assert store.head(scene_key(planned[0]).key) is not None
    spend = budget.estimate_cost(searches, aws_conn_id="minio_default", settings=settings)
    assert (spend.requests, spend.already_stored) == (2, 1)

    tight = replace(settings, pu_budget=per_request * 1.5)
    with pytest.raises(BudgetError, match=r"over the budget of .* narrow the bbox or the dates"):
        budget.estimate_cost(searches, aws_conn_id="minio_default", settings=tight)


def _tiff(request) -> bytes:
    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_bounds

    data = np.ones((8, request.height, request.width), dtype="uint16")
    with MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff",
            width=request.width,
            height=request.height,
            count=8,
            dtype="uint16",
            crs=rasterio.crs.CRS.from_epsg(request.epsg),
            transform=from_bounds(*request.utm_bounds, request.width, request.height),
        ) as dst:
            dst.write(data)
        return bytes(memfile.read())
