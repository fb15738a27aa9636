"""Which webhook URLs may receive deliveries (server-side request forgery guard).

Only ``http`` and ``https`` URLs with a host name; every address the host resolves to must
be public unless private targets are allowed (``CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE=true``,
for a receiver on the same machine or network). The check runs when a subscription is
made and again before every delivery, so a name that later resolves to an internal address
(DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2048
_EMAIL = re.compile(r"^[^@\s<>\",;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")


class UnsafeTargetError(ValueError):
    """A webhook URL that must not be called; the message says why."""


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeTargetError(f"webhook host {host!r} does not resolve ({exc.strerror})") from exc
    return sorted({str(info[4][0]) for info in infos})


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_webhook_url(
    url: str, *, allow_private: bool = False, resolver: Resolver = _resolve
) -> str:
    """``url`` if it may receive deliveries, else UnsafeTargetError with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTargetError(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTargetError(f"webhook URL {url!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in {"http", "https"}:
        raise UnsafeTargetError(
            f"webhook URL must start with http:// or https:// (got {parts.scheme or 'no'} scheme)"
        )
    host = parts.hostname
    if not host:
        raise UnsafeTargetError(f"webhook URL {url!r} has no host")
    if parts.username or parts.password:
        raise UnsafeTargetError("webhook URL must not carry a user name or password")
    if allow_private:
        return url
    addresses = resolver(host, port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        raise UnsafeTargetError(f"webhook host {host!r} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not _is_public(address):
            raise UnsafeTargetError(
                f"webhook host {host!r} resolves to the non-public address {address}; private, "
                "loopback and link-local targets are refused (CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE=true "
                "allows them)"
            )
    return url


def check_email(address: str) -> str:
    """``address`` if it is a plain e-mail address (no display name, no header tricks)."""
    if len(address) > 254 or not _EMAIL.match(address):
        raise UnsafeTargetError(f"e-mail address {address!r} is not a plain address like a@b.org")
    return address
