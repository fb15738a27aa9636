"""HMAC-SHA256 signatures of webhook bodies.

The receiver recomputes ``hmac_sha256(secret, body)`` over the raw request body and
compares it, in constant time, with the ``X-Canopywatch-Signature: sha256=<hex>`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Canopywatch-Signature"
EVENT_HEADER = "X-Canopywatch-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PREFIX = "sha256="


def new_secret() -> str:
    """A fresh signing secret for a subscription (shown once, when it is made)."""
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret``."""
    header = (header or "").strip()  # e-mail headers may arrive folded
    if not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header)
