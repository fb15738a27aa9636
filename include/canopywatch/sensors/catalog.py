"""Delta ``sensor_raw`` -> PostGIS ``sensor_readings`` (what the dbt sensor models read).

One row per raw Kafka record (key: partition + offset), as the stream wrote it: the
duplicates a late resend brings stay here and ``stg_sensors`` removes them. The sync is
incremental and idempotent: rows whose ``ingested_at`` (one time per micro-batch,
batches are sequential) is after the newest one PostGIS holds are copied, and a row
already there is skipped (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

TABLE = "sensor_readings"
# (column, PostgreSQL type); geom is made from lon/lat
COLUMNS: tuple[tuple[str, str], ...] = (
    ("reading_id", "text NOT NULL"),
    ("station_id", "text NOT NULL"),
    ("kind", "text NOT NULL"),
    ("observed_at", "timestamptz NOT NULL"),
    ("lon", "double precision NOT NULL"),
    ("lat", "double precision NOT NULL"),
    ("source", "text"),
    ("rain_mm", "double precision"),
    ("temperature_c", "double precision"),
    ("humidity_pct", "double precision"),
    ("soil_moisture_pct", "double precision"),
    ("event", "text"),
    ("score", "double precision"),
    ("track_id", "text"),
    ("frp_mw", "double precision"),
    ("fire_confidence", "text"),
    ("brightness_k", "double precision"),
    ("instrument", "text"),
    ("satellite", "text"),
    ("daynight", "text"),
    ("kafka_partition", "integer NOT NULL"),
    ("kafka_offset", "bigint NOT NULL"),
    ("kafka_timestamp", "timestamptz"),
    ("ingested_at", "timestamptz NOT NULL"),
)
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    {", ".join(f"{name} {kind}" for name, kind in COLUMNS)},
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED,
    PRIMARY KEY (kafka_partition, kafka_offset)
);
CREATE INDEX IF NOT EXISTS {TABLE}_geom_idx ON {TABLE} USING gist (geom);
CREATE INDEX IF NOT EXISTS {TABLE}_station_time_idx ON {TABLE} (station_id, observed_at);
"""


def ensure_table(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()


def sync_sensor_readings(
    conn: Any, table_uri: str, storage_options: Mapping[str, str] | None = None
) -> int:
    """Copy the Delta rows PostGIS lacks; returns how many were added."""
    import pyarrow.dataset as ds
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    ensure_table(conn)
    try:
        table = DeltaTable(table_uri, storage_options=dict(storage_options or {}))
    except TableNotFoundError:
        log.info("no Delta table at %s yet: nothing to sync", table_uri)
        return 0
    with conn.cursor() as cur:
        cur.execute(f"SELECT max(ingested_at) FROM {TABLE}")
        newest: datetime | None = cur.fetchone()[0]
    dataset = table.to_pyarrow_dataset()
    names = [name for name, _ in COLUMNS]
    wanted = ds.field("ingested_at") > newest if newest is not None else None
    batches = dataset.to_batches(columns=names, filter=wanted)
    added = 0
    with conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DROP")
        cur.execute("ALTER TABLE incoming DROP COLUMN geom")
        with cur.copy(f"COPY incoming ({', '.join(names)}) FROM STDIN") as copy:
            for batch in batches:
                for row in batch.to_pylist():
                    copy.write_row([row[name] for name in names])
        cur.execute(
            f"INSERT INTO {TABLE} ({', '.join(names)}) SELECT {', '.join(names)} FROM incoming "
            "ON CONFLICT DO NOTHING"
        )
        added = int(cur.rowcount)
    conn.commit()
    log.info(
        "sensor_readings: %d row(s) added from %s (version %d)", added, table_uri, table.version()
    )
    return added
