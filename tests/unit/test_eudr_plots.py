"""Reading EUDR plots (GeoJSON, GeoPackage, CSV) and what cannot be checked."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, Polygon, box

from canopywatch.eudr.plots import PlotInputError, check_geometries, normalise, read_plots


def test_csv_points_with_area_become_circles_of_that_area(tmp_path: Path) -> None:
    csv = tmp_path / "farms.csv"
    csv.write_text(
        "plot_id,lat,lon,area_ha\nA,-7.09,-55.39,2.5\nB,-7.08,-55.38,\nC,-7.07,-55.37,9\n"
    )
    plots = read_plots(csv)
    assert list(plots["plot_id"]) == ["A", "B", "C"]
    assert list(plots["problem"][:2]) == ["", ""]
    assert "at most 4 ha" in plots["problem"][2]
    areas = check_geometries(plots).area.to_numpy() / 1e4
    assert areas[0] == pytest.approx(2.5, rel=0.01)
    assert areas[1] == pytest.approx(np.pi * 25 / 1e4, rel=0.02)  # its own pixel, r = 5 m


def test_geojson_and_geopackage_polygons_keep_ids_and_report_bad_geometry(tmp_path: Path) -> None:
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    frame = gpd.GeoDataFrame(
        {"id": ["ok", "bowtie", "far"]},
        geometry=[box(-55.4, -7.1, -55.39, -7.09), bowtie, Point(200, 10)],
        crs="EPSG:4326",
    )
    for name in ("plots.geojson", "plots.gpkg"):
        path = tmp_path / name
        frame.to_file(path)
        plots = read_plots(path)
        assert list(plots["plot_id"]) == ["ok", "bowtie", "far"]
        assert plots["problem"][0] == ""
        assert plots["problem"][1].startswith("invalid polygon: Self-intersection")
        assert "outside lon" in plots["problem"][2]


def test_a_utm_file_is_reprojected(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"plot_id": ["u"]}, geometry=[box(500000, 8800000, 500100, 8800100)],
                             crs="EPSG:32721")  # fmt: skip
    plots = normalise(frame)
    assert plots.crs.to_epsg() == 4326
    assert check_geometries(plots).area.iloc[0] == pytest.approx(1e4, rel=0.01)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("plots.txt", "x", "use a .geojson, .gpkg or .csv"),
        ("plots.csv", "a,b\n1,2\n", "needs lat and lon columns"),
        ("plots.csv", "lat,lon\n", "no plots"),
        ("plots.geojson", "{not json", "not a readable geojson file"),
        ("plots.csv", "id,lat,lon\n1,0,0\n1,1,1\n", "ids must be unique"),
    ],
)
def test_unusable_files_raise_one_clear_error(tmp_path: Path, name, content, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PlotInputError, match=message):
        read_plots(path)


def test_missing_file() -> None:
    with pytest.raises(PlotInputError, match="no such file"):
        read_plots(Path("/nonexistent/plots.geojson"))
