"""Kafka as a transport: run a stage over a batch of messages, publish results, dead-letter poison.

A poison message (unreadable, or refused by the service as a bad request, or a
corrupt response) goes to ``<topic>.dlq`` with the error and the rest of the batch
flows. A transient failure (service down, rate limit exhausted) is raised after the
batch's finished work is published, so the offsets are not committed and the task
retry redelivers the batch; work already stored is skipped then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from canopywatch.download import CorruptSceneError, DownloadOutcome
from canopywatch.evalscripts import UnknownFunctionError
from canopywatch.layout import LayoutError
from canopywatch.messages import DeadLetter, DownloadRequest, MessageError, dlq_topic

log = logging.getLogger(__name__)


class KafkaMessage(Protocol):
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def error(self) -> Any: ...


class Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes | None = ...) -> None: ...
    def flush(self, timeout: float = ...) -> int: ...


def is_poison(exc: BaseException) -> bool:
    """True when retrying the same message can never succeed."""
    if isinstance(exc, MessageError | CorruptSceneError | UnknownFunctionError | LayoutError):
        return True
    response = getattr(getattr(exc, "request_exception", None), "response", None)
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in {401, 403, 429}


@dataclass
class BatchReport:
    downloaded: list[DownloadOutcome] = field(default_factory=list)
    skipped: list[DownloadOutcome] = field(default_factory=list)
    dead_lettered: list[DeadLetter] = field(default_factory=list)

    @property
    def bytes_downloaded(self) -> int:
        return sum(o.size_bytes for o in self.downloaded)


def run_download_batch(
    messages: Sequence[KafkaMessage],
    download: Callable[[DownloadRequest], DownloadOutcome],
    producer: Producer,
    downloaded_topic: str,
    *,
    concurrency: int = 1,
) -> BatchReport:
    """Download every request of the batch, announce stored scenes, dead-letter poison."""
    report = BatchReport()
    parsed: list[tuple[KafkaMessage, DownloadRequest]] = []
    for message in messages:
        if message.error() is not None:
            raise RuntimeError(f"Kafka consumer error: {message.error()}")
        try:
            parsed.append((message, DownloadRequest.from_json(message.value())))
        except MessageError as exc:
            report.dead_lettered.append(dead_letter(producer, message, exc))

    transient: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [
            (message, request, pool.submit(download, request)) for message, request in parsed
        ]
        for message, request, future in futures:
            try:
                outcome = future.result()
            except Exception as exc:
                if is_poison(exc):
                    log.warning("request %s dead-lettered: %s", request.request_id, exc)
                    report.dead_lettered.append(dead_letter(producer, message, exc))
                else:
                    log.error("request %s failed, will be retried: %s", request.request_id, exc)
                    transient = transient or exc
                continue
            (report.downloaded if outcome.status == "downloaded" else report.skipped).append(
                outcome
            )
            if outcome.message is not None:
                producer.produce(
                    downloaded_topic, outcome.message.to_bytes(), key=outcome.message.key.encode()
                )
    producer.flush(30)
    if transient is not None:
        raise transient
    return report


def dead_letter(producer: Producer, message: KafkaMessage, exc: BaseException) -> DeadLetter:
    topic = message.topic() or "unknown"
    raw = message.value() or b""
    key = message.key()
    letter = DeadLetter(
        source_topic=topic,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=key.decode(errors="replace") if key else None,
        error=f"{type(exc).__name__}: {exc}",
        payload=raw.decode(errors="replace"),
    )
    producer.produce(dlq_topic(topic), letter.to_bytes(), key=key)
    return letter


def records(messages: Iterable[Any]) -> Iterable[tuple[str, str]]:
    """(key, JSON) pairs for a ProduceToTopicOperator producer_function."""
    for message in messages:
        yield message.key, message.to_json()
