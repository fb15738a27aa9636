"""The steps of the ``deforestation_monitor`` DAG, as plain functions over connection ids.

Each function resolves its Airflow connections itself (imported lazily, so this
module imports without Airflow), calls the library and logs for people: what was
searched, found, downloaded, skipped and where it went. XCom carries ids, keys and
small request records, never rasters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from canopywatch.download import (
    Aoi,
    DownloadOutcome,
    download_scene,
    make_aoi,
    parse_window,
    plan_requests,
    plan_tiles,
    scene_key,
)
from canopywatch.evalscripts import EvalscriptFunction, get_function
from canopywatch.geo import BBox
from canopywatch.messages import DownloadRequest
from canopywatch.settings import REPO_ROOT, Settings
from canopywatch.sources.copernicus import (
    CdseEndpoint,
    process_request,
    search_acquisitions,
    sh_config,
)
from canopywatch.storage import aois
from canopywatch.storage.objects import ObjectStore
from canopywatch.transport import BatchReport, run_download_batch

log = logging.getLogger(__name__)

AOIS_FILE = REPO_ROOT / "include" / "aois.yaml"


# ------------------------------------------------------------------ connections
def cdse_endpoint(conn_id: str, settings: Settings) -> CdseEndpoint:
    """The CDSE endpoint from an Airflow connection, else from CANOPYWATCH_* variables."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info(
            "no Airflow connection %r: reading CANOPYWATCH_CDSE_* from the environment", conn_id
        )
        return CdseEndpoint.from_settings(settings)
    return CdseEndpoint.from_connection(conn.login, conn.password, conn.extra_dejson)


def object_store(aws_conn_id: str, bucket: str) -> ObjectStore:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return ObjectStore(S3Hook(aws_conn_id=aws_conn_id).get_conn(), bucket)


# ------------------------------------------------------------------ 1. areas
def resolve_areas(
    params: Mapping[str, Any],
    interval_start: datetime | None,
    interval_end: datetime | None,
    *,
    postgres_conn_id: str,
    settings: Settings,
    aois_file: Path = AOIS_FILE,
) -> list[dict[str, Any]]:
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

    if params.get("bbox"):
        aoi = make_aoi(params["bbox"], params.get("aoi_name"), settings)
        areas = [(aoi, function, max_cloud)]
        log.info(
            "manual run: area %s %s (%.1f km²)",
            aoi.aoi_id,
            aoi.bbox.as_tuple(),
            aoi.bbox.area_km2(),
        )
    else:
        registered = _registered_aois(postgres_conn_id, aois_file)
        areas = [
            (make_aoi(r.bbox.as_tuple(), r.aoi_id, settings), r.function, r.max_cloud)
            for r in registered
        ]
        log.info(
            "scheduled run: %d registered area(s): %s",
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
        {
            "aoi": aoi.to_dict(),
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "function": fn,
            "max_cloud": cloud,
        }
        for aoi, fn, cloud in areas
    ]


def _registered_aois(postgres_conn_id: str, aois_file: Path) -> list[aois.RegisteredAoi]:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    found: dict[str, aois.RegisteredAoi] = {a.aoi_id: a for a in aois.load_file(aois_file)}
    with PostgresHook(postgres_conn_id=postgres_conn_id).get_conn() as conn:
        for area in aois.list_active(conn):
            found[area.aoi_id] = area
    return [found[k] for k in sorted(found)]


# ------------------------------------------------------------------ 2. tiles
def tile_jobs(areas: Sequence[Mapping[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """One job per (area, request tile): the unit that is searched and mapped in the UI."""
    jobs = []
    for area in areas:
        aoi = Aoi.from_dict(area["aoi"])
        tiles = plan_tiles(aoi, settings)
        log.info(
            "area %s: %d request tile(s) of at most %d px",
            aoi.aoi_id,
            len(tiles),
            settings.max_request_px,
        )
        for tile in tiles:
            jobs.append(
                {
                    **area,
                    "label": f"{aoi.aoi_id}/{tile.tile_id}",
                    "tile": {
                        "tile_id": tile.tile_id,
                        "epsg": tile.epsg,
                        "utm_bounds": list(tile.utm_bounds),
                        "width": tile.width,
                        "height": tile.height,
                        "bbox": list(tile.bbox.as_tuple()),
                    },
                }
            )
    return jobs


# ------------------------------------------------------------------ 3. search
def search_tile(
    job: Mapping[str, Any], *, cdse_conn_id: str, run_id: str | None, settings: Settings
) -> dict[str, Any]:
    """Catalog search for one tile; returns the DownloadRequests as producer kwargs."""
    from canopywatch.geo import RequestTile

    aoi = Aoi.from_dict(job["aoi"])
    t = job["tile"]
    minx, miny, maxx, maxy = (float(v) for v in t["utm_bounds"])
    tile = RequestTile(
        tile_id=t["tile_id"],
        epsg=int(t["epsg"]),
        minx=minx,
        miny=miny,
        maxx=maxx,
        maxy=maxy,
        width=int(t["width"]),
        height=int(t["height"]),
        bbox=BBox(*(float(v) for v in t["bbox"])),
    )
    window = parse_window(job["start"], job["end"])
    config = sh_config(cdse_endpoint(cdse_conn_id, settings), max_retries=settings.sh_max_retries)
    days = search_acquisitions(
        config, tile.bbox.as_tuple(), window.start, window.end, job["max_cloud"]
    )
    requests = plan_requests(
        aoi,
        tile,
        days,
        function=job["function"],
        max_cloud=job["max_cloud"],
        resolution=settings.resolution_m,
        run_id=run_id,
    )
    log.info(
        "%s: catalog search %s .. %s (cloud <= %.0f%%) found %d acquisition day(s)%s",
        job["label"],
        window.start.date(),
        window.end.date(),
        job["max_cloud"],
        len(days),
        ": " + ", ".join(str(d.day) for d in days) if days else "",
    )
    return {"label": job["label"], "requests": [r.to_json() for r in requests]}


def request_records(requests: Sequence[str], label: str = "") -> Iterator[tuple[str, str]]:
    """producer_function for ProduceToTopicOperator: (request_id, JSON) pairs."""
    for payload in requests:
        request = DownloadRequest.from_json(payload)
        yield request.request_id, payload
    log.info("%s: published %d download request(s)", label, len(requests))


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
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    settings = Settings.from_env()
    config = sh_config(cdse_endpoint(cdse_conn_id, settings), max_retries=settings.sh_max_retries)
    store = object_store(aws_conn_id, settings.bucket)
    producer = KafkaProducerHook(kafka_config_id=kafka_conn_id).get_producer()

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
    searches: Sequence[Mapping[str, Any]], *, aws_conn_id: str, settings: Settings
) -> dict[str, Any]:
    """Check that every planned scene is in the object store and say where everything is."""
    store = object_store(aws_conn_id, settings.bucket)
    planned = [DownloadRequest.from_json(p) for s in searches for p in s["requests"]]
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
    return {"planned": len(planned), "stored": len(stored), "bytes": total_bytes, "keys": stored}
