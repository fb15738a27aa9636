"""Error envelopes: Sentinel Hub (``error.status/reason/message/code``) and STAC."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

# ---------------------------------------------------------------- error envelopes

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_CODES = {
    400: "COMMON_BAD_PAYLOAD",
    401: "COMMON_UNAUTHORIZED",
    404: "COMMON_NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "COMMON_EXCEPTION",
    503: "COMMON_SERVICE_UNAVAILABLE",
}


class BadPayload(Exception):
    """A request the Sentinel Hub APIs answer with 400 COMMON_BAD_PAYLOAD."""

    def __init__(self, message: str, parameter: str | None = None, invalid: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[dict[str, Any]] = []
        if parameter is not None:
            self.errors.append(
                {"parameter": parameter, "invalidValue": invalid, "violation": message}
            )


def sh_error(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The Sentinel Hub error envelope."""
    error: dict[str, Any] = {
        "status": status,
        "reason": _REASONS.get(status, "Error"),
        "message": message,
        "code": _CODES.get(status, "COMMON_EXCEPTION"),
    }
    if errors is not None:
        error["errors"] = errors
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def stac_error(status: int, description: str) -> JSONResponse:
    """The stac-fastapi error shape used by the CDSE STAC service."""
    return JSONResponse({"code": "BadRequest", "description": description}, status_code=status)


async def read_json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise BadPayload(f"Could not parse request body as JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadPayload("Request body must be a JSON object")
    return body
