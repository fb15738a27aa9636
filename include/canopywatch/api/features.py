"""OGC API Features over the PostGIS catalog, served by ``tipg``.

Collections ``alerts``, ``scenes``, ``aois`` and ``forest_baseline`` (the tables of
``settings.pg_schema``; the last is loaded from the forest baseline rasters by
``canopywatch.api.baseline``) with ``bbox``, ``datetime`` (alerts: ``alert_date``, scenes:
``acquired_at``, aois: ``created_at``, forest baseline: ``mapped_at``), CQL2 ``filter`` (text or JSON), ``limit``/``offset`` paging with ``next``
links, and GeoJSON (or HTML, CSV, GeoJSON-seq) output. tipg names collections
``schema.table``; here they are called by table name, so URLs stay the same whichever schema
the deployment uses. The catalog of columns is re-read every ``CATALOG_TTL_S`` seconds (new
columns appear without a restart).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from tipg.collections import Catalog, Collection, pg_get_collection_index
from tipg.database import close_db_connection, connect_to_db
from tipg.factory import OGCFeaturesFactory
from tipg.settings import DatabaseSettings, PostgresSettings

from canopywatch.settings import Settings

# collection id -> the column tipg filters ``datetime`` on
COLLECTIONS: dict[str, str] = {
    "alerts": "alert_date",
    "scenes": "acquired_at",
    "aois": "created_at",
    "forest_baseline": "mapped_at",
}
CATALOG_TTL_S = 60


def database_url(settings: Settings) -> str:
    """The pool's DSN: the read-only login (``CANOPYWATCH_PG_READ_USER``) when one is set."""
    user, secret = settings.pg_user, settings.pg_password
    if settings.pg_read_user:
        user, secret = settings.pg_read_user, settings.pg_read_password
    password = f":{quote(secret, safe='')}" if secret else ""
    return (
        f"postgresql://{quote(user, safe='')}{password}"
        f"@{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
    )


async def connect(app: FastAPI, settings: Settings) -> None:
    """Open tipg's asyncpg pool on the catalog schema (first, then ``public`` for PostGIS)."""
    await connect_to_db(
        app,
        schemas=[settings.pg_schema],
        settings=PostgresSettings(
            database_url=database_url(settings),  # type: ignore[arg-type]  # validated as a DSN
            db_max_conn_size=4,
        ),
    )
    app.state.features_schema = settings.pg_schema
    await refresh_catalog(app)


async def close(app: FastAPI) -> None:
    await close_db_connection(app)


async def refresh_catalog(app: FastAPI) -> None:
    """Read the columns of the served tables and key them by table name."""
    schema: str = app.state.features_schema
    db_settings = DatabaseSettings(
        schemas=[schema], tables=[f"{schema}.{name}" for name in COLLECTIONS]
    )
    async with app.state.pool.acquire() as conn:
        found = await pg_get_collection_index(conn, settings=db_settings)
    collections: dict[str, Collection] = {}
    for collection in found:
        if collection.table not in COLLECTIONS:
            continue
        wanted = COLLECTIONS[collection.table]
        datetime_column = next(
            (c for c in collection.table_columns if c.name == wanted), collection.datetime_column
        )
        collections[collection.table] = collection.model_copy(
            update={"id": collection.table, "datetime_column": datetime_column}
        )
    app.state.collection_catalog = Catalog(collections=collections, last_updated=dt.datetime.now())


async def collection_dependency(
    request: Request,
    collectionId: Annotated[str, Path(description="alerts, scenes, aois or forest_baseline")],
) -> Any:
    catalog: Catalog = request.app.state.collection_catalog
    if dt.datetime.now() - catalog["last_updated"] > dt.timedelta(seconds=CATALOG_TTL_S):
        await run_in_threadpool(_sync_baselines, request.app.state.settings)
        await refresh_catalog(request.app)
        catalog = request.app.state.collection_catalog
    if collectionId in catalog["collections"]:
        return catalog["collections"][collectionId]
    raise HTTPException(
        404,
        f"no collection {collectionId!r}; choose from {', '.join(catalog['collections'])}",
    )


def _sync_baselines(settings: Settings) -> None:
    """Reload forest baseline rasters that changed since the last look."""
    from canopywatch.api.baseline import sync_baselines
    from canopywatch.catalog.schema import connect
    from canopywatch.eudr.evidence import find_baselines

    with connect(settings) as conn:
        sync_baselines(conn, find_baselines(settings))


def _instant_ok(text: str) -> bool:
    if text in {"", ".."}:
        return True
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_query(request: Request) -> None:
    """A ``datetime`` that is not RFC 3339 (an instant or ``a/b``, ``../b``, ``a/..``) is 400
    here; tipg would fail on it with a 500."""
    value = request.query_params.get("datetime")
    if value is not None and not all(_instant_ok(part) for part in value.split("/", 1)):
        raise HTTPException(400, f"datetime {value!r} is not RFC 3339 (an instant or a/b)")


def factory() -> OGCFeaturesFactory:
    return OGCFeaturesFactory(
        title="canopywatch OGC API Features",
        collection_dependency=collection_dependency,  # type: ignore[arg-type]  # async is fine
    )
