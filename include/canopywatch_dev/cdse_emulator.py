"""A local Copernicus Data Space endpoint serving simulated Sentinel-2 L2A scenes.

It speaks the protocol in docs/copernicus.md on the real service's paths, so the unchanged
``sentinelhub`` client works against it with two base URLs swapped:

- ``POST /auth/realms/CDSE/protocol/openid-connect/token``  Keycloak token endpoint
  (client_credentials, password with client ``cdse-public``, refresh_token); HS256 JWTs.
- ``GET /api/v1/catalog/1.0.0/``, ``GET .../collections``, ``POST .../search``
  Sentinel Hub Catalog API (cql2 ``filter``, integer ``context.next`` paging); Bearer token.
- ``POST /api/v1/process``  Process API; evalscripts run in embedded V8; Bearer token.
- ``GET /stac/v1/``, ``POST /stac/v1/search``  CDSE STAC v1 (``token`` paging via a POST
  ``next`` link carrying the whole next body); no auth.
- ``GET /health``; test hooks (unauthenticated, loopback use only):
  ``POST /_emulator/faults``, ``GET /_emulator/stats``, ``POST /_emulator/reset``.

Run: ``python -m canopywatch_dev.cdse_emulator --world WORLD.json --port 18500``;
credentials from ``CANOPYWATCH_CDSE_CLIENT_ID`` / ``CANOPYWATCH_CDSE_CLIENT_SECRET`` (or
``--client-id`` / ``--client-secret``). From Python: ``create_app`` and ``serve_in_thread``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs

import numpy as np
import numpy.typing as npt
import uvicorn
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canopywatch.sentinel2 import BANDS, BOA_ADD_OFFSET_DN, SCL_BAND
from canopywatch_dev.cdse_world import (
    Grid,
    Mosaic,
    Scene,
    World,
    footprint_lonlat,
    mosaic_simple,
)
from canopywatch_dev.evalscript import (
    Evalscript,
    EvalscriptError,
    OutputSpec,
    band_scales,
    to_sample_type,
)

LOGGER = logging.getLogger(__name__)

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"  # noqa: S105
CATALOG_PATH = "/api/v1/catalog/1.0.0"
PROCESS_PATH = "/api/v1/process"
STAC_PATH = "/stac/v1"
COLLECTION_ID = "sentinel-2-l2a"
PROCESS_TYPES = frozenset({COLLECTION_ID, "S2L2A"})
PUBLIC_CLIENT_ID = "cdse-public"
MAX_OUTPUT_PX = 2500
CATALOG_MAX_LIMIT = 100
CATALOG_DEFAULT_LIMIT = 10
STAC_MAX_LIMIT = 1000
STAC_DEFAULT_LIMIT = 10
DEFAULT_OUTPUT_PX = 256
MIN_PROCESSING_UNITS = 0.005
DATA_MASK = "dataMask"
SERVED_BANDS = (*BANDS, SCL_BAND, DATA_MASK)

EndpointKind = Literal["token", "catalog", "stac", "process"]
FaultMode = Literal["429", "500", "503", "truncate_length", "truncate_body"]
ENDPOINT_KINDS: tuple[str, ...] = get_args(EndpointKind)
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)

_OPENGIS_EPSG = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$")
_URN_EPSG = re.compile(r"^urn:ogc:def:crs:EPSG:[\d.]*:(\d+)$", re.IGNORECASE)
_CRS84 = frozenset(
    {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"}
)
_CQL_CLAUSE = re.compile(
    r"^\s*(?P<prop>[A-Za-z_][\w:.\-]*)\s*(?P<op><=|>=|<>|!=|=|<|>)\s*"
    r"(?P<value>'[^']*'|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$"
)
_CQL_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


# ---------------------------------------------------------------- credentials and tokens


@dataclass(frozen=True)
class Credentials:
    """The OAuth client (and optional OData user) the endpoint accepts."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        return cls(
            client_id=env.get("CANOPYWATCH_CDSE_CLIENT_ID", ""),
            client_secret=env.get("CANOPYWATCH_CDSE_CLIENT_SECRET", ""),
        )


class TokenError(Exception):
    """A Keycloak-style token endpoint error."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies HS256 JWTs signed with a key that lives only in this process."""

    REFRESH_LIFETIME_S = 3600

    def __init__(self, issuer: str) -> None:
        self._key = secrets.token_bytes(32)
        self._issuer = issuer

    def issue(self, client_id: str, subject: str, lifetime_s: float, typ: str) -> str:
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "exp": int(now + lifetime_s),
            "exp_ms": int((now + lifetime_s) * 1000),
            "iat": int(now),
            "jti": secrets.token_hex(8),
            "iss": self._issuer,
            "sub": subject,
            "typ": typ,
            "azp": client_id,
            "scope": "email profile",
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
        )
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"

    def verify(self, token: str, typ: str) -> dict[str, Any] | None:
        """The payload of a well-signed, unexpired token of type ``typ``; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
                return None
            payload = json.loads(_b64url_decode(parts[1]))
        except ValueError:
            return None
        # exp_ms keeps sub-second lifetimes (fault tests) exact; exp is the standard claim
        expires_ms = payload.get("exp_ms", payload.get("exp", 0) * 1000)
        if payload.get("typ") != typ or expires_ms <= time.time() * 1000:
            return None
        return cast(dict[str, Any], payload)


# ---------------------------------------------------------------- faults and statistics


@dataclass
class Fault:
    """For the next ``count`` requests to ``endpoint``, answer with ``mode`` instead."""

    endpoint: EndpointKind
    mode: FaultMode
    count: int = 1
    retry_after_ms: int = 1000

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Fault:
        endpoint, mode = str(raw.get("endpoint")), str(raw.get("mode"))
        if endpoint not in ENDPOINT_KINDS or mode not in FAULT_MODES:
            raise ValueError(f"endpoint must be one of {ENDPOINT_KINDS}, mode one of {FAULT_MODES}")
        return cls(
            endpoint=cast(EndpointKind, endpoint),
            mode=cast(FaultMode, mode),
            count=int(raw.get("count", 1)),
            retry_after_ms=int(raw.get("retry_after_ms", 1000)),
        )


@dataclass
class FaultPlan:
    """Faults to inject, and token lifetimes.

    ``token_lifetime_s`` is the advertised ``expires_in``; ``token_valid_for_s``, when set, makes
    tokens stop being accepted earlier than advertised (a revoked or clock-skewed token).
    """

    faults: list[Fault] = field(default_factory=list)
    token_lifetime_s: float = 600.0
    token_valid_for_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """Consumes one occurrence of the first armed fault for ``endpoint``."""
        with self._lock:
            for fault in self.faults:
                if fault.endpoint == endpoint and fault.count > 0:
                    fault.count -= 1
                    return replace(fault)
            return None

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.token_lifetime_s = 600.0
            self.token_valid_for_s = None


@dataclass
class Stats:
    """Requests per endpoint kind and HTTP status, and processing units spent."""

    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    processing_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, kind: str, status: int) -> None:
        with self._lock:
            per_status = self.requests.setdefault(kind, {})
            per_status[str(status)] = per_status.get(str(status), 0) + 1

    def spend(self, units: float) -> None:
        with self._lock:
            self.processing_units += units

    def count(self, kind: str, status: int | None = None) -> int:
        with self._lock:
            per_status = self.requests.get(kind, {})
            if status is None:
                return sum(per_status.values())
            return per_status.get(str(status), 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {kind: dict(v) for kind, v in self.requests.items()},
                "processing_units": round(self.processing_units, 6),
            }

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.processing_units = 0.0


def endpoint_kind(path: str) -> str:
    if path == TOKEN_PATH:
        return "token"
    if path.startswith(CATALOG_PATH):
        return "catalog"
    if path.startswith(STAC_PATH):
        return "stac"
    if path.startswith(PROCESS_PATH):
        return "process"
    return "other"


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


# ---------------------------------------------------------------- search parameters


@dataclass(frozen=True)
class Comparison:
    prop: str
    op: str
    value: float | str

    def matches(self, properties: Mapping[str, Any]) -> bool:
        actual = properties.get(self.prop)
        if actual is None:
            return False
        if isinstance(self.value, str):
            left, right = str(actual), self.value
            return {"=": left == right, "<>": left != right}.get(self.op, False)
        number = float(actual)
        return {
            "<": number < self.value,
            "<=": number <= self.value,
            ">": number > self.value,
            ">=": number >= self.value,
            "=": number == self.value,
            "<>": number != self.value,
        }[self.op]


def parse_cql2_text(text: str) -> list[Comparison]:
    """``prop <op> literal`` clauses joined by AND; anything else is a clear 400."""
    comparisons = []
    for clause in _CQL_AND.split(text.strip()):
        match = _CQL_CLAUSE.match(clause)
        if match is None:
            raise BadPayload(
                f"Cannot parse cql2-text filter clause {clause!r}: the emulator supports "
                "'property <|<=|>|>=|=|<> literal' clauses joined by AND",
                "filter",
                text,
            )
        raw = match.group("value")
        value: float | str = raw[1:-1] if raw.startswith("'") else float(raw)
        op = "<>" if match.group("op") == "!=" else match.group("op")
        comparisons.append(Comparison(match.group("prop"), op, value))
    return comparisons


def parse_cql2_json(node: Any) -> list[Comparison]:
    if not isinstance(node, dict) or "op" not in node or not isinstance(node.get("args"), list):
        raise BadPayload("cql2-json filter nodes need 'op' and 'args'", "filter", node)
    op = str(node["op"]).lower()
    if op == "and":
        return [c for arg in node["args"] for c in parse_cql2_json(arg)]
    args = node["args"]
    if (
        op not in {"<", "<=", ">", ">=", "=", "<>"}
        or len(args) != 2
        or not isinstance(args[0], dict)
    ):
        raise BadPayload(f"Unsupported cql2-json operation {op!r}", "filter", node)
    value = args[1]
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        raise BadPayload("cql2-json comparisons need a number or string literal", "filter", node)
    return [
        Comparison(
            str(args[0].get("property")), op, value if isinstance(value, str) else float(value)
        )
    ]


def parse_stac_query(query: Any) -> list[Comparison]:
    """The STAC query extension: ``{"eo:cloud_cover": {"lte": 30}}``."""
    operators = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=", "neq": "<>"}
    if not isinstance(query, dict):
        raise BadPayload("query must be an object", "query", query)
    comparisons = []
    for prop, conditions in query.items():
        if not isinstance(conditions, dict):
            raise BadPayload(f"query.{prop} must be an object of operators", "query", query)
        for name, value in conditions.items():
            if name not in operators or isinstance(value, bool | list | dict | None):
                raise BadPayload(f"Unsupported query operator {name!r} for {prop}", "query", query)
            literal = value if isinstance(value, str) else float(value)
            comparisons.append(Comparison(prop, operators[name], literal))
    return comparisons


def parse_time(text: str, parameter: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadPayload(f"Cannot parse time {text!r}", parameter, text) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_datetime_interval(value: Any) -> tuple[datetime | None, datetime | None]:
    """A single RFC 3339 time or ``start/end`` with ``..`` (or empty) for open ends."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise BadPayload("datetime must be a string", "datetime", value)
    if "/" not in value:
        instant = parse_time(value, "datetime")
        return instant, instant
    start_text, end_text = value.split("/", 1)
    start = None if start_text in ("", "..") else parse_time(start_text, "datetime")
    end = None if end_text in ("", "..") else parse_time(end_text, "datetime")
    if start and end and start > end:
        raise BadPayload("datetime interval start is after its end", "datetime", value)
    return start, end


def parse_lonlat_bbox(value: Any, parameter: str) -> BaseGeometry:
    if not isinstance(value, list) or len(value) != 4:
        raise BadPayload("bbox must be [minx, miny, maxx, maxy]", parameter, value)
    try:
        minx, miny, maxx, maxy = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise BadPayload("bbox values must be numbers", parameter, value) from exc
    if minx > maxx or miny > maxy:
        raise BadPayload("bbox minimum is greater than its maximum", parameter, value)
    return box(minx, miny, maxx, maxy)


def parse_geojson(value: Any, parameter: str) -> BaseGeometry:
    try:
        geometry = shape(value)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"Invalid GeoJSON geometry: {exc}", parameter, value) from exc
    if geometry.is_empty:
        raise BadPayload("Geometry is empty", parameter, value)
    return geometry


@dataclass(frozen=True)
class SceneQuery:
    """What a catalogue search selects, independent of paging."""

    area: BaseGeometry | None = None
    start: datetime | None = None
    end: datetime | None = None
    ids: frozenset[str] | None = None
    comparisons: tuple[Comparison, ...] = ()

    def select(self, world: World) -> list[Scene]:
        return [scene for scene in world.scenes if self._matches(scene)]

    def _matches(self, scene: Scene) -> bool:
        if self.ids is not None and scene.id not in self.ids:
            return False
        if (self.start and scene.datetime < self.start) or (self.end and scene.datetime > self.end):
            return False
        if self.area is not None and not self.area.intersects(scene.area.footprint):
            return False
        properties = scene_properties(scene)
        return all(comparison.matches(properties) for comparison in self.comparisons)


def _check_properties(comparisons: Sequence[Comparison], parameter: str) -> None:
    known = {
        "datetime",
        "platform",
        "constellation",
        "eo:cloud_cover",
        "grid:code",
        "processing:version",
        "proj:epsg",
        "sat:relative_orbit",
        "gsd",
    }
    for comparison in comparisons:
        if comparison.prop not in known:
            raise BadPayload(
                f"Filtering on {comparison.prop!r} is not supported; use one of {sorted(known)}",
                parameter,
                comparison.prop,
            )


def scene_query_from(body: Mapping[str, Any], *, stac: bool) -> SceneQuery:
    """The selection part of a Catalog API (``stac=False``) or STAC v1 search body."""
    collections = body.get("collections")
    if collections is not None:
        if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
            raise BadPayload(
                "collections must be a list of collection ids", "collections", collections
            )
        unknown = [c for c in collections if c != COLLECTION_ID]
        if unknown:
            raise BadPayload(
                f"Unknown collection(s) {unknown}; served: [{COLLECTION_ID!r}]",
                "collections",
                collections,
            )
    area = None
    if body.get("bbox") is not None:
        area = parse_lonlat_bbox(body["bbox"], "bbox")
    if body.get("intersects") is not None:
        geometry = parse_geojson(body["intersects"], "intersects")
        area = geometry if area is None else area.intersection(geometry)
    start, end = parse_datetime_interval(body.get("datetime"))
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise BadPayload("ids must be a list of strings", "ids", ids)
    comparisons = _filter_comparisons(body)
    if stac and body.get("query") is not None:
        comparisons += parse_stac_query(body["query"])
    _check_properties(comparisons, "filter")
    return SceneQuery(area, start, end, None if ids is None else frozenset(ids), tuple(comparisons))


def _filter_comparisons(body: Mapping[str, Any]) -> list[Comparison]:
    query_filter = body.get("filter")
    if query_filter is None:
        return []
    language = body.get(
        "filter-lang", "cql2-json" if isinstance(query_filter, dict) else "cql2-text"
    )
    if language == "cql2-text" and isinstance(query_filter, str):
        return parse_cql2_text(query_filter)
    if language == "cql2-json" and isinstance(query_filter, dict):
        return parse_cql2_json(query_filter)
    raise BadPayload(f"filter does not match filter-lang {language!r}", "filter-lang", language)


def parse_limit(value: Any, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadPayload("limit must be a positive integer", "limit", value)
    return min(int(value), maximum)  # the STAC API spec: over the maximum means the maximum


# ---------------------------------------------------------------- STAC items


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def scene_properties(scene: Scene) -> dict[str, Any]:
    grid = scene.area.grid
    properties: dict[str, Any] = {
        "datetime": _iso(scene.datetime),
        "platform": scene.acquisition.platform,
        "instruments": ["msi"],
        "constellation": "sentinel-2",
        "gsd": 10,
        "eo:cloud_cover": round(scene.cloud_cover, 2),
        "proj:epsg": grid.crs.to_epsg(),
        "proj:bbox": list(grid.bounds),
        "grid:code": f"MGRS-{scene.mgrs_tile}",
        "processing:version": scene.processing_baseline,
    }
    if scene.relative_orbit is not None:
        properties["sat:relative_orbit"] = scene.relative_orbit
    return properties


def _safe_path(scene: Scene) -> str:
    day = scene.datetime.astimezone(UTC)
    return f"Sentinel-2/MSI/L2A/{day:%Y/%m/%d}/{scene.id}.SAFE"


def catalog_item(scene: Scene, base_url: str) -> dict[str, Any]:
    """A Sentinel Hub Catalog API item."""
    collection_url = f"{base_url}{CATALOG_PATH}/collections/{COLLECTION_ID}"
    return {
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
        ],
        "type": "Feature",
        "id": scene.id,
        "bbox": list(scene.area.footprint.bounds),
        "geometry": mapping(scene.area.footprint),
        "properties": scene_properties(scene),
        "assets": {
            "data": {
                "href": f"s3://EODATA/{_safe_path(scene)}",
                "title": "s3",
                "type": "inode/directory",
            },
        },
        "collection": COLLECTION_ID,
        "links": [
            {
                "href": f"{collection_url}/items/{scene.id}",
                "rel": "self",
                "type": "application/geo+json",
            },
            {"href": collection_url, "rel": "collection", "type": "application/json"},
            {"href": collection_url, "rel": "parent", "type": "application/json"},
            {"href": f"{base_url}{CATALOG_PATH}/", "rel": "root", "type": "application/json"},
        ],
    }


_STAC_ASSETS = (
    ("B02", 10),
    ("B03", 10),
    ("B04", 10),
    ("B08", 10),
    ("B11", 20),
    ("B12", 20),
    ("SCL", 20),
)


def stac_item(scene: Scene, base_url: str) -> dict[str, Any]:
    """A CDSE STAC v1 item with per-band JPEG2000 assets (hrefs are not downloadable here)."""
    grid = scene.area.grid
    assets: dict[str, Any] = {}
    for band, resolution in _STAC_ASSETS:
        key = f"{band}_{resolution}m"
        s3_href = f"s3://eodata/{_safe_path(scene)}/IMG_DATA/R{resolution}m/{key}.jp2"
        factor = resolution / 10
        asset: dict[str, Any] = {
            "href": s3_href,
            "type": "image/jp2",
            "roles": ["data"],
            "title": key,
            "proj:code": f"EPSG:{grid.crs.to_epsg()}",
            "proj:shape": [round(grid.height / factor), round(grid.width / factor)],
            "alternate": {
                "https": {
                    "href": f"https://zipper.dataspace.copernicus.eu/odata/v1/Products({scene.id})"
                    f"/Nodes({scene.id}.SAFE)/Nodes(IMG_DATA)/Nodes(R{resolution}m)/Nodes({key}.jp2)/$value",
                }
            },
        }
        if band != SCL_BAND:
            asset["raster:scale"] = 0.0001
            asset["raster:offset"] = -0.1
        assets[key] = asset
    stac_url = f"{base_url}{STAC_PATH}"
    properties = scene_properties(scene)
    properties["proj:code"] = f"EPSG:{grid.crs.to_epsg()}"
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": scene.id,
        "collection": COLLECTION_ID,
        "bbox": list(scene.area.footprint.bounds),
        "geometry": mapping(scene.area.footprint),
        "properties": properties,
        "assets": assets,
        "links": [
            {
                "rel": "self",
                "type": "application/geo+json",
                "href": f"{stac_url}/collections/{COLLECTION_ID}/items/{scene.id}",
            },
            {
                "rel": "collection",
                "type": "application/json",
                "href": f"{stac_url}/collections/{COLLECTION_ID}",
            },
            {"rel": "root", "type": "application/json", "href": f"{stac_url}/"},
        ],
    }


def apply_fields(item: dict[str, Any], fields: Any) -> dict[str, Any]:
    """The fields extension: dotted paths to include (plus id), then paths to exclude."""
    if not isinstance(fields, dict):
        return item
    include = [str(p) for p in fields.get("include") or []]
    exclude = [str(p) for p in fields.get("exclude") or []]
    result: dict[str, Any] = item
    if include:
        result = {"id": item["id"]}
        for path in include:
            _copy_path(item, result, path.split("."))
    for path in exclude:
        _drop_path(result, path.split("."))
    return result


def _copy_path(
    source: Mapping[str, Any], target: MutableMapping[str, Any], keys: list[str]
) -> None:
    head, rest = keys[0], keys[1:]
    if head not in source:
        return
    if not rest or not isinstance(source[head], dict):
        target[head] = source[head]
        return
    child = target.setdefault(head, {})
    _copy_path(source[head], child, rest)


def _drop_path(target: MutableMapping[str, Any], keys: list[str]) -> None:
    if len(keys) == 1:
        target.pop(keys[0], None)
    elif isinstance(target.get(keys[0]), dict):
        _drop_path(target[keys[0]], keys[1:])


def sort_scenes(scenes: list[Scene], sortby: Any) -> list[Scene]:
    """STAC ``sortby``; the default is newest first, as on the CDSE STAC service."""
    if sortby is None:
        return sorted(scenes, key=lambda s: (s.datetime, s.id), reverse=True)
    if not isinstance(sortby, list):
        raise BadPayload("sortby must be a list", "sortby", sortby)
    ordered = sorted(scenes, key=lambda s: s.id)
    for rule in reversed(sortby):
        if not isinstance(rule, dict):
            raise BadPayload("sortby entries need field and direction", "sortby", sortby)
        name = str(rule.get("field", "")).removeprefix("properties.")
        descending = str(rule.get("direction", "asc")).lower() == "desc"
        if name not in ("id", "datetime", "eo:cloud_cover", "platform", "grid:code"):
            raise BadPayload(f"Cannot sort by {name!r}", "sortby", sortby)
        ordered.sort(key=lambda scene: _sort_key(scene, name), reverse=descending)
    return ordered


def _sort_key(scene: Scene, name: str) -> Any:
    return scene.id if name == "id" else scene_properties(scene)[name]


# ---------------------------------------------------------------- Process API


@dataclass(frozen=True)
class ResponseSpec:
    identifier: str
    format_type: str


@dataclass(frozen=True)
class ProcessRequest:
    grid: Grid
    inside: npt.NDArray[np.bool_] | None
    start: datetime | None
    end: datetime | None
    max_cloud_cover: float
    mosaicking_order: str
    harmonize: bool
    responses: tuple[ResponseSpec, ...]
    evalscript: str


def parse_crs(value: Any) -> CRS:
    text = str(value or "http://www.opengis.net/def/crs/EPSG/0/4326")
    if text in _CRS84:
        return CRS.from_epsg(4326)
    match = _OPENGIS_EPSG.match(text) or _URN_EPSG.match(text)
    if match is None:
        raise BadPayload(f"Unsupported CRS {text!r}", "input.bounds.properties.crs", text)
    try:
        return CRS.from_epsg(int(match.group(1)))
    except CRSError as exc:
        raise BadPayload(
            f"Unknown EPSG code in {text!r}", "input.bounds.properties.crs", text
        ) from exc


def _request_bounds(
    bounds: Any,
) -> tuple[CRS, tuple[float, float, float, float], BaseGeometry | None]:
    if not isinstance(bounds, dict):
        raise BadPayload("input.bounds is required", "input.bounds", bounds)
    properties = bounds.get("properties") or {}
    crs = parse_crs(properties.get("crs") if isinstance(properties, dict) else None)
    geometry = None
    if bounds.get("geometry") is not None:
        geometry = parse_geojson(bounds["geometry"], "input.bounds.geometry")
    if bounds.get("bbox") is not None:
        area = parse_lonlat_bbox(bounds["bbox"], "input.bounds.bbox")
        minx, miny, maxx, maxy = area.bounds
    elif geometry is not None:
        minx, miny, maxx, maxy = geometry.bounds
    else:
        raise BadPayload("input.bounds needs bbox or geometry", "input.bounds", bounds)
    if minx == maxx or miny == maxy:
        raise BadPayload(
            "input.bounds has zero area", "input.bounds.bbox", [minx, miny, maxx, maxy]
        )
    return crs, (minx, miny, maxx, maxy), geometry


def _output_size(
    output: Mapping[str, Any], bounds: tuple[float, float, float, float]
) -> tuple[int, int]:
    minx, miny, maxx, maxy = bounds
    has_size = "width" in output or "height" in output
    has_resolution = "resx" in output or "resy" in output
    if has_size and has_resolution:
        raise BadPayload(
            "Specify either output width/height or resx/resy, not both", "output", dict(output)
        )
    try:
        if has_resolution:
            resx, resy = float(output["resx"]), float(output["resy"])
            if resx <= 0 or resy <= 0:
                raise BadPayload(
                    "resx and resy must be positive", "output.resx", output.get("resx")
                )
            width, height = round((maxx - minx) / resx), round((maxy - miny) / resy)
        else:
            aspect = (maxx - minx) / (maxy - miny)
            width = int(
                output.get("width")
                or round(int(output.get("height", 0)) * aspect)
                or DEFAULT_OUTPUT_PX
            )
            height = int(output.get("height") or round(width / aspect))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPayload(f"Invalid output size: {exc}", "output", dict(output)) from exc
    for name, value in (("width", width), ("height", height)):
        if value > MAX_OUTPUT_PX:
            raise BadPayload(
                f"Output {name} {value} px exceeds the maximum of {MAX_OUTPUT_PX} px",
                f"output.{name}",
                value,
            )
        if value < 1:
            raise BadPayload(f"Output {name} must be at least 1 px", f"output.{name}", value)
    return width, height


def parse_process_request(body: Mapping[str, Any]) -> ProcessRequest:
    request_input = body.get("input")
    if not isinstance(request_input, dict):
        raise BadPayload("input is required", "input", request_input)
    crs, bounds, geometry = _request_bounds(request_input.get("bounds"))
    output = body.get("output") or {}
    if not isinstance(output, dict):
        raise BadPayload("output must be an object", "output", output)
    width, height = _output_size(output, bounds)
    transform = from_bounds(*bounds, width, height)
    inside = None
    if geometry is not None:
        inside = geometry_mask(
            [mapping(geometry)], out_shape=(height, width), transform=transform, invert=True
        )
    data = request_input.get("data")
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise BadPayload(
            "input.data must hold exactly one data source (no data fusion here)", "input.data", data
        )
    source = data[0]
    if source.get("type") not in PROCESS_TYPES:
        raise BadPayload(
            f"Unknown or unsupported collection type {source.get('type')!r}; "
            f"served: {COLLECTION_ID!r}",
            "input.data[0].type",
            source.get("type"),
        )
    data_filter = source.get("dataFilter") or {}
    time_range = data_filter.get("timeRange") or {}
    start = parse_time(time_range["from"], "timeRange.from") if time_range.get("from") else None
    end = parse_time(time_range["to"], "timeRange.to") if time_range.get("to") else None
    max_cc = data_filter.get("maxCloudCoverage", 100)
    if not isinstance(max_cc, int | float) or not 0 <= max_cc <= 100:
        raise BadPayload(
            "maxCloudCoverage must be between 0 and 100",
            "input.data[0].dataFilter.maxCloudCoverage",
            max_cc,
        )
    order = data_filter.get("mosaickingOrder", "mostRecent")
    if order not in ("mostRecent", "leastRecent", "leastCC"):
        raise BadPayload(
            "mosaickingOrder must be mostRecent, leastRecent or leastCC",
            "input.data[0].dataFilter.mosaickingOrder",
            order,
        )
    processing = source.get("processing") or {}
    responses = _parse_responses(output.get("responses"))
    evalscript = body.get("evalscript")
    if not isinstance(evalscript, str) or not evalscript.strip():
        raise BadPayload("evalscript is required", "evalscript", None)
    return ProcessRequest(
        grid=Grid(crs, transform, width, height),
        inside=inside,
        start=start,
        end=end,
        max_cloud_cover=float(max_cc),
        mosaicking_order=str(order),
        harmonize=bool(processing.get("harmonizeValues", True)),
        responses=responses,
        evalscript=evalscript,
    )


def _parse_responses(raw: Any) -> tuple[ResponseSpec, ...]:
    if raw is None:
        return (ResponseSpec("default", "image/png"),)
    if not isinstance(raw, list) or not raw:
        raise BadPayload("output.responses must be a non-empty list", "output.responses", raw)
    specs = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadPayload("output.responses entries must be objects", "output.responses", raw)
        format_type = str((item.get("format") or {}).get("type", "image/png"))
        if format_type not in ("image/tiff", "image/png", "image/jpeg", "application/json"):
            raise BadPayload(
                f"Unsupported response format {format_type!r}",
                "output.responses.format.type",
                format_type,
            )
        specs.append(ResponseSpec(str(item.get("identifier", "default")), format_type))
    return tuple(specs)


def order_scenes(scenes: list[Scene], order: str) -> list[Scene]:
    if order == "leastRecent":
        return sorted(scenes, key=lambda s: (s.datetime, s.id))
    if order == "leastCC":
        return sorted(scenes, key=lambda s: (s.cloud_cover, -s.datetime.timestamp()))
    return sorted(scenes, key=lambda s: (s.datetime, s.id), reverse=True)


def sample_values(mosaic: Mosaic, band: str, harmonize: bool) -> npt.NDArray[np.uint16]:
    """Served DN for one input band; harmonized values drop the BOA offset, valid pixels >= 1."""
    if band == DATA_MASK:
        return mosaic.data_mask.astype(np.uint16)
    raw = mosaic.bands[band]
    if band == SCL_BAND or not harmonize:
        return raw
    shifted = np.maximum(raw.astype(np.int32) - BOA_ADD_OFFSET_DN, 1)
    return np.where(raw > 0, shifted, 0).astype(np.uint16)


def processing_units(width: int, height: int, input_bands: int, float_output: bool) -> float:
    """Area in 512x512 units x input bands / 3 (dataMask free), x2 for FLOAT32; at least 0.005."""
    units = width * height / (512 * 512) * max(input_bands, 1) / 3 * (2 if float_output else 1)
    return max(units, MIN_PROCESSING_UNITS)


@dataclass(frozen=True)
class RenderedFile:
    name: str
    content_type: str
    data: bytes


def encode_raster(
    values: npt.NDArray[Any], spec: OutputSpec, response: ResponseSpec, grid: Grid
) -> bytes:
    """(height, width, bands) in the output sample type, as GeoTIFF, PNG or JPEG bytes."""
    if response.format_type == "image/tiff":
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": spec.bands,
            "dtype": values.dtype.name,
            "crs": grid.crs,
            "transform": grid.transform,
            "compress": "deflate",
            "interleave": "pixel",
        }
        with MemoryFile() as memory:
            with memory.open(**profile) as dataset:
                dataset.write(np.moveaxis(values, -1, 0))
            return bytes(memory.read())
    image = values[..., 0] if spec.bands == 1 else values
    if values.dtype != np.uint8 and not (
        values.dtype == np.uint16 and spec.bands == 1 and response.format_type == "image/png"
    ):
        raise BadPayload(
            f"Output {spec.id!r} with sampleType {spec.sample_type} cannot be written "
            f"as {response.format_type}; use image/tiff",
            "output.responses",
            response.identifier,
        )
    if spec.bands not in (1, 3, 4) or (response.format_type == "image/jpeg" and spec.bands == 4):
        raise BadPayload(
            f"Output {spec.id!r} has {spec.bands} bands, which {response.format_type} cannot hold",
            "output.responses",
            response.identifier,
        )
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, format="PNG" if response.format_type == "image/png" else "JPEG"
    )
    return buffer.getvalue()


def tar_files(files: Sequence[RenderedFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for file in files:
            info = tarfile.TarInfo(file.name)
            info.size = len(file.data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


_EXTENSIONS = {
    "image/tiff": "tif",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/json": "json",
}


@dataclass(frozen=True)
class ProcessResult:
    files: tuple[RenderedFile, ...]
    processing_units: float
    scenes_used: int


def render_process(world: World, request: ProcessRequest) -> ProcessResult:
    with Evalscript(request.evalscript) as script:
        setup = script.setup
        for response in request.responses:
            if response.format_type == "application/json":
                if response.identifier != "userdata":
                    raise BadPayload(
                        "application/json is only available for the 'userdata' response",
                        "output.responses",
                        response.identifier,
                    )
            elif setup.output(response.identifier) is None:
                raise BadPayload(
                    f"Output {response.identifier} requested but missing from function setup()",
                    "output.responses",
                    response.identifier,
                )
        input_names = [band.name for band in setup.inputs]
        unknown = sorted(set(input_names) - set(SERVED_BANDS))
        if unknown:
            raise BadPayload(
                f"Bands {unknown} are not served by this endpoint; it serves {list(SERVED_BANDS)}",
                "evalscript",
                unknown,
            )
        query = SceneQuery(
            area=footprint_lonlat(request.grid.crs, request.grid.bounds),
            start=request.start,
            end=request.end,
            comparisons=(Comparison("eo:cloud_cover", "<=", request.max_cloud_cover),),
        )
        scenes = order_scenes(query.select(world), request.mosaicking_order)
        mosaic = mosaic_simple(
            scenes, request.grid, [n for n in input_names if n != DATA_MASK], request.inside
        )
        samples = {name: sample_values(mosaic, name, request.harmonize) for name in input_names}
        metadata = {
            "scenes": [
                {"date": _iso(s.datetime), "cloudCoverage": s.cloud_cover, "tileOriginalId": s.id}
                for s in mosaic.scenes
            ],
            "inputMetadata": {
                "serviceVersion": "canopywatch-emulator",
                "normalizationFactor": 0.0001,
            },
        }
        computed = script.evaluate(samples, band_scales(setup.inputs), metadata)
        files = []
        for response in request.responses:
            if response.format_type == "application/json":
                data = json.dumps(script.user_data(metadata)).encode()
            else:
                spec = cast(OutputSpec, setup.output(response.identifier))
                values = to_sample_type(computed[spec.id], spec.sample_type)
                data = encode_raster(values, spec, response, request.grid)
            name = f"{response.identifier}.{_EXTENSIONS[response.format_type]}"
            files.append(RenderedFile(name, response.format_type, data))
    input_bands = len([n for n in input_names if n != DATA_MASK])
    float_output = any(spec.sample_type == "FLOAT32" for spec in setup.outputs)
    units = processing_units(request.grid.width, request.grid.height, input_bands, float_output)
    return ProcessResult(tuple(files), units, len(mosaic.scenes))


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
                            _iso(min(starts)) if starts else None,
                            _iso(max(starts)) if starts else None,
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


# ---------------------------------------------------------------- faults middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultsAndStats:
    """ASGI middleware: injects armed faults and counts responses per endpoint and status."""

    def __init__(self, app: ASGIApp, emulator: CdseEmulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = endpoint_kind(scope["path"])
        fault = self.emulator.faults.take(kind)
        if fault is not None and fault.mode in ("429", "500", "503"):
            LOGGER.info("injecting %s on %s", fault.mode, kind)
            status = int(fault.mode)
            headers = {"Retry-After": str(fault.retry_after_ms)} if status == 429 else None
            message = {
                429: "You have exceeded your rate limit",
                500: "Internal server error (injected)",
                503: "Service temporarily unavailable (injected)",
            }[status]
            self.emulator.stats.record(kind, status)
            await sh_error(status, message, headers=headers)(scope, receive, send)
            return
        if fault is not None:
            await self._truncated(fault, kind, scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.emulator.stats.record(kind, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _truncated(
        self, fault: Fault, kind: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def buffering_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, buffering_send)
        body = b"".join(chunks)
        half = body[: len(body) // 2]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        declared = len(body) if fault.mode == "truncate_length" else len(half)
        headers.append((b"content-length", str(declared).encode()))
        LOGGER.info("injecting %s on %s (%d of %d bytes)", fault.mode, kind, len(half), len(body))
        self.emulator.stats.record(kind, int(start.get("status", 200)))
        await send(
            {"type": "http.response.start", "status": start.get("status", 200), "headers": headers}
        )
        # truncate_length leaves the response unfinished: the server closes the connection
        # short of the declared Content-Length, as a dropped transfer does
        await send(
            {
                "type": "http.response.body",
                "body": half,
                "more_body": fault.mode == "truncate_length",
            }
        )


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
        description="Local CDSE endpoint serving simulated Sentinel-2 L2A"
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


if __name__ == "__main__":
    main()
