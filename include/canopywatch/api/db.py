"""PostGIS connections for the API's own routes (psycopg, one per request, catalog schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from fastapi import HTTPException, Request

from canopywatch.catalog.schema import connect
from canopywatch.settings import Settings


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def connection(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """FastAPI dependency: a connection in the catalog schema, closed after the response."""
    try:
        conn = connect(settings_of(request))
    except psycopg.OperationalError as exc:
        raise HTTPException(503, "the catalog database is unreachable") from exc
    try:
        yield conn
    finally:
        conn.close()


def columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    """Column names of ``table`` in the connection's first schema."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = %s
            """,
            (table,),
        )
        return {str(r[0]) for r in cur.fetchall()}


def alert_status_sql(alert_columns: set[str], alias: str = "a") -> str:
    """SQL for an alert's status: the ``status`` column, or from the score where the table
    predates it (``high`` from 0.8, as ``canopywatch.alert_schema.confidence_level``)."""
    if "status" in alert_columns:
        return f"{alias}.status"
    return f"CASE WHEN {alias}.confidence >= 0.8 THEN 'high' ELSE 'low' END"
