"""SparkSubmit application: Kafka topics -> raw Delta tables (Structured Streaming, exactly once).

    spark-submit --jars <home>/lib/spark/*.jar --conf ... spark/stream_ingest.py \
        --lake s3a://canopywatch/lake --checkpoints s3a://canopywatch/checkpoints \
        --kafka-bootstrap 127.0.0.1:19092 --topic-prefix canopywatch \
        [--tables sensor_raw,satellite_raw] [--continuous [--interval '30 seconds']] \
        [--watermark '7 days'] [--max-offsets-per-trigger N] [--report out.json]

Default: ``trigger(availableNow=True)``: everything on the topics up to now, in
micro-batches, then exit (what the ``sensor_ingest`` DAG runs on its schedule).
``--continuous``: a micro-batch every ``--interval`` until stopped (a cluster service).
S3 credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
Thin: the streams are in ``canopywatch.streaming.jobs``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from canopywatch.streaming.jobs import DEFAULT_WATERMARK, STREAMS, progress_summary, start_stream

log = logging.getLogger("canopywatch.stream_ingest")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stream_ingest.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake root, e.g. s3a://canopywatch/lake")
    parser.add_argument("--checkpoints", required=True, help="e.g. s3a://canopywatch/checkpoints")
    parser.add_argument("--kafka-bootstrap", required=True)
    parser.add_argument("--topic-prefix", default="canopywatch")
    parser.add_argument("--tables", default=",".join(STREAMS), help="comma-separated")
    parser.add_argument("--continuous", action="store_true", help="run until stopped")
    parser.add_argument("--interval", default="30 seconds", help="with --continuous")
    parser.add_argument("--watermark", default=DEFAULT_WATERMARK)
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument(
        "--pause-after-commit",
        type=float,
        default=0.0,
        help=argparse.SUPPRESS,  # test hook: seconds between the Delta and checkpoint commits
    )
    parser.add_argument("--report", type=Path, help="write the batches and rows as JSON here")
    args = parser.parse_args(argv)
    unknown = [t for t in args.tables.split(",") if t not in STREAMS]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)} (known: {', '.join(STREAMS)})")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("canopywatch-stream-ingest").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    lake = args.lake.rstrip("/")
    checkpoints = args.checkpoints.rstrip("/")
    queries = []
    for table in args.tables.split(","):
        spec = STREAMS[table]
        queries.append(
            start_stream(
                spark,
                spec,
                bootstrap=args.kafka_bootstrap,
                topic=f"{args.topic_prefix}.{spec.topic}",
                table_path=f"{lake}/{table}",
                checkpoint=f"{checkpoints}/{table}",
                available_now=not args.continuous,
                watermark=args.watermark,
                max_offsets_per_trigger=args.max_offsets_per_trigger,
                processing_time=args.interval,
                pause_after_commit=args.pause_after_commit,
            )
        )
        log.info("stream %s <- %s.%s started", table, args.topic_prefix, spec.topic)
    failed = False
    for query in queries:
        try:
            query.awaitTermination()
        except Exception as exc:
            log.error("stream %s failed: %s", query.name, str(exc).splitlines()[0])
            failed = True
    summaries = [progress_summary(q) for q in queries]
    spark.stop()
    for summary in summaries:
        log.info("%(query)s: %(batches)d batch(es), %(input_rows)d Kafka record(s)", summary)
        if summary["dropped_late"]:
            log.warning(
                "%(query)s: %(dropped_late)d record(s) later than the watermark dropped", summary
            )
    if args.report:
        args.report.write_text(json.dumps(summaries, indent=1))
    print(json.dumps(summaries, separators=(",", ":")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
