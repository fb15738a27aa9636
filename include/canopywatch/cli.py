"""The ``canopywatch`` command (also ``python -m canopywatch``).

    canopywatch aoi add --name NAME --bbox MINX,MINY,MAXX,MAXY [--function F] [--max-cloud N]
    canopywatch aoi list
    canopywatch tiles --bbox MINX,MINY,MAXX,MAXY
    canopywatch scenes|alerts --bbox ... --start ... --end ... [--format table|geojson|csv|gpkg]
    canopywatch lake history|read --table scenes_raw [--version N | --as-of TS]
    canopywatch detect --index-stack DIR | --scenes DIR --out alerts.geojson
    canopywatch evaluate [--scenarios ...] | --alerts A --labels L

Usage errors and bad input print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from canopywatch.catalog import commands as catalog_commands
from canopywatch.detect import commands as detect_commands
from canopywatch.download import make_aoi, plan_tiles
from canopywatch.evalscripts import get_function
from canopywatch.settings import Settings

console = Console()
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"canopywatch: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="canopywatch", description="Forest monitoring from Sentinel-2")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    aoi = commands.add_parser("aoi", help="registered areas of interest (monitored on schedule)")
    aoi_commands = aoi.add_subparsers(dest="aoi_command", required=True, parser_class=_Parser)
    add = aoi_commands.add_parser("add", help="register or update an area in PostGIS")
    add.add_argument("--name", required=True)
    add.add_argument("--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat or GeoJSON")
    add.add_argument("--function", default="s2l2a_bands")
    add.add_argument("--max-cloud", type=float, default=80.0)
    aoi_commands.add_parser("list", help="list active areas")
    tiles = commands.add_parser("tiles", help="show the Process API request tiles of a bbox")
    tiles.add_argument("--bbox", required=True)
    catalog_commands.register(commands)
    detect_commands.register(commands)
    return parser


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -55.4,...`` would read as an option; pass it as ``--bbox=-55.4,...``."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--bbox" and arg.startswith("-"):
            out[-1] = f"--bbox={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    settings = Settings.from_env()
    handled = catalog_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    if getattr(args, "handler", None) is not None:
        return detect_commands.run(args.handler, args)
    try:
        if args.command == "tiles":
            return _tiles(args, settings)
        if args.command == "aoi":
            return _aoi(args, settings)
    except ValueError as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def _tiles(args: argparse.Namespace, settings: Settings) -> int:
    aoi = make_aoi(args.bbox, None, settings)
    table = Table(title=f"request tiles for {aoi.bbox.as_tuple()} ({aoi.bbox.area_km2():.1f} km²)")
    for column in ("tile", "EPSG", "width", "height", "lon/lat bounds"):
        table.add_column(column)
    for tile in plan_tiles(aoi, settings):
        table.add_row(
            tile.tile_id,
            str(tile.epsg),
            str(tile.width),
            str(tile.height),
            str(tile.bbox.as_tuple()),
        )
    console.print(table)
    return 0


def _aoi(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from canopywatch.storage import aois

    with psycopg.connect(**settings.postgres_params()) as conn:
        if args.aoi_command == "add":
            get_function(args.function)
            if not 0 <= args.max_cloud <= 100:
                raise ValueError(f"--max-cloud {args.max_cloud} must be between 0 and 100")
            aoi = make_aoi(args.bbox, args.name, settings)
            aois.register(
                conn,
                aois.RegisteredAoi(aoi.aoi_id, aoi.name, aoi.bbox, args.function, args.max_cloud),
            )
            console.print(
                f"registered {aoi.aoi_id} {aoi.bbox.as_tuple()}: monitored by the daily deforestation_monitor run"
            )
            return 0
        table = Table(title="registered areas")
        for column in ("aoi_id", "name", "bbox", "function", "max cloud %"):
            table.add_column(column)
        for area in aois.list_active(conn):
            table.add_row(
                area.aoi_id,
                area.name,
                str(area.bbox.as_tuple()),
                area.function,
                f"{area.max_cloud:.0f}",
            )
        console.print(table)
    return 0
