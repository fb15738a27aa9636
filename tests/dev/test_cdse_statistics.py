"""The Statistical API: the local endpoint's ``/api/v1/statistics`` in the service's shape, and
``canopywatch.sources.statistics`` / ``canopywatch stats`` reading it through sentinelhub.

The statistics are checked against the Process API of the same endpoint: the mean NDVI of an
interval equals the mean of the clear pixels of the NDVI image of that interval.
"""

# ruff: noqa: F811  (the emulator fixtures of test_cdse_emulator are imported by name)
from __future__ import annotations

import csv
import io
import itertools
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
import requests
from sentinelhub import CRS, MimeType, MosaickingOrder, SentinelHubRequest, SHConfig
from sentinelhub import BBox as ShBBox

from canopywatch.geo import BBox, split_into_tiles
from canopywatch.sources.copernicus import s2l2a_collection
from canopywatch.sources.statistics import (
    NDVI_EVALSCRIPT,
    ndvi_series,
    statistical_request,
)
from canopywatch_dev.cdse_emulator import CdseEmulator, token_url
from tests.dev.test_cdse_emulator import (  # noqa: F401
    AREA_BBOX,
    CLIENT_ID,
    CLIENT_SECRET,
    base_url,
    config,
    emulator,
    server,
    world,
)

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
AREA = BBox(*AREA_BBOX)
# the same clear-pixel rule as the statistics, as an image: [ndvi, clear]
PROCESS_EVALSCRIPT = NDVI_EVALSCRIPT.replace(
    'output: [{ id: "ndvi", bands: 1, sampleType: "FLOAT32" }, { id: "dataMask", bands: 1 }]',
    'output: { id: "default", bands: 2, sampleType: "FLOAT32" }',
).replace(
    "return { ndvi: [index(s.B08, s.B04)], dataMask: [clear ? 1 : 0] };",
    "return [index(s.B08, s.B04), clear ? 1 : 0];",
)


def _ndvi_image(config: SHConfig, start: datetime, end: datetime) -> np.ndarray:
    (tile,) = split_into_tiles(AREA, 10.0, max_px=2500)
    request = SentinelHubRequest(
        evalscript=PROCESS_EVALSCRIPT,
        input_data=[
            SentinelHubRequest.input_data(
                data_collection=s2l2a_collection(config),
                time_interval=(start, end),
                mosaicking_order=MosaickingOrder.LEAST_CC,
                other_args={"processing": {"harmonizeValues": True}},
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=ShBBox(tile.utm_bounds, crs=CRS(tile.epsg)),
        size=(tile.width, tile.height),
        config=config,
    )
    (content,) = request.get_data(decode_data=False)
    with rasterio.MemoryFile(content.content) as memory, memory.open() as src:
        return np.asarray(src.read())


def test_ndvi_series_matches_the_process_api_interval_by_interval(
    config: SHConfig, emulator: CdseEmulator
) -> None:
    assert "harmonic" not in PROCESS_EVALSCRIPT and "default" in PROCESS_EVALSCRIPT
    series = ndvi_series(config, AREA, START, END, interval_days=10)
    assert 3 <= len(series) <= 9  # 9 intervals of 10 days; those without a scene are left out
    (tile,) = split_into_tiles(AREA, 10.0, max_px=2500)
    assert {s.pixels for s in series} == {tile.width * tile.height}
    assert all(b.start > a.start for a, b in itertools.pairwise(series))
    with_clear = [s for s in series if s.clear_px]
    assert with_clear, series
    for interval in with_clear[:3]:
        ndvi, clear = _ndvi_image(config, interval.start, interval.end)
        mask = clear == 1
        assert interval.clear_px == int(mask.sum())
        assert interval.mean == pytest.approx(float(ndvi[mask].mean()), abs=1e-5)
        assert interval.maximum == pytest.approx(float(ndvi[mask].max()), abs=1e-5)
        assert interval.st_dev == pytest.approx(float(ndvi[mask].std()), abs=1e-5)
    # a forest area: the clear pixels are green
    assert all(0.5 < s.mean < 1.0 for s in with_clear if s.clear_share > 0.5)  # type: ignore[operator]
    assert emulator.stats.processing_units > 0


def _token(base_url: str) -> str:
    reply = requests.post(
        token_url(base_url),
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
              "client_secret": CLIENT_SECRET},
        timeout=10,
    )  # fmt: skip
    return str(reply.json()["access_token"])


def test_the_endpoint_answers_in_the_service_shape_and_refuses_bad_requests(
    base_url: str, config: SHConfig, emulator: CdseEmulator
) -> None:
    body = (
        statistical_request(config, AREA, START, END, interval_days=30).download_list[0].post_values
    )
    headers = {"Authorization": f"Bearer {_token(base_url)}"}
    reply = requests.post(f"{base_url}/api/v1/statistics", json=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    assert float(reply.headers["x-processingunits-spent"]) > 0
    document = reply.json()
    assert document["status"] == "OK"
    first = document["data"][0]
    assert set(first) == {"interval", "outputs"}
    assert first["interval"] == {"from": "2024-01-01T00:00:00Z", "to": "2024-01-31T00:00:00Z"}
    stats = first["outputs"]["ndvi"]["bands"]["B0"]["stats"]
    assert set(stats) == {"min", "max", "mean", "stDev", "sampleCount", "noDataCount"}
    assert "dataMask" not in first["outputs"]
    # 91 days in 30-day steps: the short last interval is skipped (lastIntervalBehavior SKIP)
    assert [d["interval"]["from"][:10] for d in document["data"]] == [
        "2024-01-01", "2024-01-31", "2024-03-01"
    ]  # fmt: skip
    no_mask = body["aggregation"]["evalscript"].replace(', { id: "dataMask", bands: 1 }', "")
    bad = [
        ({**body, "aggregation": {**body["aggregation"], "evalscript": no_mask}}, "dataMask"),
        ({**body, "aggregation": {**body["aggregation"],
                                  "aggregationInterval": {"of": "PT1H"}}}, "ISO 8601"),
        ({**body, "aggregation": {**body["aggregation"],
                                  "timeRange": {"from": "2024-02-01T00:00:00Z",
                                                "to": "2024-01-01T00:00:00Z"}}}, "before"),
        ({"input": body["input"]}, "aggregation is required"),
    ]  # fmt: skip
    for payload, message in bad:
        refused = requests.post(
            f"{base_url}/api/v1/statistics", json=payload, headers=headers, timeout=30
        )
        assert refused.status_code == 400 and message in refused.text, (message, refused.text)
    anonymous = requests.post(f"{base_url}/api/v1/statistics", json=body, timeout=30)
    assert anonymous.status_code == 401


def _cli(base_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {
        **os.environ,
        "CANOPYWATCH_SH_BASE_URL": base_url,
        "CANOPYWATCH_SH_TOKEN_URL": token_url(base_url),
        "CANOPYWATCH_CDSE_CLIENT_ID": CLIENT_ID,
        "CANOPYWATCH_CDSE_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "canopywatch", "stats", *argv],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_canopywatch_stats_prints_the_series_and_refuses_bad_input_in_one_line(
    base_url: str, config: SHConfig, emulator: CdseEmulator
) -> None:
    box = ",".join(str(v) for v in AREA_BBOX)
    done = _cli(base_url, "--bbox", box, "--start", "2024-01-01", "--end", "2024-03-31",
                "--interval-days", "10", "--format", "csv")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    expected = ndvi_series(config, AREA, START, END, interval_days=10)
    assert [r["start"][:10] for r in rows] == [f"{s.start:%Y-%m-%d}" for s in expected]
    assert [int(r["clear_px"]) for r in rows] == [s.clear_px for s in expected]
    table = _cli(base_url, "--bbox", box, "--start", "2024-01-01", "--end", "2024-03-31")
    assert table.returncode == 0 and "mean NDVI" in table.stdout
    for argv, message in (
        (["--bbox", "1,2", "--start", "2024-01-01", "--end", "2024-01-31"], "bbox"),
        (["--bbox", box, "--start", "2024-02-01", "--end", "2024-01-01"], "before --start"),
        (["--bbox", box, "--start", "x", "--end", "2024-01-01"], "--start"),
        (["--bbox", box, "--start", "2024-01-01", "--end", "2024-01-31", "--interval-days", "0"],
         "at least 1"),
        (["--bbox", "-56,-8,-55,-7", "--start", "2024-01-01", "--end", "2024-01-31"],
         "resolution of at least"),
    ):  # fmt: skip
        refused = _cli(base_url, *argv)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and message in lines[0], refused.stderr
