"""The web map: ``/map`` (MapLibre GL JS, vendored from its npm package by
``scripts/bootstrap.sh web`` into ``build/vendor/maplibre-gl``; no CDN).

The page itself is public; the data it loads (tiles, areas, stats) goes through the same key
check as any read. The key is given once as ``/map#key=<key>`` (a fragment never reaches a
server or a log) and kept in the tab's session storage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from canopywatch.settings import REPO_ROOT

router = APIRouter(tags=["map"])
STATIC = Path(__file__).resolve().parent.parent / "static"
VENDOR = REPO_ROOT / "build" / "vendor" / "maplibre-gl"
_STATIC_FILES = {"map.html", "map.js", "map.css"}
_VENDOR_FILES = {"maplibre-gl.js", "maplibre-gl.css", "LICENSE.txt"}


@router.get("/map", response_class=FileResponse)
def map_page() -> FileResponse:
    return FileResponse(STATIC / "map.html", media_type="text/html")


@router.get("/map/static/{name}", response_class=FileResponse)
def map_static(name: str) -> FileResponse:
    if name not in _STATIC_FILES:
        raise HTTPException(404, f"no file {name!r}")
    return FileResponse(STATIC / name)


@router.get("/map/vendor/{name}", response_class=FileResponse)
def map_vendor(name: str) -> FileResponse:
    if name not in _VENDOR_FILES:
        raise HTTPException(404, f"no file {name!r}")
    path = VENDOR / name
    if not path.exists():
        raise HTTPException(
            503, f"{path} is missing: run scripts/bootstrap.sh web (vendors MapLibre GL JS)"
        )
    return FileResponse(path)
