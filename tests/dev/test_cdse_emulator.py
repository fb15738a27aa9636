"""The local CDSE endpoint, driven by the real sentinelhub client wherever it has an API."""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
import requests
from oauthlib.oauth2.rfc6749.errors import InvalidClientError
from sentinelhub import (
    CRS,
    BBox,
    DataCollection,
    MimeType,
    MosaickingOrder,
    SentinelHubCatalog,
    SentinelHubDownloadClient,
    SentinelHubRequest,
    SentinelHubSession,
    SHConfig,
)
from sentinelhub.exceptions import (
    DownloadFailedException,
    OutOfRequestsException,
    SHRateLimitWarning,
)

from canopywatch_dev.cdse_emulator import (
    CdseEmulator,
    Credentials,
    Fault,
    FaultPlan,
    create_app,
    emulator_of,
    parse_cql2_text,
    processing_units,
    serve_in_thread,
    token_url,
)
from canopywatch_dev.cdse_world import AreaSpec, World

CLIENT_ID = "canopywatch-test"
CLIENT_SECRET = "not-a-real-secret"
# 64 x 64 px at 10 m in the Amazon (UTM 20S), Jan-Mar 2024
AREA_BBOX = (-60.0, -10.0, -59.99416, -9.99422)
INSIDE_BBOX = BBox((-59.999, -9.999, -59.995, -9.995), crs=CRS.WGS84)
OUTSIDE_BBOX = BBox((10.0, 45.0, 10.01, 45.01), crs=CRS.WGS84)
TIME_INTERVAL = ("2024-01-01", "2024-03-31")

BANDS_EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["B02", "B03", "B04", "B08", "dataMask"], units: "DN"}],
    output: {id: "default", bands: 4, sampleType: "UINT16"}
  };
}
function evaluatePixel(s) { return [s.B02, s.B03, s.B04, s.B08]; }
"""

TWO_OUTPUTS_EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["B04", "B08", "SCL", "dataMask"], units: "REFLECTANCE"}],
    output: [
      {id: "ndvi", bands: 1, sampleType: "FLOAT32"},
      {id: "mask", bands: 2, sampleType: "UINT8"}
    ]
  };
}
function evaluatePixel(s) {
  return {ndvi: [s.dataMask ? index(s.B08, s.B04) : NaN], mask: [s.SCL, s.dataMask]};
}
"""


@pytest.fixture(scope="module")
def world() -> World:
    spec = AreaSpec("test", AREA_BBOX, date(2024, 1, 1), date(2024, 3, 31), seed=3)
    return World.from_specs([spec])


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[tuple[str, CdseEmulator]]:
    mp = pytest.MonkeyPatch()  # module scope: undone when the module is done
    mp.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # http token URL on loopback: tests only
    app = create_app(world, Credentials(CLIENT_ID, CLIENT_SECRET))
    with serve_in_thread(app) as base_url:
        yield base_url, emulator_of(app)
    mp.undo()


@pytest.fixture
def emulator(server: tuple[str, CdseEmulator]) -> Iterator[CdseEmulator]:
    SentinelHubDownloadClient.clear_cache()
    state = server[1]
    state.faults.clear()
    state.stats.clear()
    yield state
    SentinelHubDownloadClient.clear_cache()


@pytest.fixture
def base_url(server: tuple[str, CdseEmulator]) -> str:
    return server[0]


@pytest.fixture
def config(base_url: str, emulator: CdseEmulator) -> SHConfig:
    return SHConfig(
        sh_client_id=CLIENT_ID,
        sh_client_secret=CLIENT_SECRET,
        sh_base_url=base_url,
        sh_token_url=token_url(base_url),
        max_download_attempts=3,
        download_sleep_time=0.01,
        max_retries=5,
    )


@pytest.fixture
def collection(config: SHConfig) -> DataCollection:
    name = "CANOPYWATCH_TEST_" + re.sub(r"\W", "_", config.sh_base_url)
    return DataCollection.SENTINEL2_L2A.define_from(name, service_url=config.sh_base_url)


def process_request(
    config: SHConfig,
    collection: DataCollection,
    *,
    evalscript: str = BANDS_EVALSCRIPT,
    bbox: BBox = INSIDE_BBOX,
    size: tuple[int, int] | None = (40, 40),
    resolution: tuple[float, float] | None = None,
    order: MosaickingOrder = MosaickingOrder.MOST_RECENT,
    responses: list[tuple[str, MimeType]] | None = None,
    time_interval: tuple[str, str] = TIME_INTERVAL,
) -> SentinelHubRequest:
    return SentinelHubRequest(
        evalscript=evalscript,
        input_data=[
            SentinelHubRequest.input_data(
                collection, time_interval=time_interval, mosaicking_order=order
            )
        ],
        responses=[
            SentinelHubRequest.output_response(i, t)
            for i, t in (responses or [("default", MimeType.TIFF)])
        ],
        bbox=bbox,
        size=size,
        resolution=resolution,
        config=config,
    )


# ------------------------------------------------------------------ authentication


def test_wrong_secret_is_a_clear_invalid_client(config: SHConfig) -> None:
    config.sh_client_secret = "wrong"
    with pytest.raises(InvalidClientError, match="Invalid client or Invalid client credentials"):
        SentinelHubSession(config=config)


def test_token_is_a_jwt_with_expiry_and_client(config: SHConfig) -> None:
    session = SentinelHubSession(config=config)
    info = session.info()
    assert info["azp"] == CLIENT_ID
    assert info["exp"] > time.time() + 500
    assert session.token["token_type"] == "Bearer"
    assert session.token["access_token"].count(".") == 2


def test_keycloak_errors_for_other_grants(base_url: str, emulator: CdseEmulator) -> None:
    url = token_url(base_url)
    bad_grant = requests.post(url, data={"grant_type": "magic"}, timeout=5)
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    bad_user = requests.post(
        url,
        data={
            "grant_type": "password",
            "client_id": "cdse-public",
            "username": "u",
            "password": "p",
        },
        timeout=5,
    )
    assert bad_user.status_code == 401
    assert bad_user.json()["error"] == "invalid_grant"
    bad_refresh = requests.post(
        url,
        data={"grant_type": "refresh_token", "client_id": "cdse-public", "refresh_token": "x.y.z"},
        timeout=5,
    )
    assert bad_refresh.status_code == 400
    assert bad_refresh.json()["error"] == "invalid_grant"


def test_missing_or_expired_token_gets_the_401_envelope(
    base_url: str, emulator: CdseEmulator
) -> None:
    url = f"{base_url}/api/v1/catalog/1.0.0/search"
    missing = requests.post(url, json={}, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "COMMON_UNAUTHORIZED"
    emulator.faults.token_valid_for_s = 0.2
    token = requests.post(
        token_url(base_url),
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(url, json={}, headers=headers, timeout=5).status_code == 200
    time.sleep(0.3)
    expired = requests.post(url, json={}, headers=headers, timeout=5)
    assert expired.status_code == 401
    assert expired.json()["error"]["status"] == 401


# ------------------------------------------------------------------ catalog


def test_catalog_pages_equal_one_big_page(config: SHConfig, emulator: CdseEmulator) -> None:
    catalog = SentinelHubCatalog(config=config)
    small = list(
        catalog.search(DataCollection.SENTINEL2_L2A, bbox=INSIDE_BBOX, time=TIME_INTERVAL, limit=4)
    )
    catalog_requests = emulator.stats.count("catalog", 200)
    big = list(
        catalog.search(
            DataCollection.SENTINEL2_L2A, bbox=INSIDE_BBOX, time=TIME_INTERVAL, limit=100
        )
    )
    assert len(big) > 8
    assert [f["id"] for f in small] == [f["id"] for f in big]
    assert catalog_requests == -(-len(big) // 4)
    item = big[0]
    assert item["properties"]["instruments"] == ["msi"]
    assert item["properties"]["grid:code"].startswith("MGRS-")
    assert item["geometry"]["type"] == "Polygon"


def test_catalog_cloud_filter_and_fields(config: SHConfig, emulator: CdseEmulator) -> None:
    catalog = SentinelHubCatalog(config=config)
    everything = list(
        catalog.search(DataCollection.SENTINEL2_L2A, bbox=INSIDE_BBOX, time=TIME_INTERVAL)
    )
    clear = list(
        catalog.search(
            DataCollection.SENTINEL2_L2A,
            bbox=INSIDE_BBOX,
            time=TIME_INTERVAL,
            filter="eo:cloud_cover < 40 AND eo:cloud_cover >= 0",
            fields={"include": ["id", "properties.eo:cloud_cover"]},
        )
    )
    expected = [f["id"] for f in everything if f["properties"]["eo:cloud_cover"] < 40]
    assert [f["id"] for f in clear] == expected
    assert all(set(f) == {"id", "properties"} for f in clear)
    assert all(set(f["properties"]) == {"eo:cloud_cover"} for f in clear)


def test_catalog_outside_the_world_is_empty(config: SHConfig) -> None:
    catalog = SentinelHubCatalog(config=config)
    assert (
        list(catalog.search(DataCollection.SENTINEL2_L2A, bbox=OUTSIDE_BBOX, time=TIME_INTERVAL))
        == []
    )


def test_catalog_unparseable_filter_is_a_400(config: SHConfig) -> None:
    catalog = SentinelHubCatalog(config=config)
    with pytest.raises(DownloadFailedException, match="Cannot parse cql2-text filter"):
        list(
            catalog.search(
                DataCollection.SENTINEL2_L2A,
                bbox=INSIDE_BBOX,
                time=TIME_INTERVAL,
                filter="eo:cloud_cover BETWEEN 1 AND 3",
            )
        )


def test_cql2_text_clauses() -> None:
    comparisons = parse_cql2_text("eo:cloud_cover <= 30 and platform = 'sentinel-2a'")
    assert [(c.prop, c.op, c.value) for c in comparisons] == [
        ("eo:cloud_cover", "<=", 30.0),
        ("platform", "=", "sentinel-2a"),
    ]


# ------------------------------------------------------------------ STAC v1


def test_stac_next_link_paging(base_url: str, emulator: CdseEmulator) -> None:
    body = {
        "collections": ["sentinel-2-l2a"],
        "bbox": list(INSIDE_BBOX),
        "datetime": "2024-01-01T00:00:00Z/..",
        "limit": 4,
        "query": {"eo:cloud_cover": {"lte": 95}},
    }
    url = f"{base_url}/stac/v1/search"
    ids: list[str] = []
    pages = 0
    while True:
        page = requests.post(url, json=body, timeout=5).json()
        pages += 1
        ids += [f["id"] for f in page["features"]]
        assert page["numberReturned"] == len(page["features"])
        following = [link for link in page["links"] if link["rel"] == "next"]
        if not following:
            break
        assert following[0]["method"] == "POST"
        body = following[0]["body"]
        assert body["token"].startswith("next:")
    everything = requests.post(url, json={**body, "limit": 100, "token": None}, timeout=5).json()
    assert ids == [f["id"] for f in everything["features"]]
    assert pages > 1
    assert all(f["properties"]["eo:cloud_cover"] <= 95 for f in everything["features"])
    assert "B04_10m" in everything["features"][0]["assets"]
    datetimes = [f["properties"]["datetime"] for f in everything["features"]]
    assert datetimes == sorted(datetimes, reverse=True)


# ------------------------------------------------------------------ Process API


def test_single_tiff_has_dn_values_and_nodata_outside(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    half_outside = BBox((-60.003, -9.999, -59.997, -9.995), crs=CRS.WGS84)
    image = process_request(config, collection, bbox=half_outside).get_data()[0]
    assert image.shape == (40, 40, 4)
    assert image.dtype == np.uint16
    inside, outside = image[:, -5:, :], image[:, :5, :]
    assert (outside == 0).all()
    assert (inside > 0).all()
    # the least cloudy scene of forest, harmonised (BOA offset removed): B08 about 3000 DN
    # and red about 200 (observed 3135.5 and 232.5); the +1000 offset left in would put
    # them near 4100 and 1200, and subtracting it twice near 2100 and 1 (floored)
    clear = process_request(
        config, collection, bbox=half_outside, order=MosaickingOrder.LEAST_CC
    ).get_data()[0][:, -5:, :]
    red, nir = float(np.median(clear[..., 2])), float(np.median(clear[..., 3]))
    assert 2600 < nir < 3700
    assert 100 < red < 600
    assert emulator.stats.processing_units >= 0.005


def test_two_outputs_come_back_as_a_tar(config: SHConfig, collection: DataCollection) -> None:
    request = process_request(
        config,
        collection,
        evalscript=TWO_OUTPUTS_EVALSCRIPT,
        responses=[("ndvi", MimeType.TIFF), ("mask", MimeType.TIFF)],
    )
    data = request.get_data()[0]
    assert set(data) == {"ndvi.tif", "mask.tif", "userdata.json"}
    ndvi, mask = data["ndvi.tif"], data["mask.tif"]
    assert ndvi.dtype == np.float32 and ndvi.shape == (40, 40)
    assert mask.dtype == np.uint8 and mask.shape == (40, 40, 2)
    assert (mask[..., 1] == 1).all()
    assert np.isfinite(ndvi).all() and (np.abs(ndvi) <= 1).all()


def test_resolution_and_size_agree_in_utm(config: SHConfig, collection: DataCollection) -> None:
    utm = INSIDE_BBOX.transform(CRS(32721))
    minx, miny = round(utm.min_x, -1), round(utm.min_y, -1)
    utm_bbox = BBox((minx, miny, minx + 300, miny + 200), crs=CRS(32721))
    by_resolution = process_request(
        config, collection, bbox=utm_bbox, size=None, resolution=(10, 10)
    ).get_data()[0]
    by_size = process_request(config, collection, bbox=utm_bbox, size=(30, 20)).get_data()[0]
    assert by_resolution.shape == (20, 30, 4)
    np.testing.assert_array_equal(by_resolution, by_size)


def test_most_recent_and_least_recent_differ(config: SHConfig, collection: DataCollection) -> None:
    newest = process_request(config, collection, order=MosaickingOrder.MOST_RECENT).get_data()[0]
    oldest = process_request(config, collection, order=MosaickingOrder.LEAST_RECENT).get_data()[0]
    assert not np.array_equal(newest, oldest)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": {"resx": 10}}, "either output width/height or resx/resy"),
        ({"output": {"width": 3000}}, "exceeds the maximum of 2500"),
        ({"evalscript": "function setup() {}"}, "VERSION=3"),
        (
            {
                "evalscript": "//VERSION=3\nfunction setup() { return {input: ['B04'], output: {bands: 1}}; }"
                "\nfunction evaluatePixel(s) { return undefinedThing; }"
            },
            "undefinedThing",
        ),
        ({"input": {"bounds": {"bbox": [1, 1, 0, 0]}}}, "minimum is greater"),
        ({"input": {"data": [{"type": "landsat-ot-l2"}]}}, "Unknown or unsupported collection"),
    ],
)
def test_bad_payloads_carry_the_400_envelope(
    config: SHConfig, collection: DataCollection, change: dict[str, object], message: str
) -> None:
    request = process_request(config, collection)
    payload = request.payload
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    request.download_list[0].post_values = payload
    with pytest.raises(DownloadFailedException) as caught:
        request.get_data()
    assert "COMMON_BAD_PAYLOAD" in str(caught.value)
    assert message in str(caught.value)


def test_processing_units_formula() -> None:
    assert processing_units(512, 512, 3, False) == pytest.approx(1.0)
    assert processing_units(512, 512, 3, True) == pytest.approx(2.0)
    assert processing_units(10, 10, 1, False) == 0.005


# ------------------------------------------------------------------ faults


def test_429_is_retried_after_retry_after_ms(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    emulator.faults.add(Fault("process", "429", count=2, retry_after_ms=200))
    started = time.monotonic()
    with pytest.warns(SHRateLimitWarning):
        image = process_request(config, collection).get_data()[0]
    assert image.shape == (40, 40, 4)
    assert time.monotonic() - started >= 0.35
    assert emulator.stats.count("process", 429) == 2
    assert emulator.stats.count("process", 200) == 1


def test_429_storm_stops_at_max_retries(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    emulator.faults.add(Fault("process", "429", count=100, retry_after_ms=10))
    config.max_retries = 3
    with pytest.warns(SHRateLimitWarning), pytest.raises(OutOfRequestsException):
        process_request(config, collection).get_data()
    assert emulator.stats.count("process", 429) == 3


@pytest.mark.parametrize("mode", ["500", "503"])
def test_server_errors_are_retried_up_to_max_attempts(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator, mode: str
) -> None:
    emulator.faults.add(Fault("process", mode, count=2))  # type: ignore[arg-type]
    assert process_request(config, collection).get_data()[0].shape == (40, 40, 4)
    emulator.faults.add(Fault("process", mode, count=3))  # type: ignore[arg-type]
    with pytest.raises(DownloadFailedException, match=mode):
        process_request(config, collection).get_data()
    assert emulator.stats.count("process", int(mode)) == 5


def test_short_body_is_detected_and_retried(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    emulator.faults.add(Fault("process", "truncate_length", count=1))
    assert process_request(config, collection).get_data()[0].shape == (40, 40, 4)
    assert emulator.stats.count("process") == 2


def test_tiff_cut_in_half_does_not_decode(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    emulator.faults.add(Fault("process", "truncate_body", count=1))
    # the body is cut in half: the deflate stream of the image data ends early
    with pytest.raises(zlib.error, match="incomplete or truncated stream"):
        process_request(config, collection).get_data()


def test_catalog_429_then_success(config: SHConfig, emulator: CdseEmulator) -> None:
    emulator.faults.add(Fault("catalog", "429", count=1, retry_after_ms=20))
    with pytest.warns(SHRateLimitWarning):
        found = list(
            SentinelHubCatalog(config=config).search(
                DataCollection.SENTINEL2_L2A, bbox=INSIDE_BBOX, time=TIME_INTERVAL
            )
        )
    assert found


def test_session_refreshes_a_token_about_to_expire(
    config: SHConfig, collection: DataCollection, emulator: CdseEmulator
) -> None:
    # the session refreshes when under 120 s remain; oauthlib rounds the issue time to a second
    emulator.faults.token_lifetime_s = 121
    process_request(config, collection).get_data()
    time.sleep(1.6)
    process_request(config, collection).get_data()
    assert emulator.stats.count("token", 200) == 2
    assert emulator.stats.count("process", 200) == 2


def test_admin_endpoints(base_url: str, emulator: CdseEmulator) -> None:
    armed = requests.post(
        f"{base_url}/_emulator/faults",
        json={
            "faults": [{"endpoint": "stac", "mode": "503", "count": 1}],
            "token_lifetime_s": 300,
        },
        timeout=5,
    )
    assert armed.status_code == 200
    assert requests.post(f"{base_url}/stac/v1/search", json={}, timeout=5).status_code == 503
    assert requests.post(f"{base_url}/stac/v1/search", json={}, timeout=5).status_code == 200
    stats = requests.get(f"{base_url}/_emulator/stats", timeout=5).json()
    assert stats["requests"]["stac"] == {"503": 1, "200": 1}
    assert requests.post(f"{base_url}/_emulator/reset", timeout=5).status_code == 200
    assert emulator.faults.token_lifetime_s == 600
    assert requests.get(f"{base_url}/health", timeout=5).status_code == 200


def test_fault_plan_passed_to_create_app(world: World) -> None:
    plan = FaultPlan(faults=[Fault("token", "500", count=1)], token_lifetime_s=60)
    app = create_app(world, Credentials(CLIENT_ID, CLIENT_SECRET), plan)
    with serve_in_thread(app) as url:
        form = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        assert requests.post(token_url(url), data=form, timeout=5).status_code == 500
        token = requests.post(token_url(url), data=form, timeout=5).json()
        assert token["expires_in"] == 60
