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

EXIT_USAGE = 2
DEFAULT_DATE_PATTERN = r"(\d{4}-\d{2}-\d{2}|\d{8})"
console = Console(stderr=True)


def register(subparsers: Any) -> None:
    detect = subparsers.add_parser("detect", help="deforestation alerts from a folder of GeoTIFFs")
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
        default="B02,B03,B04,B08,B11,B12,SCL,dataMask",
        help="band names of the --scenes files in file order (SCL, dataMask, CLM recognised)",
    )
    detect.add_argument(
        "--layout",
        choices=("multiband", "theia"),
        default="multiband",
        help="theia: per-date sub-folders of *_FRE_B*.tif files and MASKS/*_CLM_R2.tif",
    )
    detect.add_argument("--dn-scale", type=float, default=10000.0)
    detect.add_argument("--dn-offset", type=float, default=0.0, help="-1000 for PB>=04.00 raw DN")
    detect.add_argument("--scale", type=float, default=None, help="index value multiplier")
    detect.add_argument("--nodata", type=float, default=None)
    detect.add_argument("--model", type=Path, default=None, help="model folder (else baseline)")
    detect.add_argument("--forest-min", type=float, default=None)
    detect.add_argument("--invalid-scl", default="0,1,3,8,9,10,11")
    detect.add_argument("--dilation", type=int, default=2)
    detect.add_argument("--mmu-ha", type=float, default=0.1)
    detect.add_argument("--aoi", default="cli")
    detect.add_argument("--window", type=int, default=512)
    detect.add_argument("--out", type=Path, required=True, help=".geojson or .gpkg")
    detect.add_argument("--quicklook", type=Path, default=None, help="PNG before/after")
    detect.set_defaults(handler=detect_command)

    evaluate = subparsers.add_parser("evaluate", help="accuracy of alerts against labels")
    evaluate.add_argument("--alerts", type=Path, default=None, help="alerts to score vs --labels")
    evaluate.add_argument(
        "--labels", type=Path, default=None, help="dated polygons or loss-year tif"
    )
    evaluate.add_argument("--date-column", default=None)
    evaluate.add_argument("--grid-from", type=Path, default=None, help="GeoTIFF giving the grid")
    evaluate.add_argument("--as-of", default=None, help="evaluation date (default: today)")
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
    if args.dilation < 0:
        raise ValueError("--dilation must be >= 0")
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
        )
    band_order = [name.strip() for name in args.band_order.split(",") if name.strip()]
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


def choose_detector(args: argparse.Namespace, index_stack: bool) -> Any:
    from canopywatch.detect.baseline import BaselineParams
    from canopywatch.detect.detector import BaselineDetector, ModelDetector
    from canopywatch.detect.model import load_model

    params = BaselineParams()
    if index_stack:
        params = params.for_index(args.index.lower(), args.forest_min)
    elif args.forest_min is not None:
        params = params.for_index("ndvi", args.forest_min)
        params = BaselineParams(**{**params.__dict__, "indices": BaselineParams().indices})
    if args.model is None:
        return BaselineDetector(params)
    model = load_model(args.model)
    if tuple(model.indices) != tuple(params.indices):
        raise ValueError(
            f"model {model.version} uses indices {','.join(model.indices)}, "
            f"this stack gives {','.join(params.indices)}"
        )
    return ModelDetector(model, params)


def detect_command(args: argparse.Namespace) -> int:
    from canopywatch.detect.alerts import AlertPolicy, write_alerts, write_quicklook
    from canopywatch.detect.detector import detect_area

    if args.mmu_ha <= 0:
        raise ValueError("--mmu-ha must be > 0")
    if args.out.suffix.lower() not in {".geojson", ".json", ".gpkg"}:
        raise ValueError(f"--out {args.out}: use .geojson or .gpkg")
    source = build_source(args)
    detector = choose_detector(args, args.index_stack is not None)
    result = detect_area(
        source,
        detector,
        aoi=args.aoi,
        window_size=args.window,
        policy=AlertPolicy(mmu_ha=args.mmu_ha),
        progress=True,
    )
    write_alerts(result.alerts, args.out)
    if args.quicklook is not None:
        write_quicklook(
            result.before_rgb,
            result.after_rgb,
            result.alerts,
            result.grid.transform,
            args.quicklook,
            title=f"{args.aoi} {detector.version}",
        )
    high = int((result.alerts["confidence_level"] == "high").sum()) if len(result.alerts) else 0
    console.print(
        f"{len(result.alerts)} alerts ({high} high confidence, "
        f"{float(result.alerts['area_ha'].sum()) if len(result.alerts) else 0.0:.2f} ha) over "
        f"{len(result.days)} dates, {int(result.pixel_alerts.monitored.sum())} forest pixels "
        f"monitored, {detector.version} -> {args.out}"
    )
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    import geopandas as gpd
    import rasterio

    from canopywatch.dates import days_since_epoch
    from canopywatch.detect.evaluate import evaluate_alerts
    from canopywatch.detect.labels import reference_from_loss_year, reference_from_polygons
    from canopywatch.detect.observations import Grid

    if args.alerts is None or args.labels is None:
        raise ValueError("--alerts and --labels go together")
    raster_labels = args.labels.suffix.lower() in {".tif", ".tiff"}
    grid_path = args.grid_from or (args.labels if raster_labels else None)
    if grid_path is None:
        raise ValueError("polygon labels need --grid-from GEOTIFF to define the grid")
    with rasterio.open(grid_path) as src:
        grid = Grid(src.crs, src.transform, src.width, src.height)
    reference = (
        reference_from_loss_year(args.labels, grid)
        if raster_labels
        else reference_from_polygons(args.labels, grid, date_column=args.date_column)
    )
    alerts = gpd.read_file(args.alerts).to_crs(grid.crs)
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.date.today()
    evaluation = evaluate_alerts(alerts, reference, as_of_day=days_since_epoch(as_of))
    summary = evaluation.summary()
    Console().print_json(json.dumps(summary, default=str))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2, default=str))
    return 0


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
