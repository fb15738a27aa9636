"""Reading plots for an EUDR check: GeoJSON, GeoPackage or CSV of lat/lon points.

Every plot gets a ``plot_id`` (the file's ``plot_id`` / ``id`` column, else its row
number), a geometry in EPSG:4326 and the ``area_ha`` it declares (optional). Points stand
for plots of at most 4 ha (Article 2(28) EUDR allows a single point there): with an
``area_ha`` they are checked as a circle of that area around the point, without one as the
10 m pixel they fall in. Larger plots must be polygons. A plot that cannot be checked (empty
or invalid geometry, coordinates out of range, a point over 4 ha) is kept with the reason
in ``problem``; a file that cannot be read at all raises ``PlotInputError``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

MAX_POINT_HA = 4.0
EQUAL_AREA_CRS = "EPSG:6933"  # areas in m² anywhere (WGS 84 / NSIDC EASE-Grid 2.0 Global)
MAX_PLOTS = 200_000
_LAT = ("lat", "latitude", "y")
_LON = ("lon", "lng", "long", "longitude", "x")
_AREA = ("area_ha", "area", "hectares", "ha")
_ID = ("plot_id", "id", "plot", "name")


class PlotInputError(ValueError):
    """The plot file cannot be used at all; the message says why."""


def _column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): str(c) for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


def read_plots(path: Path) -> gpd.GeoDataFrame:
    """The plots of ``path`` with ``plot_id``, ``area_ha`` (declared), ``geometry``, ``problem``."""
    if not path.exists():
        raise PlotInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = _read_csv(path)
        elif suffix in {".geojson", ".json", ".gpkg"}:
            frame = gpd.read_file(path, engine="pyogrio")
        else:
            raise PlotInputError(f"{path.name}: use a .geojson, .gpkg or .csv file")
    except PlotInputError:
        raise
    except Exception as exc:  # pyogrio/pandas errors on a broken file
        raise PlotInputError(f"{path.name}: not a readable {suffix[1:]} file ({exc})") from exc
    return normalise(frame, path.name)


def _read_csv(path: Path) -> gpd.GeoDataFrame:
    table = pd.read_csv(path)
    lat, lon = _column(table, _LAT), _column(table, _LON)
    wkt = _column(table, ("wkt", "geometry", "geom"))
    if wkt is not None:
        geometry = shapely.from_wkt(table[wkt].astype(str).to_numpy(), on_invalid="ignore")
        table = table.drop(columns=[wkt])
    elif lat is not None and lon is not None:
        lats = pd.to_numeric(table[lat], errors="coerce").to_numpy(dtype=float)
        lons = pd.to_numeric(table[lon], errors="coerce").to_numpy(dtype=float)
        geometry = shapely.points(lons, lats)
        geometry[np.isnan(lats) | np.isnan(lons)] = None
    else:
        raise PlotInputError(
            f"{path.name}: a CSV needs lat and lon columns (or a wkt column); found "
            f"{', '.join(map(str, table.columns)) or 'none'}"
        )
    return gpd.GeoDataFrame(table, geometry=geometry, crs="EPSG:4326")


def normalise(frame: gpd.GeoDataFrame, label: str = "plots") -> gpd.GeoDataFrame:
    """Plots in EPSG:4326 with ``plot_id``, ``area_ha``, ``problem``; see the module doc."""
    if len(frame) == 0:
        raise PlotInputError(f"{label}: no plots")
    if len(frame) > MAX_PLOTS:
        raise PlotInputError(f"{label}: {len(frame)} plots; at most {MAX_PLOTS} per check")
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    elif not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    id_column, area_column = _column(frame, _ID), _column(frame, _AREA)
    ids = (
        frame[id_column].astype(str).to_numpy()
        if id_column is not None
        else np.array([str(i + 1) for i in range(len(frame))])
    )
    if len(set(ids)) != len(ids):
        raise PlotInputError(f"{label}: plot ids must be unique ({id_column} repeats)")
    declared = (
        pd.to_numeric(frame[area_column], errors="coerce").to_numpy(dtype=float)
        if area_column is not None
        else np.full(len(frame), np.nan)
    )
    geometry = frame.geometry.to_numpy()
    problem = np.full(len(frame), "", dtype=object)
    missing = shapely.is_missing(geometry) | shapely.is_empty(geometry)
    problem[missing] = "no geometry"
    kinds = shapely.get_type_id(geometry)
    points = kinds == 0
    polygonal = np.isin(kinds, (3, 6))
    problem[~missing & ~points & ~polygonal] = "geometry must be a point or a polygon"
    bounds = shapely.bounds(geometry)
    with np.errstate(invalid="ignore"):
        out_of_range = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (
            np.abs(bounds[:, [1, 3]]) > 90
        ).any(axis=1)
    problem[~missing & out_of_range] = "coordinates outside lon -180..180 / lat -90..90"
    invalid = polygonal & ~missing & ~shapely.is_valid(geometry)
    for index in np.flatnonzero(invalid & (problem == "")):
        problem[index] = f"invalid polygon: {shapely.is_valid_reason(geometry[index])}"
    big_point = points & (declared > MAX_POINT_HA)
    problem[big_point & (problem == "")] = (
        f"a point may stand for a plot of at most {MAX_POINT_HA:g} ha; give larger plots as polygons"
    )
    problem[(declared < 0) & (problem == "")] = "area_ha must not be negative"
    return gpd.GeoDataFrame(
        {"plot_id": ids, "area_ha": declared, "problem": problem.astype(str)},
        geometry=geometry,
        crs="EPSG:4326",
    )


def check_geometries(plots: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """The area each plot is checked over, in the equal-area CRS: polygons as they are,
    points as a circle of their declared area (their own 10 m pixel when none is given)."""
    metric = plots.geometry.to_crs(EQUAL_AREA_CRS).to_numpy()
    points = shapely.get_type_id(metric) == 0
    radius = np.sqrt(np.nan_to_num(plots["area_ha"].to_numpy(dtype=float), nan=0.0) * 1e4 / np.pi)
    radius = np.where(radius > 0, radius, 5.0)  # one 10 m pixel around the point
    out = metric.copy()
    out[points] = shapely.buffer(metric[points], radius[points], quad_segs=8)
    return gpd.GeoSeries(out, crs=EQUAL_AREA_CRS, index=plots.index)
