"""``create_app(settings) -> FastAPI``: the canopywatch HTTP API.

Routes (every read needs a ``read`` key unless ``CANOPYWATCH_API_PUBLIC_READ=true``):

* ``/``, ``/conformance``, ``/collections[/{alerts|scenes|aois|forest_baseline}[/items[/{id}]]]``:
  OGC API Features (``canopywatch.api.features``, tipg; the forest baseline rasters as
  polygons, ``canopywatch.api.baseline``);
* ``/tiles/alerts/{z}/{x}/{y}.pbf``: vector tiles of the alerts;
* ``/stac``, ``/stac/search``, ``/stac/collections/...``: STAC API of the scenes;
* ``/cog/tiles/{scene_id}/{z}/{x}/{y}.png?style=truecolor|ndvi``: COG tiles;
* ``/aois``, ``/aois/{name}/stats``, ``POST /stats``, ``/alerts/{alert_id}``: areas and stats;
* ``/map``: the web map (public page; the data it loads needs a key as above);
* ``POST /keys``: a new API key (admin scope);
* ``/health``: liveness, public.

At start the catalog tables, the ``aois``, ``api_keys`` and ``forest_baseline`` tables are
created if missing, the forest baseline rasters are loaded (again whenever the collection
catalog is re-read and a file changed) and ``settings.api_key`` (when set) is stored as an
admin key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from tipg.errors import DEFAULT_STATUS_CODES, add_exception_handlers

from canopywatch.api import baseline, features, keys
from canopywatch.api.auth import Access, require_read
from canopywatch.api.limits import BodyLimitMiddleware
from canopywatch.api.objects import SceneFiles
from canopywatch.api.routes import areas, cog, eudr, stac, subscriptions, tiles, web_map
from canopywatch.api.routes import keys as key_routes
from canopywatch.catalog.schema import connect, ensure_schema
from canopywatch.eudr.evidence import find_baselines
from canopywatch.settings import Settings
from canopywatch.storage import aois

log = logging.getLogger(__name__)


def _prepare_database(settings: Settings) -> None:
    with connect(settings) as conn:
        ensure_schema(conn)
        aois.ensure_schema(conn)
        keys.ensure_table(conn)
        baseline.sync_baselines(conn, find_baselines(settings))
        if settings.api_key:
            keys.store(
                conn, settings.api_key, "admin (CANOPYWATCH_API_KEY)", ("read", "write", "admin")
            )


def _lookup(settings: Settings) -> Any:
    def lookup(key: str) -> keys.ApiKey | None:
        with connect(settings) as conn:
            return keys.lookup(conn, key)

    return lookup


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _prepare_database(settings)
        await features.connect(app, settings)
        try:
            yield
        finally:
            await features.close(app)

    app = FastAPI(
        title="canopywatch API",
        description="Deforestation alerts, Sentinel-2 scenes and areas: OGC API Features, "
        "tiles, STAC, statistics and a web map. Contains modified Copernicus Sentinel data.",
        lifespan=lifespan,
        openapi_url="/api",
        docs_url="/api.html",
    )
    app.state.settings = settings
    app.state.access = Access(settings, _lookup(settings))
    app.state.scene_files = SceneFiles(settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(settings.api_max_body_mb * 1_000_000))

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(
        features.factory().router,
        dependencies=[Depends(require_read), Depends(features.check_query)],
    )
    add_exception_handlers(app, DEFAULT_STATUS_CODES)  # tipg's errors (bad bbox, filter): 4xx
    app.include_router(tiles.router)
    app.include_router(stac.router)
    app.include_router(cog.router)
    app.include_router(areas.router)
    app.include_router(web_map.router)
    app.include_router(key_routes.router)
    app.include_router(subscriptions.router)  # write scope
    app.include_router(eudr.router)  # write scope
    return app
