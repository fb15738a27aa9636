"""Generated scene rows loaded with COPY: for the index test and the query benchmark.

Scenes are 0.2° boxes on a grid over a region of the Amazon, acquired every few
days over three years, so bbox + time queries have realistic selectivity.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from canopywatch.geo import BBox, bbox_geohash
from canopywatch.messages import SceneDownloaded

REGION = (-70.0, -15.0, -45.0, 5.0)  # lon/lat
SCENE_SIZE_DEG = 0.2
FIRST_DAY = datetime(2023, 1, 1, tzinfo=UTC)
DAYS = 3 * 365


def synthetic_scenes(count: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Rows for ``COPY scene_stage`` (see ``load_synthetic_scenes``)."""
    rng = random.Random(seed)
    minx, miny, maxx, maxy = REGION
    for n in range(count):
        x = minx + rng.random() * (maxx - minx - SCENE_SIZE_DEG)
        y = miny + rng.random() * (maxy - miny - SCENE_SIZE_DEG)
        acquired = FIRST_DAY + timedelta(seconds=rng.randrange(DAYS * 86400))
        yield (
            f"syn-{seed}-{n:08d}",
            acquired,
            round(rng.random() * 100, 1),
            round(x, 6),
            round(y, 6),
            round(x + SCENE_SIZE_DEG, 6),
            round(y + SCENE_SIZE_DEG, 6),
        )


def load_synthetic_scenes(conn: psycopg.Connection[Any], count: int, seed: int = 7) -> None:
    """Replace the ``scenes`` table content with ``count`` generated scenes, then ANALYZE.

    Indexes are dropped during the load and rebuilt after it (much faster at 1M rows).
    """
    with conn.cursor() as cur:
        cur.execute("TRUNCATE scenes")
        cur.execute("DROP INDEX IF EXISTS scenes_footprint_gix")
        cur.execute("DROP INDEX IF EXISTS scenes_acquired_at_idx")
        cur.execute(
            """CREATE TEMP TABLE scene_stage (scene_id text, acquired_at timestamptz,
                cloud_cover double precision, minx double precision, miny double precision,
                maxx double precision, maxy double precision) ON COMMIT DROP"""
        )
        with cur.copy(
            "COPY scene_stage (scene_id, acquired_at, cloud_cover, minx, miny, maxx, maxy) "
            "FROM STDIN"
        ) as copy:
            for row in synthetic_scenes(count, seed):
                copy.write_row(row)
        cur.execute(
            """
            INSERT INTO scenes (scene_id, request_id, aoi_id, source, function, geohash,
                acquired_at, cloud_cover, crs, width, height, bands, bucket, raw_key, checksum,
                size_bytes, footprint)
            SELECT scene_id, 'synthetic', 'synthetic', 'simulated', 's2l2a_bands',
                ST_GeoHash(ST_Centroid(ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)), 5),
                acquired_at, cloud_cover, 'EPSG:32721', 2200, 2200, ARRAY['B02','B03','B04'],
                'synthetic', 'simulated/' || scene_id || '/raw.tif', '', 0,
                ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)
            FROM scene_stage
            """
        )
        cur.execute("CREATE INDEX scenes_footprint_gix ON scenes USING gist (footprint)")
        cur.execute("CREATE INDEX scenes_acquired_at_idx ON scenes (acquired_at)")
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("ANALYZE scenes")
    conn.commit()


def random_query_box(
    rng: random.Random, size_deg: float = 0.5
) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = REGION
    x = minx + rng.random() * (maxx - minx - size_deg)
    y = miny + rng.random() * (maxy - miny - size_deg)
    return (x, y, x + size_deg, y + size_deg)


def random_query_window(rng: random.Random, days: int = 30) -> tuple[datetime, datetime]:
    start = FIRST_DAY + timedelta(days=rng.randrange(DAYS - days))
    return start, start + timedelta(days=days)


# ------------------------------------------------------------------ messages
@dataclass(frozen=True)
class StaticMessage:
    """A consumed Kafka message held in memory (the KafkaMessage protocol)."""

    payload: bytes | None
    at: int
    topic_name: str = "synthetic.scenes-downloaded"
    part: int = 0
    key_bytes: bytes | None = None

    def value(self) -> bytes | None:
        return self.payload

    def key(self) -> bytes | None:
        return self.key_bytes

    def topic(self) -> str | None:
        return self.topic_name

    def partition(self) -> int | None:
        return self.part

    def offset(self) -> int | None:
        return self.at

    def error(self) -> Any:
        return None


class DiscardingProducer:
    """A DLQ producer for runs that expect no poison."""

    def produce(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        raise RuntimeError(f"unexpected dead letter to {topic}")

    def flush(self, timeout: float = 0) -> int:
        return 0


# monitored areas a stream of scenes comes from (lon, lat of a corner)
AREAS = ((-55.40, -7.10), (-62.10, -9.80), (-52.30, -3.40), (-67.00, -10.90))


def synthetic_scene_message(n: int, months: int = 6) -> SceneDownloaded:
    """A scene of one of four monitored areas within ``months`` months: a realistic stream
    touches a few (geohash prefix, month) partitions, not thousands."""
    rng = random.Random(n)
    lon, lat = AREAS[n % len(AREAS)]
    x = round(lon + rng.random() * 0.3, 6)
    y = round(lat + rng.random() * 0.3, 6)
    box = BBox(x, y, round(x + SCENE_SIZE_DEG, 6), round(y + SCENE_SIZE_DEG, 6))
    acquired = FIRST_DAY + timedelta(days=rng.randrange(months * 30), hours=13, minutes=50)
    ghash = bbox_geohash(box)
    return SceneDownloaded(
        scene_id=f"syn-{n:08d}",
        request_id=f"syn-request-{n}",
        aoi_id="synthetic",
        source="simulated",
        function="s2l2a_bands",
        raw_key=f"simulated/s2l2a_bands/{ghash}/{acquired:%Y%m%dT%H%M%SZ}/bbox_{n}/raw.tif",
        bucket="synthetic",
        bbox=box.as_tuple(),
        footprint=box.to_geojson(),
        geohash=ghash,
        acquired_at=acquired,
        crs="EPSG:32721",
        shape=(2200, 2200),
        bands=["B02", "B03", "B04", "B08"],
        cloud_cover=round(rng.random() * 100, 1),
        checksum="0" * 64,
        size_bytes=1,
    )
