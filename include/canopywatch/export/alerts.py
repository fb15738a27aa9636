"""Alerts as files for GIS review, in the alert schema (``canopywatch.alert_schema``).

Every alert export, the per-area GeoPackage of the weekly run, the run GeoPackage and
``canopywatch detect --out``, has the schema's columns with their types (DateTime
dates, Real scores and areas, text ids and statuses, also when a layer is empty) and
MultiPolygon geometries in EPSG:4326.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from canopywatch.alert_schema import ATTRIBUTES, CRS, GEOMETRY_TYPE

ALERT_LAYER = "deforestation_alerts"
_DTYPES = {"text": "string", "datetime": "datetime64[ms, UTC]", "float": "float64"}


def _multi(geometry: Any) -> Any:
    return MultiPolygon([geometry]) if isinstance(geometry, Polygon) else geometry


def schema_frame(
    records: Iterable[Mapping[str, Any]], geometries: Sequence[Any], crs: Any = CRS
) -> gpd.GeoDataFrame:
    """A typed GeoDataFrame with exactly the schema's columns (extra keys are dropped)."""
    frame = pd.DataFrame.from_records(list(records), columns=[f.name for f in ATTRIBUTES])
    for spec in ATTRIBUTES:
        column = frame[spec.name]
        if spec.kind == "datetime":
            frame[spec.name] = pd.to_datetime(column, utc=True).astype(_DTYPES["datetime"])
        else:
            frame[spec.name] = column.astype(_DTYPES[spec.kind])
    geometry = gpd.GeoSeries([_multi(g) for g in geometries], crs=crs)
    return gpd.GeoDataFrame(frame, geometry=geometry.values, crs=crs)


def published(alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The detector's alerts (``detect.alerts.polygonize``, grid CRS) as they are
    published and exported: EPSG:4326 MultiPolygons, typed schema columns."""
    frame = alerts.to_crs(CRS) if alerts.crs is not None and len(alerts) else alerts
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    return schema_frame(records, list(frame.geometry))


def from_lake_rows(rows: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Rows of the Delta ``alerts`` table (geometry as GeoJSON text) as a schema frame."""
    return schema_frame(rows, [shape(json.loads(r["geometry_geojson"])) for r in rows])


def alert_records(alerts: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """One dict per alert with every schema field (geometry as a GeoJSON mapping,
    datetimes as ``datetime``), ready for ``AlertPublished(**record)``."""
    frame = published(alerts)
    records = []
    for row in frame.to_dict("records"):
        record = {f.name: row.get(f.name) for f in ATTRIBUTES}
        for spec in ATTRIBUTES:
            value = record[spec.name]
            if pd.isna(value):
                record[spec.name] = None
            elif spec.kind == "datetime":
                record[spec.name] = pd.Timestamp(value).to_pydatetime()
        record["geometry"] = mapping(row["geometry"])
        records.append(record)
    return records


def write_alerts(alerts: gpd.GeoDataFrame, path: Path, layer: str = ALERT_LAYER) -> Path:
    """The alerts as a GeoPackage layer or GeoJSON (by suffix), EPSG:4326, schema columns;
    an existing file is replaced."""
    suffix = path.suffix.lower()
    if suffix not in {".geojson", ".json", ".gpkg"}:
        raise ValueError(f"alert output {path.name}: use .geojson or .gpkg")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    frame = published(alerts)
    if suffix == ".gpkg":
        write_layer(frame, path, layer)
    else:
        frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def write_layer(frame: gpd.GeoDataFrame, path: Path, layer: str = ALERT_LAYER) -> None:
    """One schema frame as a MultiPolygon layer of a GeoPackage (other layers stay)."""
    frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", geometry_type=GEOMETRY_TYPE)
