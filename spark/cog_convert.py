"""SparkSubmit application: convert raw scenes to COGs and announce them (SceneConverted).

    spark-submit --jars <home>/lib/spark/*.jar --conf ... spark/cog_convert.py \
        --lake s3://canopywatch/lake --s3-endpoint http://127.0.0.1:19000 \
        --topic canopywatch.scenes-converted --kafka-bootstrap 127.0.0.1:19092 \
        [--scene-ids id1,id2] [--profile canopywatch-deflate] [--partitions N] [--report out.json]

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
from pathlib import Path

from canopywatch.cog.job import JobReport, convert_scenes, pending_scenes, publish
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
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    parser.add_argument("--partitions", type=int, help="default: two per executor core")
    parser.add_argument("--report", type=Path, help="write the outcome per scene as JSON here")
    args = parser.parse_args(argv)
    if not args.no_publish and not args.kafka_bootstrap:
        parser.error("--kafka-bootstrap is required unless --no-publish")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("canopywatch-cog-convert").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        ids = [s for s in args.scene_ids.split(",") if s]
        scenes = pending_scenes(spark, args.lake, ids)
        conversions = convert_scenes(
            spark,
            scenes,
            endpoint=args.s3_endpoint,
            region=args.region,
            profile=args.profile,
            partitions=args.partitions,
        )
    finally:
        spark.stop()
    published = 0
    if conversions and not args.no_publish:
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": args.kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
        )
        published = publish(conversions, producer, args.topic)
    report = JobReport(conversions, published)
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
    if args.report:
        records = [c.to_record() for c in conversions]
        args.report.write_text(json.dumps({"summary": summary, "scenes": records}, indent=1))
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
