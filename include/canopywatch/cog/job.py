"""The COG Spark job's library: what to convert, converting on executors, publishing.

* ``pending_scenes``: rows of Delta ``scenes_raw`` that have no *valid* row in
  ``scenes_cog`` (so failed scenes are retried by the next run), or only the given ids.
  ``canopywatch.cog.handover`` selects the same rows with delta-rs on the launching side
  and hands them over, so a job given them (``convert_rows``) never reads Delta.
* ``convert_partition``: runs on an executor over one partition of scenes, with an S3
  client built there from the executor's environment (``AWS_ACCESS_KEY_ID`` ...), and
  yields one ``SceneConversion`` record per scene; per-scene problems are records, not
  exceptions, so one corrupt file never fails a task or the batch.
* ``publish``: SceneConverted messages to Kafka (key: scene id), from the driver, all
  delivered or an exception. The lake consumer (``consume_scenes_converted``) writes
  ``scenes_cog`` exactly once from them; this job never writes Delta itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canopywatch.cog.scenes import CONVERTED, FAILED, SKIPPED, RawScene, SceneConversion

log = logging.getLogger(__name__)

SCENE_COLUMNS = ("scene_id", "bucket", "raw_key", "function", "size_bytes")
DELIVERY_TIMEOUT_S = 60.0


def table_uri(lake_root: str, table: str) -> str:
    """``s3://b/lake`` or ``s3a://b/lake`` -> ``s3a://b/lake/<table>`` (Hadoop's S3 scheme)."""
    root = lake_root.rstrip("/")
    if root.startswith("s3://"):
        root = "s3a://" + root[len("s3://") :]
    return f"{root}/{table}"


def pending_scenes(spark: Any, lake_root: str, scene_ids: Sequence[str] = ()) -> Any:
    """A DataFrame of SCENE_COLUMNS: raw scenes without a valid COG (or just ``scene_ids``)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    raw = spark.read.format("delta").load(table_uri(lake_root, "scenes_raw"))
    selected = raw.select(*SCENE_COLUMNS)
    if scene_ids:
        return selected.where(F.col("scene_id").isin(list(scene_ids)))
    try:
        cogs = spark.read.format("delta").load(table_uri(lake_root, "scenes_cog"))
    except AnalysisException:  # no COG recorded yet: the table does not exist
        return selected
    done = cogs.where(F.col("valid")).select("scene_id")
    return selected.join(done, on="scene_id", how="left_anti")


def partition_count(scenes: int, parallelism: int, requested: int | None = None) -> int:
    """Partitions for ``scenes``: as requested, else two per core (stragglers even out)."""
    if scenes <= 0:
        return 1
    wanted = requested if requested and requested > 0 else 2 * max(1, parallelism)
    return max(1, min(scenes, wanted))


def s3_client(endpoint: str | None, region: str) -> Any:
    """A boto3 S3 client (path-style, retried); credentials from the environment."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


def s3_store_factory(endpoint: str | None, region: str) -> Callable[[str], Any]:
    """Builds ObjectStores on the executor; credentials come from its environment."""

    def make(bucket: str) -> Any:
        from canopywatch.storage.objects import ObjectStore

        return ObjectStore(s3_client(endpoint, region), bucket)

    return make


def convert_partition(
    rows: Iterable[Any], *, store_for: Callable[[str], Any], profile: str
) -> Iterator[dict[str, Any]]:
    """Executor side: convert each scene of the partition; one record per scene."""
    import logging as _logging

    from canopywatch.cog.scenes import convert_scene

    _logging.basicConfig(level=_logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stores: dict[str, Any] = {}
    for row in rows:
        scene = RawScene(row["scene_id"], row["bucket"], row["raw_key"], row["function"])
        if scene.bucket not in stores:
            stores[scene.bucket] = store_for(scene.bucket)
        yield convert_scene(stores[scene.bucket], scene, profile=profile).to_record()


@dataclass(frozen=True)
class JobReport:
    conversions: list[SceneConversion] = field(default_factory=list)
    published: int = 0
    # seconds of the job's steps on the driver: session, select, convert, publish
    phases: dict[str, float] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for c in self.conversions if c.status == status)

    @property
    def converted(self) -> int:
        return self.count(CONVERTED)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    def summary(self) -> dict[str, Any]:
        return {
            "scenes": len(self.conversions),
            "converted": self.converted,
            "skipped": self.skipped,
            "failed": self.failed,
            "published": self.published,
            "raw_bytes": sum(c.raw_bytes for c in self.conversions if c.status == CONVERTED),
            "failures": {c.scene_id: c.errors for c in self.conversions if c.status == FAILED},
            "phases_s": {name: round(seconds, 3) for name, seconds in self.phases.items()},
        }


def convert_rows(
    spark: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    endpoint: str | None,
    region: str,
    profile: str,
    partitions: int | None = None,
) -> list[SceneConversion]:
    """Spread ``rows`` (mappings of SCENE_COLUMNS) over the executors and convert them."""
    if not rows:
        return []
    count = partition_count(len(rows), spark.sparkContext.defaultParallelism, partitions)
    # parallelize slices the list evenly: scenes spread whatever their ids hash to, no shuffle
    spread = spark.sparkContext.parallelize([dict(r) for r in rows], count)
    store_for = s3_store_factory(endpoint, region)
    records = spread.mapPartitions(
        lambda part: convert_partition(part, store_for=store_for, profile=profile)
    ).collect()
    return [SceneConversion.from_record(r) for r in records]


def publish(
    conversions: Sequence[SceneConversion],
    producer: Any,
    topic: str,
    *,
    timeout: float = DELIVERY_TIMEOUT_S,
) -> int:
    """SceneConverted for each conversion; returns how many were delivered, raises otherwise."""
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for conversion in conversions:
        message = conversion.message()
        producer.produce(topic, message.to_bytes(), key=message.key.encode(), on_delivery=delivered)
        producer.poll(0)
    undelivered = producer.flush(timeout)
    if undelivered or failures:
        raise RuntimeError(
            f"{undelivered + len(failures)} of {len(conversions)} SceneConverted message(s) "
            f"not delivered to {topic}: {'; '.join(failures[:3]) or 'flush timed out'}"
        )
    return len(conversions)
