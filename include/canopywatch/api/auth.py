"""Who may call: API keys from ``X-API-Key`` or ``Authorization: Bearer``, scopes, rate limits.

Reads need a key with the ``read`` scope unless ``CANOPYWATCH_API_PUBLIC_READ=true``; writes
need ``write``. No key where one is needed, or a key that is unknown or revoked: 401; a key
without the scope: 403; more than ``api_rate_limit`` requests a minute from one key (or, for
anonymous public reads, one client address): 429 with ``Retry-After``. Keys found valid are
remembered for ``CACHE_S`` seconds, so a revocation takes at most that long to apply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from canopywatch.api import keys
from canopywatch.settings import Settings

CACHE_S = 30.0


def presented_key(request: Request) -> str | None:
    """The key a request carries, from ``X-API-Key`` or ``Authorization: Bearer <key>``."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@dataclass
class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests, refilled continuously."""

    per_minute: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, caller: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, seen = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - seen) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[caller] = (tokens - 1.0, now)
            return 0.0


class Access:
    """The key check of one app: ``check(request, scope)`` raises the 401/403/429."""

    def __init__(self, settings: Settings, lookup: Callable[[str], keys.ApiKey | None]) -> None:
        self.public_read = settings.api_public_read
        self._lookup = lookup
        self._cache: dict[str, tuple[keys.ApiKey, float]] = {}
        self._lock = threading.Lock()
        self.limiter = RateLimiter(max(1, settings.api_rate_limit))

    def _find(self, key: str) -> keys.ApiKey | None:
        digest = keys.digest(key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and cached[1] > now:
            return cached[0]
        found = self._lookup(key)
        if found is not None:
            with self._lock:
                self._cache[digest] = (found, now + CACHE_S)
        return found

    def check(self, request: Request, scope: str) -> keys.ApiKey | None:
        key = presented_key(request)
        found: keys.ApiKey | None = None
        if key is None:
            if not (scope == "read" and self.public_read):
                raise HTTPException(
                    401,
                    f"an API key with the {scope!r} scope is needed "
                    "(X-API-Key or Authorization: Bearer header)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            caller = "ip:" + (request.client.host if request.client else "?")
        else:
            found = self._find(key)
            if found is None:
                raise HTTPException(
                    401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
                )
            if not found.allows(scope):
                raise HTTPException(403, f"this API key has no {scope!r} scope")
            caller = "key:" + keys.digest(key)
        wait = self.limiter.take(caller)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {self.limiter.per_minute} requests a minute exceeded",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return found


def _access(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


def require_read(request: Request) -> Any:
    """FastAPI dependency of every read endpoint."""
    return _access(request).check(request, "read")


def require_write(request: Request) -> Any:
    """FastAPI dependency of every endpoint that writes (subscriptions, plot checks)."""
    return _access(request).check(request, "write")
