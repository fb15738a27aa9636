"""CLI commands over the catalog and the lake, registered into the ``canopywatch`` parser.

    canopywatch scenes --bbox MINX,MINY,MAXX,MAXY --start DATE --end DATE
                       [--max-cloud N] [--format table|csv|json|geojson|gpkg|stac] [--output PATH]
    canopywatch alerts --bbox ... --start ... --end ... [--min-confidence X] [--format ...]
    canopywatch lake history --table scenes_raw|scenes_cog|alerts [--format ...]
    canopywatch lake read --table T [--version N | --as-of TIMESTAMP] [--limit N] [--format ...]

The output of every listing comes from ``canopywatch.output`` (same formats everywhere).

``register(subparsers)`` adds them; each sets ``args.catalog_handler``, which
``dispatch(args, settings)`` calls. Bad input prints one line and returns 2; an
unreachable service prints one line and returns 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from canopywatch.output import (
    FORMATS,
    Column,
    add_listing_options,
    count_by,
    emit,
    span_of,
    sum_of,
    with_examples,
)
from canopywatch.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1
Handler = Callable[[argparse.Namespace, Settings], int]


def register(subparsers: Any) -> None:
    """Add ``scenes``, ``alerts`` and ``lake`` to the ``canopywatch`` sub-commands."""
    examples = {
        "scenes": (
            "canopywatch scenes --bbox -55.4,-7.1,-55.35,-7.05 --start 2024-01-01 --end 2024-03-31",
            "canopywatch scenes --bbox ... --start ... --end ... --max-cloud 30 --format csv > s.csv",
            "canopywatch scenes --bbox ... --start ... --end ... --format gpkg --output s.gpkg",
        ),
        "alerts": (
            "canopywatch alerts --bbox -55.4,-7.1,-55.35,-7.05 --start 2023-01-01 --end 2023-12-31",
            "canopywatch alerts --bbox ... --start ... --end ... --min-confidence 0.8 --full-ids",
            "canopywatch alerts --bbox ... --start ... --end ... --format geojson > alerts.geojson",
        ),
    }
    for name, help_text in (
        ("scenes", "scenes in PostGIS by bounding box and time range"),
        ("alerts", "deforestation alerts in PostGIS by bounding box and time range"),
    ):
        parser = subparsers.add_parser(name, **with_examples(help_text, *examples[name]))
        parser.add_argument("--bbox", required=True, help="min_lon,min_lat,max_lon,max_lat")
        parser.add_argument("--start", required=True, help="first day, e.g. 2024-03-01")
        parser.add_argument("--end", required=True, help="last day (inclusive), e.g. 2024-03-31")
        if name == "alerts":
            parser.add_argument(
                "--min-confidence", type=float, help="only alerts with confidence >= this (0..1)"
            )
        else:
            parser.add_argument("--max-cloud", type=float, help="cloud cover %% at most")
        add_listing_options(
            parser, formats=(*FORMATS, "stac") if name == "scenes" else FORMATS, default_name=name
        )
        parser.add_argument(
            "--limit", type=int, default=10_000, help="at most this many rows (default 10000)"
        )
        parser.add_argument(
            "--schema", help="PostGIS schema holding the catalog (default: CANOPYWATCH_PG_SCHEMA)"
        )
        parser.set_defaults(catalog_handler=_query_command)

    lake = subparsers.add_parser(
        "lake",
        **with_examples(
            "Delta lake tables: history and time travel",
            "canopywatch lake history --table scenes_raw",
            "canopywatch lake read --table alerts --version 3 --format csv",
            "canopywatch lake read --table scenes_raw --as-of 2024-05-01T12:00:00Z",
        ),
    )
    lake_commands = lake.add_subparsers(dest="lake_command", required=True, parser_class=type(lake))
    history = lake_commands.add_parser(
        "history",
        **with_examples(
            "commits of a table, newest first",
            "canopywatch lake history --table alerts --limit 5",
            "canopywatch lake history --table scenes_raw --format json",
        ),
    )
    read = lake_commands.add_parser(
        "read",
        **with_examples(
            "rows of a table at a version or a time",
            "canopywatch lake read --table scenes_raw --limit 50",
            "canopywatch lake read --table alerts --version 3 --format csv > alerts_v3.csv",
            "canopywatch lake read --table scenes_raw --as-of 2024-05-01T12:00:00Z --format gpkg",
        ),
    )
    for parser in (history, read):
        parser.add_argument("--table", required=True, help="scenes_raw, scenes_cog or alerts")
        parser.add_argument(
            "--lake", help="lake root: s3://bucket/prefix or a folder (default: the settings')"
        )
        parser.add_argument("--limit", type=int, default=20, help="at most this many rows")
        add_listing_options(parser, default_name=f"lake_{parser.prog.split()[-1]}")
    when = read.add_mutually_exclusive_group()
    when.add_argument("--version", type=int, help="the table as of this Delta version")
    when.add_argument("--as-of", help="the table as of this time, e.g. 2024-05-01T12:00:00Z")
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
        print(f"canopywatch: {one_line(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(exc: BaseException) -> str:
    """An error as one line: its first line and, for a chain of causes (delta-rs prints one
    per line), the innermost one ("Generic S3 error: Connection refused (os error 111)")."""
    lines = [_ANSI.sub("", line).strip(" ↳\t") for line in str(exc).strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


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


SCENE_COLUMNS = (
    Column("scene_id", "scene", "id"),
    Column("acquired_at", "acquired", "date"),
    Column("cloud_cover", "cloud %", "number", digits=1),
    Column("aoi_id", "area"),
    Column("function"),
    Column("size_bytes", "MB", "number", digits=1, scale=1e-6),
    Column("cog_valid", "COG"),
)
ALERT_COLUMNS = (
    Column("alert_id", "alert", "id"),
    Column("alert_date", "alert date", "date"),
    Column("confirmed_date", "confirmed", "date"),
    Column("status"),
    Column("confidence", "conf.", "number"),
    Column("area_ha", "ha", "number"),
    Column("aoi_id", "area"),
    Column("model_version", "model", in_table=False),
)


def _emit(
    rows: list[dict[str, Any]], id_column: str, args: argparse.Namespace, settings: Settings
) -> None:
    if args.format == "stac":
        from canopywatch.catalog.stac import item_collection
        from canopywatch.storage.objects import presigned_get, s3_client

        # asset hrefs open as they are: presigned GET URLs (1 h) when S3 keys are set
        href = None
        if settings.s3_access_key and settings.s3_secret_key:
            client = s3_client(settings)
            href = lambda bucket, key: presigned_get(client, bucket, key)  # noqa: E731
        text = json.dumps(item_collection(rows, s3_href_base=settings.s3_endpoint, href=href))
        if args.output:
            Path(args.output).write_text(text + "\n")
            print(f"{len(rows)} {args.command} -> {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text + "\n")
        return
    if args.command == "scenes":
        emit(
            rows,
            SCENE_COLUMNS,
            args,
            title="scenes",
            noun="scenes",
            totals=(sum_of("size_bytes", "MB", 1, 1e-6), span_of("acquired_at")),
            id_column=id_column,
            layer=_layer(args.command),
        )
    else:
        emit(
            rows,
            ALERT_COLUMNS,
            args,
            title="deforestation alerts",
            noun="alerts",
            totals=(
                sum_of("area_ha", "ha"),
                count_by("status", ("high", "low", "withdrawn")),
                span_of("alert_date"),
            ),
            id_column=id_column,
            layer=_layer(args.command),
        )


def _layer(kind: str) -> str:
    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER

    return SCENE_LAYER if kind == "scenes" else ALERT_LAYER


# ------------------------------------------------------------------ lake
def _lake(args: argparse.Namespace, settings: Settings) -> Any:
    from canopywatch.lake.tables import Lake, lake_from_settings

    return Lake.parse(args.lake, settings) if args.lake else lake_from_settings(settings)


def _lake_history(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.lake.tables import table_spec
    from canopywatch.lake.timetravel import history

    spec = table_spec(args.table)
    rows = [
        {
            "version": entry.version,
            "committed": entry.timestamp,
            "operation": entry.operation,
            "rows_added": entry.rows_added,
            "details": ", ".join(
                f"{k}={v}" for k, v in entry.parameters.items() if k in {"mode", "predicate"}
            ),
        }
        for entry in history(_lake(args, settings), spec, args.limit)
    ]
    emit(
        rows,
        (
            Column("version"),
            Column("committed", "committed (UTC)", "datetime"),
            Column("operation"),
            Column("rows_added", "rows added"),
            Column("details"),
        ),
        args,
        title=f"{spec.name} history (newest first)",
        noun="commits",
        totals=(sum_of("rows_added", "rows added", 0),),
        geometry=lambda row: None,
    )
    return 0


def _lake_read(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.lake.tables import table_spec
    from canopywatch.lake.timetravel import parse_as_of, snapshot

    spec = table_spec(args.table)
    as_of = parse_as_of(args.as_of) if args.as_of else None
    delta = snapshot(_lake(args, settings), spec, version=args.version, as_of=as_of)
    data = delta.to_pyarrow_table()
    rows = data.slice(0, args.limit).to_pylist()
    columns = [
        Column(spec.key, spec.key, "id"),
        Column("acquired_at", "acquired", "date"),
        Column("alert_date", "alert date", "date"),
        Column("status"),
        Column("area_ha", "ha", "number"),
        Column("aoi_id", "area"),
        Column("month"),
    ]
    emit(
        rows,
        [c for c in columns if c.name in data.column_names],
        args,
        title=f"{spec.name} v{delta.version()}: {data.num_rows} row(s), first {len(rows)}",
        noun="rows",
        id_column=spec.key,
        geometry=_lake_geometry,
    )
    return 0


def _lake_geometry(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A lake row's outline: ``footprint``/``geometry`` GeoJSON text or WKB, if it has one."""
    for name in ("geometry", "footprint", "geom"):
        value = row.get(name)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            loaded: Mapping[str, Any] = json.loads(value)
            return loaded
        if isinstance(value, bytes):
            from shapely import wkb
            from shapely.geometry import mapping

            outline: Mapping[str, Any] = mapping(wkb.loads(value))
            return outline
        if isinstance(value, Mapping):
            return value
    return None
