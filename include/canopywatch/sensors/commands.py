"""``canopywatch sensors ingest FILE|-``: sensor rows (CSV, JSON lines, FIRMS CSV) to Kafka;
``canopywatch sensors corroborate``: the alerts' ``corroborated_by``, ``evidence_ids`` and
``drought_anomaly`` from that evidence and the weather readings.

    canopywatch sensors ingest readings.csv [--format auto|csv|jsonl|firms]
                                            [--stations include/sensor_stations.csv]
    canopywatch sensors ingest - < fire_nrt_J1V-C2.csv
    canopywatch sensors corroborate [--aoi NAME] [--no-announce]

Good rows go to ``<prefix>.sensor-readings`` keyed by station; each bad row is reported
on stderr (``line N: reason``) and dead-lettered to ``<prefix>.sensor-readings.dlq``.
Exit 0 when the input was read (even with bad rows: the summary counts them), 2 when
the input or the station registry is unreadable, 1 when Kafka did not take the messages.

``corroborate`` checks the active alerts in PostGIS against ``sensor_readings``
(``canopywatch.sensors.corroboration``) and the weather near them
(``canopywatch.sensors.drought``), stores the values and announces each changed alert
on ``<prefix>.alerts`` (so Delta and every export carry it); exit 1 when PostGIS or Kafka
is unavailable.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from canopywatch.output import with_examples
from canopywatch.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1
SHOWN_REJECTS = 20


def register(subparsers: Any) -> None:
    sensors = subparsers.add_parser(
        "sensors",
        **with_examples(
            "ground sensors, patrol GPS, fire hotspots",
            "canopywatch sensors ingest readings.csv",
            "canopywatch sensors ingest - --format firms < fire_nrt_J1V-C2.csv",
        ),
    )
    verbs = sensors.add_subparsers(
        dest="sensors_command", required=True, parser_class=type(sensors)
    )
    ingest = verbs.add_parser(
        "ingest",
        **with_examples(
            "publish sensor rows (CSV, JSON lines, FIRMS CSV) to Kafka",
            "canopywatch sensors ingest readings.csv --format csv",
            "canopywatch sensors ingest patrols.jsonl --stations include/sensor_stations.csv",
            "canopywatch sensors ingest - --format firms < fire_nrt_J1V-C2.csv",
        ),
    )
    ingest.add_argument("source", help="file, or - for standard input")
    from canopywatch.sensors.readings import FORMATS
    from canopywatch.sensors.stations import DEFAULT_STATIONS

    ingest.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format (default auto: JSON lines when the first line starts with {, else CSV; FIRMS CSV needs firms)",
    )
    ingest.add_argument(
        "--stations", default=str(DEFAULT_STATIONS), help="station registry CSV (%(default)s)"
    )
    ingest.add_argument("--timeout", type=float, default=30.0, help="Kafka flush seconds")
    ingest.set_defaults(sensors_handler=_ingest)
    corroborate = verbs.add_parser(
        "corroborate",
        **with_examples(
            "mark alerts corroborated by sensor evidence (acoustic, fire, patrol)",
            "canopywatch sensors corroborate",
            "canopywatch sensors corroborate --aoi demo-novo-progresso --no-announce",
        ),
    )
    corroborate.add_argument("--aoi", default=None, help="only this area's alerts (default all)")
    corroborate.add_argument(
        "--no-announce",
        dest="announce",
        action="store_false",
        help="store in PostGIS only; do not publish the changed alerts to Kafka",
    )
    corroborate.add_argument("--timeout", type=float, default=30.0, help="Kafka flush seconds")
    corroborate.set_defaults(sensors_handler=_corroborate)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    handler = getattr(args, "sensors_handler", None)
    if handler is None:
        return None
    from canopywatch.command_errors import run_verb

    return run_verb(handler, args, settings)


def _producer(settings: Settings, timeout_s: float) -> Any:
    """An idempotent producer that gives up after ``timeout_s`` (one report, not a log line
    per retry, when the broker is down)."""
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(timeout_s * 1000),
            "log_level": 0,
        }
    )


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.messages import SensorReading
    from canopywatch.sensors.ingest import ingest_rows
    from canopywatch.sensors.readings import InputError, open_input, read_rows
    from canopywatch.sensors.stations import StationError, load_stations
    from canopywatch.transport import UndeliveredError

    try:
        stations = load_stations(args.stations)
        handle = open_input(args.source)
        # read it whole first: an unreadable input publishes nothing
        rows = list(read_rows(handle, args.format, "stdin" if args.source == "-" else args.source))
    except (InputError, StationError) as exc:
        print(f"canopywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from confluent_kafka import KafkaException

    topic = settings.topic(SensorReading.topic_name)
    try:
        producer = _producer(settings, args.timeout)
        report = ingest_rows(rows, stations, producer, topic, flush_timeout=args.timeout)
    except (UndeliveredError, KafkaException) as exc:
        print(f"canopywatch: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for line, reason in report.rejected[:SHOWN_REJECTS]:
        print(f"line {line}: {reason}", file=sys.stderr)
    if len(report.rejected) > SHOWN_REJECTS:
        print(f"... and {len(report.rejected) - SHOWN_REJECTS} more", file=sys.stderr)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.published.items())) or "none"
    print(
        f"{report.total_published} reading(s) to {topic} ({kinds}); "
        f"{len(report.rejected)} bad row(s) to {topic}.dlq"
    )
    return 0


def _corroborate(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.catalog.schema import connect
    from canopywatch.sensors.corroboration import corroborate_catalog

    with connect(settings) as conn:  # PostGIS down: one line (run_verb)
        result = corroborate_catalog(conn, aoi=args.aoi)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(result.by_kind().items())) or "none"
    line = (
        f"{result.checked} active alert(s) checked: {result.corroborated} corroborated "
        f"({kinds}); {result.droughts} in a dry spell (drought_anomaly); "
        f"{len(result.changed)} changed"
    )
    if not args.announce or not result.changed:
        print(line)
        return 0
    from confluent_kafka import KafkaException

    from canopywatch.messages import AlertPublished
    from canopywatch.transport import UndeliveredError

    topic = settings.topic(AlertPublished.topic_name)
    try:
        producer = _producer(settings, args.timeout)
        for message in result.changed:
            producer.produce(topic, message.to_bytes(), key=message.key.encode())
        left = producer.flush(args.timeout)
        if left:
            raise UndeliveredError(f"{left} alert update(s) not delivered")
    except (UndeliveredError, KafkaException) as exc:
        print(f"canopywatch: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"{line}, announced on {topic}")
    return 0
