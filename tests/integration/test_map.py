"""The web map in a real browser: Debian's chromium driven by Playwright, on the API served
by uvicorn over the seeded catalog of ``test_api``. Asserts on what MapLibre rendered
(``queryRenderedFeatures``), the date slider, the click popup and the AOI chart, and saves a
screenshot (to docs/img/map.png when CANOPYWATCH_MAP_SCREENSHOT says so)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canopywatch.settings import Settings
from tests.integration.test_api import AOI, Seeded, _lonlat, own_schema, seed_catalog

pytestmark = pytest.mark.service

# the README's picture is refreshed only on request (CANOPYWATCH_MAP_SCREENSHOT=docs/img/map.png),
# so a test run leaves the working tree as it found it
SCREENSHOT_ENV = "CANOPYWATCH_MAP_SCREENSHOT"
BROWSER_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
RENDERED = "[...new Set(window.cwMap.queryRenderedFeatures({layers: ['alerts-fill']})" \
    ".map(f => f.properties.alert_id))].sort()"  # fmt: skip


@pytest.fixture(scope="module")
def seeded(platform: Settings) -> Iterator[Seeded]:
    for settings in own_schema(platform, "map"):
        yield seed_catalog(settings)


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[str]:
    import uvicorn

    from canopywatch.api.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(seeded.settings), host="127.0.0.1", port=port, log_level="warning"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def _wait_idle(page: Any) -> None:
    page.evaluate(
        "new Promise(r => { window.cwMap.once('idle', r); window.cwMap.triggerRepaint(); })"
    )


def test_map_renders_alerts_scenes_areas_and_details(
    server: str, seeded: Seeded, tmp_path: Path
) -> None:
    SCREENSHOT = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "map.png")
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/bootstrap.sh browser"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            failed: list[str] = []
            page.on(
                "response",
                lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.goto(f"{server}/map#key={seeded.read_key}")
            page.wait_for_function(
                "window.cwState && (window.cwState.ready || window.cwState.error)", timeout=90_000
            )
            assert page.evaluate("window.cwState.error") is None
            # tiles beside the scene are 404 by design (as titiler does); nothing else fails
            assert errors == []
            assert [f for f in failed if not (f.startswith("404 ") and "/cog/tiles/" in f)] == []
            assert "key=" not in page.url  # the key left the address bar
            # every alert drawn, coloured by status; the area outline and the scene layer too
            assert page.evaluate(RENDERED) == ["api-a1", "api-a2", "api-a3"]
            statuses = page.evaluate(
                "[...new Set(window.cwMap.queryRenderedFeatures({layers: ['alerts-fill']})"
                ".map(f => f.properties.status))].sort()"
            )
            assert statuses == ["high", "low"]
            assert (
                page.evaluate(
                    "window.cwMap.queryRenderedFeatures({layers: ['aoi-outline']}).length"
                )
                > 0
            )
            assert page.evaluate("window.cwMap.getSource('scene').tiles[0]").startswith(
                f"{server}/cog/tiles/{seeded.scene_id}/"
            )
            assert page.evaluate("window.cwMap.getLayer('scene').type") == "raster"
            # one chart per area, with the alerted hectares
            # one bar segment per month and status: March low + high, April high
            assert page.locator(f".chart[data-aoi='{AOI}'] rect").count() == 3
            assert page.locator("#legend").inner_text().count("confidence") >= 2
            page.screenshot(path=str(SCREENSHOT))
            # the date slider: up to 2024-03-10 only api-a1 is drawn
            page.evaluate(
                "(() => { const s = document.getElementById('date-slider');"
                " s.value = String(Date.parse('2024-03-10') / 86400000);"
                " s.dispatchEvent(new Event('input')); })()"
            )
            _wait_idle(page)
            assert page.locator("#date-label").inner_text() == "2024-03-10"
            assert page.evaluate(RENDERED) == ["api-a1"]
            page.evaluate(
                "(() => { const s = document.getElementById('date-slider');"
                " s.value = s.max; s.dispatchEvent(new Event('input')); })()"
            )
            _wait_idle(page)
            # a click on api-a2 shows its details
            lon, lat = _lonlat(115, 110)
            point = page.evaluate(f"window.cwMap.project([{lon}, {lat}])")
            box = page.locator("#map canvas").bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
            popup = page.locator(".maplibregl-popup-content")
            popup.get_by_text("harmonic-test").wait_for(timeout=20_000)
            text = popup.inner_text()
            assert "api-a2" in text and "2024-03-20" in text and "0.92" in text and "high" in text
            assert "hectares" in text and "scene ids" in text
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
    assert Path(SCREENSHOT).read_bytes()[:4] == b"\x89PNG"
