"""Reductions of a Delta change data feed: the net change per id, and rows with exactly a
table's columns. Used by the catalog sync (Delta -> PostGIS) and the GeoPackage export."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from canopywatch.lake.tables import TableSpec

_CHANGE_RANK = {"update_preimage": 0, "delete": 1, "insert": 2, "update_postimage": 2}


def net_changes(
    changes: Iterable[dict[str, Any]], key: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    """(rows to upsert, ids to delete) from change-feed rows; the last change of an id wins."""
    ordered = sorted(
        (c for c in changes if c["_change_type"] != "update_preimage"),
        key=lambda c: (c["_commit_version"], _CHANGE_RANK[c["_change_type"]]),
    )
    final: dict[Any, dict[str, Any]] = {}
    for change in ordered:
        final[change[key]] = change
    upserts = [c for c in final.values() if c["_change_type"] != "delete"]
    deletes = [k for k, c in final.items() if c["_change_type"] == "delete"]
    return upserts, deletes


def known_columns(table: pa.Table, spec: TableSpec) -> list[dict[str, Any]]:
    """Rows with exactly the spec's columns: extra columns (newer writers) are ignored,
    missing optional ones (older tables) read as None."""
    present = [c for c in spec.columns if c in table.column_names]
    extra = [c for c in ("_change_type", "_commit_version") if c in table.column_names]
    rows: list[dict[str, Any]] = table.select(present + extra).to_pylist()
    missing = [c for c in spec.columns if c not in present]
    for row in rows:
        for column in missing:
            row[column] = None
    return rows
