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


DeliveryCallback = Callable[[Any, Any], None]


class ReportingProducer(Protocol):
    """A producer that reports each delivery (``on_delivery(error, message)``), as Kafka's does."""

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = ...,
        *,
        on_delivery: DeliveryCallback | None = ...,
    ) -> None: ...
    def flush(self, timeout: float = ...) -> int: ...


class UndeliveredError(RuntimeError):
    """Messages of a batch were not delivered; the batch must not be committed."""


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
    producer: ReportingProducer,
    downloaded_topic: str,
    *,
    concurrency: int = 1,
    flush_timeout: float = 30,
) -> BatchReport:
    """Download every request of the batch, announce stored scenes, dead-letter poison.

    Raises ``UndeliveredError`` when an announcement or dead letter is not delivered
    (still queued after the flush, or refused by the broker), so the offsets are not
    committed and the retry announces the stored scenes again.
    """
    report = BatchReport()
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    def send(topic: str, value: bytes, key: bytes | None) -> None:
        producer.produce(topic, value, key=key, on_delivery=delivered)

    parsed: list[tuple[KafkaMessage, DownloadRequest]] = []
    for message in messages:
        if message.error() is not None:
            raise RuntimeError(f"Kafka consumer error: {message.error()}")
        try:
            parsed.append((message, DownloadRequest.from_json(message.value())))
        except MessageError as exc:
            report.dead_lettered.append(_dead_letter(send, message, exc))

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
                    report.dead_lettered.append(_dead_letter(send, message, exc))
                else:
                    log.error("request %s failed, will be retried: %s", request.request_id, exc)
                    transient = transient or exc
                continue
            (report.downloaded if outcome.status == "downloaded" else report.skipped).append(
                outcome
            )
            if outcome.message is not None:
                send(downloaded_topic, outcome.message.to_bytes(), outcome.message.key.encode())
    undelivered = producer.flush(flush_timeout)
    if undelivered or failures:
        raise UndeliveredError(
            f"{undelivered} message(s) still queued after {flush_timeout:g} s and "
            f"{len(failures)} refused ({'; '.join(failures[:3]) or 'flush timed out'}); "
            "the batch is not committed and will be retried"
        ) from transient
    if transient is not None:
        raise transient
    return report


def dead_letter(producer: Producer, message: KafkaMessage, exc: BaseException) -> DeadLetter:
    return _dead_letter(
        lambda topic, value, key: producer.produce(topic, value, key=key), message, exc
    )


def _dead_letter(
    send: Callable[[str, bytes, bytes | None], None], message: KafkaMessage, exc: BaseException
) -> DeadLetter:
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
    send(dlq_topic(topic), letter.to_bytes(), key)
    return letter


def records(messages: Iterable[Any]) -> Iterable[tuple[str, str]]:
    """(key, JSON) pairs for a ProduceToTopicOperator producer_function."""
    for message in messages:
        yield message.key, message.to_json()
