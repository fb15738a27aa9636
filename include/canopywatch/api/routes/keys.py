"""``POST /keys``: a new API key (admin scope needed); the key is shown once, stored hashed."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Depends, HTTPException, Request

from canopywatch.api import keys
from canopywatch.api.db import connection

router = APIRouter(tags=["keys"])


def require_admin(request: Request) -> Any:
    return request.app.state.access.check(request, "admin")


@router.post("/keys", status_code=201, dependencies=[Depends(require_admin)])
def create_key(
    conn: Annotated[psycopg.Connection[Any], Depends(connection)],
    body: Annotated[dict[str, Any], Body(examples=[{"name": "qgis", "scopes": ["read"]}])],
) -> dict[str, Any]:
    name, scopes = body.get("name"), body.get("scopes", ["read"])
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise HTTPException(400, "name must be a string of 1 to 100 characters")
    if not isinstance(scopes, list) or not scopes or not all(s in keys.SCOPES for s in scopes):
        raise HTTPException(400, f"scopes must be a non-empty list of {', '.join(keys.SCOPES)}")
    key = keys.new_key()
    keys.store(conn, key, name, tuple(scopes))
    return {"name": name, "scopes": scopes, "key": key}
