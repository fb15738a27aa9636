"""Listings for people and for pipes: one table/CSV/JSON/GeoJSON/GeoPackage writer.

Every listing verb of the ``canopywatch`` command (``scenes``, ``alerts``, ``aoi list``,
``tiles``, ``lake history``, ``lake read``) describes its rows with :class:`Column` s and
calls :func:`emit` with the same ``--format``/``--output``/``--full-ids`` options, added
by :func:`add_listing_options`:

- ``table`` (default): a table that fits the terminal (80 columns when it is not a
  terminal, or ``COLUMNS``): dates as dates, ids shortened to 8 characters (the full
  value with ``--full-ids``), long values folded rather than cut, totals at the end;
- ``csv``: one row per record, all columns, full values, geometry as WKT;
- ``json``: a list of objects (geometry as GeoJSON);
- ``geojson``: a FeatureCollection (rows need a geometry);
- ``gpkg``: a GeoPackage layer (rows need a geometry); ``--output`` default ``./<verb>.gpkg``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

FORMATS: tuple[str, ...] = ("table", "csv", "json", "geojson", "gpkg")
SHORT_ID = 8

Total = Callable[[Sequence[Mapping[str, Any]]], str]


class OutputError(ValueError):
    """A format that a listing cannot produce (e.g. GeoJSON of rows without geometry)."""


@dataclass(frozen=True)
class Column:
    """One column of a listing.

    ``kind``: ``text``, ``id`` (shortened in tables unless ``--full-ids``), ``date``
    (a date in tables, ISO date-time elsewhere), ``datetime`` (to the minute in tables),
    ``number`` (``digits`` decimals), ``key`` (an object key: folded, never cut).
    """

    name: str
    header: str | None = None
    kind: str = "text"
    digits: int = 2
    in_table: bool = True
    scale: float = 1.0

    @property
    def title(self) -> str:
        return self.header or self.name


def add_listing_options(
    parser: argparse.ArgumentParser,
    *,
    formats: Sequence[str] = FORMATS,
    default_name: str | None = None,
) -> None:
    """``--format``, ``--output`` and ``--full-ids``, the same on every listing verb."""
    parser.add_argument(
        "--format",
        choices=list(formats),
        default="table",
        help="table (default; fits the terminal), csv, json, geojson or gpkg "
        "(GeoPackage; needs --output or writes ./%s.gpkg)" % (default_name or "<verb>"),
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="write to this file instead of stdout"
    )
    parser.add_argument(
        "--full-ids",
        action="store_true",
        help=f"show whole ids in tables (default: the first {SHORT_ID} characters)",
    )


def console_for(stream: Any = None) -> Console:
    """A console on ``stream`` (stdout by default): COLUMNS or the terminal width, else 80."""
    return Console(file=stream or sys.stdout, soft_wrap=False)


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    args: argparse.Namespace,
    *,
    title: str,
    noun: str,
    totals: Iterable[Total] = (),
    id_column: str | None = None,
    layer: str | None = None,
    geometry: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None,
    console: Console | None = None,
) -> None:
    """Write ``rows`` in ``args.format`` to ``args.output`` or stdout.

    ``geometry(row)`` gives a row's GeoJSON geometry (default: its ``geometry`` field);
    listings without one refuse ``geojson`` and ``gpkg`` with an :class:`OutputError`.
    """
    fmt = getattr(args, "format", "table")
    output: Path | None = getattr(args, "output", None)
    out = console or console_for()
    geometry_of = geometry or _geometry_field
    summary = _summary(rows, noun, totals)
    if fmt == "table":
        table = render_table(rows, columns, title=title, full_ids=getattr(args, "full_ids", False))
        if output is not None:
            with Path(output).open("w") as handle:
                file_console = Console(file=handle, width=max(out.width, 80))
                file_console.print(table)
                file_console.print(summary)
        else:
            out.print(table)
            out.print(summary, overflow="fold")
        return
    if fmt in {"geojson", "gpkg"} and rows and geometry_of(rows[0]) is None:
        raise OutputError(f"--format {fmt}: {noun} have no geometry; use table, csv or json")
    if fmt == "gpkg":
        path = Path(output or f"{getattr(args, 'command', noun)}.gpkg")
        write_gpkg(rows, path, layer or noun, geometry_of)
        _note(f"{summary} -> {path} (layer {layer or noun})")
        return
    if fmt == "csv":
        text = to_csv(rows, geometry_of)
    elif fmt == "json":
        text = json.dumps([_jsonable_row(r) for r in rows], default=_json_default, indent=None)
    elif fmt == "geojson":
        text = json.dumps(feature_collection(rows, geometry_of, id_column), default=_json_default)
    else:
        raise OutputError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not text.endswith("\n"):
        text += "\n"
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
        _note(f"{summary} -> {output}")
    else:
        sys.stdout.write(text)


def _note(text: str) -> None:
    """A line for people when the data went to a file: on stderr, never mixed into data."""
    Console(stderr=True, soft_wrap=True).print(text, overflow="fold", highlight=False)


def _summary(rows: Sequence[Mapping[str, Any]], noun: str, totals: Iterable[Total]) -> str:
    parts = [f"{len(rows)} {noun}"] + [t(rows) for t in totals]
    return "total: " + ", ".join(p for p in parts if p)


# ------------------------------------------------------------------ table
def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str,
    full_ids: bool = False,
) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    present = set(rows[0]) if rows else None
    shown = [c for c in columns if c.in_table and (present is None or c.name in present)]
    for column in shown:
        fixed = column.kind in {"date", "datetime", "number"} or (
            column.kind == "id" and not full_ids
        )
        table.add_column(
            column.title,
            no_wrap=fixed,
            overflow="fold",
            justify="right" if column.kind == "number" else "left",
            min_width=len(column.title) if fixed else None,
        )
    for row in rows:
        table.add_row(*(cell(row.get(c.name), c, full_ids=full_ids) for c in shown))
    return table


def cell(value: Any, column: Column, *, full_ids: bool = False) -> str:
    """A value as a table shows it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    kind = column.kind
    if kind == "date":
        moment = _as_datetime(value)
        return moment.strftime("%Y-%m-%d") if moment else str(value)
    if kind == "datetime":
        moment = _as_datetime(value)
        return moment.strftime("%Y-%m-%d %H:%M") if moment else str(value)
    if kind == "id":
        text = str(value)
        return text if full_ids or len(text) <= SHORT_ID else text[:SHORT_ID]
    if kind == "number":
        try:
            return f"{float(value) * column.scale:,.{column.digits}f}"
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


# ------------------------------------------------------------------ csv / json / geojson
def _geometry_field(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = row.get("geometry")
    if isinstance(value, str) and value.strip().startswith("{"):
        loaded: Mapping[str, Any] = json.loads(value)
        return loaded
    return value if isinstance(value, Mapping) else None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _jsonable_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _finite(v) for k, v in row.items()}


def _finite(value: Any) -> Any:
    """NaN/Infinity are not JSON: null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def feature_collection(
    rows: Sequence[Mapping[str, Any]],
    geometry_of: Callable[[Mapping[str, Any]], Mapping[str, Any] | None],
    id_column: str | None = None,
) -> dict[str, Any]:
    features = []
    for row in rows:
        feature: dict[str, Any] = {
            "type": "Feature",
            "geometry": geometry_of(row),
            "properties": {k: _finite(v) for k, v in row.items() if k != "geometry"},
        }
        if id_column is not None and row.get(id_column) is not None:
            feature["id"] = row[id_column]
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def to_csv(
    rows: Sequence[Mapping[str, Any]],
    geometry_of: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] = _geometry_field,
) -> str:
    """All columns, full values; lists joined with commas; geometry as WKT (when there is one)."""
    if not rows:
        return ""
    columns = [c for c in rows[0] if c != "geometry"]
    with_geometry = geometry_of(rows[0]) is not None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*columns, *(["geometry_wkt"] if with_geometry else [])])
    for row in rows:
        values = [_csv_value(row.get(c)) for c in columns]
        if with_geometry:
            from shapely.geometry import shape

            geom = geometry_of(row)
            values.append(shape(geom).wkt if geom else "")
        writer.writerow(values)
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=_json_default)
    return _finite(value)


# ------------------------------------------------------------------ gpkg
def _gpkg_value(value: Any) -> Any:
    """Dates and times stay themselves (GeoPackage DateTime fields), the rest as in CSV."""
    return value if isinstance(value, datetime | date) else _csv_value(value)


def write_gpkg(
    rows: Sequence[Mapping[str, Any]],
    path: Path,
    layer: str,
    geometry_of: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] = _geometry_field,
    geometry_type: str | None = None,
) -> Path:
    """One GeoPackage layer (EPSG:4326), replacing the file; polygons promoted to one type;
    times as DateTime fields."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import MultiPolygon, Polygon, shape

    records = [{k: _gpkg_value(v) for k, v in r.items() if k != "geometry"} for r in rows]
    geometries = [shape(geometry_of(r)) for r in rows]
    kinds = {g.geom_type for g in geometries}
    if geometry_type is None:
        geometry_type = "MultiPolygon" if "MultiPolygon" in kinds else "Polygon"
    if geometry_type == "MultiPolygon":
        geometries = [MultiPolygon([g]) if isinstance(g, Polygon) else g for g in geometries]
    frame = gpd.GeoDataFrame(
        pd.DataFrame.from_records(records) if records else pd.DataFrame(),
        geometry=geometries,
        crs="EPSG:4326",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", geometry_type=geometry_type)
    return path


# ------------------------------------------------------------------ totals
def sum_of(name: str, unit: str, digits: int = 2, scale: float = 1.0) -> Total:
    """A total like ``12.50 ha``: the sum of a numeric column."""

    def total(rows: Sequence[Mapping[str, Any]]) -> str:
        values = [float(r[name]) for r in rows if r.get(name) is not None]
        return f"{sum(values) * scale:,.{digits}f} {unit}" if values else ""

    return total


def count_by(name: str, order: Sequence[str] = ()) -> Total:
    """A breakdown like ``3 high, 2 low``: rows per value of a column (known order first)."""

    def total(rows: Sequence[Mapping[str, Any]]) -> str:
        counts: dict[str, int] = {}
        for row in rows:
            if row.get(name) is not None:
                key = str(row[name])
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return ""
        keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
        return ", ".join(f"{counts[k]} {k}" for k in keys)

    return total


def span_of(name: str) -> Total:
    """``2024-01-03 .. 2024-03-28``: the first and last date of a column."""

    def total(rows: Sequence[Mapping[str, Any]]) -> str:
        moments = [m for m in (_as_datetime(r.get(name)) for r in rows) if m is not None]
        if not moments:
            return ""
        return f"{min(moments):%Y-%m-%d} .. {max(moments):%Y-%m-%d}"

    return total


# ------------------------------------------------------------------ help
def with_examples(help_text: str, *examples: str) -> dict[str, Any]:
    """``add_parser`` keywords: the help line, and the examples as the epilog, kept as written."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    return {
        "help": help_text,
        "description": help_text[:1].upper() + help_text[1:] + ".",
        "epilog": epilog,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
