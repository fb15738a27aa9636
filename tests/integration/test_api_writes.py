"""The API's write endpoints on the real PostGIS: subscriptions and EUDR plot checks.

Write scope needed (a read key is 403, none 401); an SSRF target, an unknown area, a bad plot
file or a 50 MB body get a 4xx with a message and store nothing; a plot check answers 202
with a status URL whose results arrive.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from canopywatch.settings import Settings

pytestmark = pytest.mark.service

WRITE_KEY = "cw_test-write-" + uuid.uuid4().hex
READ_KEY = "cw_test-read-" + uuid.uuid4().hex
AOI = "write-area"


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    from canopywatch.catalog.schema import connect, drop_schema
    from canopywatch_dev.platform import stack

    base = Settings.from_env()
    stack.up(base, ["postgres"])  # raises PlatformError: the test errors, never skips
    chosen = replace(base, pg_schema=f"cwtest_w_{uuid.uuid4().hex[:8]}", api_max_body_mb=20.0)
    yield chosen
    with connect(base) as conn:
        drop_schema(conn, chosen.pg_schema)


@pytest.fixture(scope="module")
def client(settings: Settings, tmp_path_factory) -> Iterator[TestClient]:
    from canopywatch.api import keys
    from canopywatch.api.app import create_app
    from canopywatch.catalog.schema import connect
    from canopywatch.geo import BBox
    from canopywatch.storage import aois

    home = tmp_path_factory.mktemp("home")
    chosen = replace(settings, home=home)
    with TestClient(create_app(chosen)) as test_client:
        with connect(chosen) as conn:
            keys.store(conn, WRITE_KEY, "writer", ("read", "write"))
            keys.store(conn, READ_KEY, "reader", ("read",))
            aois.register(conn, aois.RegisteredAoi(AOI, AOI, BBox(-55.41, -7.11, -55.38, -7.08)))
        yield test_client


def _count(settings: Settings, table: str) -> int:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return int(cur.fetchone()[0])


W = {"X-API-Key": WRITE_KEY}


def test_subscriptions_need_write_scope_and_refuse_ssrf_targets(client, settings):
    body = {"aoi": AOI, "webhook": "http://127.0.0.1:9/hook"}
    assert client.post("/subscriptions", json=body).status_code == 401
    assert (
        client.post("/subscriptions", json=body, headers={"X-API-Key": READ_KEY}).status_code == 403
    )
    before = _count(settings, "subscriptions") if _table_exists(settings, "subscriptions") else 0
    for target, reason in (
        ("http://127.0.0.1:9/hook", "non-public address 127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data", "non-public address 169.254.169.254"),
        ("file:///etc/passwd", "http:// or https://"),
    ):
        answer = client.post("/subscriptions", json={**body, "webhook": target}, headers=W)
        assert answer.status_code == 400 and reason in answer.json()["detail"]
    unknown = client.post("/subscriptions", json={"aoi": "nowhere", "webhook": "http://[::1]/"},
                          headers={"Authorization": f"Bearer {WRITE_KEY}"})  # fmt: skip
    assert unknown.status_code == 400  # the target is refused before the area is looked up
    bad = client.post("/subscriptions", json={**body, "min_status": "medium"}, headers=W)
    assert bad.status_code == 422
    both = client.post("/subscriptions", json={**body, "email": "a@example.org"}, headers=W)
    assert both.status_code == 400 and "exactly one of webhook or email" in both.json()["detail"]
    mail = client.post("/subscriptions", json={"aoi": AOI, "email": "a@example.org"}, headers=W)
    assert mail.status_code == 400 and "CANOPYWATCH_SMTP_HOST" in mail.json()["detail"]
    after = _count(settings, "subscriptions") if _table_exists(settings, "subscriptions") else 0
    assert after == before


@pytest.mark.usefixtures("client")  # the keys and the area
def test_subscription_round_trip_when_private_targets_are_allowed(settings, tmp_path):
    from canopywatch.api.app import create_app

    allowed = replace(settings, webhook_allow_private=True, home=tmp_path)
    with TestClient(create_app(allowed)) as client:
        made = client.post("/subscriptions", headers=W,
                           json={"aoi": AOI, "webhook": "http://127.0.0.1:9/hook", "min_status": "high"})  # fmt: skip
        assert made.status_code == 201, made.text
        created = made.json()
        assert created["min_status"] == "high" and len(created["secret"]) >= 32
        listed = client.get("/subscriptions", params={"aoi": AOI}, headers=W).json()
        assert [s["subscription_id"] for s in listed] == [created["subscription_id"]]
        assert "secret" not in listed[0]
        missing = client.post("/subscriptions", headers=W,
                              json={"aoi": "nowhere", "webhook": "http://127.0.0.1:9/"})  # fmt: skip
        assert missing.status_code == 404 and "not registered" in missing.json()["detail"]
        log = client.get(f"/subscriptions/{created['subscription_id']}/deliveries", headers=W)
        assert log.status_code == 200 and log.json() == []
        sub = created["subscription_id"]
        assert client.delete(f"/subscriptions/{sub}", headers=W).status_code == 204
        assert client.delete(f"/subscriptions/{sub}", headers=W).status_code == 404
        assert client.get("/subscriptions", params={"aoi": AOI}, headers=W).json() == []


def _table_exists(settings: Settings, table: str) -> bool:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (table,))
        return cur.fetchone()[0] is not None


def test_plot_check_answers_202_and_the_results_arrive(client, settings):
    plots = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"plot_id": "p1", "area_ha": 2.0},
             "geometry": {"type": "Point", "coordinates": [-55.395, -7.095]}},
            {"type": "Feature", "properties": {"plot_id": "p2", "area_ha": 12.0},
             "geometry": {"type": "Point", "coordinates": [-55.39, -7.09]}},
        ],
    }  # fmt: skip
    assert client.post("/eudr/checks", json=plots).status_code == 401
    answer = client.post("/eudr/checks", content=json.dumps(plots), headers={
        **W, "Content-Type": "application/geo+json"})  # fmt: skip
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued" and job["plots"] == 2
    assert answer.headers["location"] == job["status_url"]
    for _ in range(100):
        state = client.get(job["status_url"], headers=W).json()
        if state["state"] in {"done", "failed"}:
            break
        time.sleep(0.1)
    assert state["state"] == "done", state
    # no baseline, no alerts, no scenes here: the point is "no baseline", the 12 ha point invalid
    assert state["summary"]["verdicts"]["no_baseline"] == 1
    assert state["summary"]["verdicts"]["invalid"] == 1
    geojson = client.get(state["results"]["plots.geojson"], headers=W)
    assert geojson.status_code == 200
    verdicts = {
        f["properties"]["plot_id"]: f["properties"]["verdict"] for f in geojson.json()["features"]
    }
    assert verdicts == {"p1": "no_baseline", "p2": "invalid"}
    html = client.get(state["results"]["report.html"], headers=W)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert client.get("/eudr/checks/chk-nope", headers=W).status_code == 404


def test_bad_plot_uploads_get_4xx_and_store_nothing(client, settings):
    before = _count(settings, "eudr_checks") if _table_exists(settings, "eudr_checks") else 0
    csv = {**W, "Content-Type": "text/csv"}
    cases = [
        (client.post("/eudr/checks", content=b"a,b\n1,2\n", headers=csv), 422, "lat and lon"),
        (client.post("/eudr/checks", content=b"{nope", headers={**W, "Content-Type": "application/geo+json"}),
         422, "not a readable"),
        (client.post("/eudr/checks", content=b"x", headers={**W, "Content-Type": "image/png"}), 415, "send the plots"),
        (client.post("/eudr/checks", content=b"lat,lon\n1,2\n", headers={"X-API-Key": READ_KEY,
                     "Content-Type": "text/csv"}), 403, "scope"),
    ]  # fmt: skip
    for answer, code, text in cases:
        assert answer.status_code == code, answer.text
        assert text in answer.text
    big = client.post("/eudr/checks", content=b"lat,lon\n" + b"1,2\n" * 13_000_000, headers=csv)
    assert big.status_code == 413
    after = _count(settings, "eudr_checks") if _table_exists(settings, "eudr_checks") else 0
    assert after == before
