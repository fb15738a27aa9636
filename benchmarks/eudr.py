"""EUDR plot checks at scale: plots per second of ``check_plots`` vs. a one-plot loop.

    .venv/bin/python benchmarks/eudr.py [--plots 10000] [--naive 200] [--quick] [--json OUT]

A generated area (a 20 x 20 km forest baseline at 10 m, 2,000 alert polygons of
0.1-8 ha, 150 scene footprints over 2021-2023) and ``--plots`` plots in it: 70 % points
with an area of 0.5-4 ha, 30 % polygons of 1-25 ha, a few invalid ones. The vectorised
check (``canopywatch.eudr.check.check_plots``: one ``contains_xy`` pass over the pixel
centres, STRtree queries for alerts and scenes) runs on all plots; the naive reference
(``naive_check``: ``rasterio.mask`` per plot, a scan of every alert and scene per plot)
on the first ``--naive`` plots, and its rate is compared as a ratio. The verdicts of the
two are checked to agree on those plots. The target: 10,000 plots in at most 60 s on
2 cores. ``--quick``: 1,000 plots, 50 through the naive loop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio
import shapely
from affine import Affine

from canopywatch.eudr.check import Evidence, check_plots, naive_check
from canopywatch.eudr.plots import normalise

EPSG = 32721
ORIGIN = (500000.0, 8800000.0)
SIZE_PX = 2000
RES = 10.0


def _baseline(path: Path, rng: np.random.Generator) -> Path:
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((SIZE_PX, SIZE_PX)), 25)
    forest = (field > np.quantile(field, 0.35)).astype(np.uint8)
    with rasterio.open(
        path, "w", driver="GTiff", width=SIZE_PX, height=SIZE_PX, count=1, dtype="uint8",
        crs=f"EPSG:{EPSG}", transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]),
        nodata=255, compress="deflate",
    ) as dst:  # fmt: skip
        dst.write(forest, 1)
    return path


def _random_polygons(
    rng: np.random.Generator, n: int, min_ha: float, max_ha: float
) -> npt.NDArray[np.object_]:
    span = SIZE_PX * RES
    x = ORIGIN[0] + rng.uniform(500, span - 500, n)
    y = ORIGIN[1] - rng.uniform(500, span - 500, n)
    radius = np.sqrt(rng.uniform(min_ha, max_ha, n) * 1e4 / np.pi)
    blobs: npt.NDArray[np.object_] = shapely.buffer(shapely.points(x, y), radius, quad_segs=4)
    return blobs


def generate(n_plots: int, folder: Path, seed: int = 1) -> tuple[gpd.GeoDataFrame, Evidence]:
    rng = np.random.default_rng(seed)
    baseline = _baseline(folder / "bench_forest_baseline.tif", rng)
    crs = f"EPSG:{EPSG}"
    n_alerts = 2000
    alert_geoms = _random_polygons(rng, n_alerts, 0.1, 8.0)
    days = rng.integers(0, 3 * 365, n_alerts)
    alerts = gpd.GeoDataFrame(
        {
            "alert_id": [f"a{i:05d}" for i in range(n_alerts)],
            "alert_date": [dt.datetime(2020, 6, 1, tzinfo=dt.UTC) + dt.timedelta(days=int(d)) for d in days],
            "confidence": rng.uniform(0.3, 1.0, n_alerts),
            "status": rng.choice(["high", "low", "withdrawn", "plantation_harvest"], n_alerts,
                                 p=[0.6, 0.2, 0.1, 0.1]),
            "model_version": "harmonic-v1",
        },
        geometry=alert_geoms,
        crs=crs,
    ).to_crs(4326)  # fmt: skip
    n_scenes = 150
    span = SIZE_PX * RES
    scenes = gpd.GeoDataFrame(
        {
            "scene_id": [f"s{i:04d}" for i in range(n_scenes)],
            "acquired_at": [dt.datetime(2021, 1, 3, tzinfo=dt.UTC) + dt.timedelta(days=7 * i)
                            for i in range(n_scenes)],
            "cloud_cover": rng.uniform(0, 100, n_scenes),
        },
        geometry=[shapely.box(ORIGIN[0], ORIGIN[1] - span, ORIGIN[0] + span, ORIGIN[1])] * n_scenes,
        crs=crs,
    ).to_crs(4326)  # fmt: skip
    n_points = int(n_plots * 0.7)
    point_geoms = shapely.points(
        ORIGIN[0] + rng.uniform(200, span - 200, n_points),
        ORIGIN[1] - rng.uniform(200, span - 200, n_points),
    )
    polygon_geoms = _random_polygons(rng, n_plots - n_points, 1.0, 25.0)
    geometry = np.concatenate([point_geoms, polygon_geoms])
    area = np.concatenate([rng.uniform(0.5, 4.0, n_points), np.full(n_plots - n_points, np.nan)])
    area[::997] = 9.0  # a point over 4 ha: invalid
    plots = gpd.GeoDataFrame(
        {"plot_id": [f"p{i:06d}" for i in range(n_plots)], "area_ha": area},
        geometry=geometry,
        crs=crs,
    )
    order = rng.permutation(n_plots)
    plots = normalise(plots.iloc[order].reset_index(drop=True))
    return plots, Evidence(alerts, scenes, [baseline])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=200, help="plots through the naive loop")
    parser.add_argument("--quick", action="store_true", help="1,000 plots, 50 naive")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    n_plots, n_naive = (1000, 50) if args.quick else (args.plots, args.naive)
    with tempfile.TemporaryDirectory() as tmp:
        plots, evidence = generate(n_plots, Path(tmp))
        started = time.perf_counter()
        results = check_plots(plots, evidence)
        seconds = time.perf_counter() - started
        sample = plots.iloc[:n_naive].reset_index(drop=True)
        started = time.perf_counter()
        naive = naive_check(sample, evidence)
        naive_seconds = time.perf_counter() - started
    agree = list(results["verdict"].iloc[:n_naive]) == naive
    rate, naive_rate = n_plots / seconds, n_naive / naive_seconds
    figures = {
        "plots": n_plots,
        "seconds": round(seconds, 2),
        "plots_per_s": round(rate, 1),
        "naive_plots": n_naive,
        "naive_seconds": round(naive_seconds, 2),
        "naive_plots_per_s": round(naive_rate, 1),
        "speedup": round(rate / naive_rate, 1),
        "naive_agrees": agree,
        "within_60s_per_10k": 10_000 / rate <= 60.0,
        "verdicts": results["verdict"].value_counts().to_dict(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
