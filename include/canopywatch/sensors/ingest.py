"""Publish checked readings to ``<prefix>.sensor-readings``; dead-letter the bad rows.

Each bad row becomes a ``DeadLetter`` on ``<prefix>.sensor-readings.dlq`` with the
reason and the raw row (``partition`` -1: it never was on the topic; ``offset`` the
row's line number in the input). Nothing is published when the input as a whole is
unreadable (InputError). Raises ``UndeliveredError`` when the broker did not take every
message, so the caller can say so and exit non-zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canopywatch.messages import DeadLetter, SensorReading, dlq_topic
from canopywatch.sensors.readings import Row, check_row
from canopywatch.sensors.stations import Station
from canopywatch.transport import ReportingProducer, UndeliveredError

NOT_ON_TOPIC = -1


@dataclass
class IngestReport:
    published: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total_published(self) -> int:
        return sum(self.published.values())


def ingest_rows(
    rows: Iterable[Row],
    stations: Mapping[str, Station],
    producer: ReportingProducer,
    topic: str,
    *,
    now: datetime | None = None,
    flush_timeout: float = 30,
) -> IngestReport:
    report = IngestReport()
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for row in rows:
        reading: SensorReading | None = None
        error = row.error
        if error is None and row.fields is not None:
            try:
                reading = check_row(row.fields, stations, now)
            except ValueError as exc:
                error = str(exc)
        if reading is not None:
            producer.produce(
                topic, reading.to_bytes(), key=reading.key.encode(), on_delivery=delivered
            )
            report.published[reading.kind] += 1
            continue
        reason = error or "empty row"
        station = (row.fields or {}).get("station_id")
        letter = DeadLetter(
            source_topic=topic,
            partition=NOT_ON_TOPIC,
            offset=row.line,
            key=str(station) if station else None,
            error=reason,
            payload=row.raw,
        )
        producer.produce(
            dlq_topic(topic),
            letter.to_bytes(),
            key=letter.key.encode() if letter.key else None,
            on_delivery=delivered,
        )
        report.rejected.append((row.line, reason))
    undelivered = producer.flush(flush_timeout)
    if undelivered or failures:
        raise UndeliveredError(
            f"{undelivered} message(s) still queued after {flush_timeout:g} s and "
            f"{len(failures)} refused ({'; '.join(failures[:3]) or 'flush timed out'})"
        )
    return report
