"""SparkSubmit application: convert raw scenes to COGs and announce them (SceneConverted).

    spark-submit --jars <home>/lib/spark/*.jar --conf ... spark/cog_convert.py \
        --lake s3://canopywatch/lake --s3-endpoint http://127.0.0.1:19000 \
        --topic canopywatch.scenes-converted --kafka-bootstrap 127.0.0.1:19092 \
        [--scenes-from s3://canopywatch/_jobs/cog_convert/....json | --scene-ids id1,id2]
        [--profile canopywatch-deflate] [--partitions N] [--report out.json]

``--scenes-from``: the scenes to convert, handed over by the launching task
(``canopywatch.cog.handover``) as an object in the bucket that the driver reads with
boto3; the job then reads no Delta, so it needs neither the Delta nor the S3A jars.
Without it the job selects the scenes itself from Delta ``scenes_raw``/``scenes_cog``
with delta-spark over S3A (``--jars`` and ``spark_conf()`` of ``canopywatch.cog.submit``).

S3 credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),
never from arguments. Thin: the work is in ``canopywatch.cog``. Exit status 0 when
every scene has an outcome (failed scenes are reported and announced as invalid), 1
when the job itself could not run or its messages could not be delivered.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from canopywatch.cog.handover import read_handover
from canopywatch.cog.job import JobReport, convert_rows, pending_scenes, publish, s3_client
from canopywatch.cog.profiles import DEFAULT_PROFILE, PROFILES

log = logging.getLogger("canopywatch.cog_convert")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cog_convert.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake root, e.g. s3://canopywatch/lake")
    parser.add_argument("--s3-endpoint", help="S3 endpoint (MinIO); AWS when left out")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--topic", required=True, help="the scenes-converted topic")
    parser.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers")
    parser.add_argument("--no-publish", action="store_true", help="convert only, announce nothing")
    parser.add_argument("--scene-ids", default="", help="comma-separated ids (default: pending)")
    parser.add_argument("--scenes-from", help="s3:// URI of the scenes handed over (no Delta read)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    parser.add_argument("--partitions", type=int, help="default: two per executor core")
    parser.add_argument("--report", type=Path, help="write the outcome per scene as JSON here")
    args = parser.parse_args(argv)
    if not args.no_publish and not args.kafka_bootstrap:
        parser.error("--kafka-bootstrap is required unless --no-publish")
    if args.scenes_from and args.scene_ids:
        parser.error("--scenes-from or --scene-ids, not both")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock
        clock = now

    handed: list[dict[str, Any]] | None = None
    if args.scenes_from:  # the rows from the launching task: no Delta, no S3A
        handed = read_handover(s3_client(args.s3_endpoint, args.region), args.scenes_from)
        lap("select")
        log.info("%d scene(s) handed over in %s", len(handed), args.scenes_from)
    conversions = []
    if handed is None or handed:
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName("canopywatch-cog-convert").getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        lap("session")
        try:
            if handed is None:
                ids = [s for s in args.scene_ids.split(",") if s]
                rows = [r.asDict() for r in pending_scenes(spark, args.lake, ids).collect()]
                lap("select")
            else:
                rows = handed
            conversions = convert_rows(
                spark,
                rows,
                endpoint=args.s3_endpoint,
                region=args.region,
                profile=args.profile,
                partitions=args.partitions,
            )
            lap("convert")
        finally:
            spark.stop()
            lap("stop")
    published = 0
    if conversions and not args.no_publish:
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": args.kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
        )
        published = publish(conversions, producer, args.topic)
        lap("publish")
    report = JobReport(conversions, published, phases)
    for conversion in conversions:
        if conversion.status == "failed":
            log.warning("scene %s failed: %s", conversion.scene_id, "; ".join(conversion.errors))
    summary = report.summary()
    log.info(
        "%d scene(s): %d converted, %d already valid, %d failed; %d SceneConverted to %s",
        summary["scenes"],
        summary["converted"],
        summary["skipped"],
        summary["failed"],
        published,
        args.topic if published else "-",
    )
    log.info("seconds: %s", ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    if args.report:
        records = [c.to_record() for c in conversions]
        args.report.write_text(json.dumps({"summary": summary, "scenes": records}, indent=1))
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
