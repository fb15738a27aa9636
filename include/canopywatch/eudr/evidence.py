"""Where a check's evidence comes from: the PostGIS catalog and the forest baselines.

* Alerts and scenes: the catalog's ``alerts`` and ``scenes`` tables, only the rows whose
  geometry meets the plots' bounding box (GiST), scenes after the cut-off.
* Forest baselines: the rasters named by ``--baseline`` or ``CANOPYWATCH_FOREST_BASELINE``
  (paths or globs, comma-separated), else every ``*_forest_baseline.tif`` and
  ``forest_baseline/*.tif`` under ``<CANOPYWATCH_HOME>/exports`` (``canopywatch detect``
  writes ``<out>_forest_baseline.tif`` beside its alerts).
* Lineage: the Delta version each catalog table reflects (``lake_sync``) and the model
  versions of the alerts; scene ids per plot come with the results. DAG run ids are not
  stored with alerts or scenes, so the lineage says where the run's exports are instead.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from canopywatch.eudr.check import CUTOFF, Evidence
from canopywatch.settings import Settings

ALERT_COLUMNS = ("alert_id", "alert_date", "confidence", "status", "model_version")
SCENE_COLUMNS = ("scene_id", "acquired_at", "cloud_cover")


def find_baselines(settings: Settings, given: Sequence[Path] = ()) -> list[Path]:
    """The forest baseline rasters to use (see the module doc); missing given paths raise."""
    for path in given:
        if not path.exists():
            raise ValueError(f"--baseline {path}: no such file")
    if given:
        return list(given)
    patterns = [p.strip() for p in settings.forest_baseline.split(",") if p.strip()]
    if not patterns:
        exports = settings.home / "exports"
        patterns = [str(exports / "**" / "*_forest_baseline.tif"),
                    str(exports / "forest_baseline" / "*.tif")]  # fmt: skip
    found: list[Path] = []
    for pattern in patterns:
        found.extend(Path(p) for p in sorted(glob.glob(pattern, recursive=True)))  # noqa: PTH207
    return list(dict.fromkeys(found))


def _frame(rows: list[tuple[Any, ...]], columns: Sequence[str]) -> gpd.GeoDataFrame:
    table = pd.DataFrame([r[:-1] for r in rows], columns=list(columns))
    geometry = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(table, geometry=geometry, crs="EPSG:4326")


def from_catalog(
    conn: Any,
    bounds: tuple[float, float, float, float],
    baselines: Sequence[Path],
    *,
    cutoff: dt.date = CUTOFF,
) -> Evidence:
    """Alerts, scenes and lineage from the PostGIS catalog over ``bounds`` (lon/lat)."""
    from canopywatch.catalog.schema import ensure_schema

    ensure_schema(conn)
    envelope = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)}, ST_AsBinary(geom) FROM alerts "
            f"WHERE geom && {envelope} AND alert_date > %s",
            (*bounds, cutoff),
        )
        alerts = _frame(cur.fetchall(), ALERT_COLUMNS)
        cur.execute(
            f"SELECT {', '.join(SCENE_COLUMNS)}, ST_AsBinary(footprint) FROM scenes "
            f"WHERE footprint && {envelope} AND acquired_at > %s",
            (*bounds, cutoff),
        )
        scenes = _frame(cur.fetchall(), SCENE_COLUMNS)
        cur.execute("SELECT delta_table, delta_version, synced_at FROM lake_sync ORDER BY 1")
        versions = {f"delta {t} version": f"{v} (synced {s:%Y-%m-%d %H:%M} UTC)"
                    for t, v, s in cur.fetchall()}  # fmt: skip
    conn.commit()
    lineage: dict[str, Any] = {
        **versions,
        "model versions": ", ".join(sorted(set(alerts["model_version"]))) or "none",
        "alerts considered": len(alerts),
        "scenes considered": len(scenes),
        "forest baselines": ", ".join(p.name for p in baselines) or "none found",
        "dag runs": "not stored with alerts; see exports alerts/<aoi>/<run>/ of "
        "deforestation_detect_weekly",
    }
    return Evidence(alerts, scenes, list(baselines), lineage)
