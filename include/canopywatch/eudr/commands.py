"""``canopywatch plots check FILE [--out DIR] [--baseline TIF ...]``: an EUDR check.

    canopywatch plots check plots.geojson --out eudr-check/
    canopywatch plots check farms.csv --baseline tapajos_forest_baseline.tif --min-observations 10

Reads GeoJSON, GeoPackage or CSV (lat, lon, area_ha), checks every plot against the
catalog's alerts and scenes and the forest baseline, writes ``plots.geojson``,
``plots.csv`` and ``report.html`` into ``--out`` and prints the verdict counts. An
unreadable file prints one line and exits 2; an unreachable catalog exits 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from canopywatch.command_errors import run_verb
from canopywatch.output import with_examples
from canopywatch.settings import Settings


def register(subparsers: Any) -> None:
    plots = subparsers.add_parser(
        "plots",
        **with_examples(
            "EUDR plot checks (forest at 2020-12-31, deforestation since)",
            "canopywatch plots check plots.geojson --out check/",
        ),
    )
    verbs = plots.add_subparsers(dest="plots_command", required=True, parser_class=type(plots))
    check = verbs.add_parser(
        "check",
        **with_examples(
            "check plots (GeoJSON, GeoPackage, or CSV of lat/lon/area_ha) against the forest "
            "baseline, the alerts and the scene coverage",
            "canopywatch plots check farms.csv --out check/",
            "canopywatch plots check plots.gpkg --baseline forest_2020.tif --min-observations 8",
        ),
    )
    check.add_argument("file", type=Path, help="plots: .geojson, .gpkg or .csv (lat, lon, area_ha)")
    check.add_argument("--out", type=Path, default=Path("eudr-check"), help="output folder")
    check.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="forest baseline raster (repeatable; default CANOPYWATCH_FOREST_BASELINE or the exports)",
    )
    check.add_argument("--min-observations", type=int, default=6,
                       help="fewer usable days since the cut-off is insufficient data (default 6)")  # fmt: skip
    check.add_argument("--max-cloud", type=float, default=80.0,
                       help="scenes with more cloud cover %% do not count as observations")  # fmt: skip
    check.set_defaults(plots_handler=_check)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    handler = getattr(args, "plots_handler", None)
    if handler is None:
        return None
    return run_verb(handler, args, settings)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.catalog.schema import connect
    from canopywatch.eudr.check import CheckPolicy
    from canopywatch.eudr.jobs import run_check
    from canopywatch.eudr.plots import read_plots

    if args.min_observations < 0 or not 0 <= args.max_cloud <= 100:
        raise ValueError("--min-observations must be >= 0 and --max-cloud within 0..100")
    plots = read_plots(args.file)
    policy = CheckPolicy(min_observations=args.min_observations, max_cloud=args.max_cloud)
    with connect(settings, connect_timeout=5) as conn:
        outputs = run_check(conn, plots, args.out, settings, baselines=args.baseline,
                            policy=policy, title=f"EUDR plot check: {args.file.name}")  # fmt: skip
    print(json.dumps(outputs.summary))
    for path in (outputs.geojson, outputs.csv, outputs.html):
        print(path)
    return 0
