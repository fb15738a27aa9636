"""Paths, limits and served bands of the local CDSE endpoint."""

from __future__ import annotations

from typing import Literal, get_args

from canopywatch.sentinel2 import BANDS, SCL_BAND

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"  # noqa: S105
CATALOG_PATH = "/api/v1/catalog/1.0.0"
PROCESS_PATH = "/api/v1/process"
STATISTICS_PATH = "/api/v1/statistics"
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
