"""Reading a table as it was: at a version, or as of a timestamp; and its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from canopywatch.lake.tables import Lake, TableSpec, table_spec


class TimeTravelError(ValueError):
    """A version or timestamp the table cannot be read at (the message is for people)."""


@dataclass(frozen=True)
class TableVersion:
    version: int
    timestamp: datetime
    operation: str
    rows_added: int | None
    parameters: dict[str, Any]


def _spec(table: str | TableSpec) -> TableSpec:
    return table if isinstance(table, TableSpec) else table_spec(table)


def _open(lake: Lake, spec: TableSpec) -> DeltaTable:
    try:
        return DeltaTable(lake.uri(spec), storage_options=lake.options())
    except TableNotFoundError:
        raise TimeTravelError(f"table {spec.name} does not exist at {lake.uri(spec)} yet") from None


def parse_as_of(text: str) -> datetime:
    """An ISO date or datetime (UTC when no zone is given)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TimeTravelError(
            f"--as-of {text!r} is not a timestamp like 2024-05-01T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def snapshot(
    lake: Lake,
    table: str | TableSpec,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> DeltaTable:
    """The table at ``version``, as of ``as_of`` (the last commit at or before it), or latest."""
    spec = _spec(table)
    if version is not None and as_of is not None:
        raise TimeTravelError("give a version or a timestamp, not both")
    delta = _open(lake, spec)
    latest = delta.version()
    if version is not None:
        if not 0 <= version <= latest:
            raise TimeTravelError(f"{spec.name} has versions 0..{latest}; there is no {version}")
        delta.load_as_version(version)
    elif as_of is not None:
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        created_ms = min(int(entry["timestamp"]) for entry in delta.history())
        if moment.timestamp() * 1000 < created_ms:
            created = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
            raise TimeTravelError(
                f"{spec.name} did not exist at {moment.isoformat()}; "
                f"it was created {created.isoformat(timespec='seconds')}"
            )
        try:
            delta.load_as_version(moment)
        except Exception as exc:
            raise TimeTravelError(
                f"{spec.name} has no version at or before {moment.isoformat()}: {exc}"
            ) from None
    return delta


def read_table(
    lake: Lake,
    table: str | TableSpec,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The rows of a table at a version, as of a timestamp, or latest."""
    return snapshot(lake, table, version=version, as_of=as_of).to_pyarrow_table(columns=columns)


def history(lake: Lake, table: str | TableSpec, limit: int | None = None) -> list[TableVersion]:
    """Commits of a table, newest first."""
    spec = _spec(table)
    entries = _open(lake, spec).history(limit)
    versions = []
    for entry in entries:
        metrics = entry.get("operationMetrics") or {}
        added = metrics.get("num_target_rows_inserted", metrics.get("num_added_rows"))
        versions.append(
            TableVersion(
                version=int(entry["version"]),
                timestamp=datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=UTC),
                operation=str(entry.get("operation", "")),
                rows_added=int(added) if added is not None else None,
                parameters=dict(entry.get("operationParameters") or {}),
            )
        )
    return versions
