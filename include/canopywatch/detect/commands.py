"""``canopywatch detect`` and ``canopywatch evaluate``.

    canopywatch detect --index-stack DIR --index ndvi --date-pattern 'NDVI_%Y-%m-%d' --out alerts.geojson
    canopywatch detect --scenes DIR [--band-order B02,B03,B04,B08,B11,B12,SCL,dataMask] --out alerts.gpkg
    canopywatch detect --scenes DIR --layout theia --date-pattern '_(\\d{8})-' --out alerts.geojson
    canopywatch evaluate --alerts alerts.geojson --labels labels.gpkg --grid-from scene.tif

(Scoring on simulated held-out scenarios is a dev-kit command:
``python -m canopywatch_dev.detection evaluate --scenarios typical,haze``.)

``cli.py`` calls ``register(subparsers)``; each parser sets ``handler``. Bad input prints
one line and returns exit code 2 (``run`` does that around a handler).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from canopywatch.output import with_examples

EXIT_USAGE = 2
DEFAULT_DATE_PATTERN = r"(\d{4}-\d{2}-\d{2}|\d{8})"
# one line per summary, also when stderr is a log or a pipe
console = Console(stderr=True, soft_wrap=True, highlight=False)


def register(subparsers: Any) -> None:
    detect = subparsers.add_parser(
        "detect",
        **with_examples(
            "deforestation alerts from a folder of GeoTIFFs",
            "canopywatch detect --index-stack ndvi/ --index ndvi --date-pattern 'NDVI_%Y-%m-%d' "
            "--out alerts.geojson",
            "canopywatch detect --scenes scenes/ --out alerts.gpkg --quicklook alerts.png",
            "canopywatch detect --scenes theia/ --layout theia --date-pattern '_(\\d{8})-' "
            "--out alerts.geojson",
            "canopywatch detect --scenes scenes/ --method xgboost --model ml/models/s2 --out a.gpkg",
        ),
    )
    source = detect.add_mutually_exclusive_group(required=True)
    source.add_argument("--index-stack", type=Path, help="folder of per-date single-index GeoTIFFs")
    source.add_argument("--scenes", type=Path, help="folder of per-date multi-band S2 GeoTIFFs")
    detect.add_argument("--index", default="ndvi", help="index held by --index-stack files")
    detect.add_argument(
        "--date-pattern",
        default=DEFAULT_DATE_PATTERN,
        help="strptime format (NDVI_%%Y%%m%%d) or regex with one group, matched in file names",
    )
    detect.add_argument(
        "--band-order",
        default=None,
        help="band names of the --scenes files in file order (SCL, dataMask, CLM recognised); "
        "default: the files' band descriptions, else B02,B03,B04,B08,B11,B12,SCL,dataMask",
    )
    detect.add_argument(
        "--layout",
        choices=("multiband", "theia"),
        default="multiband",
        help="theia: per-date sub-folders of *_FRE_B*.tif files and MASKS/*_CLM_R2.tif",
    )
    detect.add_argument(
        "--dn-scale",
        type=float,
        default=None,
        help="reflectance = (DN + offset) / scale; default: tag BOA_QUANTIFICATION_VALUE, else 10000",
    )
    detect.add_argument(
        "--dn-offset",
        type=float,
        default=None,
        help="default: tag BOA_ADD_OFFSET, else 0 (-1000 for raw DN of baseline >= 04.00)",
    )
    detect.add_argument("--scale", type=float, default=None, help="index value multiplier")
    detect.add_argument(
        "--nodata", type=float, default=None, help="no-data value (default: the files' own)"
    )
    detect.add_argument(
        "--method",
        choices=("harmonic", "baseline", "xgboost"),
        default="harmonic",
        help="harmonic (default, season-aware per-pixel history), baseline (the earlier "
        "statistical detector) or xgboost (needs --model)",
    )
    detect.add_argument("--model", type=Path, default=None, help="model folder for xgboost")
    detect.add_argument(
        "--confidence",
        choices=("statistical", "xgboost"),
        default="statistical",
        help="the alerts' confidence: the harmonic detector's own (default) or the shipped "
        "XGBoost candidate scorer's (Sentinel-2 scenes, method harmonic; see README)",
    )
    detect.add_argument(
        "--history-start",
        default=None,
        help="first date of the stable history (default: the first date)",
    )
    detect.add_argument(
        "--monitor-start",
        default=None,
        help="nothing is alerted before this date (default: 90 days after the first date)",
    )
    detect.add_argument(
        "--forest-mask",
        type=Path,
        default=None,
        help="forest baseline raster (non-zero = forest) or polygons; default: from the history",
    )
    detect.add_argument(
        "--plantations",
        type=Path,
        default=None,
        help="plantation map raster (non-zero = planted) or polygons, e.g. the Spatial Database "
        "of Planted Trees: a cut there is a plantation_harvest, not a deforestation alert",
    )
    detect.add_argument(
        "--forest-min", type=float, default=None, help="forest threshold of the index (peak)"
    )
    detect.add_argument(
        "--invalid-scl",
        default="0,1,3,8,9,10,11",
        help="SCL classes masked as not clear (default: no data, saturated, cloud shadow, "
        "clouds, cirrus, snow: 0,1,3,8,9,10,11)",
    )
    detect.add_argument(
        "--dilation",
        type=int,
        default=None,
        help="grow the cloud/shadow mask (and an index stack's no-data, its cloud mask) by "
        "this many pixels: their soft edges are not flagged (default: about 20 m, 2 px at "
        "10 m, 1 px at 30 m; 0 keeps e.g. Landsat 7 SLC-off stripes as they are)",
    )
    detect.add_argument(
        "--mmu-ha",
        type=float,
        default=0.1,
        help="minimum mapping unit: smaller alert polygons are dropped, ha (default 0.1)",
    )
    detect.add_argument(
        "--aoi", default="cli", help="area id written into the alerts (default: cli)"
    )
    detect.add_argument(
        "--window",
        type=int,
        default=512,
        help="scoring window, px a side (memory vs overhead; default 512; an area of fewer "
        "than 4 windows is split into 4, down to 128 px)",
    )
    detect.add_argument(
        "--workers",
        type=int,
        default=None,
        help="windows scored at once (default: 2 on a machine with 2 or more cores)",
    )
    detect.add_argument("--out", type=Path, required=True, help=".geojson or .gpkg")
    detect.add_argument("--quicklook", type=Path, default=None, help="PNG before/after")
    detect.set_defaults(handler=detect_command)

    evaluate = subparsers.add_parser(
        "evaluate",
        **with_examples(
            "accuracy of alerts against labels (date-aware: early alerts reported apart)",
            "canopywatch evaluate --alerts alerts.geojson --labels labels.gpkg --grid-from scene.tif",
            "canopywatch evaluate --alerts alerts.gpkg --labels lossyear.tif --year 2021 "
            "--out metrics.json",
        ),
    )
    evaluate.add_argument("--alerts", type=Path, default=None, help="alerts to score vs --labels")
    evaluate.add_argument(
        "--labels", type=Path, default=None, help="dated polygons or loss-year tif"
    )
    evaluate.add_argument(
        "--date-column",
        default=None,
        help="column of the label polygons holding the event date (default: the first of "
        "view_date, date, image_date, loss_date, alert_date)",
    )
    evaluate.add_argument("--grid-from", type=Path, default=None, help="GeoTIFF giving the grid")
    evaluate.add_argument("--as-of", default=None, help="evaluation date (default: today)")
    evaluate.add_argument(
        "--year",
        type=int,
        default=None,
        help="score one loss year of a loss-year raster (e.g. Hansen GFC lossyear): only that "
        "year's loss is reference and only alerts dated in it count; as-of its last day",
    )
    evaluate.add_argument(
        "--year-base",
        type=int,
        default=2000,
        help="loss-year raster value 1 means this year + 1 (Hansen GFC: 2000)",
    )
    evaluate.add_argument("--out", type=Path, default=None, help="metrics JSON")
    evaluate.set_defaults(handler=evaluate_command)


def run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except (ValueError, OSError, KeyError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"canopywatch: {message}", file=sys.stderr)
        return EXIT_USAGE


def _masking(args: argparse.Namespace) -> Any:
    from canopywatch.detect.observations import MaskingConfig

    try:
        classes = frozenset(int(v) for v in args.invalid_scl.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"--invalid-scl {args.invalid_scl!r}: comma-separated integers") from exc
    if args.dilation is not None and args.dilation < 0:
        raise ValueError("--dilation must be >= 0")
    if args.dilation is None:
        return MaskingConfig(invalid_scl=classes)
    return MaskingConfig(invalid_scl=classes, dilation_px=args.dilation)


def build_source(args: argparse.Namespace) -> Any:
    from canopywatch.detect.index_stack import (
        THEIA_BAND_PATTERNS,
        IndexStackSource,
        dated_files,
        scene_folder_source,
    )

    if args.index_stack is not None:
        return IndexStackSource(
            dated_files(args.index_stack, args.date_pattern),
            args.index,
            nodata=args.nodata,
            scale=args.scale,
            dilation_px=args.dilation,
        )
    band_order = (
        None
        if args.band_order is None
        else [name.strip() for name in args.band_order.split(",") if name.strip()]
    )
    return scene_folder_source(
        args.scenes,
        date_pattern=args.date_pattern,
        band_order=band_order,
        band_patterns=THEIA_BAND_PATTERNS if args.layout == "theia" else None,
        masking=_masking(args),
        dn_scale=args.dn_scale,
        dn_offset=args.dn_offset,
        nodata=args.nodata,
    )


def _day_arg(value: str | None, flag: str) -> int | None:
    from canopywatch.dates import days_since_epoch

    if value is None:
        return None
    try:
        return days_since_epoch(dt.date.fromisoformat(value))
    except ValueError as exc:
        raise ValueError(f"{flag} {value!r}: use YYYY-MM-DD") from exc


def choose_detector(args: argparse.Namespace, index_stack: bool, grid: Any) -> Any:
    from canopywatch.detect.detector import build_detector, load_grid_mask

    method = "xgboost" if args.model is not None and args.method == "harmonic" else args.method
    history_start = _day_arg(args.history_start, "--history-start")
    monitor_start = _day_arg(args.monitor_start, "--monitor-start")
    if history_start is not None and monitor_start is not None and history_start >= monitor_start:
        raise ValueError("--history-start must be before --monitor-start")
    scored = args.confidence == "xgboost"
    if scored and (method != "harmonic" or index_stack):
        raise ValueError("--confidence xgboost needs method harmonic on Sentinel-2 scenes")
    return build_detector(
        method,
        index=args.index.lower() if index_stack else None,
        model_dir=args.model,
        history_start_day=history_start,
        monitor_start_day=monitor_start,
        forest_mask=None if args.forest_mask is None else load_grid_mask(args.forest_mask, grid),
        plantations=None
        if args.plantations is None
        else load_grid_mask(args.plantations, grid, "--plantations"),
        forest_min=args.forest_min,
        candidate_scores=scored,
    )


def _sibling(out: Path, suffix: str, extension: str | None = None) -> Path:
    return out.with_name(f"{out.stem}_{suffix}{extension or out.suffix}")


def detect_command(args: argparse.Namespace) -> int:
    from rasterio.windows import Window

    from canopywatch.detect.alerts import AlertPolicy, active_alerts, other_changes
    from canopywatch.detect.detector import detect_area
    from canopywatch.detect.layers import write_disturbance, write_forest_baseline
    from canopywatch.detect.observations import check_reflectance
    from canopywatch.detect.quicklook import (
        composite_periods,
        largest_alert_series,
        write_quicklook,
    )
    from canopywatch.export.alerts import write_alerts

    if args.mmu_ha <= 0:
        raise ValueError("--mmu-ha must be > 0")
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be >= 1")
    if args.out.suffix.lower() not in {".geojson", ".json", ".gpkg"}:
        raise ValueError(f"--out {args.out}: use .geojson or .gpkg")
    source = build_source(args)
    grid = source.grid
    if args.index_stack is None:
        size = min(256, grid.width), min(256, grid.height)
        check_reflectance(source.read(Window(0, 0, size[0], size[1])))
    detector = choose_detector(args, args.index_stack is not None, grid)
    result = detect_area(
        source,
        detector,
        aoi=args.aoi,
        window_size=args.window,
        policy=AlertPolicy(mmu_ha=args.mmu_ha),
        progress=True,
        workers=args.workers,
    )
    monitored = int(result.pixel_alerts.monitored.sum())
    if monitored == 0:
        raise ValueError(
            f"no forest pixel was monitored over {len(result.days)} dates: the history is too "
            "short or cloudy, nothing looks like forest (check --dn-offset, --band-order, "
            "--index/--scale), or --forest-mask misses the area"
        )
    alerts = active_alerts(result.alerts)
    write_alerts(alerts, args.out)
    others = other_changes(result.alerts)
    outputs = [str(args.out)]
    if len(others):
        outputs.append(str(write_alerts(others, _sibling(args.out, "other_changes"))))
    outputs.append(
        str(write_forest_baseline(result, _sibling(args.out, "forest_baseline", ".tif")))
    )
    outputs.append(str(write_disturbance(result, _sibling(args.out, "disturbance", ".tif"))))
    if args.quicklook is not None:
        write_quicklook(
            result.before_rgb,
            result.after_rgb,
            alerts,
            result.grid.transform,
            args.quicklook,
            title=f"{args.aoi} {result.model_version}",
            dates=composite_periods(result.days),
            crs=result.grid.crs,
            series=largest_alert_series(source, alerts),
            others=others,
        )
        outputs.append(str(args.quicklook))
    high = int((alerts["status"] == "high").sum()) if len(alerts) else 0
    withdrawn = int((others["status"] == "withdrawn").sum()) if len(others) else 0
    harvests = int((others["status"] == "plantation_harvest").sum()) if len(others) else 0
    console.print(
        f"{len(alerts)} alerts ({high} high, {len(alerts) - high} low; "
        f"{float(alerts['area_ha'].sum()) if len(alerts) else 0.0:.2f} ha), {withdrawn} withdrawn, "
        f"{harvests} plantation harvests over {len(result.days)} dates, {monitored} forest "
        f"pixels monitored ({monitored * result.grid.pixel_area_m2 / 1e4:.1f} ha), "
        f"{result.model_version} -> {', '.join(outputs)}"
    )
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    import geopandas as gpd
    import rasterio

    from canopywatch.dates import days_since_epoch
    from canopywatch.detect.evaluate import evaluate_alerts
    from canopywatch.detect.labels import reference_from_loss_year, reference_from_polygons
    from canopywatch.geo import Grid

    if args.alerts is None or args.labels is None:
        raise ValueError("--alerts and --labels go together")
    raster_labels = args.labels.suffix.lower() in {".tif", ".tiff"}
    grid_path = args.grid_from or (args.labels if raster_labels else None)
    if grid_path is None:
        raise ValueError("polygon labels need --grid-from GEOTIFF to define the grid")
    with rasterio.open(grid_path) as src:
        grid = Grid(src.crs, src.transform, src.width, src.height)
    if args.year is not None and not raster_labels:
        raise ValueError("--year needs a loss-year raster as --labels")
    reference = (
        reference_from_loss_year(
            args.labels,
            grid,
            year_base=args.year_base,
            years=None if args.year is None else [args.year],
        )
        if raster_labels
        else reference_from_polygons(args.labels, grid, date_column=args.date_column)
    )
    alerts = gpd.read_file(args.alerts).to_crs(grid.crs)
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.date.today()
    if args.year is not None:
        dates = [str(value)[:10] for value in alerts["alert_date"]]
        in_year = [date.startswith(f"{args.year:04d}-") for date in dates]
        alerts = alerts[in_year].reset_index(drop=True)
        as_of = dt.date(args.year, 12, 31) if args.as_of is None else as_of
    evaluation = evaluate_alerts(alerts, reference, as_of_day=days_since_epoch(as_of))
    summary = evaluation.summary()
    Console().print_json(json.dumps(summary, default=str))
    console.print(_early_note(summary), highlight=False)
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2, default=str))
    return 0


def _early_note(summary: dict[str, Any]) -> str:
    """The line that says how early alerts and latencies were counted."""
    from canopywatch.detect.evaluate import DATE_TOLERANCE_DAYS

    early = int(summary.get("early_alerts") or 0)
    latency = summary.get("latency_days") or {}
    return (
        f"{early} early alert(s): dated more than {DATE_TOLERANCE_DAYS} days before the event "
        "they overlap (the event had not happened yet); counted as false alerts for user's "
        "accuracy and left out of the latencies, which are measured from each event to the "
        f"first timely alert on it (n={latency.get('n', 0)}) and are never negative"
    )


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"canopywatch: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(prog="canopywatch")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    register(subparsers)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    return run(args.handler, args)


if __name__ == "__main__":
    raise SystemExit(main())
