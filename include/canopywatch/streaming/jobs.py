"""Kafka -> Delta streams (``spark/stream_ingest.py``): parse, watermark, write exactly once.

Each stream reads one topic from the offsets in its checkpoint (MinIO, S3A), parses
the JSON with the message's Spark schema, and writes every micro-batch in
``foreachBatch`` to its Delta table with ``txnAppId`` / ``txnVersion`` (the query id and
the batch id): a batch replayed after a crash (the driver killed after the Delta
commit, before the checkpoint's) is skipped by Delta, so nothing is lost (offsets are
only marked done after the commit) and nothing is written twice.

Rows that are not a valid message of the topic's type (not JSON, a wrong
``message_type``, a newer ``schema_version``, an event time more than six hours
ahead of the broker's timestamp) go to ``<topic>.dlq`` as DeadLetter JSON instead.

Late data: ``sensor_raw``'s event time ``observed_at`` carries a watermark
(``--watermark``, default 7 days) and duplicates of the same ``reading_id`` (a
gateway's resend) are dropped within it (``dropDuplicatesWithinWatermark``). A
reading arriving more than the watermark behind the newest reading seen is dropped by
that state (Spark's rule for late rows) and counted (``dropped_late`` in the job's
summary, a warning in its log); two days late, as the simulator's buffered batches
are, is kept. ``satellite_raw`` puts its watermark on the broker's time instead: a
backfill announces scenes acquired months ago, which are not late. Both tables keep
``kafka_timestamp`` beside the event time, so lateness can be measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from canopywatch.messages import SCHEMA_VERSION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery

log = logging.getLogger(__name__)

MAX_AHEAD = "6 hours"
DEFAULT_WATERMARK = "7 days"

SENSOR_SCHEMA = """
    schema_version INT, message_type STRING, reading_id STRING, station_id STRING,
    kind STRING, observed_at TIMESTAMP, lon DOUBLE, lat DOUBLE, source STRING,
    rain_mm DOUBLE, temperature_c DOUBLE, humidity_pct DOUBLE, soil_moisture_pct DOUBLE,
    event STRING, score DOUBLE, track_id STRING, frp_mw DOUBLE, fire_confidence STRING,
    brightness_k DOUBLE, instrument STRING, satellite STRING, daynight STRING
"""
SATELLITE_SCHEMA = """
    schema_version INT, message_type STRING, scene_id STRING, request_id STRING,
    aoi_id STRING, source STRING, function STRING, raw_key STRING, bucket STRING,
    bbox ARRAY<DOUBLE>, geohash STRING, acquired_at TIMESTAMP, crs STRING,
    bands ARRAY<STRING>, cloud_cover DOUBLE, checksum STRING, size_bytes BIGINT,
    skipped BOOLEAN
"""


@dataclass(frozen=True)
class StreamSpec:
    table: str
    topic: str  # without the prefix
    message_type: str
    schema: str
    event_time: str
    id_column: str  # what a duplicate shares
    # the watermark's clock: the event time itself, or the broker's (arrival) time
    watermark_on_arrival: bool = False
    partition_by: tuple[str, ...] = ()


STREAMS: dict[str, StreamSpec] = {
    "sensor_raw": StreamSpec(
        table="sensor_raw",
        topic="sensor-readings",
        message_type="SensorReading",
        schema=SENSOR_SCHEMA,
        event_time="observed_at",
        id_column="reading_id",
        partition_by=("observed_date",),
    ),
    "satellite_raw": StreamSpec(
        table="satellite_raw",
        topic="scenes-downloaded",
        message_type="SceneDownloaded",
        # a re-announcement of a stored scene is the same event: one row per scene + file
        schema=SATELLITE_SCHEMA,
        event_time="acquired_at",
        id_column="event_id",
        # backfills announce scenes acquired months ago: never late by acquisition time
        watermark_on_arrival=True,
    ),
}


def parsed(kafka: DataFrame, spec: StreamSpec, watermark: str) -> DataFrame:
    """Kafka rows as the table's columns plus ``_error`` (null when the row is good)."""
    from pyspark.sql import functions as F

    value = F.col("value").cast("string")
    message = F.from_json(value, spec.schema, {"mode": "PERMISSIVE"})
    frame = (
        kafka.select(
            F.col("key").cast("string").alias("kafka_key"),
            value.alias("payload"),
            F.col("topic").alias("kafka_topic"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            message.alias("m"),
        )
        .select("*", "m.*")
        .drop("m")
    )
    event = F.col(spec.event_time)
    error = (
        F.when(F.col("message_type").isNull(), F.lit("not a JSON message"))
        .when(
            F.col("message_type") != spec.message_type,
            F.concat(F.lit(f"expected {spec.message_type}, got "), F.col("message_type")),
        )
        .when(
            F.coalesce(F.col("schema_version"), F.lit(1)) > SCHEMA_VERSION,
            F.concat(
                F.lit("schema_version "),
                F.col("schema_version").cast("string"),
                F.lit(f" is newer than this job ({SCHEMA_VERSION})"),
            ),
        )
        .when(event.isNull(), F.lit(f"{spec.event_time} missing or not a time"))
        .when(
            event > F.col("kafka_timestamp") + F.expr(f"INTERVAL {MAX_AHEAD}"),
            F.lit(f"{spec.event_time} more than {MAX_AHEAD} ahead of the broker's time"),
        )
    )
    if spec.table == "sensor_raw":
        error = error.when(F.col("reading_id").isNull(), F.lit("reading_id missing"))
        frame = frame.withColumn("observed_date", F.to_date("observed_at"))
    else:
        frame = frame.withColumn(
            "event_id", F.concat_ws(":", F.col("scene_id"), F.col("checksum"))
        ).withColumn("footprint", F.get_json_object(F.col("payload"), "$.footprint"))
    frame = frame.withColumn("_error", error)
    # bad rows get their own id and the broker's time, so the watermark never sees them
    clock = F.col("kafka_timestamp") if spec.watermark_on_arrival else event
    frame = frame.withColumn(
        "_event_time", F.when(F.col("_error").isNull(), clock).otherwise(F.col("kafka_timestamp"))
    ).withColumn(
        "_dedup_id",
        F.when(F.col("_error").isNull(), F.col(spec.id_column)).otherwise(
            F.concat_ws("/", F.lit("bad"), F.col("kafka_partition"), F.col("kafka_offset"))
        ),
    )
    return frame.withWatermark("_event_time", watermark).dropDuplicatesWithinWatermark(
        ["_dedup_id"]
    )


def write_batch(
    batch: DataFrame,
    batch_id: int,
    *,
    spec: StreamSpec,
    table_path: str,
    app_id: str,
    dlq_topic: str,
    bootstrap: str,
    pause_after_commit: float = 0.0,
) -> None:
    """One micro-batch: good rows to Delta (idempotent by app id + batch id), bad to the DLQ."""
    from pyspark.sql import functions as F

    batch = batch.persist()
    try:
        good = batch.filter(F.col("_error").isNull()).drop(
            "_error", "_event_time", "_dedup_id", "message_type", "kafka_key"
        )
        good = good.withColumn("ingested_at", F.current_timestamp()).withColumn(
            "batch_id", F.lit(batch_id).cast("long")
        )
        # a batch without good rows (Spark runs empty ones to move the watermark) commits
        # nothing: its id needs no record, a replay of it writes nothing either
        if not good.isEmpty():
            writer = (
                good.write.format("delta")
                .mode("append")
                .option("txnAppId", app_id)
                .option("txnVersion", batch_id)
                .option("mergeSchema", "true")
            )
            if spec.partition_by:
                writer = writer.partitionBy(*spec.partition_by)
            writer.save(table_path)
            if pause_after_commit:
                # test hook: widen the window between the Delta commit and the checkpoint's
                time.sleep(pause_after_commit)
        bad = batch.filter(F.col("_error").isNotNull())
        if not bad.isEmpty():
            letters = bad.select(
                F.col("kafka_key").alias("key"),
                F.to_json(
                    F.struct(
                        F.lit(SCHEMA_VERSION).alias("schema_version"),
                        F.lit("DeadLetter").alias("message_type"),
                        F.col("kafka_topic").alias("source_topic"),
                        F.col("kafka_partition").alias("partition"),
                        F.col("kafka_offset").alias("offset"),
                        F.col("kafka_key").alias("key"),
                        F.col("_error").alias("error"),
                        F.col("payload"),
                        F.date_format(
                            F.current_timestamp(), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
                        ).alias("failed_at"),
                    )
                ).alias("value"),
            )
            letters.write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option(
                "topic", dlq_topic
            ).save()
    finally:
        batch.unpersist()


def start_stream(
    spark: SparkSession,
    spec: StreamSpec,
    *,
    bootstrap: str,
    topic: str,
    table_path: str,
    checkpoint: str,
    available_now: bool = True,
    watermark: str = DEFAULT_WATERMARK,
    max_offsets_per_trigger: int | None = None,
    processing_time: str = "30 seconds",
    pause_after_commit: float = 0.0,
) -> StreamingQuery:
    """Start one stream; ``available_now``: everything up to now in batches, then stop."""
    kafka = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("includeHeaders", "false")
    )
    if max_offsets_per_trigger:
        kafka = kafka.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    frame = parsed(kafka.load(), spec, watermark)
    # the app id names the checkpoint: a new checkpoint (fresh offsets, batch ids from 0)
    # must not be mistaken for a replay of the old one, so its id differs
    app_id = f"canopywatch-stream:{spec.table}:{checkpoint}"
    dlq = f"{topic}.dlq"

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        write_batch(
            batch,
            batch_id,
            spec=spec,
            table_path=table_path,
            app_id=_app_id(spark, app_id, checkpoint),
            dlq_topic=dlq,
            bootstrap=bootstrap,
            pause_after_commit=pause_after_commit,
        )

    writer = (
        frame.writeStream.queryName(f"canopywatch_{spec.table}")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(each_batch)
    )
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=processing_time)
    )
    return writer.start()


def _app_id(spark: SparkSession, fallback: str, checkpoint: str) -> str:
    """``<table>:<query id>``: the id Spark keeps in the checkpoint's ``metadata``."""
    query_id = spark.sparkContext.getLocalProperty("sql.streaming.queryId")
    return f"{fallback}:{query_id}" if query_id else fallback


def progress_summary(query: StreamingQuery) -> dict[str, Any]:
    """Batches, Kafka records read, and rows the watermark dropped as too late."""
    progress = query.recentProgress
    rows = sum(int(p.get("numInputRows", 0)) for p in progress)
    late = sum(
        int(op.get("numRowsDroppedByWatermark", 0))
        for p in progress
        for op in p.get("stateOperators", [])
    )
    return {
        "query": query.name,
        "batches": sum(1 for p in progress if int(p.get("numInputRows", 0)) > 0),
        "input_rows": rows,
        "dropped_late": late,
    }
