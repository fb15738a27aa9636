from datetime import UTC, date, datetime

import numpy as np
import pytest
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from canopywatch.download import (
    CorruptSceneError,
    WindowError,
    make_aoi,
    parse_window,
    plan_requests,
    plan_tiles,
    scene_key,
    verify_geotiff,
)
from canopywatch.evalscripts import UnknownFunctionError, get_function
from canopywatch.geo import BBoxError
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import AcquisitionDay, CdseEndpoint, CredentialsError

SETTINGS = Settings.from_env({})


def geotiff(count=8, dtype="uint16", width=20, height=10, mask_value=1) -> bytes:
    data = np.ones((count, height, width), dtype=dtype)
    data[-1] = mask_value
    with MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff",
            width=width,
            height=height,
            count=count,
            dtype=dtype,
            crs="EPSG:32721",
            transform=from_origin(489000, 8894000, 10, 10),
        ) as dst:
            dst.write(data)
        return memfile.read()


def test_window_parsing():
    window = parse_window("2024-01-01", "2024-01-31")
    assert window.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert window.end == datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_window(date(2024, 1, 1), "2024-01-02T12:00:00Z").end.hour == 12
    with pytest.raises(WindowError, match="reversed"):
        parse_window("2024-02-01", "2024-01-01")
    with pytest.raises(WindowError, match="missing"):
        parse_window(None, "2024-01-01")
    with pytest.raises(WindowError, match="not a date"):
        parse_window("yesterday", "2024-01-01")


def test_make_aoi_validates_and_names():
    aoi = make_aoi([-55.1, -10.05, -55.05, -10.0], "Novo Progresso Demo", SETTINGS)
    assert aoi.aoi_id == "novo-progresso-demo"
    assert make_aoi([-55.1, -10.05, -55.05, -10.0], None, SETTINGS).aoi_id.startswith("bbox-")
    with pytest.raises(BBoxError, match="limit"):
        make_aoi([-56, -11, -54, -9], None, SETTINGS)


def test_plan_requests_are_stable_and_one_per_day():
    aoi = make_aoi([-55.1, -10.05, -55.05, -10.0], "demo", SETTINGS)
    tile = plan_tiles(aoi, SETTINGS)[0]
    days = [
        AcquisitionDay(
            date(2024, 3, d), datetime(2024, 3, d, 13, 51, tzinfo=UTC), 10.0, (f"S2A_{d}",)
        )
        for d in (5, 10)
    ]
    first = plan_requests(aoi, tile, days, function="s2l2a_bands", max_cloud=50, resolution=10)
    again = plan_requests(aoi, tile, days, function="s2l2a_bands", max_cloud=50, resolution=10)
    assert [r.request_id for r in first] == [r.request_id for r in again]
    assert len({r.request_id for r in first}) == 2
    assert first[0].time_from == datetime(2024, 3, 5, tzinfo=UTC)
    assert first[0].time_to == datetime(2024, 3, 5, 23, 59, 59, tzinfo=UTC)
    key = scene_key(first[0]).key
    assert key.startswith("sentinel_hub/s2l2a_bands/")
    assert "/20240305T135100Z/" in key and key.endswith("/raw.tif")
    with pytest.raises(UnknownFunctionError, match="available"):
        plan_requests(aoi, tile, days, function="evi", max_cloud=50, resolution=10)


def test_verify_geotiff_accepts_the_declared_output():
    verified = verify_geotiff(geotiff(), get_function("s2l2a_bands"), 20, 10)
    assert verified.shape == (10, 20)
    assert verified.valid_fraction == 1.0
    assert "32721" in verified.crs
    assert (
        verify_geotiff(geotiff(mask_value=0), get_function("s2l2a_bands"), 20, 10).valid_fraction
        == 0
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html>oops</html>", "not a readable GeoTIFF"),
        (geotiff(count=3), "expected 8 bands"),
        (geotiff(dtype="uint8"), "uint16"),
        (geotiff(width=21), "20x10"),
    ],
)
def test_verify_geotiff_rejects_wrong_responses(data, message):
    with pytest.raises(CorruptSceneError, match=message):
        verify_geotiff(data, get_function("s2l2a_bands"), 20, 10)


def test_truncated_geotiff_is_rejected():
    data = geotiff(width=200, height=200)
    # a tiff cut short may still open; reading the mask band must then fail
    with pytest.raises(CorruptSceneError):
        verify_geotiff(data[: len(data) // 3], get_function("s2l2a_bands"), 200, 200)


def test_missing_credentials_name_what_to_set():
    with pytest.raises(CredentialsError, match="CANOPYWATCH_CDSE_CLIENT_ID"):
        CdseEndpoint.from_settings(SETTINGS)
    endpoint = CdseEndpoint.from_connection("id", "very-secret", {"sh_base_url": "http://x/"})
    assert endpoint.sh_base_url == "http://x"
    assert "very-secret" not in repr(endpoint)
