"""The tasks of a monitoring and of a weekly run, as the library calls the DAG tasks make.

``python -m canopywatch_dev.faults.steps STEP --run RUN --state DIR`` runs one task
attempt in a process of its own (so a ``kill -9`` of it is the death of a task), with
``Settings.from_env()`` of the campaign's instance. What a task hands to the next one
(XCom in Airflow) is a JSON file ``DIR/<run>/<step>.json``.

monitoring: plan (area, tiles, Catalog API search, ``plan_area``) -> publish_requests ->
download_scenes (consumer: ``run_download_batch``, offsets committed after each batch) ->
summarize (every planned scene is stored) -> reconcile_lake (``reconcile_scenes``) ->
lake_versions -> record_scenes (consumer: ``write_scene_batch``, exactly once) ->
sync_catalog -> export_review (``export_new_since``: a GeoPackage into the exports bucket).

weekly: detect (alerts of the area: one per stored scene group, stable ids, as the weekly
run republishes every active alert under its id) -> record_alerts (consumer:
``write_alert_batch``) -> sync_catalog.

Each consumer commits its batch's offsets synchronously after the batch is processed and
stops after an empty poll, as ``CommitAfterBatchOperator`` does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canopywatch.settings import Settings

log = logging.getLogger("canopywatch_dev.faults")

MONITORING = (
    "plan",
    "publish_requests",
    "download_scenes",
    "summarize",
    "reconcile_lake",
    "lake_versions",
    "record_scenes",
    "sync_catalog",
    "export_review",
)
WEEKLY = ("detect", "record_alerts", "sync_catalog")
CONSUMERS = ("download_scenes", "record_scenes", "record_alerts")
BATCH = 4
POLL_S = 2.0
FLUSH_S = 30.0
JOIN_S = 45.0
ATTEMPT_ENV = "CANOPYWATCH_FAULTS_ATTEMPT"  # <run>/<step>/<n>, set by the driver


def _producer(settings: Settings) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "message.timeout.ms": int(FLUSH_S * 1000),
        }
    )


def _store(settings: Settings) -> Any:
    from canopywatch.storage.objects import ObjectStore, s3_client

    return ObjectStore(s3_client(settings), settings.bucket)


def _lake(settings: Settings) -> Any:
    from canopywatch.lake.tables import lake_from_settings

    return lake_from_settings(settings)


def _read(state: Path, run: str, step: str) -> Any:
    return json.loads((state / run / f"{step}.json").read_text(encoding="utf-8"))


def _write(state: Path, run: str, step: str, value: Any) -> None:
    path = state / run / f"{step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    tmp.replace(path)


def _requests(state: Path, run: str) -> list[Any]:
    from canopywatch.messages import DownloadRequest

    return [DownloadRequest.from_json(text.encode()) for text in _read(state, run, "plan")]


# ------------------------------------------------------------------ monitoring
def plan(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.download import make_aoi, parse_window, plan_area
    from canopywatch.sources.copernicus import CdseEndpoint, search_acquisitions, sh_config

    aoi = make_aoi(conf["bbox"], conf["aoi_name"], settings)
    window = parse_window(conf["start"], conf["end"])
    config = sh_config(CdseEndpoint.from_settings(settings), max_retries=settings.sh_max_retries)
    requests = plan_area(
        aoi,
        window,
        lambda bbox, start, end, cloud: search_acquisitions(
            config, bbox.as_tuple(), start, end, cloud
        ),
        settings,
        function="s2l2a_bands",
        max_cloud=float(conf.get("max_cloud", 80)),
        run_id=run,
    )
    log.info("planned %d request(s) for %s", len(requests), aoi.aoi_id)
    _write(state, run, "plan", [r.to_bytes().decode() for r in requests])


def publish_requests(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.download import scene_key

    store = _store(settings)
    todo = [r for r in _requests(state, run) if store.head(scene_key(r).key) is None]
    _produce(
        settings, settings.topic("download-requests"), [(r.request_id, r.to_bytes()) for r in todo]
    )
    log.info("published %d download request(s)", len(todo))


def _produce(settings: Settings, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
    """Produce and flush; raises unless the broker took every record. Each record carries
    the task attempt (header ``attempt``) so the checker can tell a re-publication by a
    retry or re-run (by design) from a duplicate made by the producer itself."""
    failures: list[str] = []
    attempt = os.environ.get(ATTEMPT_ENV, "")

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer = _producer(settings)
    for key, value in records:
        producer.produce(
            topic,
            value,
            key=key.encode(),
            headers={"attempt": attempt.encode()},
            on_delivery=delivered,
        )
    undelivered = producer.flush(FLUSH_S)
    if undelivered or failures:
        raise RuntimeError(
            f"{undelivered} message(s) undelivered, {len(failures)} refused: {failures[:2]}"
        )


def _consume(settings: Settings, topic: str, group: str, apply: Callable[[list[Any]], None]) -> int:
    """Batches of ``topic`` until an empty poll; each batch's offsets committed after it."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    assigned = threading.Event()
    consumer.subscribe([topic], on_assign=lambda _c, _parts: assigned.set())
    done = 0
    try:
        # join the group first: an empty poll during a rebalance is not the end of the topic
        deadline = time.monotonic() + JOIN_S
        first: list[Any] = []
        while not assigned.is_set() and not first:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partition of {topic} assigned within {JOIN_S:g} s")
            first = consumer.consume(BATCH, timeout=1.0)
        while True:
            messages, first = first or consumer.consume(BATCH, timeout=POLL_S), []
            if not messages:
                return done
            apply(messages)
            ends: dict[tuple[str, int], int] = {}
            for m in messages:
                topic_name, partition, offset = m.topic(), m.partition(), m.offset()
                if (
                    m.error() is None
                    and topic_name
                    and partition is not None
                    and offset is not None
                ):
                    place = (topic_name, partition)
                    ends[place] = max(offset, ends.get(place, -1))
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in ends.items()]
            try:
                committed = consumer.commit(offsets=offsets, asynchronous=False) or []
            except KafkaException as exc:
                raise RuntimeError(f"offset commit failed: {exc}") from exc
            if any(tp.error is not None for tp in committed):
                raise RuntimeError("offset commit refused")
            done += len(messages)
    finally:
        consumer.close()


def download_scenes(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.download import download_scene, process_api_fetch
    from canopywatch.sources.copernicus import CdseEndpoint, sh_config
    from canopywatch.transport import run_download_batch

    config = sh_config(CdseEndpoint.from_settings(settings), max_retries=settings.sh_max_retries)
    fetch = process_api_fetch(config)
    store = _store(settings)
    producer = _producer(settings)

    def apply(messages: list[Any]) -> None:
        report = run_download_batch(
            messages,
            lambda request: download_scene(request, fetch, store),
            producer,
            settings.topic("scenes-downloaded"),
            concurrency=settings.download_concurrency,
            flush_timeout=FLUSH_S,
        )
        log.info("batch: %d downloaded, %d skipped", len(report.downloaded), len(report.skipped))

    count = _consume(settings, settings.topic("download-requests"), "faults-download", apply)
    log.info("consumed %d download request(s)", count)


def summarize(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.download import scene_key

    store = _store(settings)
    missing = [r for r in _requests(state, run) if store.head(scene_key(r).key) is None]
    if missing:
        raise RuntimeError(f"{len(missing)} planned scene(s) are not in the object store")


def reconcile_lake(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.reconcile import reconcile_scenes

    outcome = reconcile_scenes(
        _requests(state, run),
        _store(settings),
        _lake(settings),
        _producer(settings),
        settings.topic("scenes-downloaded"),
        run_id=run,
        flush_timeout=FLUSH_S,
    )
    log.info("reconcile: %s", outcome.describe())


def lake_versions(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.lake.tables import current_versions

    _write(state, run, "lake_versions", current_versions(_lake(settings)))


def export_review(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.export.gpkg import export_new_since
    from canopywatch.storage.objects import ObjectStore, s3_client

    result = export_new_since(
        _lake(settings),
        _read(state, run, "lake_versions"),
        label=run,
        out_dir=state / run / "exports",
        store=ObjectStore(s3_client(settings), settings.exports_bucket),
    )
    log.info("exported %d scene(s) to s3://%s/%s", result.scenes, result.bucket, result.key)


def _record(settings: Settings, topic: str, group: str, write: Callable[..., Any]) -> None:
    lake, dlq = _lake(settings), _producer(settings)
    count = _consume(
        settings, settings.topic(topic), group, lambda ms: write(ms, lake=lake, dlq=dlq)
    )
    log.info("recorded %d message(s) of %s", count, topic)


def record_scenes(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.lake.consume import write_scene_batch

    _record(settings, "scenes-downloaded", "faults-lake-scenes", write_scene_batch)


def sync_catalog(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.catalog.schema import connect
    from canopywatch.catalog.sync import sync_catalog as sync

    with connect(settings, connect_timeout=5) as conn:
        for result in sync(conn, _lake(settings)):
            log.info("sync %s: %s", result.table, result)


# ------------------------------------------------------------------ weekly
def alert_id(aoi_id: str, index: int) -> str:
    return hashlib.sha256(f"{aoi_id}/{index}".encode()).hexdigest()[:16]


def detect(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    """One alert per four scenes the catalog holds for the area (a stand-in for the detector's
    output: the weekly run publishes each active alert again under its stable id)."""
    from canopywatch.catalog.schema import connect
    from canopywatch.messages import AlertPublished

    with connect(settings, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT acquired_at FROM scenes WHERE aoi_id = %s ORDER BY acquired_at",
            (conf["aoi_name"],),
        ).fetchall()
    minx, miny, maxx, _ = conf["bbox"]
    alerts = []
    for index in range(0, len(rows), 4):
        x = minx + (maxx - minx) * (index % 40) / 40
        ring = [[x, miny], [x + 0.0002, miny], [x + 0.0002, miny + 0.0002], [x, miny]]
        day = rows[index][0]
        alerts.append(
            AlertPublished(
                alert_id=alert_id(conf["aoi_name"], index),
                aoi_id=conf["aoi_name"],
                geometry={"type": "MultiPolygon", "coordinates": [[ring]]},
                alert_date=day,
                confirmed_date=day + timedelta(days=10),
                confidence=0.9,
                confidence_level="high",
                status="high",
                method="harmonic",
                area_ha=0.4,
                model_version="faults-1",
            )
        )
    _produce(settings, settings.topic("alerts"), [(a.alert_id, a.to_bytes()) for a in alerts])
    _write(state, run, "detect", [a.alert_id for a in alerts])
    log.info("published %d alert(s)", len(alerts))


def record_alerts(settings: Settings, state: Path, run: str, conf: dict[str, Any]) -> None:
    from canopywatch.lake.consume import write_alert_batch

    _record(settings, "alerts", "faults-lake-alerts", write_alert_batch)


STEPS: dict[str, Callable[[Settings, Path, str, dict[str, Any]], None]] = {
    "plan": plan,
    "publish_requests": publish_requests,
    "download_scenes": download_scenes,
    "summarize": summarize,
    "reconcile_lake": reconcile_lake,
    "lake_versions": lake_versions,
    "record_scenes": record_scenes,
    "export_review": export_review,
    "sync_catalog": sync_catalog,
    "detect": detect,
    "record_alerts": record_alerts,
}


def run_attempt(argv: list[str], env: dict[str, str], log_path: str) -> None:
    """One task attempt in a process forked for it: the instance's environment, stdout and
    stderr into the attempt's log file, exit 0 when the task succeeded (else 1)."""
    import traceback

    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        code = main(argv)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canopywatch_dev.faults.steps")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--run", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--conf", required=True, help="the run's conf as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    started = datetime.now(UTC)
    STEPS[args.step](Settings.from_env(), args.state, args.run, json.loads(args.conf))
    log.info("%s done in %.1f s", args.step, (datetime.now(UTC) - started).total_seconds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
