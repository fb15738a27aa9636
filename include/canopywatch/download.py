"""The download stage: plan Process API requests for an area, fetch, verify, store.

    plan(aoi, window) -> [DownloadRequest]     download(request) -> SceneDownloaded

Pure planning and verification live here; the network calls are passed in
(``fetch``, an ObjectStore) so the stage is testable and runs the same inside an
Airflow task, a Kafka consumer or a benchmark.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile

from canopywatch.area_geometry import AreaGeometry, parse_area
from canopywatch.area_geometry import from_bbox as area_from_bbox
from canopywatch.evalscripts import EvalscriptFunction, get_function
from canopywatch.geo import (
    BBox,
    RequestTile,
    bbox_geohash,
    check_area,
    parse_bbox,
    split_into_tiles,
)
from canopywatch.layout import SceneKey
from canopywatch.messages import DownloadRequest, SceneDownloaded, stable_id
from canopywatch.settings import Settings
from canopywatch.sources.copernicus import AcquisitionDay
from canopywatch.storage.objects import ObjectStore, StoredObject

log = logging.getLogger(__name__)

SOURCE = "sentinel_hub"
_AOI_ID = re.compile(r"[^a-z0-9]+")


class WindowError(ValueError):
    """A time range that cannot be used; the message is meant for users."""


class CorruptSceneError(ValueError):
    """A Process API response that is not the GeoTIFF that was asked for."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise WindowError(
                f"time range is empty or reversed: start {self.start:%Y-%m-%d} "
                f"is not before end {self.end:%Y-%m-%d}"
            )


def parse_window(start: Any, end: Any) -> Window:
    """A UTC window from dates or datetimes (ISO text or objects); an end date is inclusive."""
    return Window(
        _to_datetime(start, "start", end_of_day=False), _to_datetime(end, "end", end_of_day=True)
    )


def _to_datetime(value: Any, name: str, *, end_of_day: bool) -> datetime:
    if value is None or value == "":
        raise WindowError(f"{name} is missing; give a date like 2024-01-31")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.max if end_of_day else time.min)
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                moment = datetime.combine(day, time(23, 59, 59) if end_of_day else time.min)
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise WindowError(f"{name}={text!r} is not a date like 2024-01-31") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Aoi:
    aoi_id: str
    name: str
    bbox: BBox
    outline: Mapping[str, Any] | None = None  # GeoJSON MultiPolygon (lon/lat); None: the bbox

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "aoi_id": self.aoi_id,
            "name": self.name,
            "bbox": list(self.bbox.as_tuple()),
        }
        if self.outline is not None:
            data["outline"] = dict(self.outline)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Aoi:
        outline = data.get("outline")
        return cls(
            str(data["aoi_id"]),
            str(data["name"]),
            parse_bbox(data["bbox"]),
            dict(outline) if outline else None,
        )

    def area_geometry(self) -> AreaGeometry:
        return parse_area(self.outline) if self.outline else area_from_bbox(self.bbox)


def aoi_id_for(name: str) -> str:
    """The id of an area name: lower case, runs of other characters as one dash, 48 chars."""
    return _AOI_ID.sub("-", name.strip().lower()).strip("-")[:48]


def make_aoi(area: Any, name: str | None, settings: Settings) -> Aoi:
    """Validate a user's area (a bbox or a GeoJSON (Multi)Polygon): parseable, in range,
    its bounds not larger than the configured limit."""
    outline = parse_area(area)
    box = outline.bbox
    check_area(box, settings.max_aoi_km2)
    label = (name or "").strip() or f"bbox-{bbox_geohash(box, 7)}"
    aoi_id = aoi_id_for(label) or bbox_geohash(box, 7)
    return Aoi(aoi_id, label, box, None if outline.is_box else outline.to_geojson())


def plan_tiles(aoi: Aoi, settings: Settings) -> list[RequestTile]:
    """The request tiles of the area's bbox; with a polygon outline, only those touching it
    (a tile is still a rectangle: the Process API is asked for whole tiles)."""
    tiles = split_into_tiles(aoi.bbox, settings.resolution_m, settings.max_request_px)
    if aoi.outline is None:
        return tiles
    outline = aoi.area_geometry()
    return [tile for tile in tiles if outline.intersects(tile.bbox)]


def plan_requests(
    aoi: Aoi,
    tile: RequestTile,
    days: Sequence[AcquisitionDay],
    *,
    function: str,
    max_cloud: float,
    resolution: float,
    run_id: str | None = None,
) -> list[DownloadRequest]:
    """One DownloadRequest per acquisition day over the tile; ids are stable across runs."""
    get_function(function)
    requests = []
    for day in days:
        time_from, time_to = day.time_range
        requests.append(
            DownloadRequest(
                request_id=stable_id(
                    aoi.aoi_id, tile.utm_bounds, tile.epsg, day.day, function, resolution
                ),
                aoi_id=aoi.aoi_id,
                tile_id=tile.tile_id,
                bbox=tile.bbox.as_tuple(),
                epsg=tile.epsg,
                utm_bounds=tile.utm_bounds,
                width=tile.width,
                height=tile.height,
                acquired_at=day.acquired_at,
                time_from=time_from,
                time_to=time_to,
                function=function,
                max_cloud=max_cloud,
                resolution=resolution,
                cloud_cover=day.cloud_cover,
                product_ids=list(day.product_ids),
                run_id=run_id,
            )
        )
    return requests


def scene_key(request: DownloadRequest, geohash_precision: int = 5) -> SceneKey:
    bbox = BBox(*request.bbox)
    return SceneKey(
        source=SOURCE,
        function=request.function,
        geohash=bbox_geohash(bbox, geohash_precision),
        acquired_at=request.acquired_at,
        bbox=bbox,
        name="raw.tif",
    )


@dataclass(frozen=True)
class VerifiedScene:
    crs: str
    shape: tuple[int, int]
    valid_fraction: float


def verify_geotiff(
    data: bytes, function: EvalscriptFunction, width: int, height: int
) -> VerifiedScene:
    """Open the response and check band count, data type and size before storing it."""
    if not data:
        raise CorruptSceneError("empty response body")
    try:
        with MemoryFile(data) as memfile, memfile.open() as dataset:
            if dataset.count != len(function.bands):
                raise CorruptSceneError(
                    f"expected {len(function.bands)} bands ({', '.join(function.bands)}), "
                    f"got {dataset.count}"
                )
            if dataset.dtypes[0] != function.dtype:
                raise CorruptSceneError(
                    f"expected {function.dtype} samples, got {dataset.dtypes[0]}"
                )
            if (dataset.width, dataset.height) != (width, height):
                raise CorruptSceneError(
                    f"expected {width}x{height} px, got {dataset.width}x{dataset.height}"
                )
            if dataset.crs is None:
                raise CorruptSceneError("GeoTIFF has no CRS")
            mask_band = _mask_band_index(function)
            valid = dataset.read(mask_band) > 0 if mask_band else np.ones((height, width), bool)
            return VerifiedScene(dataset.crs.to_string(), (height, width), float(valid.mean()))
    except RasterioIOError as exc:
        raise CorruptSceneError(f"response is not a readable GeoTIFF ({exc})") from exc


def _mask_band_index(function: EvalscriptFunction) -> int | None:
    for index, name in enumerate(function.bands, start=1):
        if name in {"dataMask", "alpha"}:
            return index
    return None


Fetch = Callable[[DownloadRequest, EvalscriptFunction], bytes]


def process_api_fetch(config: Any) -> Fetch:
    """The ``Fetch`` of a request through the Process API with ``config`` (an SHConfig):
    the one used by the monitoring DAG and by ``canopywatch download``."""
    from canopywatch.sources.copernicus import process_request

    def fetch(request: DownloadRequest, function: EvalscriptFunction) -> bytes:
        return process_request(
            config,
            function,
            epsg=request.epsg,
            utm_bounds=request.utm_bounds,
            width=request.width,
            height=request.height,
            time_from=request.time_from,
            time_to=request.time_to,
            max_cloud=request.max_cloud,
        )

    return fetch


@dataclass(frozen=True)
class DownloadOutcome:
    request_id: str
    key: str
    status: str  # "downloaded" | "skipped"
    size_bytes: int
    message: SceneDownloaded | None  # None when nothing needs announcing


def download_scene(
    request: DownloadRequest,
    fetch: Fetch,
    store: ObjectStore,
    *,
    geohash_precision: int = 5,
) -> DownloadOutcome:
    """Fetch one scene unless it is already stored, verify it, store it under the layout key.

    A scene already stored is not fetched again (no processing units spent). It is
    announced again only when the same run retries the request, which covers a crash
    between storing and announcing; any other gap between the store and the lake is
    repaired by ``canopywatch.reconcile`` at the end of every monitoring run.
    """
    function = get_function(request.function)
    key = scene_key(request, geohash_precision)
    existing = store.head(key.key)
    if existing is not None and existing.checksum:
        same_run = request.run_id is not None and existing.metadata.get("run-id") == request.run_id
        message = (
            _announce(request, key, function, store.bucket, existing, skipped=True)
            if same_run
            else None
        )
        return DownloadOutcome(request.request_id, key.key, "skipped", existing.size, message)

    data = fetch(request, function)
    verified = verify_geotiff(data, function, request.width, request.height)
    metadata = {
        "request-id": request.request_id,
        "run-id": request.run_id or "",
        "aoi-id": request.aoi_id,
        "crs": verified.crs,
        "valid-fraction": f"{verified.valid_fraction:.4f}",
        "product-ids": ",".join(request.product_ids)[:1000],
    }
    checksum = store.put(key.key, data, "image/tiff", metadata)
    stored = StoredObject(key.key, len(data), checksum, metadata)
    message = _announce(request, key, function, store.bucket, stored, skipped=False)
    return DownloadOutcome(request.request_id, key.key, "downloaded", len(data), message)


def stored_announcement(
    request: DownloadRequest, stored: StoredObject, bucket: str, geohash_precision: int = 5
) -> SceneDownloaded:
    """The ``SceneDownloaded`` of a scene already in the store (re-announced by reconcile)."""
    function = get_function(request.function)
    key = scene_key(request, geohash_precision)
    return _announce(request, key, function, bucket, stored, skipped=True)


def _announce(
    request: DownloadRequest,
    key: SceneKey,
    function: EvalscriptFunction,
    bucket: str,
    stored: StoredObject,
    *,
    skipped: bool,
) -> SceneDownloaded:
    bbox = BBox(*request.bbox)
    return SceneDownloaded(
        scene_id=stable_id(key.key),
        request_id=request.request_id,
        aoi_id=request.aoi_id,
        source=SOURCE,
        function=request.function,
        raw_key=key.key,
        bucket=bucket,
        bbox=request.bbox,
        footprint=bbox.to_geojson(),
        geohash=key.geohash,
        acquired_at=request.acquired_at,
        crs=stored.metadata.get("crs") or f"EPSG:{request.epsg}",
        shape=(request.height, request.width),
        bands=list(function.bands),
        cloud_cover=request.cloud_cover,
        checksum=stored.checksum or "",
        size_bytes=stored.size,
        skipped=skipped,
    )


Search = Callable[[BBox, datetime, datetime, float], Sequence[AcquisitionDay]]


def plan_area(
    aoi: Aoi,
    window: Window,
    search: Search,
    settings: Settings,
    *,
    function: str,
    max_cloud: float,
    run_id: str | None = None,
) -> list[DownloadRequest]:
    """Every request of an area over a window: the tiles of ``plan_tiles``, each searched
    with ``search(tile_bbox, start, end, max_cloud)`` and planned by ``plan_requests``
    (the steps of the monitoring DAG, in one call, for ``canopywatch download``)."""
    requests: list[DownloadRequest] = []
    for tile in plan_tiles(aoi, settings):
        days = search(tile.bbox, window.start, window.end, max_cloud)
        requests.extend(
            plan_requests(
                aoi,
                tile,
                days,
                function=function,
                max_cloud=max_cloud,
                resolution=settings.resolution_m,
                run_id=run_id,
            )
        )
    return requests
