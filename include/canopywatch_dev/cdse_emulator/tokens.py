"""Client credentials and the HS256 tokens the endpoint issues."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

# ---------------------------------------------------------------- credentials and tokens


@dataclass(frozen=True)
class Credentials:
    """The OAuth client (and optional OData user) the endpoint accepts."""

    client_id: str
    client_secret: str = field(repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        return cls(
            client_id=env.get("CANOPYWATCH_CDSE_CLIENT_ID", ""),
            client_secret=env.get("CANOPYWATCH_CDSE_CLIENT_SECRET", ""),
        )


class TokenError(Exception):
    """A Keycloak-style token endpoint error."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies HS256 JWTs signed with a key that lives only in this process."""

    REFRESH_LIFETIME_S = 3600

    def __init__(self, issuer: str) -> None:
        self._key = secrets.token_bytes(32)
        self._issuer = issuer

    def issue(self, client_id: str, subject: str, lifetime_s: float, typ: str) -> str:
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "exp": int(now + lifetime_s),
            "exp_ms": int((now + lifetime_s) * 1000),
            "iat": int(now),
            "jti": secrets.token_hex(8),
            "iss": self._issuer,
            "sub": subject,
            "typ": typ,
            "azp": client_id,
            "scope": "email profile",
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
        )
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"

    def verify(self, token: str, typ: str) -> dict[str, Any] | None:
        """The payload of a well-signed, unexpired token of type ``typ``; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
                return None
            payload = json.loads(_b64url_decode(parts[1]))
        except ValueError:
            return None
        # exp_ms keeps sub-second lifetimes (fault tests) exact; exp is the standard claim
        expires_ms = payload.get("exp_ms", payload.get("exp", 0) * 1000)
        if payload.get("typ") != typ or expires_ms <= time.time() * 1000:
            return None
        return cast(dict[str, Any], payload)
