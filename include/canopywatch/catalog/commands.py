"""CLI commands over the catalog and the lake, registered into the ``canopywatch`` parser.

    canopywatch scenes --bbox MINX,MINY,MAXX,MAXY --start DATE --end DATE
                       [--max-cloud N] [--format table|geojson|csv|gpkg|stac] [--output PATH]
    canopywatch alerts --bbox ... --start ... --end ... [--min-confidence X] [--format ...]
    canopywatch lake history --table scenes_raw|scenes_cog|alerts
    canopywatch lake read --table T [--version N | --as-of TIMESTAMP] [--limit N]

``register(subparsers)`` adds them; each sets ``args.catalog_handler``, which
``dispatch(args, settings)`` calls. Bad input prints one line and returns 2; an
unreachable service prints one line and returns 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from canopywatch.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1
FORMATS = ("table", "geojson", "csv", "gpkg", "stac")

console = Console()
Handler = Callable[[argparse.Namespace, Settings], int]


def register(subparsers: Any) -> None:
    """Add ``scenes``, ``alerts`` and ``lake`` to the ``canopywatch`` sub-commands."""
    for name, help_text in (
        ("scenes", "scenes in PostGIS by bounding box and time range"),
        ("alerts", "deforestation alerts in PostGIS by bounding box and time range"),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat")
        parser.add_argument("--start", required=True, help="first day, e.g. 2024-03-01")
        parser.add_argument("--end", required=True, help="last day (inclusive), e.g. 2024-03-31")
        if name == "alerts":
            parser.add_argument("--min-confidence", type=float, help="0..1")
        else:
            parser.add_argument("--max-cloud", type=float, help="cloud cover %% at most")
        parser.add_argument(
            "--format", choices=FORMATS if name == "scenes" else FORMATS[:4], default="table"
        )
        parser.add_argument("--output", help="file to write (gpkg default: ./<command>.gpkg)")
        parser.add_argument("--limit", type=int, default=10_000)
        parser.add_argument("--schema", help="PostGIS schema holding the catalog")
        parser.set_defaults(catalog_handler=_query_command)

    lake = subparsers.add_parser("lake", help="Delta lake tables: history and time travel")
    lake_commands = lake.add_subparsers(dest="lake_command", required=True)
    history = lake_commands.add_parser("history", help="commits of a table, newest first")
    read = lake_commands.add_parser("read", help="rows of a table at a version or a time")
    for parser in (history, read):
        parser.add_argument("--table", required=True, help="scenes_raw, scenes_cog or alerts")
        parser.add_argument("--lake", help="lake root: s3://bucket/prefix or a folder")
        parser.add_argument("--limit", type=int, default=20)
    when = read.add_mutually_exclusive_group()
    when.add_argument("--version", type=int)
    when.add_argument("--as-of", help="timestamp, e.g. 2024-05-01T12:00:00Z")
    read.add_argument("--format", choices=("table", "csv", "json"), default="table")
    history.set_defaults(catalog_handler=_lake_history)
    read.set_defaults(catalog_handler=_lake_read)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    """Run the command if it is one of ours; None otherwise."""
    handler: Handler | None = getattr(args, "catalog_handler", None)
    if handler is None:
        return None
    return _guarded(handler, args, settings)


def _guarded(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    import psycopg
    from deltalake.exceptions import DeltaError

    try:
        return handler(args, settings)
    except ValueError as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (psycopg.OperationalError, DeltaError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"canopywatch: {first_line}", file=sys.stderr)
        return EXIT_UNAVAILABLE


# ------------------------------------------------------------------ scenes / alerts
def _query_command(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.catalog import queries
    from canopywatch.catalog.schema import connect, ensure_schema

    query = queries.Query.parse(
        args.bbox,
        args.start,
        args.end,
        min_confidence=getattr(args, "min_confidence", None),
        max_cloud=getattr(args, "max_cloud", None),
        limit=args.limit,
    )
    with connect(settings, schema=args.schema, connect_timeout=5) as conn:
        ensure_schema(conn)
        if args.command == "scenes":
            rows, id_column = queries.scenes_in(conn, query), "scene_id"
        else:
            rows, id_column = queries.alerts_in(conn, query), "alert_id"
    _emit(rows, id_column, args, settings)
    return 0


def _emit(
    rows: list[dict[str, Any]], id_column: str, args: argparse.Namespace, settings: Settings
) -> None:
    from canopywatch.catalog.queries import to_feature_collection

    fmt = args.format
    if fmt == "table":
        _print_table(rows, args.command)
        return
    if fmt == "gpkg":
        path = Path(args.output or f"{args.command}.gpkg")
        _write_gpkg(rows, path, args.command)
        console.print(f"{len(rows)} {args.command} -> {path} (layer {_layer(args.command)})")
        return
    if fmt == "geojson":
        text = json.dumps(to_feature_collection(rows, id_column), default=str)
    elif fmt == "stac":
        from canopywatch.catalog.stac import item_collection

        text = json.dumps(item_collection(rows, s3_href_base=settings.s3_endpoint))
    else:
        text = _csv(rows)
    if args.output:
        Path(args.output).write_text(text + ("\n" if not text.endswith("\n") else ""))
        console.print(f"{len(rows)} {args.command} -> {args.output}")
    else:
        sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def _print_table(rows: list[dict[str, Any]], kind: str) -> None:
    columns: tuple[str, ...]
    if kind == "scenes":
        columns = (
            "scene_id",
            "acquired_at",
            "cloud_cover",
            "aoi_id",
            "function",
            "raw_key",
            "cog_key",
        )
    else:
        columns = ("alert_id", "alert_date", "confidence", "area_ha", "aoi_id", "model_version")
    table = Table(title=f"{len(rows)} {kind}")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _csv(rows: list[dict[str, Any]]) -> str:
    from shapely.geometry import shape

    buffer = io.StringIO()
    if not rows:
        return ""
    columns = [c for c in rows[0] if c != "geometry"]
    writer = csv.writer(buffer)
    writer.writerow([*columns, "geometry_wkt"])
    for row in rows:
        values = [
            ",".join(v) if isinstance(v, list) else _csv_value(v) for v in (row[c] for c in columns)
        ]
        writer.writerow([*values, shape(row["geometry"]).wkt])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _layer(kind: str) -> str:
    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER

    return SCENE_LAYER if kind == "scenes" else ALERT_LAYER


def _write_gpkg(rows: list[dict[str, Any]], path: Path, kind: str) -> None:
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import MultiPolygon, Polygon, shape

    records = [
        {k: (",".join(v) if isinstance(v, list) else v) for k, v in r.items() if k != "geometry"}
        for r in rows
    ]
    geometries = [shape(r["geometry"]) for r in rows]
    kind_name = "Polygon" if kind == "scenes" else "MultiPolygon"
    if kind != "scenes":
        geometries = [MultiPolygon([g]) if isinstance(g, Polygon) else g for g in geometries]
    frame = gpd.GeoDataFrame(
        pd.DataFrame.from_records(records), geometry=geometries, crs="EPSG:4326"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    frame.to_file(
        path, layer=_layer(kind), driver="GPKG", engine="pyogrio", geometry_type=kind_name
    )


# ------------------------------------------------------------------ lake
def _lake(args: argparse.Namespace, settings: Settings) -> Any:
    from canopywatch.lake.tables import Lake, lake_from_settings

    return Lake.parse(args.lake, settings) if args.lake else lake_from_settings(settings)


def _lake_history(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.lake.tables import table_spec
    from canopywatch.lake.timetravel import history

    spec = table_spec(args.table)
    table = Table(title=f"{spec.name} history (newest first)")
    for column in ("version", "committed (UTC)", "operation", "rows added", "details"):
        table.add_column(column)
    for entry in history(_lake(args, settings), spec, args.limit):
        details = ", ".join(
            f"{k}={v}" for k, v in entry.parameters.items() if k in {"mode", "predicate"}
        )
        table.add_row(
            str(entry.version),
            entry.timestamp.isoformat(timespec="seconds"),
            entry.operation,
            "" if entry.rows_added is None else str(entry.rows_added),
            details,
        )
    console.print(table)
    return 0


def _lake_read(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.lake.tables import table_spec
    from canopywatch.lake.timetravel import parse_as_of, snapshot

    spec = table_spec(args.table)
    as_of = parse_as_of(args.as_of) if args.as_of else None
    delta = snapshot(_lake(args, settings), spec, version=args.version, as_of=as_of)
    data = delta.to_pyarrow_table()
    rows = data.slice(0, args.limit).to_pylist()
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return 0
    if args.format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=data.column_names)
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return 0
    shown: Sequence[str] = [
        c
        for c in (spec.key, "acquired_at", "alert_date", "aoi_id", "month")
        if c in data.column_names
    ]
    table = Table(
        title=f"{spec.name} v{delta.version()}: {data.num_rows} row(s), first {len(rows)}"
    )
    for column in shown:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in shown))
    console.print(table)
    return 0
