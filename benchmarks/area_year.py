"""A monitoring run for one 10 x 10 km area over a year, stage by stage, against the 2 min target.

    .venv/bin/python benchmarks/area_year.py [--km 10] [--quick] [--no-loop] [--json OUT]

Issue 13 asks for "a monitoring run for a 10 x 10 km area-year within 2 min beyond download
time". This runs the product library's own steps of the three DAGs that make such a run
(``deforestation_monitor``, ``scene_curation``, ``deforestation_detect_weekly``) in this
process, in order, on a platform instance of its own (PostgreSQL/PostGIS, Kafka, MinIO and
the local CDSE endpoint under a temporary home, on free loopback ports; the user's platform
is never touched and may be down), and times each stage:

1. catalog search: ``plan_tiles`` (the request tiles ``canopywatch tiles`` plans) and one
   Catalog API search per tile (``search_tile``), ``plan_requests``;
2. publish requests: one ``DownloadRequest`` per acquisition day and tile to Kafka;
3. download: the requests consumed in batches of 16, each batch through
   ``run_download_batch`` (Process API, GeoTIFF verification, MinIO PUT,
   ``SceneDownloaded`` announced) with ``CANOPYWATCH_DOWNLOAD_CONCURRENCY`` (4) at once,
   offsets committed after each batch, as ``download_scenes`` does;
4. record scenes: the announcements consumed (batches of 500) into Delta ``scenes_raw``
   exactly once (``write_scene_batch``), as ``record_scenes``;
5. sync catalog: Delta -> PostGIS ``scenes`` (``sync_catalog``);
6. COG conversion, as the ``convert_cogs`` task: the pending scenes read with delta-rs and
   handed over under ``_jobs/`` (``canopywatch.cog.handover``), then ``spark-submit
   spark/cog_convert.py --master local[2] --scenes-from ...`` without the Delta/S3A jars
   (JVM start, each raw scene converted on the executors into a validated ``cog.tif`` in
   MinIO, ``SceneConverted`` published), then ``record_cogs`` (Kafka -> Delta
   ``scenes_cog``) and the catalog sync;
7. detection: the area's scenes from PostGIS (``queries.scenes_in``), grouped by request
   tile (``scene_keys_by_tile``), each tile's raw scenes fetched from MinIO into a folder
   and scored by ``canopywatch detect --scenes DIR --workers 2`` (the default harmonic
   method; alerts GeoJSON and the forest baseline written).

"beyond download" is the total minus the download stage (3); the ratio is that against
the 120 s target (< 1: within it). Besides the table, the same COGs are made again (not
counted in the total; ``--no-loop`` leaves both out) by the previous path, where the Spark
job selects the scenes itself with delta-spark over S3A (Delta/S3A jars and session,
no publishing), and with ``convert_scene`` in a plain loop in this process. Each
spark-submit's time is split into the task's part, the launch (JVM and Python driver, and
its exit) and the job's own phases (``phases_s`` of its report). Left out: Airflow's own scheduling between tasks and the consumer's
10 s ``poll_timeout`` at the end of ``download_scenes``, the dbt marts, the run's GeoPackage
export and the publication of alerts (Kafka -> Delta -> PostGIS). The download is the
local endpoint rendering on the same cores, not the real CDSE.

``--quick``: a 2.5 x 2.5 km area (the same year). ``--json OUT`` writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from canopywatch.settings import Settings

TARGET_S = 120.0
CENTRE = (-55.35, -7.05)  # lon, lat: the Amazon, as the demo and tests
START, END = "2023-07-01", "2024-06-30"
MAX_CLOUD = 80.0  # the monitoring DAG's default
DOWNLOAD_BATCH = 16  # download_scenes: max_batch_size
RECORD_BATCH = 500  # lake_recorder: max_batch_size
SERVICES = ("postgres", "kafka", "minio", "emulator")


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    note: str = ""
    counted: bool = True
    download: bool = False


def bbox_of(km: float) -> tuple[float, float, float, float]:
    """A ``km`` x ``km`` lon/lat box around CENTRE (equirectangular degrees)."""
    import math

    half_lat = km / 2 / 111.32
    half_lon = km / 2 / (111.32 * math.cos(math.radians(CENTRE[1])))
    return (CENTRE[0] - half_lon, CENTRE[1] - half_lat, CENTRE[0] + half_lon, CENTRE[1] + half_lat)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ------------------------------------------------------------------ the instance
@contextlib.contextmanager
def instance(world: dict[str, Any]) -> Iterator[Settings]:
    """PostgreSQL/PostGIS, Kafka, MinIO and the CDSE endpoint (serving ``world``) under a
    temporary home on free ports; stopped and removed afterwards."""
    from canopywatch_dev.faults.instance import Canaries, link_installed, settings_for, warm_up
    from canopywatch_dev.platform import kafka, minio, stack

    base = Settings.from_env()
    home = Path(tempfile.mkdtemp(prefix="canopywatch-areayear-", dir="/tmp"))
    home.chmod(0o755)  # the postgres OS user runs the cluster in it
    world_file = home / "world.json"  # where settings_for points the endpoint
    world_file.write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")
    # the fault campaign's instance settings under this benchmark's own name; the catalog in
    # the public schema as the platform has it
    settings = replace(
        settings_for(home, base, Canaries.new(), name="areayear"),
        pg_user="canopywatch",
        pg_schema="public",
    )
    link_installed(base, home)
    try:
        stack.up(settings, SERVICES)
        kafka.ensure_topics(settings)
        minio.ensure_buckets(settings)
        warm_up(settings)
        yield settings
    finally:
        try:
            stack.down(settings, SERVICES)
        finally:
            shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------ Kafka helpers
def consume_all(
    settings: Settings,
    topic: str,
    expected: int,
    batch: int,
    apply: Callable[[list[Any]], None],
    group: str,
) -> int:
    """Consume ``expected`` messages of ``topic`` in batches of at most ``batch``, apply
    each batch, then commit its offsets synchronously (the product's consumers' order)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        deadline = time.monotonic() + 60
        while seen < expected and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            if not messages:
                continue
            apply(messages)
            consumer.commit(asynchronous=False)
            seen += len(messages)
            deadline = time.monotonic() + 60
    finally:
        consumer.close()
    if seen < expected:
        raise RuntimeError(f"{topic}: consumed {seen} of {expected} messages")
    return seen


def producer_for(settings: Settings) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )


def spark_job(argv: list[str], env: dict[str, str]) -> tuple[list[float], int]:
    """Run spark-submit; the perf_counter times of its "COG ... written" lines (the
    executors log one per scene) and the number of lines; raises when it fails."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    written: list[float] = []
    tail: list[str] = []
    lines = 0
    for line in proc.stderr:
        lines += 1
        if ": COG " in line and " written (" in line:
            written.append(time.perf_counter())
        tail = [*tail[-40:], line]
    if proc.wait() != 0:
        raise RuntimeError("cog_convert.py failed:\n" + "".join(tail))
    return written, lines


# ------------------------------------------------------------------ the run
@dataclass
class Run:
    stages: list[Stage]
    facts: dict[str, Any]


def timed(stages: list[Stage], name: str, **kwargs: Any) -> Callable[[Callable[[], str]], str]:
    """Run the decorated step now, record its seconds under ``name``; it returns a note."""

    def run(step: Callable[[], str]) -> str:
        started = time.perf_counter()
        note = step()
        stages.append(Stage(name, time.perf_counter() - started, note, **kwargs))
        # as it goes: a later stage that fails leaves the earlier figures on record
        print(f"{name.strip()}: {stages[-1].seconds:.1f} s; {note}", file=sys.stderr, flush=True)
        return note

    return run


def monitoring_run(settings: Settings, bbox: tuple[float, float, float, float], loop: bool) -> Run:
    from canopywatch.catalog import queries
    from canopywatch.catalog.schema import connect
    from canopywatch.catalog.sync import sync_catalog
    from canopywatch.download import (
        download_scene,
        make_aoi,
        parse_window,
        plan_requests,
        plan_tiles,
        process_api_fetch,
    )
    from canopywatch.lake.consume import write_converted_batch, write_scene_batch
    from canopywatch.lake.tables import lake_from_settings
    from canopywatch.messages import DownloadRequest
    from canopywatch.sources.copernicus import CdseEndpoint, search_acquisitions, sh_config
    from canopywatch.storage.objects import ObjectStore
    from canopywatch.transport import run_download_batch
    from canopywatch_dev.platform import minio

    stages: list[Stage] = []
    facts: dict[str, Any] = {}
    aoi = make_aoi(list(bbox), "area-year", settings)
    window = parse_window(START, END)
    config = sh_config(CdseEndpoint.from_settings(settings), max_retries=settings.sh_max_retries)
    store = ObjectStore(minio.s3_client(settings), settings.bucket)
    lake = lake_from_settings(settings)
    requests: list[DownloadRequest] = []

    @timed(stages, "catalog search (plan_tiles, search_tile)")
    def _search() -> str:
        tiles = plan_tiles(aoi, settings)
        for tile in tiles:
            days = search_acquisitions(
                config, tile.bbox.as_tuple(), window.start, window.end, MAX_CLOUD
            )
            requests.extend(
                plan_requests(aoi, tile, days, function="s2l2a_bands", max_cloud=MAX_CLOUD,
                              resolution=settings.resolution_m, run_id="bench")
            )  # fmt: skip
        facts["tiles"] = [f"{t.tile_id} {t.width}x{t.height}" for t in tiles]
        facts["pixels"] = sum(t.width * t.height for t in tiles)
        facts["scenes"] = len(requests)
        return f"{len(tiles)} tile(s), {len(requests)} acquisition day(s) x tile"

    @timed(stages, "publish requests (Kafka)")
    def _publish() -> str:
        producer = producer_for(settings)
        for request in requests:
            producer.produce(
                settings.topic("download-requests"),
                request.to_bytes(),
                key=request.request_id.encode(),
            )
        if producer.flush(30):
            raise RuntimeError("download requests left undelivered")
        return f"{len(requests)} DownloadRequest"

    fetch = process_api_fetch(config)
    downloaded: list[int] = []

    @timed(stages, "download (Process API -> verify -> MinIO)", download=True)
    def _download() -> str:
        producer = producer_for(settings)

        def batch(messages: list[Any]) -> None:
            report = run_download_batch(
                messages,
                lambda r: download_scene(
                    r, fetch, store, geohash_precision=settings.geohash_precision
                ),
                producer,
                settings.topic("scenes-downloaded"),
                concurrency=settings.download_concurrency,
            )
            if report.dead_lettered:
                raise RuntimeError(f"{len(report.dead_lettered)} request(s) dead-lettered")
            downloaded.extend(o.size_bytes for o in report.downloaded)

        consume_all(settings, settings.topic("download-requests"), len(requests),
                    DOWNLOAD_BATCH, batch, "areayear-download")  # fmt: skip
        facts["raw_mb"] = round(sum(downloaded) / 1e6, 1)
        return (
            f"{len(downloaded)} scenes, {sum(downloaded) / 1e6:.0f} MB, "
            f"{settings.download_concurrency} at once"
        )

    @timed(stages, "record scenes (Kafka -> Delta scenes_raw)")
    def _record() -> str:
        dlq = producer_for(settings)
        versions: list[int] = []

        def batch(messages: list[Any]) -> None:
            outcome = write_scene_batch(messages, lake=lake, dlq=dlq)
            versions.append(outcome.commit.inserted)

        consume_all(settings, settings.topic("scenes-downloaded"), len(downloaded),
                    RECORD_BATCH, batch, "areayear-record")  # fmt: skip
        return f"{sum(versions)} rows in {len(versions)} commit(s)"

    @timed(stages, "sync catalog (Delta -> PostGIS)")
    def _sync() -> str:
        with connect(settings) as conn:
            results = sync_catalog(conn, lake)
        return ", ".join(f"{r.table} +{r.upserted}" for r in results if r.upserted)

    @timed(stages, "COG conversion (spark-submit local[2])")
    def _cogs() -> str:
        run = cog_job(settings, lake, store, hand_over=True, publish=True)
        summary, scenes = run["summary"], run["scenes"]
        if summary["converted"] != len(downloaded) or summary["failed"]:
            raise RuntimeError(f"COG job: {summary}")
        work = sum(s["seconds"] for s in scenes)
        facts["cog_mb"] = round(sum(s["cog_bytes"] for s in scenes) / 1e6, 1)
        facts["cog_scene_seconds_sum"] = round(work, 2)
        facts["cog_split_s"] = run["split"]
        return (
            f"{summary['converted']} COGs, {facts['cog_mb']:.0f} MB; {split_note(run['split'])}; "
            f"{work:.1f} s of conversion summed over the executors"
        )

    if loop:

        @timed(stages, "  COG conversion, previous path: Spark reads Delta (not in the total)",
               counted=False)  # fmt: skip
        def _previous() -> str:
            drop_cogs(store, lake)  # made again: a valid COG of the same raw bytes is kept
            run = cog_job(settings, lake, store, hand_over=False, publish=False)
            if run["summary"]["converted"] != len(downloaded):
                raise RuntimeError(f"COG job, previous path: {run['summary']}")
            facts["cog_previous_split_s"] = run["split"]
            return f"{run['summary']['converted']} COGs, no publish; {split_note(run['split'])}"

    @timed(stages, "record COGs (Kafka -> Delta scenes_cog) + sync")
    def _record_cogs() -> str:
        dlq = producer_for(settings)
        rows: list[int] = []

        def batch(messages: list[Any]) -> None:
            rows.append(write_converted_batch(messages, lake=lake, dlq=dlq).commit.inserted)

        consume_all(settings, settings.topic("scenes-converted"), len(downloaded),
                    RECORD_BATCH, batch, "areayear-record-cogs")  # fmt: skip
        with connect(settings) as conn:
            sync_catalog(conn, lake)
        return f"{sum(rows)} rows"

    @timed(stages, "detection (PostGIS -> MinIO -> canopywatch detect --workers 2)")
    def _detect() -> str:
        from canopywatch.airflow.weekly import scene_keys_by_tile
        from canopywatch.cli import main as cli

        query = queries.Query.parse(bbox, START, END)
        with connect(settings) as conn:
            rows = queries.scenes_in(conn, query)
        tiles = scene_keys_by_tile(rows)
        notes = []
        fetch_s = detect_s = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for n, (tile, scenes) in enumerate(tiles.items()):
                folder = Path(tmp) / f"tile{n}"
                folder.mkdir()
                started = time.perf_counter()
                for acquired_at, key in scenes:
                    (folder / f"{acquired_at:%Y%m%dT%H%M%S}.tif").write_bytes(store.get(key))
                fetched = time.perf_counter()
                out = Path(tmp) / f"alerts{n}.geojson"
                code = cli(["detect", "--scenes", str(folder), "--out", str(out),
                            "--workers", "2", "--aoi", aoi.aoi_id])  # fmt: skip
                if code != 0:
                    raise RuntimeError(f"canopywatch detect exited {code} on tile {tile}")
                fetch_s += fetched - started
                detect_s += time.perf_counter() - fetched
                alerts = json.loads(out.read_text())["features"]
                notes.append(f"{len(scenes)} scenes, {len(alerts)} alerts")
        facts["detect_fetch_s"] = round(fetch_s, 2)
        facts["detect_score_s"] = round(detect_s, 2)
        return f"{'; '.join(notes)} (fetch {fetch_s:.1f} s, detect {detect_s:.1f} s)"

    if loop:
        from canopywatch.cog.scenes import RawScene, convert_scene

        with connect(settings) as conn:
            rows = queries.scenes_in(conn, queries.Query.parse(bbox, START, END))
        drop_cogs(store, lake)

        @timed(stages, "  COG conversion, plain loop (not in the total)", counted=False)
        def _loop() -> str:
            results = [
                convert_scene(
                    store,
                    RawScene(str(r["scene_id"]), store.bucket, str(r["raw_key"]), "s2l2a_bands"),
                )
                for r in rows
            ]
            bad = [r for r in results if r.status != "converted"]
            if bad:
                raise RuntimeError(f"plain loop: {len(bad)} scene(s) not converted: {bad[0]}")
            return f"{len(results)} COGs, convert_scene in this process, all cores"

    return Run(stages, facts)


def drop_cogs(store: Any, lake: Any) -> None:
    """Delete every scene's cog.tif, so that the next conversion makes them again."""
    from deltalake import DeltaTable

    from canopywatch.cog.scenes import cog_key_for
    from canopywatch.lake.tables import SCENES_RAW

    table = DeltaTable(lake.uri(SCENES_RAW), storage_options=lake.options())
    for raw_key in table.to_pyarrow_table(columns=["raw_key"])["raw_key"].to_pylist():
        store.client.delete_object(Bucket=store.bucket, Key=cog_key_for(raw_key))


def cog_job(
    settings: Settings, lake: Any, store: Any, *, hand_over: bool, publish: bool
) -> dict[str, Any]:
    """``convert_cogs`` as the operator runs it: with ``hand_over``, the pending rows read
    with delta-rs and put under ``_jobs/`` (``canopywatch.cog.handover``), then spark-submit
    without the Delta/S3A jars; without it, the previous path (the job reads Delta with
    delta-spark over S3A). The job's report plus ``split``: seconds of each part."""
    from canopywatch.cog import handover
    from canopywatch.cog.submit import (
        job_arguments,
        spark_conf,
        spark_jars,
        spark_submit_argv,
        submit_environment,
    )

    started = time.perf_counter()
    uri = None
    if hand_over:
        rows = handover.pending_rows(lake)
        key = handover.job_key("area_year", "bench", "convert_cogs", 1)
        uri = handover.write_handover(store, key, rows)
    prepared = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report_file = Path(tmp) / "report.json"
        argv = spark_submit_argv(
            "local[2]",
            None if hand_over else spark_jars(settings),
            spark_conf(settings.s3_endpoint, delta=not hand_over),
            job_arguments(lake_root=lake.root, s3_endpoint=settings.s3_endpoint,
                          topic=settings.topic("scenes-converted"),
                          kafka_bootstrap=settings.kafka_bootstrap if publish else None,
                          scenes_from=uri, report=report_file),
        )  # fmt: skip
        env = os.environ | submit_environment(settings.s3_access_key, settings.s3_secret_key)
        try:
            spark_job(argv, env)
        finally:
            if uri:
                handover.delete_handover(store.client, uri)
        wall = time.perf_counter() - prepared
        report: dict[str, Any] = json.loads(report_file.read_text())
    phases = report["summary"]["phases_s"]
    split = {"task (delta-rs read, hand-over put)": prepared - started}
    split["launch (JVM, Python driver) + exit"] = wall - sum(phases.values())
    split |= {f"job: {name}": seconds for name, seconds in phases.items()}
    report["split"] = {name: round(seconds, 2) for name, seconds in split.items()}
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def split_note(split: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in split.items())


# ------------------------------------------------------------------ report
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--km", type=float, default=10.0, help="side of the square area, km")
    parser.add_argument("--quick", action="store_true", help="a 2.5 x 2.5 km area")
    parser.add_argument("--no-loop", action="store_true", help="leave out the plain-loop COG row")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.km = 2.5
    if not 0.5 <= args.km <= 40:
        print("area_year.py: --km of 0.5..40", file=sys.stderr)
        return 2
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http endpoint only
    bbox = bbox_of(args.km)
    margin = 0.01  # the served area covers the request tiles, which snap outwards
    world = {
        "areas": [
            {
                "name": "area-year",
                "bbox": [bbox[0] - margin, bbox[1] - margin, bbox[2] + margin, bbox[3] + margin],
                "start": START,
                "end": END,
                "seed": 13,
            }
        ]
    }
    console = Console(width=130)
    load_before = load_average()
    started = time.perf_counter()
    with instance(world) as settings:
        up_s = time.perf_counter() - started
        console.print(
            f"instance up in {up_s:.0f} s (PostGIS, Kafka, MinIO, CDSE endpoint on free ports); "
            f"load average {load_average()}"
        )
        run = monitoring_run(settings, bbox, loop=not args.no_loop)
    load_after = load_average()
    counted = [s for s in run.stages if s.counted]
    total = sum(s.seconds for s in counted)
    download = sum(s.seconds for s in counted if s.download)
    beyond = total - download
    table = Table(
        title=f"monitoring run, {args.km:g} x {args.km:g} km, {START} .. {END}, "
        f"{run.facts['scenes']} scenes ({', '.join(run.facts['tiles'])})"
    )
    for column in ("stage", "seconds", "share", "what"):
        table.add_column(column, justify="left" if column in ("stage", "what") else "right")
    for s in run.stages:
        share = f"{100 * s.seconds / total:.1f}%" if s.counted else "-"
        table.add_row(s.name, f"{s.seconds:.1f}", share, s.note)
    table.add_row("total", f"{total:.1f}", "100%", "")
    table.add_row("beyond download", f"{beyond:.1f}", f"{100 * beyond / total:.1f}%",
                  f"{beyond / TARGET_S:.2f}x the {TARGET_S:.0f} s target")  # fmt: skip
    console.print(table)
    spark = next(s for s in run.stages if s.name.startswith("COG conversion"))
    loop = next((s for s in run.stages if "plain loop" in s.name), None)
    previous = next((s for s in run.stages if "previous path" in s.name), None)
    if loop is not None and previous is not None:
        console.print(
            f"COG conversion time: spark-submit with the scenes handed over "
            f"{spark.seconds / previous.seconds:.2f}x the previous path (Spark reads Delta); "
            f"against the plain loop: handed over {spark.seconds / loop.seconds:.2f}x, "
            f"previous path {previous.seconds / loop.seconds:.2f}x"
        )
    console.print(f"load average before {load_before}, after {load_after} (1, 5, 15 min)")
    if args.json:
        document = {
            "benchmark": "area_year",
            "km": args.km,
            "window": [START, END],
            "max_cloud": MAX_CLOUD,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "instance_up_s": round(up_s, 1),
            "facts": run.facts,
            "stages": [
                {
                    "stage": s.name.strip(),
                    "seconds": round(s.seconds, 3),
                    "share": round(s.seconds / total, 4) if s.counted else None,
                    "counted": s.counted,
                    "download": s.download,
                    "note": s.note,
                }
                for s in run.stages
            ],
            "total_s": round(total, 3),
            "download_s": round(download, 3),
            "beyond_download_s": round(beyond, 3),
            "target_s": TARGET_S,
            "ratio_vs_target": round(beyond / TARGET_S, 3),
            "cog_spark_submit_vs_loop_time": round(spark.seconds / loop.seconds, 3)
            if loop
            else None,
            "cog_handed_over_vs_previous_path_time": (
                round(spark.seconds / previous.seconds, 3) if previous else None
            ),
            "cog_previous_path_vs_loop_time": (
                round(previous.seconds / loop.seconds, 3) if loop and previous else None
            ),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
