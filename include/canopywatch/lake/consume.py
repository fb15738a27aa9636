"""Kafka -> Delta writers: what the Kafka consumer tasks apply to each batch.

``write_scene_batch`` (and its siblings for COGs and alerts) is the library
function: it takes the consumed messages, a ``Lake`` and a DLQ producer, sends
poison messages to ``<topic>.dlq`` with the error, and writes the rest plus their
offsets in one exactly-once Delta commit (``canopywatch.lake.writer``). Any other
failure (MinIO down, Kafka error) is raised, so the operator commits no offset and
the retry redelivers the batch; offsets already in Delta are skipped then.

The Airflow consumer tasks (``canopywatch.airflow.lake.consume_scenes_downloaded`` and
friends) resolve the connections and call these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from canopywatch.lake.rows import Provenance, RowError, alert_row, scene_cog_row, scene_raw_row
from canopywatch.lake.tables import ALERTS, SCENES_COG, SCENES_RAW, Lake, TableSpec, open_table
from canopywatch.lake.writer import (
    DEFAULT_APP,
    CommitResult,
    OffsetRow,
    committed_offsets,
    write_exactly_once,
)
from canopywatch.messages import (
    AlertPublished,
    DeadLetter,
    Message,
    MessageError,
    SceneConverted,
    SceneDownloaded,
)
from canopywatch.transport import KafkaMessage, Producer, dead_letter

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
DLQ_FLUSH_TIMEOUT_S = 30.0


class DeadLetterDeliveryError(RuntimeError):
    """The DLQ producer could not deliver; the batch fails so nothing is lost."""


@dataclass(frozen=True)
class BatchOutcome:
    commit: CommitResult
    dead_lettered: list[DeadLetter] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.commit.inserted + self.commit.updated


def write_message_batch(
    messages: Sequence[KafkaMessage],
    *,
    spec: TableSpec,
    message_type: type[M],
    to_row: Callable[[M, Provenance], dict[str, Any]],
    lake: Lake,
    dlq: Producer,
    app: str = DEFAULT_APP,
) -> BatchOutcome:
    """Parse, dead-letter poison, write the rest exactly once; raises on transient failures."""
    ingested_at = datetime.now(UTC)
    positioned: list[tuple[KafkaMessage, str, int, int]] = []
    for message in messages:
        if message.error() is not None:
            raise RuntimeError(f"Kafka consumer error: {message.error()}")
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            raise RuntimeError("a consumed Kafka message has no topic, partition or offset")
        positioned.append((message, topic, partition, offset))
    # offsets the table already holds were handled (written or dead-lettered) before
    table = open_table(lake, spec)  # one log read per batch: the writer below reuses it
    done = committed_offsets(table, ((t, p) for _, t, p, _ in positioned), app)
    replayed = 0
    records: list[OffsetRow] = []
    letters: list[DeadLetter] = []
    for message, topic, partition, offset in positioned:
        last = done[(topic, partition)]
        if last is not None and offset <= last:
            replayed += 1
            continue
        try:
            parsed = message_type.from_json(message.value())
            row: dict[str, Any] | None = to_row(
                parsed, Provenance(topic, partition, offset, ingested_at)
            )
        except (MessageError, RowError) as exc:
            letter = dead_letter(dlq, message, exc)
            log.warning(
                "%s[%d]@%d dead-lettered to %s.dlq: %s",
                topic,
                partition,
                offset,
                topic,
                letter.error,
            )
            letters.append(letter)
            row = None  # its offset is still recorded, so a replay does not dead-letter it again
        records.append(OffsetRow(topic, partition, offset, row))
    if letters:
        undelivered = dlq.flush(DLQ_FLUSH_TIMEOUT_S)
        if undelivered:
            raise DeadLetterDeliveryError(
                f"{undelivered} dead letter(s) were not delivered to the DLQ; batch not committed"
            )
    if not records:
        if replayed:
            log.info(
                "%s: all %d message(s) were already written; nothing to do", spec.name, replayed
            )
        return BatchOutcome(CommitResult(spec.name, None, replayed=replayed), letters)
    commit = write_exactly_once(lake, spec, records, app=app, table=table)
    return BatchOutcome(replace(commit, replayed=commit.replayed + replayed), letters)


def write_scene_batch(
    messages: Sequence[KafkaMessage], *, lake: Lake, dlq: Producer, app: str = DEFAULT_APP
) -> BatchOutcome:
    """SceneDownloaded messages -> ``scenes_raw``."""
    return write_message_batch(
        messages,
        spec=SCENES_RAW,
        message_type=SceneDownloaded,
        to_row=scene_raw_row,
        lake=lake,
        dlq=dlq,
        app=app,
    )


def write_converted_batch(
    messages: Sequence[KafkaMessage], *, lake: Lake, dlq: Producer, app: str = DEFAULT_APP
) -> BatchOutcome:
    """SceneConverted messages -> ``scenes_cog``."""
    return write_message_batch(
        messages,
        spec=SCENES_COG,
        message_type=SceneConverted,
        to_row=scene_cog_row,
        lake=lake,
        dlq=dlq,
        app=app,
    )


def write_alert_batch(
    messages: Sequence[KafkaMessage], *, lake: Lake, dlq: Producer, app: str = DEFAULT_APP
) -> BatchOutcome:
    """AlertPublished messages -> ``alerts``."""
    return write_message_batch(
        messages,
        spec=ALERTS,
        message_type=AlertPublished,
        to_row=lambda message, provenance: alert_row(message, provenance),
        lake=lake,
        dlq=dlq,
        app=app,
    )
