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

The package, by section: ``config`` (paths, limits, served bands), ``tokens`` (client
credentials and HS256 tokens), ``faults`` (injected faults, statistics and their ASGI
middleware), ``errors`` (Sentinel Hub and STAC error envelopes), ``search`` (CQL2 and
STAC search parameters), ``items`` (Catalog and STAC items), ``process`` (the Process
API: request parsing, evalscript rendering, encodings) and ``app`` (the Starlette
application, ``create_app``, ``serve_in_thread`` and ``main``).
"""

from __future__ import annotations

from canopywatch_dev.cdse_emulator.app import (
    CdseEmulator,
    create_app,
    emulator_of,
    main,
    serve_in_thread,
    token_url,
)
from canopywatch_dev.cdse_emulator.config import (
    CATALOG_PATH,
    COLLECTION_ID,
    PROCESS_PATH,
    STAC_PATH,
    TOKEN_PATH,
)
from canopywatch_dev.cdse_emulator.faults import Fault, FaultPlan, Stats
from canopywatch_dev.cdse_emulator.process import processing_units
from canopywatch_dev.cdse_emulator.search import parse_cql2_text
from canopywatch_dev.cdse_emulator.tokens import Credentials, TokenError, TokenIssuer

__all__ = [
    "CATALOG_PATH",
    "COLLECTION_ID",
    "PROCESS_PATH",
    "STAC_PATH",
    "TOKEN_PATH",
    "CdseEmulator",
    "Credentials",
    "Fault",
    "FaultPlan",
    "Stats",
    "TokenError",
    "TokenIssuer",
    "create_app",
    "emulator_of",
    "main",
    "parse_cql2_text",
    "processing_units",
    "serve_in_thread",
    "token_url",
]
