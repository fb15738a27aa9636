"""EUDR plot checks whose verdicts are known from the simulator's truth.

A simulated area (June 2020 - Dec 2021) is scored by the default detector; its alerts, the
scenes and the forest baseline go where the product keeps them (PostGIS ``alerts`` and
``scenes``, a baseline raster); plots are placed from the truth: on every simulated
clearing (one cleared before the cut-off, the others after), on intact forest far from any
change and on pasture; ``canopywatch plots check`` must give the truth's verdicts, and the
one-plot-at-a-time reference must agree.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio.features
from scipy import ndimage
from shapely.geometry import Point, box, mapping

from canopywatch import cli
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.dates import days_since_epoch
from canopywatch.detect.detector import build_detector, detect_area
from canopywatch.detect.layers import write_forest_baseline
from canopywatch.eudr.check import CUTOFF, Evidence, check_plots, naive_check
from canopywatch.eudr.plots import read_plots
from canopywatch.settings import Settings
from canopywatch_dev.detection.reference import SimulationSource
from canopywatch_dev.simulate import LC_FOREST, LC_PASTURE, SimulationConfig, simulate

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def catalog() -> Iterator[Settings]:
    from canopywatch_dev.platform import stack

    base = Settings.from_env()
    stack.up(base, ["postgres"])  # raises PlatformError: the test errors, never skips
    settings = replace(base, pg_schema=f"cwtest_eudr_{uuid.uuid4().hex[:8]}")
    with connect(settings) as conn:
        ensure_schema(conn)
    yield settings
    with connect(base) as conn:
        drop_schema(conn, settings.pg_schema)


def _simulated_area(tmp_path: Path):
    simulation = simulate(
        SimulationConfig(
            seed=5, width=128, height=128, start=dt.date(2020, 6, 1), end=dt.date(2021, 12, 31),
            n_clearings=5, min_clearing_ha=1.0, max_clearing_ha=4.0, cropland_share=0.0,
            forest_share=0.75, pasture_drying_per_year=0, floods_per_year=0, cloudiness=0.5,
        )
    )  # fmt: skip
    detector = build_detector("harmonic", monitor_start_day=days_since_epoch(dt.date(2021, 1, 1)))
    result = detect_area(SimulationSource(simulation), detector, aoi="eudr-area")
    baseline = write_forest_baseline(result, tmp_path / "eudr-area_forest_baseline.tif")
    return simulation, result.alerts.to_crs(4326), baseline


def _truth_plots(simulation) -> gpd.GeoDataFrame:
    transform, shape = simulation.transform, simulation.shape
    rows = []
    changed = np.zeros(shape, dtype=bool)
    for event in simulation.events:
        changed |= rasterio.features.geometry_mask(
            [event.geometry], out_shape=shape, transform=transform, invert=True
        )
        if event.is_deforestation:
            after = event.start > CUTOFF
            rows.append({"plot_id": f"{event.kind}-{event.start}", "geometry": event.geometry,
                         "truth": "deforestation" if after else "not_forest_at_cutoff"})  # fmt: skip
    stable = (simulation.landcover == LC_FOREST) & (simulation.clearing_date < 0)
    far = ~ndimage.binary_dilation(changed, iterations=6)
    rr, cc = np.nonzero(ndimage.binary_erosion(stable & far, iterations=7))
    for k in np.random.default_rng(0).choice(len(rr), 3, replace=False):
        x, y = transform * (cc[k] + 0.5, rr[k] + 0.5)
        rows.append({"plot_id": f"forest-{k}", "geometry": Point(x, y), "area_ha": 1.0,
                     "truth": "deforestation_free"})  # fmt: skip
    rr, cc = np.nonzero(ndimage.binary_erosion(simulation.landcover == LC_PASTURE, iterations=6))
    x, y = transform * (cc[len(rr) // 2] + 0.5, rr[len(rr) // 2] + 0.5)
    rows.append({"plot_id": "pasture", "geometry": box(x - 40, y - 40, x + 40, y + 40),
                 "truth": "not_forest_at_cutoff"})  # fmt: skip
    return gpd.GeoDataFrame(rows, crs=simulation.crs).to_crs(4326)


def _store(settings: Settings, simulation, alerts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    footprint = box(*simulation.bounds_lonlat)
    scenes = gpd.GeoDataFrame(
        {
            "scene_id": [f"sim-{a.index:03d}" for a in simulation.acquisitions],
            "acquired_at": [a.datetime for a in simulation.acquisitions],
            "cloud_cover": [a.cloud_cover for a in simulation.acquisitions],
        },
        geometry=[footprint] * len(simulation.acquisitions),
        crs="EPSG:4326",
    )
    with connect(settings) as conn, conn.cursor() as cur:
        for row in alerts.itertuples():
            cur.execute(
                """INSERT INTO alerts (alert_id, aoi_id, alert_date, confirmed_date, confidence,
                    confidence_level, status, area_ha, method, model_version, geohash, geom)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'xxxxx',
                    ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)))""",
                (row.alert_id, row.aoi_id, row.alert_date, row.confirmed_date, row.confidence,
                 row.confidence_level, row.status, row.area_ha, row.method, row.model_version,
                 json.dumps(mapping(row.geometry))),
            )  # fmt: skip
        for row in scenes.itertuples():
            cur.execute(
                """INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                    acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key,
                    checksum, size_bytes, footprint)
                VALUES (%s, %s, 'eudr-area', 'simulated', 's2l2a_bands', 'xxxxx', %s, %s,
                    %s, 128, 128, %s, 'b', %s, 'c', 1, ST_GeomFromText(%s, 4326))""",
                (row.scene_id, row.scene_id, row.acquired_at, row.cloud_cover,
                 str(simulation.crs), ["B02"], f"k/{row.scene_id}", row.geometry.wkt),
            )  # fmt: skip
        cur.execute(
            "INSERT INTO lake_sync (delta_table, table_uri, delta_version, mode, lake_uri) "
            "VALUES ('alerts', 's3://b/lake/alerts', 7, 'incremental', 's3://b/lake')"
        )
        conn.commit()
    return scenes


def test_plot_verdicts_match_the_simulator_truth(
    catalog: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    simulation, alerts, baseline = _simulated_area(tmp_path)
    truth = _truth_plots(simulation)
    assert (truth["truth"] == "deforestation").sum() == 4  # four clearings after the cut-off
    scenes = _store(catalog, simulation, alerts)
    plots_file = tmp_path / "plots.geojson"
    truth.to_file(plots_file, driver="GeoJSON")

    monkeypatch.setenv("CANOPYWATCH_PG_SCHEMA", catalog.pg_schema)
    out = tmp_path / "check"
    capsys.readouterr()
    code = cli.main(
        ["plots", "check", str(plots_file), "--out", str(out), "--baseline", str(baseline)]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    results = gpd.read_file(out / "plots.geojson")
    verdicts = dict(zip(results["plot_id"], results["verdict"], strict=True))
    assert verdicts == dict(zip(truth["plot_id"], truth["truth"], strict=True))
    assert summary["verdicts"]["deforestation"] == 4 and summary["plots"] == len(truth)

    deforested = results[results["verdict"] == "deforestation"].set_index("plot_id")
    for plot_id, row in deforested.iterrows():
        event_start = dt.date.fromisoformat(str(plot_id)[-10:])
        first = dt.date.fromisoformat(row["first_alert_date"])
        assert event_start <= first <= event_start + dt.timedelta(days=60)
        # most of the clearing is alerted, high confidence, by the detector that ran
        assert row["deforested_high_ha"] >= 0.6 * row["checked_ha"]
        assert row["max_confidence"] >= 0.8 and row["model_versions"] == "harmonic-v1"
        assert set(row["alert_ids"].split(",")) <= set(alerts["alert_id"])
        assert row["forest_share_at_cutoff"] >= 0.9
    free = results[results["verdict"] == "deforestation_free"]
    assert (free["forest_share_at_cutoff"] == 1.0).all() and (free["deforested_ha"] == 0).all()
    assert (results["observations_since_cutoff"] == summary_days(scenes)).all()

    # lineage and the other outputs
    document = json.loads((out / "plots.geojson").read_text())
    lineage = document["canopywatch"]["lineage"]
    assert lineage["delta alerts version"].startswith("7 ")
    assert lineage["model versions"] == "harmonic-v1"
    assert lineage["forest baselines"] == baseline.name
    table = pd.read_csv(out / "plots.csv")
    assert list(table["plot_id"]) == list(truth["plot_id"]) and {"lat", "lon"} <= set(table)
    html = (out / "report.html").read_text()
    assert "Plots that need attention (4)" in html and "Contains modified Copernicus" in html

    # the vectorised check and the one-plot-at-a-time reference agree
    plots = read_plots(plots_file)
    evidence = Evidence(alerts, scenes, [baseline])
    assert list(check_plots(plots, evidence)["verdict"]) == naive_check(plots, evidence)

    # too few observations: intact forest becomes "insufficient data", clearings stay
    capsys.readouterr()
    assert cli.main(["plots", "check", str(plots_file), "--out", str(tmp_path / "thin"),
                     "--baseline", str(baseline), "--min-observations", "500"]) == 0  # fmt: skip
    thin = gpd.read_file(tmp_path / "thin" / "plots.geojson").set_index("plot_id")["verdict"]
    assert {thin[p] for p in truth["plot_id"] if p.startswith("forest-")} == {"insufficient_data"}
    assert (thin == "deforestation").sum() == 4

    # a file that cannot be read: one line, exit 2
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,z\n")
    capsys.readouterr()
    assert cli.main(["plots", "check", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def summary_days(scenes: gpd.GeoDataFrame) -> int:
    acquired = pd.to_datetime(scenes["acquired_at"], utc=True)
    usable = (acquired.dt.date > CUTOFF) & (scenes["cloud_cover"] <= 80)
    return int(acquired[usable].dt.date.nunique())
