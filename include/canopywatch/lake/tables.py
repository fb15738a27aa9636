"""The Delta tables (docs/architecture.md, "Delta tables"): explicit schemas, partitions and where they live.

Every table is partitioned by ``geohash_prefix`` (the first ``PARTITION_GEOHASH_CHARS``
characters of the scene or alert geohash, cells of about 156 x 156 km) and ``month``
(``YYYY-MM`` of the acquisition or alert date), has Delta change data feed on (the
PostGIS sync reads it) and one id column the writers merge on.

On S3/MinIO the tables are ``s3://<bucket>/lake/<table>``. Concurrent commits are made
safe with S3 conditional writes (``aws_conditional_put=etag``: a commit file is written
with ``If-None-Match: *``, so of two writers racing for version N exactly one wins and
the other retries on top of it). MinIO and AWS S3 both support it, so no DynamoDB
locking provider is needed and ``AWS_S3_ALLOW_UNSAFE_RENAME`` is never set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, Schema
from deltalake.exceptions import TableNotFoundError

from canopywatch.alert_schema import ALERT_FIELDS, AlertField
from canopywatch.settings import Settings

log = logging.getLogger(__name__)

PARTITION_GEOHASH_CHARS = 3
PARTITION_COLUMNS = ("geohash_prefix", "month")
LAKE_PREFIX = "lake"
S3_REGION = "us-east-1"

_UTC_TIME = pa.timestamp("us", tz="UTC")
_TEXT_LIST = pa.list_(pa.string())


def _required(name: str, kind: pa.DataType) -> pa.Field:
    return pa.field(name, kind, nullable=False)


def _optional(name: str, kind: pa.DataType) -> pa.Field:
    return pa.field(name, kind, nullable=True)


# Kafka provenance of a row: nullable so rows can also come from elsewhere (backfills)
_PROVENANCE = (
    _optional("kafka_topic", pa.string()),
    _optional("kafka_partition", pa.int32()),
    _optional("kafka_offset", pa.int64()),
    _required("schema_version", pa.int32()),
    _required("ingested_at", _UTC_TIME),
)
_PARTITIONS = (_required("geohash_prefix", pa.string()), _required("month", pa.string()))

SCENES_RAW_SCHEMA = pa.schema(
    [
        _required("scene_id", pa.string()),
        _required("request_id", pa.string()),
        _required("aoi_id", pa.string()),
        _required("source", pa.string()),
        _required("function", pa.string()),
        _required("bucket", pa.string()),
        _required("raw_key", pa.string()),
        _required("geohash", pa.string()),
        _required("acquired_at", _UTC_TIME),
        _required("bbox_min_lon", pa.float64()),
        _required("bbox_min_lat", pa.float64()),
        _required("bbox_max_lon", pa.float64()),
        _required("bbox_max_lat", pa.float64()),
        _required("footprint_geojson", pa.string()),
        _required("crs", pa.string()),
        _required("height", pa.int32()),
        _required("width", pa.int32()),
        _required("bands", _TEXT_LIST),
        _optional("cloud_cover", pa.float64()),
        _required("checksum", pa.string()),
        _required("size_bytes", pa.int64()),
        *_PROVENANCE,
        *_PARTITIONS,
    ]
)

SCENES_COG_SCHEMA = pa.schema(
    [
        _required("scene_id", pa.string()),
        _required("cog_key", pa.string()),
        _required("geohash", pa.string()),
        _required("acquired_at", _UTC_TIME),
        _required("valid", pa.bool_()),
        _required("validation_errors", _TEXT_LIST),
        _required("validation_warnings", _TEXT_LIST),
        *_PROVENANCE,
        *_PARTITIONS,
    ]
)

# the alert schema (canopywatch.alert_schema) with the geometry as GeoJSON text
ALERT_GEOMETRY_COLUMN = "geometry_geojson"
_ALERT_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(),
    "datetime": _UTC_TIME,
    "float": pa.float64(),
    "geometry": pa.string(),
}


def _alert_column(spec: AlertField) -> pa.Field:
    name = ALERT_GEOMETRY_COLUMN if spec.kind == "geometry" else spec.name
    return pa.field(name, _ALERT_ARROW[spec.kind], nullable=not spec.required)


ALERTS_SCHEMA = pa.schema(
    [
        *(_alert_column(spec) for spec in ALERT_FIELDS),
        _required("geohash", pa.string()),
        *_PROVENANCE,
        *_PARTITIONS,
    ]
)


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    key: str
    description: str
    # columns whose change in a re-sent record updates the stored row; empty: first write wins
    updatable: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = PARTITION_COLUMNS
    # False: rows are matched on the key alone, so a record whose partition values changed
    # (an alert re-dated or moved) updates its row instead of adding one
    merge_in_partition: bool = True

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


SCENES_RAW = TableSpec(
    "scenes_raw",
    SCENES_RAW_SCHEMA,
    key="scene_id",
    description="Sentinel-2 scenes stored in the object store (one row per SceneDownloaded)",
)
SCENES_COG = TableSpec(
    "scenes_cog",
    SCENES_COG_SCHEMA,
    key="scene_id",
    description="Cloud-Optimized GeoTIFFs made from raw scenes (one row per SceneConverted)",
    updatable=("cog_key", "valid", "validation_errors", "validation_warnings"),
)
ALERTS = TableSpec(
    "alerts",
    ALERTS_SCHEMA,
    key="alert_id",
    description="Dated, scored deforestation alerts (one row per alert id, latest state)",
    updatable=(
        *(c for c in ALERTS_SCHEMA.names[: len(ALERT_FIELDS)] if c != "alert_id"),
        "geohash",
        *PARTITION_COLUMNS,
    ),
    merge_in_partition=False,
)
TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (SCENES_RAW, SCENES_COG, ALERTS)}


class UnknownTableError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown lake table {name!r}; choose from {', '.join(TABLES)}")


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTableError(name) from None


@dataclass(frozen=True)
class Lake:
    """Where the tables live: a local folder or an S3 prefix, with its storage options."""

    root: str
    storage_options: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def local(cls, path: Path | str) -> Lake:
        folder = Path(path).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return cls(str(folder))

    @classmethod
    def s3(
        cls,
        bucket: str,
        *,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        region: str = S3_REGION,
        prefix: str = LAKE_PREFIX,
    ) -> Lake:
        options = {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": region,
            # safe concurrent commits: put-if-absent on the _delta_log/N.json files
            "aws_conditional_put": "etag",
        }
        if endpoint_url:
            options["AWS_ENDPOINT_URL"] = endpoint_url
            options["AWS_ALLOW_HTTP"] = str(endpoint_url.startswith("http://")).lower()
        return cls(f"s3://{bucket}/{prefix.strip('/')}", options)

    @classmethod
    def parse(cls, location: str, settings: Settings) -> Lake:
        """``s3://bucket/prefix`` (the S3 keys of ``settings``) or a local folder."""
        if location.startswith("s3://"):
            bucket, _, prefix = location[len("s3://") :].partition("/")
            return lake_from_settings(settings, bucket=bucket, prefix=prefix or LAKE_PREFIX)
        return cls.local(location)

    def uri(self, table: str | TableSpec) -> str:
        name = table.name if isinstance(table, TableSpec) else table_spec(table).name
        return f"{self.root.rstrip('/')}/{name}"

    def options(self) -> dict[str, str]:
        return dict(self.storage_options)


def lake_from_settings(
    settings: Settings, *, bucket: str | None = None, prefix: str = LAKE_PREFIX
) -> Lake:
    """The lake on the S3 store of ``settings`` (``CANOPYWATCH_S3_ENDPOINT``,
    ``CANOPYWATCH_S3_ACCESS_KEY`` / ``CANOPYWATCH_S3_SECRET_KEY``)."""
    if not (settings.s3_access_key and settings.s3_secret_key):
        raise ValueError(
            "no S3 credentials: set CANOPYWATCH_S3_ACCESS_KEY and CANOPYWATCH_S3_SECRET_KEY "
            "(the local platform: source .platform/airflow/env.sh)"
        )
    return Lake.s3(
        bucket or settings.bucket,
        endpoint_url=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        prefix=prefix,
    )


def table_exists(lake: Lake, spec: TableSpec) -> bool:
    return bool(DeltaTable.is_deltatable(lake.uri(spec), storage_options=lake.options()))


def open_table(lake: Lake, spec: TableSpec, *, create: bool = True) -> DeltaTable:
    """The table at its latest version; created empty (version 0) when missing and ``create``."""
    uri = lake.uri(spec)
    try:
        return add_missing_columns(DeltaTable(uri, storage_options=lake.options()), spec)
    except TableNotFoundError:
        if not create:
            raise
    try:
        table = DeltaTable.create(
            uri,
            spec.schema,
            mode="ignore",
            partition_by=list(spec.partition_by),
            name=spec.name,
            description=spec.description,
            configuration={"delta.enableChangeDataFeed": "true"},
            storage_options=lake.options(),
        )
        log.info("created Delta table %s at %s", spec.name, uri)
        return table
    except Exception:
        # another writer created it between our look and our create: use theirs
        if table_exists(lake, spec):
            return DeltaTable(uri, storage_options=lake.options())
        raise


def add_missing_columns(table: DeltaTable, spec: TableSpec) -> DeltaTable:
    """A table made before columns were added to its schema gets them (nullable: its old
    rows hold none), so new rows can be written; the table is returned."""
    have = {field.name for field in table.schema().fields}
    missing = [f.with_nullable(True) for f in spec.schema if f.name not in have]
    if missing:
        table.alter.add_columns(list(Schema.from_arrow(pa.schema(missing)).fields))
        log.info("%s: added column(s) %s", spec.name, ", ".join(f.name for f in missing))
    return table


def current_versions(
    lake: Lake, specs: tuple[TableSpec, ...] = tuple(TABLES.values())
) -> dict[str, int]:
    """The latest version of each table, -1 for a table that does not exist yet."""
    versions: dict[str, int] = {}
    for spec in specs:
        try:
            versions[spec.name] = DeltaTable(
                lake.uri(spec), storage_options=lake.options()
            ).version()
        except TableNotFoundError:
            versions[spec.name] = -1
    return versions
