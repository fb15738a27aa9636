"""The ``canopywatch`` command (also ``python -m canopywatch``).

    canopywatch aoi add --name NAME --bbox MINX,MINY,MAXX,MAXY [--function F] [--max-cloud N]
    canopywatch aoi list [--format table|csv|json|geojson|gpkg]
    canopywatch tiles --bbox MINX,MINY,MAXX,MAXY [--format ...]
    canopywatch download --bbox ... --start DATE --end DATE --out DIR [--estimate]
    canopywatch scenes|alerts --bbox ... --start ... --end ... [--format ...]
    canopywatch lake history|read --table scenes_raw [--version N | --as-of TS]
    canopywatch detect --index-stack DIR | --scenes DIR --out alerts.geojson
    canopywatch evaluate --alerts A --labels L [--grid-from TIF]
    canopywatch --version

Every verb shows examples in ``--help``. Listings share one output module
(``canopywatch.output``). Every failure prints one line on stderr and exits with code 2:
usage errors, bad input, an unreachable service (the verbs' own modules may report that as 1;
``main`` folds it into 2), and anything unexpected (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canopywatch import __version__
from canopywatch.catalog import commands as catalog_commands
from canopywatch.detect import commands as detect_commands
from canopywatch.download import make_aoi, plan_tiles
from canopywatch.eudr import commands as eudr_commands
from canopywatch.evalscripts import FUNCTIONS, get_function
from canopywatch.output import Column, add_listing_options, emit, with_examples
from canopywatch.sensors import commands as sensor_commands
from canopywatch.settings import Settings, SettingsError
from canopywatch.sources import commands as stats_commands
from canopywatch.subscriptions import commands as subscription_commands

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 2  # a service down fails like bad input: one line, exit 2
_BBOX_FLAGS = ("--bbox",)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"canopywatch: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="canopywatch",
        description="Forest monitoring from Sentinel-2: areas, scenes, alerts, detection.",
        epilog="examples:\n"
        "  canopywatch aoi add --name tapajos-1 --bbox -55.40,-7.10,-55.35,-7.05\n"
        "  canopywatch download --bbox -55.40,-7.10,-55.38,-7.08 --start 2024-01-01 "
        "--end 2024-01-31 --out scenes/ --estimate\n"
        "  canopywatch alerts --bbox -55.4,-7.1,-55.35,-7.05 --start 2024-01-01 --end 2024-06-30\n"
        "  canopywatch <verb> --help    (each verb has its own examples)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"canopywatch {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="VERB"
    )
    aoi = commands.add_parser(
        "aoi",
        **with_examples(
            "registered areas of interest (monitored on schedule)",
            "canopywatch aoi add --name tapajos-1 --bbox -55.40,-7.10,-55.35,-7.05",
            "canopywatch aoi list --format geojson > areas.geojson",
        ),
    )
    aoi_commands = aoi.add_subparsers(
        dest="aoi_command", required=True, parser_class=_Parser, metavar="ACTION"
    )
    add = aoi_commands.add_parser(
        "add",
        **with_examples(
            "register or update an area in PostGIS",
            "canopywatch aoi add --name tapajos-1 --bbox -55.40,-7.10,-55.35,-7.05",
            "canopywatch aoi add --name xingu-2 --bbox -52.1,-3.5,-52.0,-3.4 --max-cloud 60 "
            "--function ndvi",
        ),
    )
    add.add_argument(
        "--name", required=True, help="a name for the area; its id is the name in lower-case-dashes"
    )
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--bbox",
        help="min_lon,min_lat,max_lon,max_lat in degrees (EPSG:4326), or GeoJSON text",
    )
    where.add_argument(
        "--geojson",
        type=Path,
        metavar="FILE",
        help="the area's outline: a GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection "
        "(a `crs` member is honoured); kept as a polygon, not reduced to its bbox",
    )
    add.add_argument(
        "--replace",
        action="store_true",
        help="overwrite (and reactivate) an existing area with the same id",
    )
    add.add_argument(
        "--function",
        default="s2l2a_bands",
        choices=sorted(FUNCTIONS),
        help="evalscript of the daily downloads (default s2l2a_bands: the bands detection needs)",
    )
    add.add_argument(
        "--max-cloud",
        type=float,
        default=80.0,
        help="skip scenes with more cloud cover than this, %% (default 80)",
    )
    listing = aoi_commands.add_parser(
        "list",
        **with_examples(
            "list active areas",
            "canopywatch aoi list",
            "canopywatch aoi list --format csv > areas.csv",
        ),
    )
    listing.add_argument(
        "--all", action="store_true", help="also list deactivated areas (column `active`)"
    )
    add_listing_options(listing, default_name="aois")
    for verb, text in (
        ("deactivate", "stop monitoring an area (kept; `aoi activate` or `add --replace` resumes)"),
        ("activate", "resume monitoring a deactivated area"),
        ("remove", "delete an area from the registry (its scenes and alerts stay)"),
    ):
        change = aoi_commands.add_parser(
            verb, **with_examples(text, f"canopywatch aoi {verb} tapajos-1")
        )
        change.add_argument("name", help="the area's name or id")
    tiles = commands.add_parser(
        "tiles",
        **with_examples(
            "show the Process API request tiles of a bbox (UTM, at most 2500 px a side)",
            "canopywatch tiles --bbox -55.5,-10.5,-55.2,-10.2",
            "canopywatch tiles --bbox -55.5,-10.5,-55.2,-10.2 --format geojson > tiles.geojson",
        ),
    )
    tiles.add_argument("--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat (EPSG:4326)")
    add_listing_options(tiles, default_name="tiles")
    _register_download(commands)
    catalog_commands.register(commands)
    detect_commands.register(commands)
    subscription_commands.register(commands)
    eudr_commands.register(commands)
    sensor_commands.register(commands)
    stats_commands.register(commands)
    return parser


def _register_download(commands: Any) -> None:
    download = commands.add_parser(
        "download",
        **with_examples(
            "download the Sentinel-2 scenes of a bbox to a folder, without Airflow",
            "canopywatch download --bbox -55.40,-7.10,-55.38,-7.08 --start 2024-01-01 "
            "--end 2024-03-31 --out scenes/ --estimate",
            "canopywatch download --bbox -55.40,-7.10,-55.38,-7.08 --start 2024-01-01 "
            "--end 2024-03-31 --out scenes/ --max-cloud 40",
            "  (run it again to resume: verified files are skipped, broken ones fetched again)",
        ),
    )
    download.add_argument(
        "--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat (EPSG:4326), or GeoJSON"
    )
    download.add_argument("--start", required=True, help="first day, e.g. 2024-01-01")
    download.add_argument("--end", required=True, help="last day (inclusive), e.g. 2024-03-31")
    download.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder; files go under the same key layout as in MinIO, each with a .json sidecar",
    )
    download.add_argument(
        "--function",
        default="s2l2a_bands",
        choices=sorted(FUNCTIONS),
        help="evalscript (default s2l2a_bands: B02 B03 B04 B08 B11 B12 SCL dataMask, UINT16)",
    )
    download.add_argument(
        "--max-cloud", type=float, default=80.0, help="maximum scene cloud cover, %% (default 80)"
    )
    download.add_argument(
        "--name", default=None, help="area name used as its id in the keys (default: from bbox)"
    )
    download.add_argument(
        "--estimate",
        action="store_true",
        help="only print the requests and processing units a download would spend "
        "(the catalog search is free); download nothing",
    )


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--bbox -55.4,...`` would read as an option; pass it as ``--bbox=-55.4,...``."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _BBOX_FLAGS and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback: one line naming what failed
        print(f"canopywatch: {args.command}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE if code not in (0, EXIT_USAGE) else code


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dispatch(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    handled = catalog_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    handled = subscription_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    handled = eudr_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    handled = sensor_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    handled = stats_commands.dispatch(args, settings)
    if handled is not None:
        return handled
    if getattr(args, "handler", None) is not None:
        return detect_commands.run(args.handler, args)
    try:
        if args.command == "tiles":
            return _tiles(args, settings)
        if args.command == "aoi":
            return _aoi(args, settings)
        if args.command == "download":
            return _download(args, settings)
    except ValueError as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def _bbox_polygon(bbox: Sequence[float]) -> dict[str, Any]:
    minx, miny, maxx, maxy = bbox
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _tiles(args: argparse.Namespace, settings: Settings) -> int:
    aoi = make_aoi(args.bbox, None, settings)
    rows = [
        {
            "tile_id": tile.tile_id,
            "epsg": tile.epsg,
            "width": tile.width,
            "height": tile.height,
            "bbox": [round(v, 6) for v in tile.bbox.as_tuple()],
            "geometry": _bbox_polygon(tile.bbox.as_tuple()),
        }
        for tile in plan_tiles(aoi, settings)
    ]
    emit(
        rows,
        (
            Column("tile_id", "tile"),
            Column("epsg", "EPSG"),
            Column("width", "width px"),
            Column("height", "height px"),
            Column("bbox", "lon/lat bounds"),
        ),
        args,
        title=f"request tiles for {aoi.bbox.as_tuple()} ({aoi.bbox.area_km2():.1f} km²)",
        noun="tiles",
        totals=(
            lambda rows: f"{sum(r['width'] * r['height'] for r in rows) / 1e6:.2f} Mpx",
            lambda rows: "EPSG " + ", ".join(sorted({str(r["epsg"]) for r in rows})),
        ),
        id_column="tile_id",
        layer="request_tiles",
    )
    return 0


def _area_argument(args: argparse.Namespace) -> Any:
    """``--bbox`` text, or the parsed ``--geojson`` file."""
    if args.geojson is None:
        return args.bbox
    import json

    try:
        return json.loads(args.geojson.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--geojson {args.geojson}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--geojson {args.geojson} is not JSON: {exc}") from None


def _aoi(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    aoi = None
    if args.aoi_command == "add":  # bad input is refused before PostGIS is asked
        get_function(args.function)
        if not 0 <= args.max_cloud <= 100:
            raise ValueError(f"--max-cloud {args.max_cloud} must be between 0 and 100")
        aoi = make_aoi(_area_argument(args), args.name, settings)
    try:
        return _aoi_in_catalog(args, settings, aoi)
    except psycopg.Error as exc:  # unreachable, or lost during the command
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"canopywatch: PostGIS unreachable: {first}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _aoi_in_catalog(args: argparse.Namespace, settings: Settings, aoi: Any) -> int:
    from canopywatch.catalog.schema import connect
    from canopywatch.download import aoi_id_for
    from canopywatch.storage import aois

    with connect(settings, connect_timeout=5) as conn:  # in CANOPYWATCH_PG_SCHEMA
        if aoi is not None:
            outcome = aois.register(
                conn,
                aois.RegisteredAoi(
                    aoi.aoi_id,
                    aoi.name,
                    aoi.bbox,
                    args.function,
                    args.max_cloud,
                    outline=aoi.outline,
                ),
                replace=args.replace,
            )
            shape = "polygon" if aoi.outline else "bbox"
            print(
                f"{outcome} {aoi.aoi_id} ({shape}, bounds {aoi.bbox.as_tuple()}): monitored by "
                "the daily deforestation_monitor run"
            )
            return 0
        if args.aoi_command in {"deactivate", "activate", "remove"}:
            aoi_id = aoi_id_for(args.name)
            if args.aoi_command == "remove":
                aois.remove(conn, aoi_id)
                print(f"removed {aoi_id}: no longer monitored (its scenes and alerts stay)")
            else:
                aois.set_active(conn, aoi_id, args.aoi_command == "activate")
                print(f"{args.aoi_command}d {aoi_id}")
            return 0
        rows = [
            {
                "aoi_id": area.aoi_id,
                "name": area.name,
                "bbox": [round(v, 6) for v in area.bbox.as_tuple()],
                "function": area.function,
                "max_cloud": area.max_cloud,
                "active": area.active,
                "shape": "polygon" if area.outline else "bbox",
                "area_km2": round(area.bbox.area_km2(), 3),
                "geometry": area.geojson(),
            }
            for area in aois.list_areas(conn, include_inactive=args.all)
        ]
    emit(
        rows,
        (
            Column("aoi_id", "area"),
            Column("bbox", "lon/lat bounds"),
            Column("function"),
            Column("shape"),
            *((Column("active"),) if args.all else ()),
            Column("max_cloud", "max cloud %", "number", digits=0),
            Column("area_km2", "km²", "number", digits=1),
        ),
        args,
        title="registered areas",
        noun="areas",
        totals=(lambda rows: f"{sum(r['area_km2'] for r in rows):,.1f} km²" if rows else "",),
        id_column="aoi_id",
        layer="registered_areas",
    )
    return 0


# ------------------------------------------------------------------ download
def _download(args: argparse.Namespace, settings: Settings) -> int:
    """The DAG's library path (plan tiles, catalog search, plan requests, download_scene)
    into a local folder, resumable; ``--estimate`` stops before the first Process API call."""
    from rich.console import Console

    from canopywatch.download import parse_window, plan_area, scene_key
    from canopywatch.sources.copernicus import CdseEndpoint, search_acquisitions, sh_config
    from canopywatch.sources.units import check_budget, estimate
    from canopywatch.storage.folder import FolderStore

    get_function(args.function)
    if not 0 <= args.max_cloud <= 100:
        raise ValueError(f"--max-cloud {args.max_cloud} must be between 0 and 100")
    aoi = make_aoi(args.bbox, args.name, settings)
    window = parse_window(args.start, args.end)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")
    try:
        config = sh_config(
            CdseEndpoint.from_settings(settings), max_retries=settings.sh_max_retries
        )
    except RuntimeError as exc:  # missing credentials: say which settings to give
        raise ValueError(str(exc)) from exc
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        requests = plan_area(
            aoi,
            window,
            lambda bbox, start, end, cloud: search_acquisitions(
                config, bbox.as_tuple(), start, end, cloud
            ),
            settings,
            function=args.function,
            max_cloud=args.max_cloud,
        )
    except Exception as exc:
        return _unavailable("catalog search failed", exc)
    store = FolderStore(args.out)
    keys = [scene_key(r, settings.geohash_precision).key for r in requests]
    stored = [store.head(key) is not None for key in keys]
    spend = estimate(requests, stored=stored)
    print(
        f"{aoi.aoi_id} {aoi.bbox.as_tuple()} {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d}, "
        f"{args.function}, cloud <= {args.max_cloud:.0f}%: {len(requests)} acquisition "
        f"request(s) over {len({r.tile_id for r in requests})} tile(s)"
    )
    print(f"estimate: {spend.describe()}")
    if args.estimate:
        return 0
    check_budget(spend, settings.pu_budget)
    return _fetch_all(requests, stored, store, config, settings, err)


def _unavailable(what: str, exc: BaseException) -> int:
    from canopywatch.sources.copernicus import is_credentials_error

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"canopywatch: {what}: {text}", file=sys.stderr)
    return EXIT_USAGE if is_credentials_error(exc) else EXIT_UNAVAILABLE


def _fetch_all(
    requests: Sequence[Any],
    stored: Sequence[bool],
    store: Any,
    config: Any,
    settings: Settings,
    err: Any,
) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from canopywatch.download import download_scene, process_api_fetch

    fetch = process_api_fetch(config)

    downloaded = skipped = failed = 0
    size = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task("downloading", total=len(requests))
        for request, done in zip(requests, stored, strict=True):
            label = f"{request.tile_id} {request.acquired_at:%Y-%m-%d}"
            progress.update(task, description=label)
            if done:
                skipped += 1
                progress.advance(task)
                continue
            try:
                outcome = download_scene(
                    request, fetch, store, geohash_precision=settings.geohash_precision
                )
            except Exception as exc:  # one bad scene does not stop the others
                failed += 1
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                progress.console.print(f"failed {label}: {text}")
            else:
                if outcome.status == "downloaded":
                    downloaded += 1
                    size += outcome.size_bytes
                else:
                    skipped += 1
            progress.advance(task)
    print(
        f"{downloaded} downloaded ({size / 1e6:.1f} MB), {skipped} already there (verified), "
        f"{failed} failed -> {store.root}"
    )
    if failed:
        print(
            f"canopywatch: {failed} scene(s) failed; run the same command again to retry them",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    return 0
