"""``canopywatch detect`` / ``evaluate`` on real data (read in place from ../shared) and on
bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from canopywatch.detect.commands import EXIT_USAGE, main

SHARED = Path(__file__).parents[2].parent / "shared" / "data" / "real"
SLOVENIA = SHARED / "eolearn-slovenia"
THEIA = SHARED / "theia-s2-T31UFQ" / "SENTINEL" / "ZoneTest"


def write_slovenia_ndvi(folder: Path) -> int:
    """The eo-learn NDVI cube as per-date GeoTIFFs, nodata where invalid or cloudy."""
    ndvi = np.load(SLOVENIA / "data" / "NDVI.npy")[..., 0]
    valid = np.load(SLOVENIA / "mask" / "IS_VALID.npy")[..., 0]
    cloud = np.load(SLOVENIA / "mask" / "CLM.npy")[..., 0].astype(bool)
    stamps = json.loads((SLOVENIA / "timestamps.json").read_text())
    ring = json.loads((SLOVENIA / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    height, width = ndvi.shape[1:]
    transform = Affine(
        (max(xs) - min(xs)) / width, 0, min(xs), 0, -(max(ys) - min(ys)) / height, max(ys)
    )
    folder.mkdir(parents=True, exist_ok=True)
    for number, stamp in enumerate(stamps):
        values = np.where(valid[number] & ~cloud[number], ndvi[number], -9999.0).astype(np.float32)
        date = dt.date.fromisoformat(stamp[:10])
        with rasterio.open(
            folder / f"NDVI_{date:%Y-%m-%d}_{number:02d}.tif",
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=1,
            dtype="float32",
            crs="EPSG:32633",
            transform=transform,
            nodata=-9999.0,
        ) as dst:
            dst.write(values, 1)
    return height * width


@pytest.mark.slow
def test_detect_index_stack_on_real_slovenia_ndvi(tmp_path: Path) -> None:
    pixels = write_slovenia_ndvi(tmp_path / "ndvi")
    out = tmp_path / "alerts.geojson"
    code = main(
        [
            "detect",
            "--index-stack",
            str(tmp_path / "ndvi"),
            "--index",
            "ndvi",
            "--date-pattern",
            "NDVI_%Y-%m-%d",
            "--out",
            str(out),
            "--aoi",
            "slovenia",
            "--quicklook",
            str(tmp_path / "q.png"),
        ]
    )
    assert code == 0
    alerts = gpd.read_file(out)
    # mostly stable forest: (almost) no alerts; observed 1 low alert, 0.11 ha of the 101 ha
    alerted_ha = float(alerts["area_ha"].sum()) if len(alerts) else 0.0
    assert alerted_ha < 0.02 * pixels * 0.01
    assert len(alerts) <= 3
    assert (tmp_path / "q.png").stat().st_size > 1000
    # ... because the forest is monitored, not because it is not: its LULC forest is in
    # the forest baseline (snowy winters are not learnt as a season of an NDVI-only stack)
    lulc = np.load(SLOVENIA / "mask_timeless" / "LULC.npy")[..., 0]
    with rasterio.open(tmp_path / "alerts_forest_baseline.tif") as src:
        monitored = src.read(1) == 1
    assert monitored[lulc == 2].mean() >= 0.9


@pytest.mark.slow
def test_detect_scenes_on_real_theia_band_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerts.gpkg"
    code = main(
        [
            "detect",
            "--scenes",
            str(THEIA),
            "--layout",
            "theia",
            "--date-pattern",
            r"_(\d{8})-",
            "--out",
            str(out),
            "--aoi",
            "theia",
        ]
    )
    assert code == 0
    alerts = gpd.read_file(out)
    area_ha = 80 * 80 * 0.01
    # bark-beetle dieback is real forest loss here, but most of the forest stays
    assert (alerts["area_ha"].sum() if len(alerts) else 0.0) < 0.15 * area_ha
    # the summary is one line when stderr is not a terminal (a log, a pipe), not folded at 80
    summary = [line for line in capsys.readouterr().err.splitlines() if " alerts (" in line]
    assert len(summary) == 1 and "forest pixels monitored" in summary[0]
    assert str(out) in summary[0]


THEIA_ARGS = ["--scenes", str(THEIA), "--layout", "theia", "--date-pattern", r"_(\d{8})-"]


@pytest.mark.slow
def test_xgboost_confidence_rescores_the_same_alerts(tmp_path: Path) -> None:
    """--confidence xgboost changes the confidence of the same alerts, within their status's
    band, and names the scorer in model_version; the default keeps the statistical one."""
    plain, scored = tmp_path / "plain.gpkg", tmp_path / "scored.gpkg"
    assert main(["detect", *THEIA_ARGS, "--out", str(plain)]) == 0
    assert main(["detect", *THEIA_ARGS, "--confidence", "xgboost", "--out", str(scored)]) == 0
    before, after = gpd.read_file(plain), gpd.read_file(scored)
    assert len(before) > 0
    assert list(before["alert_id"]) == list(after["alert_id"])
    assert list(before["status"]) == list(after["status"])
    assert set(before["model_version"]) == {"harmonic-v1"}
    assert {v.split("+")[0] for v in after["model_version"]} == {"harmonic-v1"}
    assert all(v.split("+")[1].startswith("candidates-") for v in after["model_version"])
    high = after["status"] == "high"
    assert after.loc[high, "confidence"].between(0.8, 0.99).all()
    assert after.loc[~high, "confidence"].between(0.01, 0.79).all()
    assert not np.allclose(before["confidence"], after["confidence"])


def test_xgboost_confidence_needs_the_harmonic_method(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["detect", *THEIA_ARGS, "--method", "baseline", "--confidence", "xgboost",
            "--out", "a.gpkg"]  # fmt: skip
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--confidence xgboost needs method harmonic" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "--index-stack", "/nonexistent", "--out", "a.geojson"],
        ["detect", "--scenes", "/nonexistent", "--out", "a.geojson"],
        ["detect", "--out", "a.geojson"],
        ["evaluate", "--alerts", "a.geojson"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    # one line that names the problem, no traceback
    assert len(err.splitlines()) == 1 and err.startswith("canopywatch: ")


def test_bad_date_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.zeros((1, 4, 4), dtype=np.float32)
    with rasterio.open(
        tmp_path / "x_20240101.tif",
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        crs="EPSG:32633",
        transform=Affine(10, 0, 0, 0, -10, 0),
    ) as dst:
        dst.write(data)
    code = main(
        [
            "detect",
            "--index-stack",
            str(tmp_path),
            "--date-pattern",
            "NDVI_%Y",
            "--out",
            str(tmp_path / "a.geojson"),
        ]
    )
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("damage", ["truncated", "corrupt data"])
def test_a_damaged_scene_is_named_in_one_line_and_exit_2(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A download cut short, or whose compressed data is damaged, in an otherwise good
    folder: the error names the file (GDAL alone says "Read failed. See previous exception
    for details.")."""
    rng = np.random.default_rng(0)
    names = ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")
    for day in (1, 6, 11):
        path = tmp_path / f"S2A_MSIL2A_202401{day:02d}.tif"
        data = rng.integers(1200, 4000, (7, 64, 64)).astype(np.uint16)
        data[6] = 4  # SCL vegetation
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=7,
                           dtype="uint16", crs="EPSG:32633", compress="deflate",
                           transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:  # fmt: skip
            dst.write(data)
            dst.descriptions = names
            dst.update_tags(BOA_ADD_OFFSET="-1000", BOA_QUANTIFICATION_VALUE="10000")
    broken = tmp_path / "S2A_MSIL2A_20240106.tif"
    raw = bytearray(broken.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[1000:20000] = bytes(19000)  # inside the deflated strips, the header intact
    broken.write_bytes(bytes(raw))
    code = main(["detect", "--scenes", str(tmp_path), "--out", str(tmp_path / "a.geojson")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith("canopywatch: ") and "S2A_MSIL2A_20240106.tif" in last
    assert "previous exception" not in last
