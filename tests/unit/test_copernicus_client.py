"""Our CDSE client code (sentinelhub underneath) against the local endpoint over HTTP."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime

import pytest
from oauthlib.oauth2.rfc6749.errors import InvalidClientError
from sentinelhub.exceptions import DownloadFailedException

from canopywatch.download import make_aoi, plan_requests, plan_tiles, verify_geotiff
from canopywatch.evalscripts import FUNCTIONS, get_function
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import (
    CdseEndpoint,
    is_credentials_error,
    process_request,
    search_acquisitions,
    sh_config,
)
from canopywatch.transport import is_poison
from canopywatch_dev.cdse_emulator import (
    Credentials,
    Fault,
    create_app,
    emulator_of,
    serve_in_thread,
    token_url,
)
from canopywatch_dev.cdse_world import AreaSpec, World

BBOX = (-55.40, -7.10, -55.39, -7.09)  # ~110 x 110 px
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.fixture(scope="module")
def endpoint(request):
    mp = pytest.MonkeyPatch()
    mp.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    world = World.from_specs(
        [AreaSpec("client-test", BBOX, date(2023, 1, 1), date(2024, 12, 31), seed=5)]
    )
    app = create_app(world, Credentials("client-test", "client-secret-value"))
    with serve_in_thread(app) as base_url:
        yield (
            CdseEndpoint("client-test", "client-secret-value", base_url, token_url(base_url)),
            emulator_of(app),
            world,
        )
    mp.undo()


@pytest.fixture(autouse=True)
def no_leftover_faults(request):
    """Faults a test injected are cleared after it, whether it passed or failed."""
    yield
    if "endpoint" in request.fixturenames:
        request.getfixturevalue("endpoint")[1].faults.clear()


def config_for(cdse: CdseEndpoint, **kwargs):
    return sh_config(cdse, sleep_s=0.05, **kwargs)


def test_search_pages_through_two_years_and_groups_by_day(endpoint):
    cdse, _emulator, world = endpoint
    days = search_acquisitions(config_for(cdse), BBOX, START, END, max_cloud=100)
    expected = sorted({s.datetime.date() for s in world.scenes})
    assert len(expected) > 100  # more than one catalog page of 100
    assert [d.day for d in days] == expected
    assert all(d.product_ids and d.acquired_at.date() == d.day for d in days)


def test_search_applies_the_cloud_filter_and_the_bbox(endpoint):
    cdse, _, world = endpoint
    days = search_acquisitions(config_for(cdse), BBOX, START, END, max_cloud=20)
    assert {d.day for d in days} == {s.datetime.date() for s in world.scenes if s.cloud_cover <= 20}
    assert all(d.cloud_cover is not None and d.cloud_cover <= 20 for d in days)
    assert search_acquisitions(config_for(cdse), (10.0, 10.0, 10.01, 10.01), START, END, 100) == []


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_process_request_returns_the_declared_geotiff(endpoint, function):
    cdse, _, _ = endpoint
    config = config_for(cdse)
    aoi = make_aoi(BBOX, "client-test", Settings.from_env({}))
    tile = plan_tiles(aoi, Settings.from_env({}))[0]
    day = search_acquisitions(config, BBOX, START, END, max_cloud=10)[0]
    request = plan_requests(aoi, tile, [day], function=function, max_cloud=10, resolution=10)[0]
    data = process_request(
        config,
        get_function(function),
        epsg=request.epsg,
        utm_bounds=request.utm_bounds,
        width=request.width,
        height=request.height,
        time_from=request.time_from,
        time_to=request.time_to,
        max_cloud=request.max_cloud,
    )
    verified = verify_geotiff(data, get_function(function), request.width, request.height)
    assert verified.valid_fraction > 0.9
    assert verified.crs == "EPSG:32721"


def _small_request(cdse, config, width=64):
    return process_request(
        config,
        get_function("ndvi"),
        epsg=32721,
        utm_bounds=(456000.0, 9215000.0, 456000.0 + 10 * width, 9215640.0),
        width=width,
        height=64,
        time_from=datetime(2023, 6, 1, tzinfo=UTC),
        time_to=datetime(2023, 8, 31, tzinfo=UTC),
        max_cloud=100,
    )


def test_rate_limit_is_retried_after_retry_after(endpoint):
    cdse, emulator, _ = endpoint
    emulator.faults.add(Fault("process", "429", count=2, retry_after_ms=50))
    before = emulator.stats.count("process", 429)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _small_request(cdse, config_for(cdse, max_retries=5))
    assert emulator.stats.count("process", 429) - before == 2


def test_a_429_storm_stops_at_max_retries_and_is_not_poison(endpoint):
    cdse, emulator, _ = endpoint
    emulator.faults.add(Fault("process", "429", count=50, retry_after_ms=10))
    with warnings.catch_warnings(), pytest.raises(DownloadFailedException) as caught:
        warnings.simplefilter("ignore")
        _small_request(cdse, config_for(cdse, max_retries=3))
    assert not is_poison(caught.value)


def test_server_errors_and_cut_bodies_are_retried(endpoint):
    cdse, emulator, _ = endpoint
    faults = [Fault("process", "503", count=1), Fault("process", "truncate_length", count=1)]
    for fault in faults:
        emulator.faults.add(fault)
    requests_before = emulator.stats.count("process")
    errors_before = emulator.stats.count("process", 503)
    assert _small_request(cdse, config_for(cdse))
    # the 503, then the cut body, then the good response: two retries, one request each
    assert emulator.stats.count("process", 503) - errors_before == 1
    assert emulator.stats.count("process") - requests_before == 3
    assert [fault.count for fault in faults] == [0, 0]  # both were served


def test_bad_payload_is_poison_with_the_service_message(endpoint):
    cdse, _, _ = endpoint
    with pytest.raises(DownloadFailedException) as caught:
        _small_request(cdse, config_for(cdse), width=3000)
    assert is_poison(caught.value)
    assert "2500" in str(caught.value)


def test_wrong_secret_is_a_credentials_error_and_not_echoed(endpoint):
    cdse, _, _ = endpoint
    # another client id: sentinelhub caches one token session per client id in a process
    wrong = CdseEndpoint("someone-else", "not-the-secret-xyz", cdse.sh_base_url, cdse.sh_token_url)
    with pytest.raises(InvalidClientError) as caught:
        search_acquisitions(config_for(wrong), BBOX, START, END, 100)
    assert is_credentials_error(caught.value)
    assert "not-the-secret-xyz" not in str(caught.value)
