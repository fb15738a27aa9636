"""The steps of the ``deforestation_monitor`` DAG, as plain functions over connection ids.

Each function resolves its Airflow connections (``canopywatch.airflow.connections``),
calls the library and logs for people: what was searched, found, downloaded, skipped and
where it went. Tasks hand each other the typed payloads of ``canopywatch.airflow.payloads``
as JSON; XCom carries ids, keys and small request records, never rasters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from canopywatch.airflow.connections import cdse_endpoint, kafka_producer, object_store, postgis
from canopywatch.airflow.payloads import AreaJob, StoredScenes, TileJob, TileSearch
from canopywatch.download import (
    DownloadOutcome,
    download_scene,
    parse_window,
    plan_requests,
    plan_tiles,
    process_api_fetch,
    scene_key,
)
from canopywatch.evalscripts import get_function
from canopywatch.messages import DownloadRequest
from canopywatch.run_areas import select_areas
from canopywatch.settings import REPO_ROOT, Settings
from canopywatch.sources.copernicus import search_acquisitions, sh_config
from canopywatch.storage import aois
from canopywatch.transport import BatchReport, run_download_batch

log = logging.getLogger(__name__)

AOIS_FILE = REPO_ROOT / "include" / "aois.yaml"


# ------------------------------------------------------------------ 1. areas
def resolve_areas(
    params: Mapping[str, Any],
    interval_start: datetime | None,
    interval_end: datetime | None,
    *,
    postgres_conn_id: str,
    settings: Settings,
    aois_file: Path = AOIS_FILE,
) -> list[AreaJob]:
    """The areas this run covers, each with its window, function and cloud limit.

    With a ``bbox`` param (a manual trigger) the run covers that box; without one it
    covers every active registered area (PostGIS ``aois`` table and ``include/aois.yaml``).
    """
    function = str(params.get("function") or "s2l2a_bands")
    get_function(function)
    raw_cloud = params.get("max_cloud")
    max_cloud = 80.0 if raw_cloud is None else float(raw_cloud)
    if not 0 <= max_cloud <= 100:
        raise ValueError(f"max_cloud={max_cloud} must be between 0 and 100")
    window = parse_window(params.get("start") or interval_start, params.get("end") or interval_end)

    selected = select_areas(
        params,
        lambda: _registered_aois(postgres_conn_id, aois_file),
        settings,
        function=function,
        max_cloud=max_cloud,
    )  # bbox, else aoi_name (must be registered), else every registered area
    areas = [(a.aoi, a.function, a.max_cloud) for a in selected]
    if params.get("bbox"):
        aoi = areas[0][0]
        log.info(
            "manual run: area %s %s (%.1f km²)",
            aoi.aoi_id,
            aoi.bbox.as_tuple(),
            aoi.bbox.area_km2(),
        )
    else:
        log.info(
            "registered area(s): %d: %s",
            len(areas),
            ", ".join(a[0].aoi_id for a in areas),
        )
        if not areas:
            log.warning(
                "no registered areas: register one with `canopywatch aoi add` or in %s", aois_file
            )
    log.info(
        "window %s .. %s, function %s, max cloud %.0f%%",
        window.start,
        window.end,
        function,
        max_cloud,
    )
    return [
        AreaJob(aoi=aoi, window=window, function=fn, max_cloud=cloud) for aoi, fn, cloud in areas
    ]


def _registered_aois(postgres_conn_id: str, aois_file: Path) -> list[aois.RegisteredAoi]:
    """The active areas of the YAML file and PostGIS (PostGIS wins, also when deactivated)."""
    with postgis(postgres_conn_id) as conn:
        registered = aois.list_areas(conn, include_inactive=True)
    return aois.merge(aois.load_file(aois_file), registered)


# ------------------------------------------------------------------ 2. tiles
def tile_jobs(areas: Sequence[AreaJob], settings: Settings) -> list[TileJob]:
    """One job per (area, request tile): the unit that is searched and mapped in the UI."""
    jobs: list[TileJob] = []
    for area in areas:
        tiles = plan_tiles(area.aoi, settings)
        log.info(
            "area %s: %d request tile(s) of at most %d px",
            area.aoi.aoi_id,
            len(tiles),
            settings.max_request_px,
        )
        jobs.extend(TileJob(area=area, tile=tile) for tile in tiles)
    return jobs


# ------------------------------------------------------------------ 3. search
def search_tile(
    job: TileJob, *, cdse_conn_id: str, run_id: str | None, settings: Settings
) -> TileSearch:
    """Catalog search for one tile: the DownloadRequests of its acquisition days."""
    area, tile, window = job.area, job.tile, job.area.window
    config = sh_config(cdse_endpoint(cdse_conn_id, settings), max_retries=settings.sh_max_retries)
    days = search_acquisitions(
        config, tile.bbox.as_tuple(), window.start, window.end, area.max_cloud
    )
    requests = plan_requests(
        area.aoi,
        tile,
        days,
        function=area.function,
        max_cloud=area.max_cloud,
        resolution=settings.resolution_m,
        run_id=run_id,
    )
    log.info(
        "%s: catalog search %s .. %s (cloud <= %.0f%%) found %d acquisition day(s)%s",
        job.label,
        window.start.date(),
        window.end.date(),
        area.max_cloud,
        len(days),
        ": " + ", ".join(str(d.day) for d in days) if days else "",
    )
    return TileSearch(label=job.label, requests=tuple(r.to_json() for r in requests))


def request_records(search: str, label: str = "") -> Iterator[tuple[str, str]]:
    """producer_function for ProduceToTopicOperator: (request_id, JSON) pairs of a TileSearch."""
    found = TileSearch.from_json(search)
    for request, payload in zip(found.download_requests(), found.requests, strict=True):
        yield request.request_id, payload
    log.info("%s: published %d download request(s)", label or found.label, len(found.requests))


def delivery_report(err: Any, msg: Any) -> None:
    """Fail the producing task when the broker did not take a message."""
    if err is not None:
        raise RuntimeError(f"Kafka delivery to {msg.topic()} failed: {err}")


# ------------------------------------------------------------------ 4. download (Kafka consumer)
def consume_download_batch(
    messages: Sequence[Any],
    *,
    cdse_conn_id: str,
    aws_conn_id: str,
    kafka_conn_id: str,
) -> None:
    """apply_function_batch of the ConsumeFromTopicOperator: fetch and store each request."""
    settings = Settings.from_env()
    config = sh_config(cdse_endpoint(cdse_conn_id, settings), max_retries=settings.sh_max_retries)
    store = object_store(aws_conn_id, settings.bucket)
    producer = kafka_producer(kafka_conn_id)

    fetch = process_api_fetch(config)

    def download(request: DownloadRequest) -> DownloadOutcome:
        outcome = download_scene(
            request, fetch, store, geohash_precision=settings.geohash_precision
        )
        verb = "downloaded" if outcome.status == "downloaded" else "already stored, skipped"
        log.info(
            "%s %s/%s: %s (%d bytes) -> s3://%s/%s",
            request.aoi_id,
            request.tile_id,
            request.acquired_at.date(),
            verb,
            outcome.size_bytes,
            store.bucket,
            outcome.key,
        )
        return outcome

    report: BatchReport = run_download_batch(
        messages,
        download,
        producer,
        settings.topic("scenes-downloaded"),
        concurrency=settings.download_concurrency,
    )
    log.info(
        "batch of %d request(s): %d downloaded (%.1f MB), %d already stored, %d dead-lettered",
        len(messages),
        len(report.downloaded),
        report.bytes_downloaded / 1e6,
        len(report.skipped),
        len(report.dead_lettered),
    )
    for letter in report.dead_lettered:
        log.warning(
            "dead letter -> %s.dlq offset %d: %s", letter.source_topic, letter.offset, letter.error
        )


# ------------------------------------------------------------------ 5. summary
def summarize(
    searches: Sequence[TileSearch], *, aws_conn_id: str, settings: Settings
) -> StoredScenes:
    """Check that every planned scene is in the object store and say where everything is."""
    store = object_store(aws_conn_id, settings.bucket)
    planned = [request for search in searches for request in search.download_requests()]
    stored, missing, total_bytes = [], [], 0
    for request in planned:
        key = scene_key(request, settings.geohash_precision).key
        head = store.head(key)
        if head is None:
            missing.append(key)
        else:
            stored.append(key)
            total_bytes += head.size
    log.info(
        "%d scene(s) planned, %d stored (%.1f MB) in s3://%s",
        len(planned),
        len(stored),
        total_bytes / 1e6,
        store.bucket,
    )
    for key in stored:
        log.info("  s3://%s/%s", store.bucket, key)
    if missing:
        log.error(
            "%d planned scene(s) are not stored; see the download task log and the %s.dlq topic",
            len(missing),
            settings.topic("download-requests"),
        )
        for key in missing:
            log.error("  missing s3://%s/%s", store.bucket, key)
        raise RuntimeError(f"{len(missing)} of {len(planned)} planned scenes were not stored")
    return StoredScenes(
        planned=len(planned), stored=len(stored), bytes=total_bytes, keys=tuple(stored)
    )
