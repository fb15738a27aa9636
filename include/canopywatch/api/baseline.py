"""The forest baseline as an OGC API Features collection (``forest_baseline``).

The detector writes the forest it monitored as a raster beside its alerts
(``canopywatch detect`` -> ``<out>_forest_baseline.tif``: 1 forest, 0 not, 255 nodata;
``canopywatch.detect.layers.write_forest_baseline``), and the EUDR check reads the same
files (``canopywatch.eudr.evidence.find_baselines``: ``CANOPYWATCH_FOREST_BASELINE`` or the
exports folder). Here each file's forest pixels become polygons (4-connected, EPSG:4326)
in the PostGIS table ``forest_baseline``, one row per polygon: ``source`` (the file name),
``method`` (the detector version in the file's tags), ``mapped_at`` (the file's time),
``area_ha`` and ``geom``. A file is loaded again only when its time or size changed, and the
rows of a file that is gone are removed, so the table always mirrors the files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TABLE = "forest_baseline"
FOREST = 1
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    method text,
    mapped_at timestamptz NOT NULL,
    file_size bigint NOT NULL,
    area_ha double precision NOT NULL CHECK (area_ha >= 0),
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_geom_gix ON {TABLE} USING gist (geom);
CREATE INDEX IF NOT EXISTS {TABLE}_source_idx ON {TABLE} (source);
"""


@dataclass(frozen=True)
class Polygon:
    geometry_wkb: bytes  # MultiPolygon, EPSG:4326
    area_ha: float


def ensure_table(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()


def forest_polygons(path: Path) -> tuple[list[Polygon], str | None]:
    """The forest pixels of one baseline raster as EPSG:4326 polygons (area from the
    raster's own grid) and the detector version its tags name."""
    import numpy as np
    import rasterio
    import rasterio.features
    import shapely
    from pyproj import Transformer
    from shapely.geometry import MultiPolygon, shape

    with rasterio.open(path) as src:
        band = src.read(1)
        forest = (band == FOREST).astype(np.uint8)
        transform, crs = src.transform, src.crs
        method = src.tags().get("METHOD")
    pixel_ha = abs(transform.a * transform.e - transform.b * transform.d) / 10_000.0
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)

    def lonlat(xy: Any) -> Any:
        return np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))

    out = []
    for geometry, _ in rasterio.features.shapes(
        forest, mask=forest.astype(bool), connectivity=4, transform=transform
    ):
        polygon = shape(geometry)
        area_ha = polygon.area * pixel_ha / abs(transform.a * transform.e)
        outline = MultiPolygon([shapely.transform(polygon, lonlat)])
        out.append(Polygon(shapely.to_wkb(outline), round(float(area_ha), 4)))
    return out, method


def sync_baselines(conn: Any, paths: Sequence[Path]) -> dict[str, int]:
    """Mirror ``paths`` into the table: changed or new files (re)loaded, vanished ones
    dropped. Returns polygons loaded per file name (unchanged files are not listed)."""
    ensure_table(conn)
    wanted = {path.name: path for path in paths}
    with conn.cursor() as cur:
        cur.execute(f"SELECT DISTINCT source, mapped_at, file_size FROM {TABLE}")
        stored = {str(s): (m, int(n)) for s, m, n in cur.fetchall()}
    loaded: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        gone = sorted(set(stored) - set(wanted))
        if gone:
            cur.execute(f"DELETE FROM {TABLE} WHERE source = ANY(%s)", (gone,))
        for name, path in wanted.items():
            stat = path.stat()
            mapped_at = datetime.fromtimestamp(stat.st_mtime, UTC)
            if stored.get(name) == (mapped_at, stat.st_size):
                continue
            polygons, method = forest_polygons(path)
            cur.execute(f"DELETE FROM {TABLE} WHERE source = %s", (name,))
            cur.executemany(
                f"INSERT INTO {TABLE} (source, method, mapped_at, file_size, area_ha, geom) "
                "VALUES (%s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326))",
                [
                    (name, method, mapped_at, stat.st_size, p.area_ha, p.geometry_wkb)
                    for p in polygons
                ],
            )
            loaded[name] = len(polygons)
    if loaded or gone:
        log.info("forest baseline: loaded %s; removed %s", loaded or "none", gone or "none")
    return loaded
