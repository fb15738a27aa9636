"""A run's new scene footprints and alerts as a GeoPackage, for review in QGIS.

Two layers with readable names and typed columns: ``scene_footprints`` and
``deforestation_alerts`` (the alert schema, ``export.alerts``), EPSG:4326. "New" means
rows that entered the Delta tables after the versions recorded at the start of the run
(change data feed), so a re-run that adds nothing exports empty (but typed) layers. The file is written locally and uploaded
to the exports bucket under ``geopackages/<run>.gpkg``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from shapely.geometry import shape

from canopywatch.export.alerts import ALERT_LAYER as ALERT_LAYER
from canopywatch.export.alerts import from_lake_rows, write_layer
from canopywatch.lake.changes import known_columns, net_changes
from canopywatch.lake.tables import ALERTS, SCENES_RAW, Lake, TableSpec
from canopywatch.storage.objects import ObjectStore

log = logging.getLogger(__name__)

SCENE_LAYER = "scene_footprints"
GPKG_TYPE = "application/geopackage+sqlite3"
EXPORT_PREFIX = "geopackages"
CRS = "EPSG:4326"

# lake column -> GeoPackage column
SCENE_COLUMNS = {
    "scene_id": "scene_id",
    "aoi_id": "area_id",
    "acquired_at": "acquired_utc",
    "cloud_cover": "cloud_cover_pct",
    "function": "evalscript",
    "source": "source",
    "geohash": "geohash",
    "crs": "raster_crs",
    "width": "width_px",
    "height": "height_px",
    "bands": "bands",
    "bucket": "bucket",
    "raw_key": "raw_object_key",
    "size_bytes": "raw_size_bytes",
}
# GeoPackage column types of the scene layer (the rest are text), so that an empty
# layer is typed too
_SCENE_TYPES = {
    "acquired_utc": "datetime64[ms, UTC]",
    "cloud_cover_pct": "float64",
    "width_px": "int64",
    "height_px": "int64",
    "raw_size_bytes": "int64",
}


def scenes_frame(rows: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """``scenes_raw`` rows as the scene_footprints layer (typed columns, also when empty)."""
    records = []
    for row in rows:
        record = {new: row.get(old) for old, new in SCENE_COLUMNS.items()}
        bands = record.get("bands")
        if isinstance(bands, list):
            record["bands"] = ",".join(bands)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(SCENE_COLUMNS.values()))
    for column in frame.columns:
        kind = _SCENE_TYPES.get(column, "string")
        if kind.startswith("datetime"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(kind)
        else:
            frame[column] = frame[column].astype(kind)
    geometries = gpd.GeoSeries([shape(json.loads(r["footprint_geojson"])) for r in rows], crs=CRS)
    return gpd.GeoDataFrame(frame, geometry=geometries.values, crs=CRS)


def alerts_frame(rows: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """``alerts`` rows as the deforestation_alerts layer: the alert schema's columns and
    types, MultiPolygon EPSG:4326 (``export.alerts``)."""
    return from_lake_rows(rows)


def write_geopackage(path: Path, scenes: gpd.GeoDataFrame, alerts: gpd.GeoDataFrame) -> Path:
    """Both layers into one GeoPackage (replaced if it exists); empty layers are kept, with
    their column types."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    scenes.to_file(
        path, layer=SCENE_LAYER, driver="GPKG", engine="pyogrio", geometry_type="Polygon"
    )
    write_layer(alerts, path, ALERT_LAYER)
    return path


def new_rows_since(
    lake: Lake, spec: TableSpec, since_version: int
) -> tuple[list[dict[str, Any]], int]:
    """Rows inserted or changed after ``since_version`` (-1: all), and the latest version."""
    try:
        table = DeltaTable(lake.uri(spec), storage_options=lake.options())
    except TableNotFoundError:
        return [], -1
    latest = table.version()
    if latest <= since_version:
        return [], latest
    changes = pa.table(table.load_cdf(starting_version=since_version + 1, ending_version=latest))
    upserts, _ = net_changes(known_columns(changes, spec), spec.key)
    return [dict(r) for r in upserts], latest


@dataclass(frozen=True)
class ExportResult:
    path: Path
    bucket: str | None
    key: str | None
    scenes: int
    alerts: int
    versions: dict[str, int]


def export_label(run_id: str) -> str:
    """A file-name-safe label from an Airflow run id or any text."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._")
    return label[:120] or "export"


def export_new_since(
    lake: Lake,
    since_versions: Mapping[str, int],
    *,
    label: str,
    out_dir: Path,
    store: ObjectStore | None = None,
) -> ExportResult:
    """Write (and upload) the GeoPackage of what entered the lake after ``since_versions``."""
    scene_rows, scenes_version = new_rows_since(
        lake, SCENES_RAW, since_versions.get(SCENES_RAW.name, -1)
    )
    alert_rows, alerts_version = new_rows_since(lake, ALERTS, since_versions.get(ALERTS.name, -1))
    name = f"{export_label(label)}.gpkg"
    path = write_geopackage(out_dir / name, scenes_frame(scene_rows), alerts_frame(alert_rows))
    key = None
    if store is not None:
        key = f"{EXPORT_PREFIX}/{name}"
        store.put(
            key,
            path.read_bytes(),
            GPKG_TYPE,
            {"scenes": str(len(scene_rows)), "alerts": str(len(alert_rows))},
        )
    log.info(
        "GeoPackage %s: %d new scene footprint(s), %d alert(s)%s",
        path,
        len(scene_rows),
        len(alert_rows),
        f"; uploaded to s3://{store.bucket}/{key}" if store is not None else "",
    )
    return ExportResult(
        path,
        store.bucket if store is not None else None,
        key,
        len(scene_rows),
        len(alert_rows),
        {SCENES_RAW.name: scenes_version, ALERTS.name: alerts_version},
    )
