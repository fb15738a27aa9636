"""Lake and catalog figures: exactly-once Kafka -> Delta writes and PostGIS bbox + time queries.

    .venv/bin/python benchmarks/lake.py [--records 3000] [--batch 500] [--naive 100]
                                        [--rows 10000,100000,1000000] [--queries 200]
                                        [--lake minio|local] [--source kafka|memory]
                                        [--quick] [--json OUT]

1. Records per second of SceneDownloaded messages through the exactly-once writer
   (``write_scene_batch``: one Delta commit per batch with the Kafka offsets as
   transaction app ids, merge on scene_id), next to a naive writer that commits once
   per message (the same writer with batches of one), on MinIO (or a local folder).
   ``--source kafka`` (the default): the messages are produced to a fresh topic on the
   real broker and consumed back in batches, each batch written then its offsets committed
   (synchronously), with a real DLQ producer; the clock covers consume + write + commit.
   ``--source memory``: the same messages handed to the writer from memory with a
   discarding DLQ producer, i.e. the Delta writer alone, without the broker.
2. PostGIS latency (p50/p95) of the bbox + time query (``queries.SCENES_SQL``: a 0.5°
   box and a 30-day window) over 10k, 100k and 1M generated scenes, loaded with COPY.

Works in a fresh bucket, fresh topics and a fresh PostGIS schema, all removed at the end.
``--quick``: 3000 batched and 20 naive records, queries over 10k and 100k scenes.
``--json OUT`` writes the figures as JSON. The layouts behind the query figures are
compared in ``benchmarks/catalog_query.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from canopywatch.catalog import queries
from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import Lake, lake_from_settings
from canopywatch.settings import Settings
from canopywatch_dev.platform import kafka, minio, stack
from canopywatch_dev.platform.environment import with_credentials
from canopywatch_dev.synthetic_catalog import (
    DiscardingProducer,
    StaticMessage,
    load_synthetic_scenes,
    random_query_box,
    random_query_window,
    synthetic_scene_message,
)


@dataclass(frozen=True)
class WriteResult:
    label: str
    records: int
    commits: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def measure_writer(lake: Lake, label: str, records: int, batch: int, first: int) -> WriteResult:
    """The Delta writer alone: in-memory messages, a DLQ producer that discards."""
    messages = [
        StaticMessage(synthetic_scene_message(first + n).to_bytes(), first + n)
        for n in range(records)
    ]
    started = time.perf_counter()
    commits = 0
    for at in range(0, records, batch):
        outcome = write_scene_batch(messages[at : at + batch], lake=lake, dlq=DiscardingProducer())
        commits += outcome.commit.version is not None
    return WriteResult(label, records, commits, time.perf_counter() - started)


def measure_kafka_writer(
    settings: Settings, topic: str, lake: Lake, label: str, records: int, batch: int
) -> WriteResult:
    """Kafka -> Delta: ``records`` produced to ``topic``, consumed back in batches of
    ``batch``, each written exactly once and then its offsets committed synchronously."""
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20})
    for n in range(records):
        producer.produce(topic, synthetic_scene_message(n).to_bytes(), key=str(n).encode())
    if producer.flush(60):
        raise RuntimeError(f"{topic}: messages left undelivered before the measurement")
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"cwbench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    dlq = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    seen, commits, started = 0, 0, None
    try:
        deadline = time.monotonic() + 60  # the group's partition assignment
        while seen < records and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            if not messages:
                continue
            started = started or time.perf_counter()
            outcome = write_scene_batch(messages, lake=lake, dlq=dlq)
            consumer.commit(asynchronous=False)
            commits += outcome.commit.version is not None
            seen += len(messages)
            deadline = time.monotonic() + 30
    finally:
        consumer.close()
    if seen < records or started is None:
        raise RuntimeError(f"{topic}: consumed {seen} of {records} messages")
    return WriteResult(label, records, commits, time.perf_counter() - started)


@dataclass(frozen=True)
class QueryResult:
    rows: int
    load_seconds: float
    p50_ms: float
    p95_ms: float
    mean_hits: float


def measure_queries(conn_settings: Settings, schema: str, rows: int, count: int) -> QueryResult:
    rng = random.Random(rows)
    with connect(conn_settings, schema=schema) as conn:
        ensure_schema(conn)
        started = time.perf_counter()
        load_synthetic_scenes(conn, rows)
        load_seconds = time.perf_counter() - started
        timings, hits = [], []
        for n in range(count + 10):
            start, end = random_query_window(rng)
            query = queries.Query.parse(random_query_box(rng), start.isoformat(), end.isoformat())
            t0 = time.perf_counter()
            found = queries.scenes_in(conn, query)
            if n >= 10:  # the first few warm the cache and the prepared statement
                timings.append((time.perf_counter() - t0) * 1000)
                hits.append(len(found))
    cuts = statistics.quantiles(timings, n=100)
    return QueryResult(
        rows, load_seconds, statistics.median(timings), cuts[94], statistics.mean(hits)
    )


def create_topics(settings: Settings, names: list[str]) -> None:
    from confluent_kafka.cimpl import NewTopic

    admin = kafka.admin_client(settings)
    for future in admin.create_topics([NewTopic(name, 1, 1) for name in names]).values():
        future.result(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=int, default=3000, help="records through the batch writer"
    )
    parser.add_argument("--batch", type=int, default=500, help="records per Delta commit")
    parser.add_argument("--naive", type=int, default=100, help="records through the naive writer")
    parser.add_argument("--rows", default="10000,100000,1000000", help="scene counts for queries")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--lake", choices=("minio", "local"), default="minio")
    parser.add_argument(
        "--source",
        choices=("kafka", "memory"),
        default="kafka",
        help="kafka: through the real broker (produce, consume, commit); memory: the writer alone",
    )
    parser.add_argument("--quick", action="store_true", help="20 naive records, 10k/100k scenes")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.naive, args.rows = 20, "10000,100000"
    try:
        sizes = [int(r) for r in args.rows.split(",") if r]
    except ValueError:
        sizes = [-1]
    if args.records < 1 or args.batch < 1 or args.naive < 1 or any(r < 1 for r in sizes):
        print(
            "lake.py: --records, --batch, --naive and --rows need positive counts", file=sys.stderr
        )
        return 2
    console = Console()

    base = with_credentials(Settings.from_env())
    stack.up(base, ["postgres", "minio", *(["kafka"] if args.source == "kafka" else [])])
    run = uuid.uuid4().hex[:8]
    settings = replace(base, bucket=f"cwbench-{run}", topic_prefix=f"cwbench-{run}")
    topics = [settings.topic("lake-batched"), settings.topic("lake-naive")]
    schema = f"cwbench_{run}"
    s3 = minio.s3_client(settings)
    scratch = Path(tempfile.mkdtemp(prefix="cwbench-"))
    if args.lake == "minio":
        s3.create_bucket(Bucket=settings.bucket)

    def lake(name: str) -> Lake:
        if args.lake == "minio":
            return lake_from_settings(settings, prefix=name)
        return Lake.local(scratch / name)

    try:
        console.print(
            f"writers: {args.records} batched, {args.naive} naive records "
            f"({args.source} -> Delta on {args.lake})"
        )
        if args.source == "kafka":
            create_topics(settings, topics)
            batched = measure_kafka_writer(
                settings,
                topics[0],
                lake("batched"),
                f"exactly-once, {args.batch}/commit",
                args.records,
                args.batch,
            )
            naive = measure_kafka_writer(
                settings, topics[1], lake("naive"), "naive, 1/commit", args.naive, 1
            )
        else:
            batched = measure_writer(
                lake("batched"), f"exactly-once, {args.batch}/commit", args.records, args.batch, 0
            )
            naive = measure_writer(lake("naive"), "naive, 1/commit", args.naive, 1, 0)
        query_results = []
        for rows in sizes:
            console.print(f"PostGIS: loading {rows:,} scenes and running {args.queries} queries")
            query_results.append(measure_queries(settings, schema, rows, args.queries))
    finally:
        if args.source == "kafka":
            kafka.admin_client(settings).delete_topics(topics, operation_timeout=30)
        with connect(settings) as conn:
            drop_schema(conn, schema)
        if args.lake == "minio":
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
                for obj in page.get("Contents", []):
                    s3.delete_object(Bucket=settings.bucket, Key=obj["Key"])
            s3.delete_bucket(Bucket=settings.bucket)

    source = "Kafka" if args.source == "kafka" else "in-memory messages (no broker)"
    writers = Table(title=f"{source} -> Delta writers ({args.lake})")
    for column in ("writer", "records", "commits", "seconds", "records/s"):
        writers.add_column(column, justify="right")
    for result in (batched, naive):
        writers.add_row(
            result.label,
            str(result.records),
            str(result.commits),
            f"{result.seconds:.1f}",
            f"{result.per_second:,.1f}",
        )
    writers.caption = (
        f"exactly-once batched / naive = {batched.per_second / naive.per_second:,.0f}x"
    )
    console.print(writers)

    latency = Table(title="PostGIS bbox (0.5°) + time (30 days) query")
    for column in ("scenes", "COPY + index s", "p50 ms", "p95 ms", "mean rows"):
        latency.add_column(column, justify="right")
    for q in query_results:
        latency.add_row(
            f"{q.rows:,}",
            f"{q.load_seconds:.1f}",
            f"{q.p50_ms:.2f}",
            f"{q.p95_ms:.2f}",
            f"{q.mean_hits:.1f}",
        )
    console.print(latency)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "lake",
                    "source": args.source,
                    "lake": args.lake,
                    "load_average": list(os.getloadavg()),
                    "writers": [
                        {
                            "writer": r.label,
                            "records": r.records,
                            "commits": r.commits,
                            "seconds": round(r.seconds, 3),
                            "records_per_s": round(r.per_second, 1),
                        }
                        for r in (batched, naive)
                    ],
                    "batched_vs_naive": round(batched.per_second / naive.per_second, 1),
                    "queries": [
                        {
                            "rows": q.rows,
                            "load_s": round(q.load_seconds, 2),
                            "p50_ms": round(q.p50_ms, 3),
                            "p95_ms": round(q.p95_ms, 3),
                            "mean_rows": round(q.mean_hits, 2),
                        }
                        for q in query_results
                    ],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
