"""API keys: the ``api_keys`` table in PostGIS, keys stored as SHA-256 digests.

A key is 32 random bytes (``cw_`` + URL-safe base64): with that much entropy a plain SHA-256
digest cannot be brute-forced, so a key is found by the digest of what a client sends and
the key itself is never stored. Scopes: ``read``, ``write`` (subscriptions, plot checks),
``admin``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "cw_"

DDL = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash    text PRIMARY KEY,
    name        text NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked     boolean NOT NULL DEFAULT false
);
"""


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_table(conn: psycopg.Connection[Any]) -> None:
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()


def store(conn: psycopg.Connection[Any], key: str, name: str, scopes: tuple[str, ...]) -> None:
    """Store ``key`` (hashed) with ``scopes``; storing the same key again updates them."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(sorted(unknown))}; choose from {SCOPES}")
    ensure_table(conn)
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO api_keys (key_hash, name, scopes) VALUES (%s, %s, %s)
            ON CONFLICT (key_hash) DO UPDATE SET name = EXCLUDED.name,
                scopes = EXCLUDED.scopes, revoked = false
            """,
            (digest(key), name, list(scopes)),
        )
    conn.commit()


def revoke(conn: psycopg.Connection[Any], key: str) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE api_keys SET revoked = true WHERE key_hash = %s", (digest(key),))
    conn.commit()


def lookup(conn: psycopg.Connection[Any], key: str) -> ApiKey | None:
    """The stored key matching ``key``, or None (unknown or revoked)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name, scopes FROM api_keys WHERE key_hash = %s AND NOT revoked",
            (digest(key),),
        )
        row = cur.fetchone()
    conn.rollback()
    return None if row is None else ApiKey(str(row[0]), frozenset(row[1]))
