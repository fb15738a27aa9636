"""The Starlette application: routes, handlers, ``create_app``, ``serve_in_thread``, ``main``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canopywatch_dev.cdse_emulator.config import (
    CATALOG_DEFAULT_LIMIT,
    CATALOG_MAX_LIMIT,
    CATALOG_PATH,
    COLLECTION_ID,
    PROCESS_PATH,
    PUBLIC_CLIENT_ID,
    STAC_DEFAULT_LIMIT,
    STAC_MAX_LIMIT,
    STAC_PATH,
    STATISTICS_PATH,
    TOKEN_PATH,
)
from canopywatch_dev.cdse_emulator.errors import BadPayload, read_json_object, sh_error, stac_error
from canopywatch_dev.cdse_emulator.faults import Fault, FaultPlan, FaultsAndStats, Stats
from canopywatch_dev.cdse_emulator.items import (
    apply_fields,
    catalog_item,
    iso_time,
    sort_scenes,
    stac_item,
)
from canopywatch_dev.cdse_emulator.process import (
    RenderedFile,
    parse_process_request,
    render_process,
    tar_files,
)
from canopywatch_dev.cdse_emulator.search import parse_limit, scene_query_from
from canopywatch_dev.cdse_emulator.statistics import parse_statistical_request, render_statistics
from canopywatch_dev.cdse_emulator.tokens import Credentials, TokenError, TokenIssuer
from canopywatch_dev.cdse_world import (
    Scene,
    World,
)
from canopywatch_dev.evalscript import (
    EvalscriptError,
)

LOGGER = logging.getLogger(__name__)


# ---------------------------------------------------------------- the application


class CdseEmulator:
    """Request handlers bound to one world, one set of credentials and one fault plan."""

    def __init__(self, world: World, credentials: Credentials, faults: FaultPlan) -> None:
        self.world = world
        self.credentials = credentials
        self.faults = faults
        self.stats = Stats()
        self.tokens = TokenIssuer("canopywatch-cdse-emulator")

    # -- authentication

    async def token(self, request: Request) -> Response:
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()
        }
        client_id, client_secret = _basic_auth(request.headers.get("authorization"))
        client_id = form.get("client_id", client_id)
        client_secret = form.get("client_secret", client_secret)
        try:
            token = self._grant(form.get("grant_type"), client_id, client_secret, form)
        except TokenError as exc:
            LOGGER.info("token request refused: %s (%s)", exc.error, exc.description)
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        return JSONResponse(token, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _grant(
        self,
        grant_type: str | None,
        client_id: str | None,
        client_secret: str | None,
        form: Mapping[str, str],
    ) -> dict[str, Any]:
        if grant_type is None:
            raise TokenError(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type == "client_credentials":
            if not (
                client_id
                and client_id == self.credentials.client_id
                and client_secret
                and hmac.compare_digest(client_secret, self.credentials.client_secret)
            ):
                raise TokenError(
                    401, "invalid_client", "Invalid client or Invalid client credentials"
                )
            return self._token_response(
                client_id, f"service-account-{client_id}", with_refresh=False
            )
        if grant_type == "password":
            if client_id != PUBLIC_CLIENT_ID:
                raise TokenError(
                    401, "invalid_client", "Invalid client or Invalid client credentials"
                )
            username, password = form.get("username"), form.get("password") or ""
            if not (
                self.credentials.username
                and username == self.credentials.username
                and hmac.compare_digest(password, self.credentials.password or "")
            ):
                raise TokenError(401, "invalid_grant", "Invalid user credentials")
            return self._token_response(PUBLIC_CLIENT_ID, username, with_refresh=True)
        if grant_type == "refresh_token":
            payload = self.tokens.verify(form.get("refresh_token", ""), "Refresh")
            if payload is None or payload.get("azp") != client_id:
                raise TokenError(400, "invalid_grant", "Invalid refresh token")
            return self._token_response(str(payload["azp"]), str(payload["sub"]), with_refresh=True)
        raise TokenError(400, "unsupported_grant_type", "Unsupported grant_type")

    def _token_response(self, client_id: str, subject: str, with_refresh: bool) -> dict[str, Any]:
        lifetime = self.faults.token_lifetime_s
        valid_for = self.faults.token_valid_for_s
        access = self.tokens.issue(
            client_id, subject, valid_for if valid_for is not None else lifetime, "Bearer"
        )
        response: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(lifetime),
            "refresh_expires_in": TokenIssuer.REFRESH_LIFETIME_S if with_refresh else 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }
        if with_refresh:
            response["refresh_token"] = self.tokens.issue(
                client_id, subject, TokenIssuer.REFRESH_LIFETIME_S, "Refresh"
            )
            response["session_state"] = secrets.token_hex(16)
        return response

    def _unauthorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and self.tokens.verify(token.strip(), "Bearer") is not None:
            return None
        message = (
            "You are not authorized! Please provide a valid access token within the header "
            "[Authorization: Bearer <accessToken>] of your request."
        )
        if token:
            message = "Token is not valid or has expired. Please request a new access token."
        return sh_error(401, message)

    # -- Sentinel Hub Catalog API

    async def catalog_landing(self, request: Request) -> Response:
        base = _base_url(request)
        return JSONResponse(
            {
                "type": "Catalog",
                "stac_version": "1.0.0",
                "id": "sentinel-hub",
                "title": "Sentinel Hub STAC catalog (canopywatch emulator)",
                "description": "Simulated Sentinel-2 L2A scenes",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/item-search#fields",
                    "https://api.stacspec.org/v1.0.0/item-search#filter",
                    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
                    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
                ],
                "links": [
                    {"rel": "self", "href": f"{base}{CATALOG_PATH}/", "type": "application/json"},
                    {
                        "rel": "data",
                        "href": f"{base}{CATALOG_PATH}/collections",
                        "type": "application/json",
                    },
                    {
                        "rel": "search",
                        "href": f"{base}{CATALOG_PATH}/search",
                        "method": "POST",
                        "type": "application/geo+json",
                    },
                ],
            }
        )

    async def catalog_collections(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        return JSONResponse(
            {"collections": [self._collection(_base_url(request), CATALOG_PATH)], "links": []}
        )

    async def catalog_collection(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        if request.path_params["collection_id"] != COLLECTION_ID:
            return sh_error(404, f"Collection {request.path_params['collection_id']} not found")
        return JSONResponse(self._collection(_base_url(request), CATALOG_PATH))

    def _collection(self, base: str, path: str) -> dict[str, Any]:
        bounds = [area.footprint.bounds for area in self.world.areas] or [
            (-180.0, -90.0, 180.0, 90.0)
        ]
        starts = [s.datetime for s in self.world.scenes]
        return {
            "stac_version": "1.0.0",
            "type": "Collection",
            "id": COLLECTION_ID,
            "title": "Sentinel 2 L2A (simulated)",
            "description": "Simulated Sentinel-2 L2A",
            "license": "proprietary",
            "extent": {
                "spatial": {
                    "bbox": [
                        [
                            min(b[0] for b in bounds),
                            min(b[1] for b in bounds),
                            max(b[2] for b in bounds),
                            max(b[3] for b in bounds),
                        ]
                    ]
                },
                "temporal": {
                    "interval": [
                        [
                            iso_time(min(starts)) if starts else None,
                            iso_time(max(starts)) if starts else None,
                        ]
                    ]
                },
            },
            "links": [{"rel": "self", "href": f"{base}{path}/collections/{COLLECTION_ID}"}],
        }

    async def catalog_search(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await read_json_object(request)
        query = scene_query_from(body, stac=False)
        limit = parse_limit(body.get("limit"), CATALOG_DEFAULT_LIMIT, CATALOG_MAX_LIMIT)
        start = body.get("next", 0)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise BadPayload("next must be a non-negative integer", "next", start)
        scenes = query.select(self.world)
        distinct = body.get("distinct")
        if distinct is not None:
            return JSONResponse(self._distinct(scenes, str(distinct), start, limit))
        page = scenes[start : start + limit]
        base = _base_url(request)
        features = [apply_fields(catalog_item(scene, base), body.get("fields")) for scene in page]
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        if start + limit < len(scenes):
            context["next"] = start + limit
        LOGGER.info(
            "catalog search: %d of %d matching scenes from %d", len(page), len(scenes), start
        )
        return JSONResponse(
            {"type": "FeatureCollection", "features": features, "links": [], "context": context},
            media_type="application/geo+json",
        )

    @staticmethod
    def _distinct(scenes: list[Scene], what: str, start: int, limit: int) -> dict[str, Any]:
        if what != "date":
            raise BadPayload("distinct supports only 'date'", "distinct", what)
        values = sorted({scene.datetime.astimezone(UTC).date().isoformat() for scene in scenes})
        page = values[start : start + limit]
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        if start + limit < len(values):
            context["next"] = start + limit
        return {"type": "FeatureCollection", "features": page, "links": [], "context": context}

    # -- CDSE STAC v1

    async def stac_landing(self, request: Request) -> Response:
        base = _base_url(request)
        return JSONResponse(
            {
                "type": "Catalog",
                "stac_version": "1.1.0",
                "id": "cdse-stac",
                "description": "CDSE STAC (canopywatch emulator)",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/item-search#query",
                    "https://api.stacspec.org/v1.0.0/item-search#sort",
                ],
                "links": [
                    {
                        "rel": "search",
                        "href": f"{base}{STAC_PATH}/search",
                        "method": "POST",
                        "type": "application/geo+json",
                    }
                ],
            }
        )

    async def stac_collections(self, request: Request) -> Response:
        return JSONResponse(
            {"collections": [self._collection(_base_url(request), STAC_PATH)], "links": []}
        )

    async def stac_search(self, request: Request) -> Response:
        try:
            body = await read_json_object(request)
            query = scene_query_from(body, stac=True)
            limit = parse_limit(body.get("limit"), STAC_DEFAULT_LIMIT, STAC_MAX_LIMIT)
            scenes = sort_scenes(query.select(self.world), body.get("sortby"))
            start = _stac_token_offset(body.get("token"), scenes)
        except BadPayload as exc:
            return stac_error(400, exc.message)
        page = scenes[start : start + limit]
        base = _base_url(request)
        links: list[dict[str, Any]] = [
            {"rel": "root", "type": "application/json", "href": f"{base}{STAC_PATH}/"},
        ]
        if page and start + limit < len(scenes):
            next_body = {**body, "token": f"next:{COLLECTION_ID}:{page[-1].id}"}
            links.append(
                {
                    "rel": "next",
                    "type": "application/geo+json",
                    "method": "POST",
                    "href": f"{base}{STAC_PATH}/search",
                    "body": next_body,
                    "merge": False,
                }
            )
        features = [apply_fields(stac_item(scene, base), body.get("fields")) for scene in page]
        return JSONResponse(
            {
                "type": "FeatureCollection",
                "features": features,
                "links": links,
                "numberReturned": len(page),
                "numberMatched": len(scenes),
                "context": {"limit": limit, "returned": len(page), "matched": len(scenes)},
            },
            media_type="application/geo+json",
        )

    # -- Process API

    async def process(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await read_json_object(request)
        parsed = parse_process_request(body)
        try:
            result = await run_in_threadpool(render_process, self.world, parsed)
        except EvalscriptError as exc:
            raise BadPayload(str(exc), "evalscript", None) from exc
        self.stats.spend(result.processing_units)
        LOGGER.info(
            "process %dx%d %s: %d scene(s), %d output(s), %.3f PU",
            parsed.grid.width,
            parsed.grid.height,
            parsed.grid.crs.to_string(),
            result.scenes_used,
            len(result.files),
            result.processing_units,
        )
        headers = {"x-processingunits-spent": f"{result.processing_units:.6g}"}
        accept = request.headers.get("accept", "")
        if len(result.files) == 1 and "tar" not in accept:
            only = result.files[0]
            return Response(only.data, media_type=only.content_type, headers=headers)
        tar_type = "application/x-tar" if "application/x-tar" in accept else "application/tar"
        names = [f.name for f in result.files]
        files = list(result.files)
        if "userdata.json" not in names:
            files.append(RenderedFile("userdata.json", "application/json", b"{}"))
        return Response(tar_files(files), media_type=tar_type, headers=headers)

    # -- Statistical API

    async def statistics(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await read_json_object(request)
        parsed = parse_statistical_request(body)
        try:
            document, units = await run_in_threadpool(render_statistics, self.world, parsed)
        except EvalscriptError as exc:
            raise BadPayload(str(exc), "aggregation.evalscript", None) from exc
        self.stats.spend(units)
        LOGGER.info(
            "statistics %dx%d %s: %d interval(s) with data, %.3f PU",
            parsed.process.grid.width,
            parsed.process.grid.height,
            parsed.process.grid.crs.to_string(),
            len(document["data"]),
            units,
        )
        return JSONResponse(document, headers={"x-processingunits-spent": f"{units:.6g}"})

    # -- test hooks

    async def health(self, _: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "areas": len(self.world.areas), "scenes": len(self.world.scenes)}
        )

    async def set_faults(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            for raw in body.get("faults", []):
                self.faults.add(Fault.from_json(raw))
            if "token_lifetime_s" in body:
                self.faults.token_lifetime_s = float(body["token_lifetime_s"])
            if "token_valid_for_s" in body:
                value = body["token_valid_for_s"]
                self.faults.token_valid_for_s = None if value is None else float(value)
        except (ValueError, TypeError, AttributeError) as exc:
            return sh_error(400, f"Bad fault plan: {exc}")
        return JSONResponse(
            {
                "faults": [vars(f) for f in self.faults.faults],
                "token_lifetime_s": self.faults.token_lifetime_s,
                "token_valid_for_s": self.faults.token_valid_for_s,
            }
        )

    async def get_stats(self, _: Request) -> Response:
        return JSONResponse(self.stats.snapshot())

    async def reset(self, _: Request) -> Response:
        self.faults.clear()
        self.stats.clear()
        return JSONResponse({"status": "reset"})


def _stac_token_offset(token: Any, scenes: Sequence[Scene]) -> int:
    if token is None:
        return 0
    prefix = f"next:{COLLECTION_ID}:"
    if not isinstance(token, str) or not token.startswith(prefix):
        raise BadPayload(f"Invalid paging token {token!r}", "token", token)
    last_id = token.removeprefix(prefix)
    for position, scene in enumerate(scenes):
        if scene.id == last_id:
            return position + 1
    raise BadPayload(f"Paging token {token!r} does not match this search", "token", token)


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


Handler = Callable[[Request], Awaitable[Response]]


def _sh_errors(handler: Handler) -> Handler:
    """Turns BadPayload into the Sentinel Hub 400 envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadPayload as exc:
            LOGGER.info("400 on %s: %s", request.url.path, exc.message)
            return sh_error(400, exc.message, exc.errors)

    return wrapped


def create_app(
    world: World, credentials: Credentials, faults: FaultPlan | None = None
) -> Starlette:
    """The emulator as an ASGI app; ``app.state.emulator`` holds stats and the fault plan."""
    if not credentials.client_id or not credentials.client_secret:
        raise ValueError("the emulator needs a client id and secret")
    emulator = CdseEmulator(world, credentials, faults or FaultPlan())
    routes = [
        Route("/health", emulator.health, methods=["GET"]),
        Route(TOKEN_PATH, emulator.token, methods=["POST"]),
        Route(f"{CATALOG_PATH}/", emulator.catalog_landing, methods=["GET"]),
        Route(CATALOG_PATH, emulator.catalog_landing, methods=["GET"]),
        Route(f"{CATALOG_PATH}/collections", emulator.catalog_collections, methods=["GET"]),
        Route(
            f"{CATALOG_PATH}/collections/{{collection_id}}",
            emulator.catalog_collection,
            methods=["GET"],
        ),
        Route(f"{CATALOG_PATH}/search", _sh_errors(emulator.catalog_search), methods=["POST"]),
        Route(PROCESS_PATH, _sh_errors(emulator.process), methods=["POST"]),
        Route(STATISTICS_PATH, _sh_errors(emulator.statistics), methods=["POST"]),
        Route(f"{STAC_PATH}/", emulator.stac_landing, methods=["GET"]),
        Route(STAC_PATH, emulator.stac_landing, methods=["GET"]),
        Route(f"{STAC_PATH}/collections", emulator.stac_collections, methods=["GET"]),
        Route(f"{STAC_PATH}/search", emulator.stac_search, methods=["POST"]),
        Route("/_emulator/faults", emulator.set_faults, methods=["POST"]),
        Route("/_emulator/stats", emulator.get_stats, methods=["GET"]),
        Route("/_emulator/reset", emulator.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    app.add_middleware(FaultsAndStats, emulator=emulator)
    return app


def emulator_of(app: Starlette) -> CdseEmulator:
    return cast(CdseEmulator, app.state.emulator)


@contextmanager
def serve_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Runs ``app`` with uvicorn in a background thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])),
        name=f"cdse-emulator-{bound_port}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the CDSE emulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def token_url(base_url: str) -> str:
    return f"{base_url}{TOKEN_PATH}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m canopywatch_dev.cdse_emulator",
        description="Local CDSE endpoint serving simulated Sentinel-2 L2A",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18500)
    parser.add_argument("--world", type=Path, required=True, help="WORLD.json with served areas")
    parser.add_argument("--client-id", default=os.environ.get("CANOPYWATCH_CDSE_CLIENT_ID", ""))
    parser.add_argument(
        "--client-secret",
        default=os.environ.get("CANOPYWATCH_CDSE_CLIENT_SECRET", ""),
        help="prefer the environment variable CANOPYWATCH_CDSE_CLIENT_SECRET",
    )
    parser.add_argument(
        "--token-lifetime", type=float, default=600.0, help="expires_in of tokens, s"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    credentials = Credentials(client_id=args.client_id, client_secret=args.client_secret)
    if not credentials.client_id or not credentials.client_secret:
        parser.error("set CANOPYWATCH_CDSE_CLIENT_ID and CANOPYWATCH_CDSE_CLIENT_SECRET")
    world = World.from_file(args.world)
    app = create_app(world, credentials, FaultPlan(token_lifetime_s=args.token_lifetime))
    LOGGER.info(
        "serving %d area(s), %d scene(s) at http://%s:%d for client %s",
        len(world.areas),
        len(world.scenes),
        args.host,
        args.port,
        credentials.client_id,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())
