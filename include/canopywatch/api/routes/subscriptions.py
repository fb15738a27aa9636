"""Alert subscriptions over HTTP (write scope): the same as ``canopywatch subscribe``.

* ``POST /subscriptions`` ``{"aoi": NAME, "webhook": URL | "email": ADDRESS, "min_status": ...}``: 201
  with the subscription and its signing secret (shown once); a webhook that is not http(s)
  or points at a private/loopback address is 400, an unknown area 404;
* ``GET /subscriptions[?aoi=NAME]``: the active subscriptions (no secrets);
* ``DELETE /subscriptions/{id}``: 204, unknown 404;
* ``GET /subscriptions/{id}/deliveries[?state=...]``: its delivery log.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from canopywatch.api.auth import require_write
from canopywatch.api.db import connection, settings_of
from canopywatch.settings import Settings
from canopywatch.subscriptions import store
from canopywatch.subscriptions.signing import new_secret
from canopywatch.subscriptions.targets import UnsafeTargetError, check_email, check_webhook_url

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"],
                   dependencies=[Depends(require_write)])  # fmt: skip
Conn = Annotated[psycopg.Connection[Any], Depends(connection)]
AppSettings = Annotated[Settings, Depends(settings_of)]


class NewSubscription(BaseModel):
    aoi: str = Field(min_length=1, max_length=64, description="a registered area's id")
    webhook: str | None = Field(None, min_length=1, max_length=2048, description="http(s) URL")
    email: str | None = Field(None, min_length=3, max_length=254, description="or an address")
    min_status: Literal["low", "high"] = "low"


@router.post("", status_code=201)
def subscribe(body: NewSubscription, conn: Conn, settings: AppSettings) -> dict[str, Any]:
    if (body.webhook is None) == (body.email is None):
        raise HTTPException(400, "give exactly one of webhook or email")
    try:
        if body.email is not None:
            if not settings.smtp_host:
                raise HTTPException(400, "e-mail subscriptions need CANOPYWATCH_SMTP_HOST")
            channel, target = "email", check_email(body.email)
        else:
            channel = "webhook"
            target = check_webhook_url(
                str(body.webhook), allow_private=settings.webhook_allow_private
            )
    except UnsafeTargetError as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        made = store.create(conn, aoi_id=body.aoi, target=target, min_status=body.min_status,
                            secret=new_secret(), channel=channel)  # fmt: skip
    except store.UnknownAoiError as exc:
        raise HTTPException(404, str(exc)) from None
    return {**made.public(), "secret": made.secret}


@router.get("")
def list_subscriptions(conn: Conn, aoi: str | None = None) -> list[dict[str, Any]]:
    return [s.public() for s in store.list_subscriptions(conn, aoi_id=aoi)]


@router.delete("/{subscription_id}", status_code=204)
def remove(subscription_id: str, conn: Conn) -> Response:
    try:
        store.remove(conn, subscription_id)
    except store.UnknownSubscriptionError as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries")
def deliveries(
    subscription_id: str,
    conn: Conn,
    state: Literal["pending", "delivered", "dead_letter"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    try:
        store.get(conn, subscription_id)
    except store.UnknownSubscriptionError as exc:
        raise HTTPException(404, str(exc)) from None
    rows = store.deliveries(conn, subscription_id=subscription_id, state=state, limit=limit)
    return [d.as_dict() for d in rows]
