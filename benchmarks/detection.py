"""Detection benchmark: the default detector (harmonic) against the earlier statistical
baseline, side by side, on data neither was tuned on.

    python benchmarks/detection.py [--seeds 1] [--size 128] [--sources landscapes,simulator]
                                   [--real] [--landsat] [--quick] [--json out.json]

Sources, each held out (evaluation seeds only):
* ``landscapes``: the independent generator ``canopywatch_dev.landscapes`` (deciduous
  forest, forest-like irrigated crops, plantation rotations, gradual and sub-pixel
  clearings, understorey fire before clearing, unflagged haze, orbit brightness,
  misregistration, wet-season gaps), one row per landscape type;
* ``simulator``: the project's own simulator, one row per scenario type;
* ``--landsat``: one loss year scored Hansen-style (pixel P/R/F1 of the alerts dated in
  2016 against 2016 loss) on Landsat-era NDVI stacks: the same generator at 30 m over
  2006-2016 as the Landsat archive holds it (TM, ETM+ SLC-off stripes, OLI's NDVI step),
  monitoring from 2016-01-01;
* ``--real``: the shared real series (``../shared/data/real``): the share of the Slovenian
  LULC forest that is alerted (should be ~0) and, on the French THEIA series, the alerted
  share inside vs outside its national forest mask; on both, the share of each mapped class
  that the forest baseline layer holds.

Columns per method: pixel precision / recall / F1, event user's / producer's accuracy
(events >= 0.1 ha; an alert dated before its event is false), early alerts, latency median
and p90 in days and in clear observations, false-alert hectares per land-cover class, the alerted
hectares on dated non-deforestation changes (a plantation cut, a crop harvest) that began in
the series' last year and on all of them (a replanted stand has not closed its canopy again
within a year, so its regrowth cannot tell it from a clearing yet), the share of
the alerted area that is false on a confounder (deciduous forest, forest-like crops,
plantations: the issue's "< 5 %" target), and
pixel-observations per second. Every event of the series counts in "event PA", also
those that begin in the harmonic detector's 90-day initial history (nothing is alerted
before the monitoring start); "PA from monitor start" counts the events that begin on or
after it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from canopywatch.detect.alerts import active_alerts, polygonize
from canopywatch.detect.baseline import BaselineParams, PixelAlerts, detect_baseline
from canopywatch.detect.detector import GridMask, HarmonicDetector
from canopywatch.detect.evaluate import (
    ReferenceData,
    rasterize_alerts,
)
from canopywatch.detect.harmonic import default_monitor_start
from canopywatch.detect.observations import ObservationStack
from canopywatch_dev.detection.cases import landscape_cases, simulator_cases
from canopywatch_dev.detection.scoring import pooled
from canopywatch_dev.detection.scoring import score as score_case

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "real"
console = Console(width=200)
Method = Callable[[ObservationStack], PixelAlerts]
METHODS: dict[str, Method] = {
    "harmonic (default)": lambda stack: HarmonicDetector().detect(stack),
    "baseline (earlier)": lambda stack: detect_baseline(stack, BaselineParams()),
}


PLANTATION_MAP = "harmonic + plantation map"


def methods_for(stack: ObservationStack, reference: ReferenceData) -> dict[str, Method]:
    """The methods, and where the reference knows its plantations, the default given them as
    a user's plantation map (as the Spatial Database of Planted Trees would): the figure for
    a user who has one."""
    planted = [code for code, name in reference.landcover_names.items() if name == "plantation"]
    if reference.landcover is None or not planted:
        return METHODS
    plantations = GridMask(np.isin(reference.landcover, planted), stack.transform)
    return {
        **METHODS,
        PLANTATION_MAP: lambda s: HarmonicDetector(plantations=plantations).detect(s),
    }


def score(stack: ObservationStack, reference: ReferenceData, method: Method) -> dict[str, Any]:
    began = time.perf_counter()
    pixel_alerts = method(stack)
    seconds = time.perf_counter() - began
    # the harmonic detector alerts nothing before its monitoring start (the documented
    # default: after the first 90 days): PA over the events that begin from then on too
    return score_case(stack, reference, pixel_alerts,
                      monitor_start=default_monitor_start(stack.days), seconds=seconds)  # fmt: skip


def real_series() -> dict[str, Any]:
    """Alerted shares on the shared real series with the CLI's defaults, and how much of each
    mapped class the forest baseline layer holds."""
    import tempfile

    import geopandas as gpd
    import rasterio

    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_detect_cli import SLOVENIA, THEIA, write_slovenia_ndvi  # type: ignore[import-not-found]

    from canopywatch.detect.commands import main as cli

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_slovenia_ndvi(folder / "ndvi")
        for method in ("harmonic", "baseline"):
            alerts_path = folder / f"slovenia-{method}.geojson"
            cli(["detect", "--index-stack", str(folder / "ndvi"), "--index", "ndvi",
                 "--date-pattern", r"NDVI_(\d{4}-\d{2}-\d{2})", "--method", method,
                 "--out", str(alerts_path)])  # fmt: skip
            lulc = np.load(SLOVENIA / "mask_timeless" / "LULC.npy")[..., 0]
            first = sorted((folder / "ndvi").glob("*.tif"))[0]
            with rasterio.open(first) as src:
                transform, crs, shape = src.transform, src.crs, src.shape
            alerted = _burn(gpd.read_file(alerts_path), crs, shape, transform)
            out[f"slovenia forest alerted share ({method})"] = float(alerted[lulc == 2].mean())
            out[f"slovenia grassland alerted share ({method})"] = float(alerted[lulc == 3].mean())
            layer = _forest_baseline(alerts_path)
            out[f"slovenia forest in the forest baseline ({method})"] = float(
                layer[lulc == 2].mean()
            )
            out[f"slovenia grassland in the forest baseline ({method})"] = float(
                layer[lulc == 3].mean()
            )
            theia_path = folder / f"theia-{method}.gpkg"
            cli(["detect", "--scenes", str(THEIA), "--layout", "theia", "--date-pattern",
                 r"_(\d{8})-", "--method", method, "--out", str(theia_path)])  # fmt: skip
            mask_path = THEIA.parents[1] / "Rasters" / "ZoneTest" / "BDForet_ZoneTest.tif"
            with rasterio.open(mask_path) as src:
                forest = src.read(1) > 0
                burned = _burn(gpd.read_file(theia_path), src.crs, src.shape, src.transform)
            out[f"theia alerted share inside forest mask ({method})"] = float(burned[forest].mean())
            out[f"theia alerted share outside forest mask ({method})"] = float(
                burned[~forest].mean()
            )
            layer = _forest_baseline(theia_path)
            out[f"theia mapped forest in the forest baseline ({method})"] = float(
                layer[forest].mean()
            )
            out[f"theia mapped non-forest in the forest baseline ({method})"] = float(
                layer[~forest].mean()
            )
    return out


LANDSAT_YEAR = 2016
LANDSAT_START = 2006


def landsat_year(seeds: int, size: int) -> dict[str, dict[str, float]]:
    """Hansen-style scoring of one loss year on Landsat-era NDVI stacks, as the real
    11-year series it stands in for: the independent generator at 30 m over 2006-2016
    seen as the Landsat archive holds it (``canopywatch_dev.landscapes.landsat``: TM, ETM+
    with SLC-off stripes, the 2012 gap, OLI's higher NDVI; cloud mask as no-data grown by
    its soft edge), clearings from 2014 on (older ones are history), monitoring from
    2016-01-01; pixel P/R/F1 of the alert polygons dated in 2016 against the loss first
    observable in 2016."""
    import datetime as dt

    from canopywatch.dates import days_since_epoch
    from canopywatch.detect.detector import build_detector
    from canopywatch_dev.landscapes import LANDSCAPE_TYPES, LandscapeConfig, generate
    from canopywatch_dev.landscapes.landsat import landsat_ndvi_stack

    first = days_since_epoch(dt.date(LANDSAT_YEAR, 1, 1))
    last = days_since_epoch(dt.date(LANDSAT_YEAR, 12, 31))
    start = dt.date(LANDSAT_START, 1, 1)
    events_after = float(
        days_since_epoch(dt.date(LANDSAT_YEAR - 2, 1, 1)) - days_since_epoch(start)
    )
    detectors = {
        "harmonic (default)": build_detector("harmonic", index="ndvi", monitor_start_day=first),
        "baseline (earlier)": build_detector("baseline", index="ndvi"),
    }
    counts: dict[str, np.ndarray] = {name: np.zeros(3) for name in detectors}
    for kind in LANDSCAPE_TYPES:
        for seed in range(seeds):
            config = LandscapeConfig(
                seed=500000 + 31 * seed, kind=kind, size_px=size, start=start,
                end=dt.date(LANDSAT_YEAR, 12, 31), revisit_days=8, pixel_m=30.0,
                n_events=(40, 60), event_after_days=events_after,
            )  # fmt: skip
            landscape = generate(config)
            stack = landsat_ndvi_stack(landscape, seed)
            clear = stack.clear
            loss = landscape.reference().clearing_day
            truth = (loss >= first) & (loss <= last)
            # a loss first seen in the year belongs to it, as in an annual loss map: a
            # clearing of late December with no clear look before 1 January is the year's
            looked = clear & (stack.days[:, None, None] < first)
            looked &= stack.days[:, None, None] >= loss[None, :, :]
            truth |= (loss >= 0) & (loss < first) & ~looked.any(axis=0)
            for name, detector in detectors.items():
                alerts = active_alerts(
                    polygonize(detector.detect(stack), stack.transform, stack.crs, aoi="b",
                               model_version="x")
                )  # fmt: skip
                if not alerts.empty:
                    dated = alerts["alert_date"].astype(str).str[:4] == str(LANDSAT_YEAR)
                    alerts = alerts[dated.to_numpy()]
                burned = rasterize_alerts(alerts, stack.shape, stack.transform) > 0
                counts[name] += ((burned & truth).sum(), (burned & ~truth).sum(),
                                 (~burned & truth).sum())  # fmt: skip
            console.log(f"scored landsat-era {kind} seed {seed}")
    out: dict[str, dict[str, float]] = {}
    for name, (tp, fp, fn) in counts.items():
        precision = tp / max(tp + fp, 1)
        recall = tp / max(tp + fn, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        out[name] = {"pixel_p": precision, "pixel_r": recall, "pixel_f1": f1,
                     "loss_px": float(tp + fn)}  # fmt: skip
    return out


def _forest_baseline(alerts_path: Path) -> Any:
    """The forest baseline layer the CLI wrote beside ``alerts_path``, as booleans."""
    import rasterio

    with rasterio.open(alerts_path.with_name(f"{alerts_path.stem}_forest_baseline.tif")) as src:
        return src.read(1) > 0


def _burn(alerts: Any, crs: Any, shape: tuple[int, int], transform: Any) -> Any:
    """Pixels inside any alert polygon on the given grid."""
    return rasterize_alerts(alerts.to_crs(crs), shape, transform) > 0


def throughput(size: int, window: int) -> dict[str, dict[str, float]]:
    """Pixel-observations per second of ``detect_area`` (the CLI's and the weekly DAG's
    path) over one two-year area of ``size`` px in ``window`` px windows, one window at a
    time against two at a time, and the earlier baseline, side by side in one run, and one
    scene of two thirds that size with the CLI's defaults (one 512 px window would hold it:
    it is split into 4, ``split_window_size``); and per CPU second of this process (all its
    threads), the figure other jobs on a shared machine disturb least."""
    from canopywatch.detect.detector import BaselineDetector, detect_area
    from canopywatch.detect.observations import ArraySource
    from canopywatch_dev.landscapes import LandscapeConfig, generate

    stack = generate(LandscapeConfig(seed=500009, kind="mixed", size_px=size)).stack()
    # the compiled loops are built once per install (numba's on-disk cache): not timed
    detect_area(ArraySource(stack.crop(slice(0, 32), slice(0, 32))), HarmonicDetector(), aoi="w")
    # a scene that one window would hold, with the CLI's defaults (512 px windows, 2 workers):
    # split into 4 windows
    scene = stack.crop(slice(0, (2 * size) // 3), slice(0, (2 * size) // 3))
    out: dict[str, dict[str, float]] = {}
    for name, detector, area, window_size, workers in (
        ("harmonic, 1 window at a time", HarmonicDetector(), stack, window, 1),
        ("harmonic, 2 at a time (default)", HarmonicDetector(), stack, window, 2),
        ("baseline (earlier), 2 at a time", BaselineDetector(), stack, window, 2),
        (f"harmonic, one {scene.shape[0]} px scene, CLI defaults", HarmonicDetector(), scene,
         512, None),
    ):  # fmt: skip
        cells = area.n_dates * area.shape[0] * area.shape[1]
        began, cpu = time.perf_counter(), time.process_time()
        detect_area(ArraySource(area), detector, aoi="speed", window_size=window_size,
                    workers=workers)  # fmt: skip
        out[name] = {
            "per_s": cells / (time.perf_counter() - began) / 1e6,
            "per_cpu_s": cells / (time.process_time() - cpu) / 1e6,
        }
        console.log(f"throughput {name}: {out[name]['per_s']:.2f} M px-obs/s")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="held-out seeds per type")
    parser.add_argument("--size", type=int, default=128, help="scene size in pixels (10 m)")
    parser.add_argument("--sources", default="landscapes,simulator")
    parser.add_argument("--real", action="store_true", help="also score the shared real series")
    parser.add_argument(
        "--landsat", action="store_true", help="also score one loss year of Landsat-like NDVI"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small and fast: 64 px, one seed, landscapes only"
    )
    parser.add_argument(
        "--throughput", action="store_true",
        help="also time detect_area over one 384 px area (192 px windows; --quick: 192/96)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.seeds, args.sources = 64, 1, "landscapes"

    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    generators = {"landscapes": landscape_cases, "simulator": simulator_cases}
    sources = [name for name in args.sources.split(",") if name]
    for source in sources:
        for case, stack, reference in generators[source](args.seeds, args.size):
            for method, function in methods_for(stack, reference).items():
                runs[(case, method)].append(score(stack, reference, function))
            console.log(f"scored {case}")
    for source in sources:
        keys = [k for k in runs if k[0].startswith(source)]
        for method in dict.fromkeys(k[1] for k in keys):
            runs[(f"{source}/ALL", method)] = [r for k in keys if k[1] == method for r in runs[k]]

    table = Table(title="Detection: harmonic (default) vs baseline (earlier), events >= 0.1 ha")
    for column in ("case", "method", "pixel P", "pixel R", "pixel F1", "event UA", "event PA",
                   "PA from monitor start", "alerts/events", "early", "latency d med/p90", "latency obs med/p90",
                   "false-alert ha by class", "alerted ha on dated changes: of the last year / all",
                   "alerted area on confounders", "M px-obs/s"):  # fmt: skip
        table.add_column(column)
    figures: dict[str, Any] = {}
    for (case, method), case_runs in runs.items():
        row = pooled(case_runs)
        figures[f"{case} | {method}"] = row
        table.add_row(
            case,
            method,
            f"{row['pixel_p']:.3f}",
            f"{row['pixel_r']:.3f}",
            f"{row['pixel_f1']:.3f}",
            f"{row['event_ua']:.3f}",
            f"{row['event_pa']:.3f}",
            f"{row['event_pa_monitoring']:.3f}",
            f"{row['alerts']}/{row['events']}",
            str(row["early"]),
            "{:.0f} / {:.0f}".format(*row["latency_days"]),
            "{:.0f} / {:.0f}".format(*row["latency_obs"]),
            ", ".join(f"{k} {v:.1f}" for k, v in row["false_ha"].items()) or "-",
            "{:.1f} / {:.1f}".format(*row["false_on_changes_ha"]),
            f"{100 * row['confounder_share']:.1f} %",
            f"{row['mpix_obs_s']:.2f}",
        )
    console.print(table)
    if args.real:
        real = real_series()
        figures["real"] = real
        real_table = Table(title="Real series (shared/data/real), CLI defaults")
        real_table.add_column("figure")
        real_table.add_column("value")
        for key, value in real.items():
            real_table.add_row(key, f"{value:.4f}")
        console.print(real_table)
    if args.landsat:
        landsat = landsat_year(args.seeds, min(args.size, 96))
        figures["landsat-era"] = landsat
        landsat_table = Table(
            title=f"Landsat-era NDVI, 30 m, {LANDSAT_START}-{LANDSAT_YEAR}: loss of {LANDSAT_YEAR} (pixels)"
        )
        for column in ("method", "pixel P", "pixel R", "pixel F1", "loss px"):
            landsat_table.add_column(column)
        for name, row in landsat.items():
            landsat_table.add_row(name, f"{row['pixel_p']:.3f}", f"{row['pixel_r']:.3f}",
                                  f"{row['pixel_f1']:.3f}", f"{row['loss_px']:.0f}")  # fmt: skip
        console.print(landsat_table)
    if args.throughput:
        size, window = (192, 96) if args.quick else (384, 192)
        speeds = throughput(size, window)
        figures["throughput M px-obs/s"] = speeds
        speed_table = Table(
            title=f"detect_area over a {size} px two-year area, {window} px windows"
        )
        columns = (
            "method",
            "M px-obs/s",
            "vs 1 at a time",
            "M px-obs per CPU s",
            "vs baseline per CPU s",
        )
        for column in columns:
            speed_table.add_column(column)
        one = speeds["harmonic, 1 window at a time"]["per_s"]
        baseline = speeds["baseline (earlier), 2 at a time"]["per_cpu_s"]
        load = os.getloadavg()[0]
        for name, value in speeds.items():
            speed_table.add_row(name, f"{value['per_s']:.2f}", f"{value['per_s'] / one:.2f}x",
                                f"{value['per_cpu_s']:.2f}", f"{value['per_cpu_s'] / baseline:.2f}x")  # fmt: skip
        speed_table.caption = f"load average {load:.1f} at the end ({os.cpu_count()} cores)"
        console.print(speed_table)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
