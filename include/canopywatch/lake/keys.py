"""Which of a batch's ids a Delta table already holds, without a merge.

``stored_keys`` reads the key column of the data files of the partitions a batch
touches (every file when the table matches rows across partitions). A Delta data file
never changes once written, so each file's ids are read once per process
(``KeyCache``), files are read in parallel, and the files a writer has just committed
itself are remembered from the rows it wrote (``KeyCache.remember``), so a consumer task
reads, batch after batch, only the files other writers committed. Files that a later
commit removes (compaction, deletes) leave the table's file list, so they no longer count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deltalake import DeltaTable

from canopywatch.lake.tables import TableSpec

READ_THREADS = 16
MAX_CACHED_FILES = 50_000


def partition_paths(table: DeltaTable) -> dict[str, tuple[str, ...]]:
    """Each data file of the table's current version -> its partition values (as text)."""
    actions = table.get_add_actions(flatten=True)
    paths = actions.column("path").to_pylist()
    columns = [name for name in actions.column_names if name.startswith("partition.")]
    values = [actions.column(name).to_pylist() for name in sorted(columns)]
    return {path: tuple(str(v[i]) for v in values) for i, path in enumerate(paths)}


def _partition_of(spec: TableSpec, row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in sorted(spec.partition_by))


def stored_keys(
    table: DeltaTable,
    spec: TableSpec,
    rows: Sequence[Mapping[str, Any]],
    storage_options: Mapping[str, str] | None = None,
) -> set[Any]:
    """Those of the rows' ids the table holds."""
    files = partition_paths(table)
    if spec.merge_in_partition:
        touched = {_partition_of(spec, r) for r in rows}
        paths = [p for p, values in files.items() if values in touched]
    else:
        paths = list(files)
    wanted = {r[spec.key] for r in rows}
    found: set[Any] = set()
    for keys in KEY_CACHE.keys_of(table, spec.key, paths, storage_options):
        found |= keys & wanted
    return found


class KeyCache:
    """Per data file (table URI, key column, path): the set of its key values."""

    def __init__(self, max_files: int = MAX_CACHED_FILES, threads: int = READ_THREADS) -> None:
        self.max_files = max_files
        self.threads = threads
        self._keys: dict[tuple[str, str, str], frozenset[Any]] = {}

    def _store(self, entries: Mapping[tuple[str, str, str], frozenset[Any]]) -> None:
        if len(self._keys) + len(entries) > self.max_files:
            self._keys.clear()  # a bound on memory: start over (still correct, only slower)
        self._keys.update(entries)

    def keys_of(
        self,
        table: DeltaTable,
        key: str,
        paths: Sequence[str],
        storage_options: Mapping[str, str] | None = None,
    ) -> list[frozenset[Any]]:
        uri = table.table_uri
        known = {p: self._keys.get((uri, key, p)) for p in paths}
        missing = [p for p, keys in known.items() if keys is None]
        if missing:
            import pyarrow.fs as pafs
            import pyarrow.parquet as pq
            from deltalake.fs import DeltaStorageHandler

            options = dict(storage_options) if storage_options else None
            filesystem = pafs.PyFileSystem(DeltaStorageHandler(uri, options))

            def read(path: str) -> frozenset[Any]:
                column = pq.read_table(path, columns=[key], filesystem=filesystem).column(0)
                return frozenset(column.to_pylist())

            with ThreadPoolExecutor(max_workers=min(self.threads, len(missing))) as pool:
                read_keys = dict(zip(missing, pool.map(read, missing), strict=True))
            self._store({(uri, key, p): k for p, k in read_keys.items()})
            known.update(read_keys)
        return [keys for keys in known.values() if keys is not None]

    def remember(
        self,
        table: DeltaTable,
        spec: TableSpec,
        before: Collection[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """After a writer's own append (the only commit since ``before``, the file list it
        started from): each new file holds the written rows of its partition. Only when
        every partition got one file; otherwise the files are read when next needed."""
        new = {p: v for p, v in partition_paths(table).items() if p not in before}
        per_partition: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for path, values in new.items():
            per_partition[values].append(path)
        if any(len(paths) > 1 for paths in per_partition.values()):
            return
        keys: dict[tuple[str, ...], set[Any]] = defaultdict(set)
        for row in rows:
            keys[_partition_of(spec, row)].add(row[spec.key])
        uri = table.table_uri
        self._store(
            {
                (uri, spec.key, paths[0]): frozenset(keys.get(values, ()))
                for values, paths in per_partition.items()
            }
        )


KEY_CACHE = KeyCache()
