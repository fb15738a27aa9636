"""The Copernicus Data Space client: sentinelhub configuration, catalog search, Process API.

The same code talks to the real service and to the local endpoint; only the two
base URLs differ. Credentials come from an Airflow connection or the environment
and are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sentinelhub import (
    CRS,
    BBox,
    DataCollection,
    MimeType,
    MosaickingOrder,
    SentinelHubCatalog,
    SentinelHubRequest,
    SHConfig,
)

from canopywatch.evalscripts import EvalscriptFunction
from canopywatch.settings import CDSE_SH_BASE_URL, CDSE_TOKEN_URL, Settings

log = logging.getLogger(__name__)

COLLECTION_ID = "sentinel-2-l2a"


class CredentialsError(RuntimeError):
    """No usable CDSE OAuth client credentials."""


@dataclass(frozen=True)
class CdseEndpoint:
    """Where and as whom to reach the Sentinel Hub APIs of CDSE."""

    client_id: str
    client_secret: str = field(repr=False)
    sh_base_url: str = CDSE_SH_BASE_URL
    sh_token_url: str = CDSE_TOKEN_URL

    def __post_init__(self) -> None:
        missing = [
            name
            for name, value in (
                ("client id", self.client_id),
                ("client secret", self.client_secret),
            )
            if not value
        ]
        if missing:
            raise CredentialsError(
                f"CDSE {' and '.join(missing)} missing: set the CDSE Airflow connection (its id is "
                "canopywatch.airflow.ids.CDSE_CONN; login = OAuth client id, password = client "
                "secret) or the environment variables "
                "CANOPYWATCH_CDSE_CLIENT_ID and CANOPYWATCH_CDSE_CLIENT_SECRET "
                "(create an OAuth client in the Copernicus Data Space dashboard)"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> CdseEndpoint:
        return cls(
            settings.cdse_client_id,
            settings.cdse_client_secret,
            settings.sh_base_url.rstrip("/"),
            settings.sh_token_url,
        )

    @classmethod
    def from_connection(
        cls, login: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> CdseEndpoint:
        """From an Airflow connection: login/password are the OAuth client, extra the URLs."""
        return cls(
            login or "",
            password or "",
            str(extra.get("sh_base_url") or CDSE_SH_BASE_URL).rstrip("/"),
            str(extra.get("sh_token_url") or CDSE_TOKEN_URL),
        )


def is_credentials_error(exc: BaseException) -> bool:
    """True for errors no retry can fix: missing or refused OAuth client credentials."""
    if isinstance(exc, CredentialsError):
        return True
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    return isinstance(exc, OAuth2Error) and exc.error in {
        "invalid_client",
        "unauthorized_client",
        "invalid_grant",
    }


def sh_config(endpoint: CdseEndpoint, *, max_retries: int = 5, sleep_s: float = 5.0) -> SHConfig:
    """An SHConfig for CDSE. ``max_retries`` bounds 429 retries (unbounded by default)."""
    return SHConfig(
        sh_client_id=endpoint.client_id,
        sh_client_secret=endpoint.client_secret,
        sh_base_url=endpoint.sh_base_url,
        sh_token_url=endpoint.sh_token_url,
        max_download_attempts=3,
        download_sleep_time=sleep_s,
        download_timeout_seconds=120,
        max_retries=max_retries,
    )


def s2l2a_collection(config: SHConfig) -> DataCollection:
    """Sentinel-2 L2A bound to the config's base URL.

    ``define_from`` registers a global enum member and raises when a name is reused
    with another URL, so the name is derived from the URL.
    """
    name = "CDSE_S2L2A_" + re.sub(r"[^A-Za-z0-9]+", "_", config.sh_base_url).strip("_").upper()
    try:
        return DataCollection[name]  # type: ignore[no-any-return,misc]
    except KeyError:
        return DataCollection.SENTINEL2_L2A.define_from(name, service_url=config.sh_base_url)


@dataclass(frozen=True)
class AcquisitionDay:
    """All catalog items of one UTC day over a tile: one Process API request."""

    day: date
    acquired_at: datetime  # first item's sensing time
    cloud_cover: float | None
    product_ids: tuple[str, ...]

    @property
    def time_range(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.day, time(0, 0), tzinfo=UTC)
        return start, start + timedelta(days=1) - timedelta(seconds=1)


def search_acquisitions(
    config: SHConfig,
    bbox: tuple[float, float, float, float],
    start: datetime,
    end: datetime,
    max_cloud: float,
) -> list[AcquisitionDay]:
    """Catalog search over a lon/lat box, grouped by acquisition day (oldest first)."""
    catalog = SentinelHubCatalog(config=config)
    results = catalog.search(
        COLLECTION_ID,
        bbox=BBox(bbox, crs=CRS.WGS84),
        time=(start, end),
        filter=f"eo:cloud_cover <= {float(max_cloud)}",
        fields={
            "include": ["id", "properties.datetime", "properties.eo:cloud_cover"],
            "exclude": [],
        },
        limit=100,
    )
    by_day: dict[date, list[dict[str, Any]]] = {}
    for item in results:
        sensed = _parse_datetime(item["properties"]["datetime"])
        by_day.setdefault(sensed.date(), []).append({**item, "_sensed": sensed})
    days = []
    for day in sorted(by_day):
        items = sorted(by_day[day], key=lambda i: i["_sensed"])
        covers = [
            float(i["properties"]["eo:cloud_cover"])
            for i in items
            if i["properties"].get("eo:cloud_cover") is not None
        ]
        days.append(
            AcquisitionDay(
                day=day,
                acquired_at=items[0]["_sensed"],
                cloud_cover=round(sum(covers) / len(covers), 2) if covers else None,
                product_ids=tuple(str(i["id"]) for i in items),
            )
        )
    return days


def _parse_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def process_request(
    config: SHConfig,
    function: EvalscriptFunction,
    *,
    epsg: int,
    utm_bounds: tuple[float, float, float, float],
    width: int,
    height: int,
    time_from: datetime,
    time_to: datetime,
    max_cloud: float,
) -> bytes:
    """One Process API call; the single GeoTIFF response as bytes (not yet verified)."""
    request = SentinelHubRequest(
        evalscript=function.evalscript,
        input_data=[
            SentinelHubRequest.input_data(
                data_collection=s2l2a_collection(config),
                time_interval=(time_from, time_to),
                maxcc=max_cloud / 100.0,
                mosaicking_order=MosaickingOrder.LEAST_CC,
                other_args={"processing": {"harmonizeValues": True}},
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=BBox(utm_bounds, crs=CRS(epsg)),
        size=(width, height),
        config=config,
    )
    responses = request.get_data(decode_data=False)
    content = responses[0].content
    if not isinstance(content, bytes):
        raise TypeError("Process API returned no bytes")
    return content
