"""``canopywatch subscribe`` and ``canopywatch subscriptions list|remove|deliveries|deliver|redeliver``.

    canopywatch subscribe --aoi tapajos-1 --webhook https://example.org/hook [--min-status high]
    canopywatch subscribe --aoi tapajos-1 --email analyst@example.org
    canopywatch subscriptions list [--aoi NAME] [--format table|csv|json] [--full-ids]
    canopywatch subscriptions remove SUBSCRIPTION_ID
    canopywatch subscriptions deliveries [--subscription ID] [--state dead_letter] [--format csv|json]
    canopywatch subscriptions deliver [--follow]     # consume canopywatch.alerts and deliver
    canopywatch subscriptions redeliver [--subscription ID] [--key ALERT_ID:STATUS]

A target that is not http(s), or resolves to a private or loopback address (unless
``CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE=true``), an unknown area or a bad status prints one line
and exits with code 2; an unreachable database or broker exits with 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from canopywatch.output import Column, add_listing_options, count_by, emit, with_examples
from canopywatch.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1
Handler = Callable[[argparse.Namespace, Settings], int]


def register(subparsers: Any) -> None:
    subscribe = subparsers.add_parser(
        "subscribe",
        **with_examples(
            "get an area's alerts by webhook (signed, retried, logged)",
            "canopywatch subscribe --aoi tapajos-1 --webhook https://example.org/hook",
            "canopywatch subscribe --aoi tapajos-1 --webhook https://example.org/hook "
            "--min-status high",
        ),
    )
    subscribe.add_argument("--aoi", required=True, help="a registered area (canopywatch aoi list)")
    where = subscribe.add_mutually_exclusive_group(required=True)
    where.add_argument("--webhook", help="http(s) URL that receives POSTs")
    where.add_argument("--email", help="an address mailed over SMTP (CANOPYWATCH_SMTP_HOST)")
    subscribe.add_argument(
        "--min-status",
        default="low",
        choices=("low", "high"),
        help="low: every alert; high: confirmed alerts only (and their withdrawal)",
    )
    subscribe.set_defaults(subscription_handler=_subscribe)

    listing = subparsers.add_parser(
        "subscriptions",
        **with_examples(
            "list, remove and inspect subscriptions",
            "canopywatch subscriptions list --aoi tapajos-1",
            "canopywatch subscriptions deliveries --state dead_letter --format json",
        ),
    )
    verbs = listing.add_subparsers(
        dest="subscriptions_command", required=True, parser_class=type(listing)
    )
    show = verbs.add_parser(
        "list",
        **with_examples(
            "active subscriptions",
            "canopywatch subscriptions list",
            "canopywatch subscriptions list --aoi tapajos-1 --format json",
        ),
    )
    show.add_argument("--aoi", help="only this area's")
    add_listing_options(show, default_name="subscriptions")
    show.set_defaults(subscription_handler=_list)
    remove = verbs.add_parser(
        "remove",
        **with_examples(
            "stop a subscription (its delivery log stays)",
            "canopywatch subscriptions remove SUBSCRIPTION_ID   (the whole id: list --full-ids)",
        ),
    )
    remove.add_argument(
        "subscription_id", help="the whole id, as `subscriptions list --full-ids` shows it"
    )
    remove.set_defaults(subscription_handler=_remove)
    log = verbs.add_parser(
        "deliveries",
        **with_examples(
            "the delivery log, newest first",
            "canopywatch subscriptions deliveries --limit 20",
            "canopywatch subscriptions deliveries --state dead_letter --format json",
        ),
    )
    log.add_argument("--subscription", help="only this subscription's")
    log.add_argument(
        "--state",
        choices=("pending", "delivered", "dead_letter"),
        help="only deliveries in this state",
    )
    log.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_listing_options(log, default_name="deliveries")
    log.set_defaults(subscription_handler=_deliveries)
    deliver = verbs.add_parser(
        "deliver",
        **with_examples(
            "consume the alerts topic and deliver (until drained, or --follow)",
            "canopywatch subscriptions deliver",
            "canopywatch subscriptions deliver --follow",
        ),
    )
    deliver.add_argument("--follow", action="store_true", help="keep consuming until stopped")
    deliver.set_defaults(subscription_handler=_deliver)
    redeliver = verbs.add_parser(
        "redeliver",
        **with_examples(
            "send dead-lettered deliveries again (same signed body, fresh retries)",
            "canopywatch subscriptions redeliver",
            "canopywatch subscriptions redeliver --subscription SUBSCRIPTION_ID",
            "canopywatch subscriptions redeliver --key ALERT_ID:high",
        ),
    )
    redeliver.add_argument("--subscription", help="only this subscription's dead letters")
    redeliver.add_argument(
        "--key", help="only this idempotency key (<alert id>:<status>, as deliveries shows it)"
    )
    redeliver.set_defaults(subscription_handler=_redeliver)


def dispatch(args: argparse.Namespace, settings: Settings) -> int | None:
    handler: Handler | None = getattr(args, "subscription_handler", None)
    if handler is None:
        return None
    from canopywatch.command_errors import run_verb
    from canopywatch.subscriptions.store import UnknownAoiError, UnknownSubscriptionError

    return run_verb(
        handler,
        args,
        settings,
        usage_errors=(ValueError, UnknownAoiError, UnknownSubscriptionError),
    )


def _connect(settings: Settings) -> Any:
    from canopywatch.catalog.schema import connect

    return connect(settings, connect_timeout=5)


def _subscribe(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.subscriptions import store
    from canopywatch.subscriptions.signing import new_secret
    from canopywatch.subscriptions.targets import check_email, check_webhook_url

    if args.email is not None:
        if not settings.smtp_host:
            raise ValueError("e-mail subscriptions need an SMTP server: set CANOPYWATCH_SMTP_HOST")
        channel, target = "email", check_email(args.email)
    else:
        channel = "webhook"
        target = check_webhook_url(args.webhook, allow_private=settings.webhook_allow_private)
    with _connect(settings) as conn:
        made = store.create(conn, aoi_id=args.aoi, target=target, min_status=args.min_status,
                            secret=new_secret(), channel=channel)  # fmt: skip
    print(f"subscribed {made.subscription_id}: {made.aoi_id} alerts (min status {made.min_status})")
    print(f"signing secret (shown once; verify X-Canopywatch-Signature with it): {made.secret}")
    return 0


SUBSCRIPTION_COLUMNS = (
    Column("subscription_id", "subscription", "id"),
    Column("aoi_id", "area"),
    Column("channel"),
    Column("target", "target", "key"),
    Column("min_status", "min status"),
    Column("created_at", "created (UTC)", "datetime"),
)
DELIVERY_COLUMNS = (
    Column("subscription_id", "subscription", "id"),
    Column("idempotency_key", in_table=False),
    Column("event"),
    Column("state"),
    Column("attempts"),
    Column("last_http_status", "HTTP"),
    Column("last_error", "last error", "key"),
    Column("updated_at", "updated (UTC)", "datetime"),
)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.subscriptions import store

    with _connect(settings) as conn:
        rows = [s.public() for s in store.list_subscriptions(conn, aoi_id=args.aoi)]
    emit(
        rows,
        SUBSCRIPTION_COLUMNS,
        args,
        title="alert subscriptions",
        noun="subscriptions",
        totals=(count_by("channel"), count_by("min_status", ("low", "high"))),
        id_column="subscription_id",
        geometry=lambda row: None,
    )
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.subscriptions import store

    with _connect(settings) as conn:
        store.remove(conn, args.subscription_id)
    print(f"removed {args.subscription_id}")
    return 0


def _deliveries(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.subscriptions import store

    if args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be at least 1")
    with _connect(settings) as conn:
        rows = [
            d.as_dict()
            for d in store.deliveries(
                conn, subscription_id=args.subscription, state=args.state, limit=args.limit
            )
        ]
    emit(
        rows,
        DELIVERY_COLUMNS,
        args,
        title="webhook deliveries (newest first)",
        noun="deliveries",
        totals=(count_by("state", ("delivered", "pending", "dead_letter")),),
        geometry=lambda row: None,
    )
    return 0


def _deliver(args: argparse.Namespace, settings: Settings) -> int:
    from canopywatch.subscriptions.consumer import run

    report = run(settings, once=not args.follow)
    print(json.dumps(report.as_dict()))
    return 0


def _redeliver(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from canopywatch.subscriptions.delivery import DeliveryPolicy
    from canopywatch.subscriptions.redelivery import redeliver

    with _connect(settings) as conn, httpx.Client() as client:
        report = redeliver(
            conn,
            client,
            DeliveryPolicy.from_settings(settings),
            subscription_id=args.subscription,
            key=args.key,
        )
    outcomes = ", ".join(f"{n} {state}" for state, n in sorted(report.outcomes.items()))
    skipped = [
        f"{n} {what}"
        for n, what in (
            (report.inactive, "of removed subscriptions"),
            (report.without_body, "without a stored body (dead-lettered before bodies were kept)"),
        )
        if n
    ]
    print(
        f"{report.found} dead letter(s) found"
        + (f"; redelivered: {outcomes}" if outcomes else "")
        + (f"; left: {', '.join(skipped)}" if skipped else "")
    )
    return 0
