"""Webhook targets (SSRF guard), signatures, which events a subscription gets, backoff."""

from __future__ import annotations

import pytest

from canopywatch.subscriptions.delivery import DeliveryPolicy, event_name
from canopywatch.subscriptions.signing import new_secret, sign, verify
from canopywatch.subscriptions.store import Subscription
from canopywatch.subscriptions.targets import UnsafeTargetError, check_webhook_url


def _resolver(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("ftp://example.org/hook", ("93.184.216.34",), "http:// or https://"),
        ("file:///etc/passwd", (), "http:// or https://"),
        ("https:///nohost", (), "no host"),
        ("https://user:pw@example.org/", ("93.184.216.34",), "user name or password"),
        ("http://127.0.0.1:8080/", ("127.0.0.1",), "non-public address 127.0.0.1"),
        ("http://localhost/", ("::1",), "non-public address ::1"),
        ("http://10.1.2.3/", ("10.1.2.3",), "non-public address 10.1.2.3"),
        ("http://192.168.0.5/", ("192.168.0.5",), "non-public"),
        ("http://169.254.169.254/latest/meta-data", ("169.254.169.254",), "non-public"),
        ("http://[::ffff:127.0.0.1]/", ("::ffff:127.0.0.1",), "non-public"),
        ("http://0.0.0.0/", ("0.0.0.0",), "non-public"),
        # a public name with one internal address (DNS rebinding) is refused too
        ("https://hooks.example.org/x", ("93.184.216.34", "10.0.0.7"), "10.0.0.7"),
        ("http://example.org:99999/", (), "not a valid URL"),
    ],
)
def test_unsafe_targets_are_refused_with_the_reason(url, addresses, reason):
    with pytest.raises(UnsafeTargetError, match=reason):
        check_webhook_url(url, resolver=_resolver(*addresses))


def test_public_targets_pass_and_private_ones_only_when_allowed():
    public = "https://hooks.example.org/canopywatch?x=1"
    assert check_webhook_url(public, resolver=_resolver("93.184.216.34")) == public
    local = "http://127.0.0.1:9999/hook"
    assert check_webhook_url(local, allow_private=True) == local
    with pytest.raises(UnsafeTargetError, match="http:// or https://"):
        check_webhook_url("gopher://127.0.0.1/", allow_private=True)


def test_signature_round_trip_and_tampering():
    secret = new_secret()
    body = b'{"event":"alert.new"}'
    header = sign(secret, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify(secret, body, header)
    assert not verify(secret, body + b" ", header)
    assert not verify(new_secret(), body, header)
    assert not verify(secret, body, None)
    assert not verify(secret, body, header.removeprefix("sha256="))


def _subscription(min_status: str) -> Subscription:
    return Subscription("sub-1", "area-1", "webhook", "http://x", min_status, "s")


@pytest.mark.parametrize(
    ("min_status", "status", "delivered", "expected"),
    [
        ("low", "low", set(), "alert.new"),
        ("high", "low", set(), None),
        ("low", "high", {"low"}, "alert.confirmed"),
        ("high", "high", set(), "alert.new"),
        ("high", "withdrawn", set(), None),
        ("high", "withdrawn", {"high"}, "alert.withdrawn"),
        ("low", "withdrawn", set(), "alert.withdrawn"),
        ("low", "plantation_harvest", set(), "alert.plantation_harvest"),
        ("low", "something-else", set(), None),
    ],
)
def test_which_events_a_subscription_gets(min_status, status, delivered, expected):
    assert event_name(_subscription(min_status), status, delivered) == expected


def test_backoff_doubles_and_is_capped():
    policy = DeliveryPolicy(backoff_s=0.5)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.delay(30) == 60.0
