"""How ``spark/stream_ingest.py`` is submitted (the operator, the tests and by hand alike).

The jars and the Delta/S3A conf are the COG job's (``canopywatch.cog.submit``), plus the
Kafka source jar that ``platform/spark/pom.xml`` adds; credentials travel in the
environment, never in the conf or the arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from canopywatch.settings import REPO_ROOT, Settings

APPLICATION = REPO_ROOT / "spark" / "stream_ingest.py"
NAME = "canopywatch-stream-ingest"
KAFKA_JAR_GLOB = "spark-sql-kafka-0-10_*.jar"


def lake_uri(settings: Settings) -> str:
    return f"s3a://{settings.bucket}/lake"


def checkpoint_uri(settings: Settings) -> str:
    return f"s3a://{settings.bucket}/checkpoints/streams"


def stream_conf(s3_endpoint: str | None, region: str) -> dict[str, str]:
    from canopywatch.cog.submit import spark_conf

    conf = spark_conf(s3_endpoint, region)
    conf.pop("spark.executorEnv.GDAL_NUM_THREADS", None)
    # small batches on few cores: the stateful dedup needs few shuffle partitions
    conf["spark.sql.shuffle.partitions"] = "4"
    conf["spark.sql.streaming.stateStore.providerClass"] = (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    )
    return conf


def stream_arguments(
    settings: Settings,
    *,
    bootstrap: str,
    tables: Sequence[str] = ("sensor_raw", "satellite_raw"),
    lake: str | None = None,
    checkpoints: str | None = None,
    continuous: bool = False,
    watermark: str | None = None,
    max_offsets_per_trigger: int | None = None,
    report: str | None = None,
) -> list[str]:
    args = [
        "--lake",
        lake or lake_uri(settings),
        "--checkpoints",
        checkpoints or checkpoint_uri(settings),
        "--kafka-bootstrap",
        bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--tables",
        ",".join(tables),
    ]
    if continuous:
        args.append("--continuous")
    if watermark:
        args += ["--watermark", watermark]
    if max_offsets_per_trigger:
        args += ["--max-offsets-per-trigger", str(max_offsets_per_trigger)]
    if report:
        args += ["--report", report]
    return args
