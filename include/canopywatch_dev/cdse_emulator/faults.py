"""Injected faults, request statistics, and the ASGI middleware that applies them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from canopywatch_dev.cdse_emulator.config import (
    CATALOG_PATH,
    ENDPOINT_KINDS,
    FAULT_MODES,
    PROCESS_PATH,
    STAC_PATH,
    TOKEN_PATH,
    EndpointKind,
    FaultMode,
)
from canopywatch_dev.cdse_emulator.errors import sh_error

LOGGER = logging.getLogger(__name__)

if TYPE_CHECKING:
    from canopywatch_dev.cdse_emulator.app import CdseEmulator


# ---------------------------------------------------------------- faults and statistics


@dataclass
class Fault:
    """For the next ``count`` requests to ``endpoint``, answer with ``mode`` instead."""

    endpoint: EndpointKind
    mode: FaultMode
    count: int = 1
    retry_after_ms: int = 1000

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Fault:
        endpoint, mode = str(raw.get("endpoint")), str(raw.get("mode"))
        if endpoint not in ENDPOINT_KINDS or mode not in FAULT_MODES:
            raise ValueError(f"endpoint must be one of {ENDPOINT_KINDS}, mode one of {FAULT_MODES}")
        return cls(
            endpoint=cast(EndpointKind, endpoint),
            mode=cast(FaultMode, mode),
            count=int(raw.get("count", 1)),
            retry_after_ms=int(raw.get("retry_after_ms", 1000)),
        )


@dataclass
class FaultPlan:
    """Faults to inject, and token lifetimes.

    ``token_lifetime_s`` is the advertised ``expires_in``; ``token_valid_for_s``, when set, makes
    tokens stop being accepted earlier than advertised (a revoked or clock-skewed token).
    """

    faults: list[Fault] = field(default_factory=list)
    token_lifetime_s: float = 600.0
    token_valid_for_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """Consumes one occurrence of the first armed fault for ``endpoint``."""
        with self._lock:
            for fault in self.faults:
                if fault.endpoint == endpoint and fault.count > 0:
                    fault.count -= 1
                    return replace(fault)
            return None

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.token_lifetime_s = 600.0
            self.token_valid_for_s = None


@dataclass
class Stats:
    """Requests per endpoint kind and HTTP status, and processing units spent."""

    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    processing_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, kind: str, status: int) -> None:
        with self._lock:
            per_status = self.requests.setdefault(kind, {})
            per_status[str(status)] = per_status.get(str(status), 0) + 1

    def spend(self, units: float) -> None:
        with self._lock:
            self.processing_units += units

    def count(self, kind: str, status: int | None = None) -> int:
        with self._lock:
            per_status = self.requests.get(kind, {})
            if status is None:
                return sum(per_status.values())
            return per_status.get(str(status), 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {kind: dict(v) for kind, v in self.requests.items()},
                "processing_units": round(self.processing_units, 6),
            }

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.processing_units = 0.0


def endpoint_kind(path: str) -> str:
    if path == TOKEN_PATH:
        return "token"
    if path.startswith(CATALOG_PATH):
        return "catalog"
    if path.startswith(STAC_PATH):
        return "stac"
    if path.startswith(PROCESS_PATH):
        return "process"
    return "other"


# ---------------------------------------------------------------- faults middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultsAndStats:
    """ASGI middleware: injects armed faults and counts responses per endpoint and status."""

    def __init__(self, app: ASGIApp, emulator: CdseEmulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = endpoint_kind(scope["path"])
        fault = self.emulator.faults.take(kind)
        if fault is not None and fault.mode in ("429", "500", "503"):
            LOGGER.info("injecting %s on %s", fault.mode, kind)
            status = int(fault.mode)
            headers = {"Retry-After": str(fault.retry_after_ms)} if status == 429 else None
            message = {
                429: "You have exceeded your rate limit",
                500: "Internal server error (injected)",
                503: "Service temporarily unavailable (injected)",
            }[status]
            self.emulator.stats.record(kind, status)
            await sh_error(status, message, headers=headers)(scope, receive, send)
            return
        if fault is not None:
            await self._truncated(fault, kind, scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.emulator.stats.record(kind, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _truncated(
        self, fault: Fault, kind: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def buffering_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, buffering_send)
        body = b"".join(chunks)
        half = body[: len(body) // 2]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        declared = len(body) if fault.mode == "truncate_length" else len(half)
        headers.append((b"content-length", str(declared).encode()))
        LOGGER.info("injecting %s on %s (%d of %d bytes)", fault.mode, kind, len(half), len(body))
        self.emulator.stats.record(kind, int(start.get("status", 200)))
        await send(
            {"type": "http.response.start", "status": start.get("status", 200), "headers": headers}
        )
        # truncate_length leaves the response unfinished: the server closes the connection
        # short of the declared Content-Length, as a dropped transfer does
        await send(
            {
                "type": "http.response.body",
                "body": half,
                "more_body": fault.mode == "truncate_length",
            }
        )
