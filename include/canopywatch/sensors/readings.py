"""Rows of a sensor file (CSV, JSON lines or FIRMS CSV) into checked SensorReadings.

``read_rows`` splits the input into numbered raw rows and fields; it raises InputError
when the input as a whole cannot be read (missing file, not text, no header, neither CSV
nor JSON lines). ``check_row`` turns one row's fields into a ``SensorReading`` or raises
ValueError with the reason: a malformed value, a station that is not registered or does
not report that kind, an impossible value, or a time far in the future.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from canopywatch.messages import SensorReading
from canopywatch.sensors.firms import firms_fields, is_firms_header
from canopywatch.sensors.stations import Station

# clocks drift and gateways buffer; a reading further ahead than this is refused
MAX_FUTURE = timedelta(hours=6)
# a reading before this is a reset clock (epoch, GPS week roll-over), not an observation
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FORMATS = ("auto", "csv", "jsonl", "firms")


class InputError(ValueError):
    """The input as a whole is unreadable (as opposed to one bad row)."""


@dataclass(frozen=True)
class Row:
    line: int
    raw: str
    fields: dict[str, Any] | None
    error: str | None = None


def open_input(source: str) -> TextIO:
    """The file, or standard input for ``-``; InputError when it cannot be opened."""
    if source == "-":
        import sys

        return sys.stdin
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source}: no such file")
    try:
        data = path.read_bytes()
        return io.StringIO(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{source}: {exc.strerror or exc}") from exc


def read_rows(handle: TextIO, fmt: str = "auto", name: str = "input") -> Iterator[Row]:
    try:
        text = handle.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text ({exc.reason})") from exc
    if "\x00" in text:
        raise InputError(f"{name}: binary data, not CSV or JSON lines")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise InputError(f"{name}: empty input")
    if fmt == "auto":
        fmt = "jsonl" if first.lstrip().startswith("{") else "csv"
    if fmt == "jsonl":
        yield from _json_rows(lines)
        return
    yield from _csv_rows(lines, name, firms=fmt == "firms")


def _json_rows(lines: list[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, line, None, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(value, dict):
            yield Row(number, line, None, "not a JSON object")
            continue
        yield Row(number, line, value)


def _csv_rows(lines: list[str], name: str, *, firms: bool) -> Iterator[Row]:
    reader = csv.reader(lines)
    header: list[str] | None = None
    for number, cells in enumerate(reader, start=1):
        raw = lines[number - 1] if number - 1 < len(lines) else ""
        if header is None:
            header = [c.strip() for c in cells]
            firms = firms or is_firms_header(header)
            if not firms and not {"station_id", "kind", "observed_at"} <= set(header):
                raise InputError(
                    f"{name}: the CSV header needs station_id, kind and observed_at "
                    "(or the FIRMS columns latitude, longitude, acq_date, acq_time, ...)"
                )
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield Row(number, raw, None, f"{len(cells)} cells, the header has {len(header)}")
            continue
        values = dict(zip(header, cells, strict=True))
        if firms:
            try:
                yield Row(number, raw, firms_fields(values))
            except ValueError as exc:
                yield Row(number, raw, None, str(exc))
            continue
        yield Row(number, raw, {k: v.strip() for k, v in values.items() if v.strip() != ""})


def check_row(
    fields: Mapping[str, Any],
    stations: Mapping[str, Station],
    now: datetime | None = None,
) -> SensorReading:
    """One row's fields as a checked reading; ValueError with the reason otherwise."""
    values = dict(fields)
    kind = values.get("kind")
    if kind != "fire_hotspot":
        station_id = str(values.get("station_id") or "")
        station = stations.get(station_id)
        if station is None:
            raise ValueError(f"unknown station {station_id!r} (not in the station registry)")
        if kind not in station.kinds:
            raise ValueError(
                f"station {station_id} reports {', '.join(station.kinds)}, not {kind!r}"
            )
        values.setdefault("lon", station.lon)
        values.setdefault("lat", station.lat)
    try:
        reading = SensorReading.model_validate_json(json.dumps(values, default=str))
    except ValidationError as exc:
        raise ValueError(_validation_message(exc)) from None
    now = now or datetime.now(UTC)
    if reading.observed_at > now + MAX_FUTURE:
        raise ValueError(
            f"observed_at {reading.observed_at.isoformat()} is in the future "
            f"(more than {MAX_FUTURE} ahead of {now.isoformat(timespec='seconds')})"
        )
    if reading.observed_at < EARLIEST:
        raise ValueError(
            f"observed_at {reading.observed_at.isoformat()} is before 2000 (reset clock)"
        )
    return reading


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'reading'}: {err['msg']}" for err in exc.errors()
    )
