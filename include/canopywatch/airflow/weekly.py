"""The steps of the ``deforestation_detect_weekly`` DAG, as plain functions over connection ids.

For each area: the scenes the catalog holds for it (PostGIS, by bbox and time),
fetched from MinIO per request tile, scored by the chosen detector (``harmonic`` by
default, as ``canopywatch detect``; ``xgboost`` with the trained model), turned into dated,
scored alert polygons, published as AlertPublished messages (Kafka -> Delta ``alerts`` ->
PostGIS), and exported for GIS review: a GeoPackage and a before/after PNG quicklook.
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from canopywatch.airflow.connections import kafka_producer, object_store, postgis
from canopywatch.airflow.payloads import (
    AreaDetection,
    AreaJob,
    DetectionOptions,
    ExportedFile,
    WeeklyReport,
)
from canopywatch.layout import parse_key
from canopywatch.messages import AlertPublished
from canopywatch.settings import Settings

log = logging.getLogger(__name__)

HISTORY = timedelta(days=730)  # the detector's baseline needs earlier clear observations
MODEL_NAME = "s2"


def detector_for(
    settings: Settings,
    method: str | None = None,
    history_start: str | None = None,
    monitor_start: str | None = None,
) -> Any:
    """The detector the weekly run scores with: the same default as ``canopywatch detect``
    (``harmonic``); ``xgboost`` uses the trained model in ``<model_dir>/s2``."""
    from canopywatch.dates import days_since_epoch
    from canopywatch.detect.detector import DEFAULT_METHOD, build_detector

    chosen = method or DEFAULT_METHOD

    def day(value: str | None) -> int | None:
        return None if not value else days_since_epoch(date.fromisoformat(str(value)[:10]))

    detector = build_detector(
        chosen,
        model_dir=settings.model_dir / MODEL_NAME if chosen == "xgboost" else None,
        history_start_day=day(history_start),
        monitor_start_day=day(monitor_start),
    )
    log.info("scoring with %s (method %s)", detector.version, chosen)
    return detector


LAYER_NAMES = ("forest_mask", "plantations")


def fetch_layers(options: DetectionOptions, store: Any, scratch: Path) -> dict[str, Path]:
    """The user's forest baseline and plantation map as local files, fetched once per area:
    a layer given as ``s3://<bucket>/<key>`` of the platform's object store is downloaded
    into ``scratch``, a path is used as it is (the workers read it)."""
    layers: dict[str, Path] = {}
    for name in LAYER_NAMES:
        where = getattr(options, name)
        if not where:
            continue
        path = Path(where)
        if where.startswith("s3://"):
            bucket, _, key = where[len("s3://") :].partition("/")
            if bucket != store.bucket:
                raise ValueError(f"{name} {where}: layers are read from s3://{store.bucket}/")
            path = scratch / f"{name}{Path(key).suffix}"
            path.write_bytes(store.get(key))
        elif not path.exists():
            raise ValueError(f"{name} {where}: no such file")
        layers[name] = path
    if layers:
        log.info("user layers: %s", ", ".join(f"{k} {getattr(options, k)}" for k in layers))
    return layers


def _require_harmonic(detector: Any) -> None:
    from canopywatch.detect.detector import HarmonicDetector

    if not isinstance(detector, HarmonicDetector):
        raise ValueError("forest_mask and plantations need method harmonic")


def with_layers(detector: Any, layers: Mapping[str, Path], grid: Any) -> Any:
    """``detector`` with the fetched layers (``fetch_layers``) read onto one tile's ``grid``."""
    from dataclasses import replace

    from canopywatch.detect.detector import load_grid_mask

    if not layers:
        return detector
    _require_harmonic(detector)
    masks = {name: load_grid_mask(path, grid, name) for name, path in layers.items()}
    return replace(
        detector,
        forest_mask=masks.get("forest_mask", detector.forest_mask),
        plantations=masks.get("plantations", detector.plantations),
    )


def scene_keys_by_tile(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[datetime, str]]]:
    """Raw s2l2a_bands scenes grouped by request tile (the key's bbox segment), oldest first."""
    tiles: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in rows:
        key = parse_key(str(row["raw_key"]))
        if key.function != "s2l2a_bands":
            continue
        tiles[key.prefix.rsplit("/", 1)[1]].append((key.acquired_at, key.key))
    return {tile: sorted(scenes) for tile, scenes in sorted(tiles.items())}


def alert_messages(alerts: Any, aoi_id: str) -> list[AlertPublished]:
    """AlertPublished messages (the alert schema, geometry in EPSG:4326) from the
    detector's GeoDataFrame."""
    from canopywatch.export.alerts import alert_records

    return [AlertPublished(**{**r, "aoi_id": aoi_id}) for r in alert_records(alerts)]


def detect_area_alerts(
    area: AreaJob,
    options: DetectionOptions,
    *,
    aws_conn_id: str,
    postgres_conn_id: str,
    kafka_conn_id: str,
    run_id: str,
    settings: Settings,
) -> AreaDetection:
    """Score one area's scenes, publish its alerts, export GeoPackage, quicklook and the
    per-pixel layers (forest baseline, disturbance dates)."""
    from canopywatch.catalog import queries
    from canopywatch.dates import days_since_epoch
    from canopywatch.detect.alerts import active_alerts, other_changes, publishable
    from canopywatch.detect.detector import detect_area
    from canopywatch.detect.layers import COG_MEDIA_TYPE, write_disturbance, write_forest_baseline
    from canopywatch.detect.observations import SceneFilesSource
    from canopywatch.detect.quicklook import (
        composite_periods,
        largest_alert_series,
        write_quicklook,
    )
    from canopywatch.export.alerts import write_alerts

    aoi = area.aoi
    end = area.window.end
    start = end - HISTORY
    query = queries.Query.parse(
        aoi.bbox.as_tuple(), start.date().isoformat(), end.date().isoformat()
    )
    with postgis(postgres_conn_id) as conn:
        rows = queries.scenes_in(conn, query)
    tiles = scene_keys_by_tile(rows)
    log.info("%s: %d scene(s) in the catalog over %d tile(s), %s .. %s", aoi.aoi_id, len(rows),
             len(tiles), start.date(), end.date())  # fmt: skip
    detector = detector_for(settings, options.method, options.history_start, options.monitor_start)
    raw_store = object_store(aws_conn_id, settings.bucket)
    exports = object_store(aws_conn_id, settings.exports_bucket)
    producer = kafka_producer(kafka_conn_id)
    out_dir = settings.home / "exports" / "alerts" / aoi.aoi_id / _safe(run_id)
    n_alerts, n_high, total_ha, outputs = 0, 0, 0.0, []
    if options.forest_mask or options.plantations:
        _require_harmonic(detector)  # before any layer or scene is fetched
    with tempfile.TemporaryDirectory(prefix="canopywatch-layers-") as layer_dir:
        layers = fetch_layers(options, raw_store, Path(layer_dir))
        for tile, scenes in tiles.items():
            if len(scenes) < 4:
                log.info(
                    "%s %s: only %d scene(s), too few to score; skipped",
                    aoi.aoi_id,
                    tile,
                    len(scenes),
                )
                continue
            log.info("%s %s (tile %d of %d): reading %d scene(s) from s3://%s", aoi.aoi_id, tile,
                     list(tiles).index(tile) + 1, len(tiles), len(scenes), raw_store.bucket)  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                files = []
                for acquired_at, key in scenes:
                    path = Path(tmp) / f"{acquired_at:%Y%m%dT%H%M%S}.tif"
                    path.write_bytes(raw_store.get(key))
                    if not _readable(path):
                        log.warning("%s: s3://%s/%s is not a readable GeoTIFF; skipped",
                                    aoi.aoi_id, raw_store.bucket, key)  # fmt: skip
                        continue
                    files.append((days_since_epoch(acquired_at.date()), path))
                if len(files) < 4:
                    log.info(
                        "%s %s: only %d readable scene(s); skipped", aoi.aoi_id, tile, len(files)
                    )
                    continue
                source = SceneFilesSource(files)
                tile_detector = with_layers(detector, layers, source.grid)
                result = detect_area(source, tile_detector, aoi=aoi.aoi_id)
                if aoi.outline is not None:  # a polygon area: alerts outside it are not its own
                    from canopywatch.area_geometry import clip_alerts

                    result.alerts = clip_alerts(result.alerts, aoi.area_geometry())
                # the NDVI panel of the quicklook reads the largest alert's window while the files exist
                series = largest_alert_series(source, active_alerts(result.alerts))
            alerts = active_alerts(result.alerts)
            # withdrawn (or harvested) alerts go out as updates of the alerts the catalog holds
            with postgis(postgres_conn_id) as conn:
                known = queries.known_alert_ids(conn, result.alerts["alert_id"])
            published = publishable(result.alerts, known)
            messages = alert_messages(published, aoi.aoi_id)
            for message in messages:
                producer.produce(
                    settings.topic("alerts"), message.to_bytes(), key=message.key.encode()
                )
            left = producer.flush(30)
            if left:
                # the task fails and retries; alert ids are stable, so a retry replaces, never doubles
                raise RuntimeError(
                    f"{aoi.aoi_id} {tile}: {left} of {len(messages)} alert message(s) not delivered "
                    f"to {settings.topic('alerts')}"
                )
            stem = f"{aoi.aoi_id}_{tile}"
            gpkg = write_alerts(published, out_dir / f"{stem}.gpkg")
            png = write_quicklook(result.before_rgb, result.after_rgb, alerts, result.grid.transform,
                                  out_dir / f"{stem}.png", title=f"{aoi.name} {tile}",
                                  dates=composite_periods(result.days), crs=result.grid.crs,
                                  series=series, others=other_changes(result.alerts))  # fmt: skip
            # the area's current forest baseline has one place, replaced week by week, where
            # the plot checks and the API's forest_baseline collection find it
            baseline = write_forest_baseline(
                result,
                settings.home / "exports" / "forest_baseline" / f"{stem}_forest_baseline.tif",
            )
            disturbance = write_disturbance(result, out_dir / f"{stem}_disturbance.tif")
            run_prefix = f"alerts/{aoi.aoi_id}/{_safe(run_id)}"
            for path, content_type, prefix in (
                (gpkg, "application/geopackage+sqlite3", run_prefix),
                (png, "image/png", run_prefix),
                (disturbance, COG_MEDIA_TYPE, run_prefix),
                (baseline, COG_MEDIA_TYPE, "forest_baseline"),
            ):
                key = f"{prefix}/{path.name}"
                exports.put(key, path.read_bytes(), content_type, {"run-id": run_id})
                outputs.append(ExportedFile(local=str(path), uri=f"s3://{exports.bucket}/{key}"))
            high = int((alerts["confidence_level"] == "high").sum()) if len(alerts) else 0
            area_ha = float(alerts["area_ha"].sum()) if len(alerts) else 0.0
            n_alerts += len(alerts)
            n_high += high
            total_ha += area_ha
            log.info("%s %s: %d scene(s) scored with %s: %d alert(s) (%d high confidence), %.2f ha; "
                     "published to %s; GeoPackage %s; quicklook %s; per-pixel layers %s, %s",
                     aoi.aoi_id, tile, len(scenes), result.model_version, len(alerts), high, area_ha,
                     settings.topic("alerts"), gpkg, png, baseline.name, disturbance.name)  # fmt: skip
    return AreaDetection(
        aoi_id=aoi.aoi_id,
        scenes=len(rows),
        alerts=n_alerts,
        high_confidence=n_high,
        area_ha=round(total_ha, 3),
        outputs=tuple(outputs),
    )


def _readable(path: Path) -> bool:
    """The file opens and its last band reads (a cut file fails one or the other)."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as dataset:
            dataset.read(dataset.count)
    except RasterioError:
        return False
    return True


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


def report(results: Sequence[AreaDetection]) -> WeeklyReport:
    """The run's summary: one log line per area, totals in XCom."""
    for r in results:
        log.info("%s: %d scene(s), %d alert(s) (%d high confidence), %.2f ha; outputs: %s",
                 r.aoi_id, r.scenes, r.alerts, r.high_confidence, r.area_ha,
                 ", ".join(o.uri for o in r.outputs) or "none")  # fmt: skip
    return WeeklyReport(
        areas=len(results),
        alerts=sum(r.alerts for r in results),
        area_ha=round(sum(r.area_ha for r in results), 3),
        outputs=tuple(o for r in results for o in r.outputs),
    )
