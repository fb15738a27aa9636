"""Alert webhooks on the real PostGIS and Kafka: a flaky receiver still gets each
(alert, status) exactly once; SSRF targets are refused; failures dead-letter."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canopywatch import cli
from canopywatch.catalog.schema import connect
from canopywatch.geo import BBox
from canopywatch.settings import Settings
from canopywatch.storage import aois
from canopywatch.subscriptions import store
from canopywatch.subscriptions.consumer import run
from canopywatch.subscriptions.signing import verify
from tests.integration.conftest import topics_of_their_own

pytestmark = pytest.mark.service

AOI = "hook-area"
CLIENT_TIMEOUT_S = 0.5


@dataclass
class Receiver:
    """Per idempotency key: the first request answers 500, the second stalls past the
    client's timeout (then answers 503), the third and later answer 200."""

    url: str = ""
    always_fail: bool = False
    requests: Counter[str] = field(default_factory=Counter)
    accepted: list[dict] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    sent: dict[str, list[bytes]] = field(default_factory=dict)  # /flip: every body received
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def services() -> Iterator[Settings]:
    """PostgreSQL/PostGIS and Kafka (no object store needed), a schema and topics of our own."""
    from canopywatch.catalog.schema import drop_schema
    from canopywatch_dev.platform import kafka, stack

    base = Settings.from_env()
    stack.up(base, ["postgres", "kafka"])  # raises PlatformError: the test errors, never skips
    session_id = uuid.uuid4().hex[:8]
    settings = replace(base, pg_schema=f"cwtest_{session_id}", topic_prefix=f"cwtest-{session_id}")
    kafka.ensure_topics(settings)
    connect(settings).close()
    yield settings
    with connect(base) as conn:
        drop_schema(conn, settings.pg_schema)
    kafka.admin_client(settings).delete_topics(kafka.topic_names(settings), operation_timeout=30)


@pytest.fixture()
def platform(services: Settings) -> Iterator[Settings]:
    """Each test reads the alerts topic from the start and redelivers every dead letter it
    finds: it gets topics and a schema of its own, so what another test of this module
    published or dead-lettered (in any order) is never delivered to it."""
    from canopywatch.catalog.schema import drop_schema

    suffix = uuid.uuid4().hex[:6]
    with topics_of_their_own(services, suffix) as topics:
        settings = replace(topics, pg_schema=f"{services.pg_schema}_{suffix}")
        connect(settings).close()
        try:
            yield settings
        finally:
            with connect(services) as conn:
                drop_schema(conn, settings.pg_schema)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            key = f"{self.path}|{self.headers['Idempotency-Key']}"
            with state.lock:
                state.requests[key] += 1
                seen = state.requests[key]
            if self.path.endswith("/flip"):  # fails while always_fail, then accepts
                with state.lock:
                    state.sent.setdefault(key, []).append(body)
                    state.signatures[key] = self.headers["X-Canopywatch-Signature"]
                code = 500 if state.always_fail else 200
                if code == 200:
                    with state.lock:
                        state.accepted.append(json.loads(body))
            elif self.path.endswith("/ok"):
                code = 200
                with state.lock:
                    state.accepted.append(json.loads(body))
                    state.signatures[key] = self.headers["X-Canopywatch-Signature"]
                    state.bodies[key] = body
            elif self.path.endswith("/broken") or seen == 1:
                code = 500
            elif seen == 2:
                time.sleep(CLIENT_TIMEOUT_S * 3)
                code = 503
            else:
                code = 200
                with state.lock:
                    state.accepted.append(json.loads(body))
                    state.signatures[key] = self.headers["X-Canopywatch-Signature"]
                    state.bodies[key] = body
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings, allow_private: bool) -> None:
    monkeypatch.setenv("CANOPYWATCH_PG_SCHEMA", settings.pg_schema)
    monkeypatch.setenv("CANOPYWATCH_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE", "true" if allow_private else "false")


def _alert(alert_id: str, status: str, confirmed: bool) -> dict:
    return {
        "schema_version": 1,
        "message_type": "AlertPublished",
        "alert_id": alert_id,
        "aoi_id": AOI,
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[[[-55.4, -7.1], [-55.39, -7.1], [-55.39, -7.09], [-55.4, -7.1]]]],
        },
        "alert_date": "2024-03-02T13:45:00Z",
        "confirmed_date": "2024-03-22T13:45:00Z" if confirmed else None,
        "confidence": 0.93 if confirmed else 0.55,
        "confidence_level": "high" if confirmed else "low",
        "status": status,
        "area_ha": 1.25,
        "method": "harmonic",
        "model_version": "harmonic-v1",
    }


def _publish(settings: Settings, payloads: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for payload in payloads:
        producer.produce(settings.topic("alerts"), payload, key=b"k")
    assert producer.flush(30) == 0


def test_flaky_receiver_gets_each_alert_status_exactly_once(
    platform: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys
):
    settings = replace(
        platform,
        webhook_allow_private=True,
        webhook_timeout_s=CLIENT_TIMEOUT_S,
        webhook_backoff_s=0.05,
        webhook_max_attempts=5,
    )
    with connect(settings) as conn:
        aois.register(conn, aois.RegisteredAoi(AOI, AOI, BBox(-55.41, -7.11, -55.38, -7.08)))

    # SSRF: a loopback target is refused by the CLI (exit 2, one line) and nothing is stored
    _env(monkeypatch, settings, allow_private=False)
    capsys.readouterr()
    assert cli.main(["subscribe", "--aoi", AOI, "--webhook", f"{receiver.url}/all"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "non-public address 127.0.0.1" in err
    assert cli.main(["subscribe", "--aoi", AOI, "--webhook", "ftp://example.org/x"]) == 2
    with connect(settings) as conn:
        assert store.list_subscriptions(conn, aoi_id=AOI) == []

    _env(monkeypatch, settings, allow_private=True)
    capsys.readouterr()
    assert cli.main(["subscribe", "--aoi", "no-such-area", "--webhook", receiver.url]) == 2
    assert "area 'no-such-area' is not registered" in capsys.readouterr().err
    assert cli.main(["subscribe", "--aoi", AOI, "--webhook", f"{receiver.url}/all"]) == 0
    assert cli.main(["subscribe", "--aoi", AOI, "--webhook", f"{receiver.url}/high",
                     "--min-status", "high"]) == 0  # fmt: skip
    assert cli.main(["subscribe", "--aoi", AOI, "--webhook", f"{receiver.url}/broken"]) == 0
    with connect(settings) as conn:
        subs = {s.target.rsplit("/", 1)[1]: s for s in store.list_subscriptions(conn, aoi_id=AOI)}
    assert set(subs) == {"all", "high", "broken"}

    a_low = json.dumps(_alert("alert-a", "low", False)).encode()
    events = [
        a_low,
        a_low,  # a duplicate on the topic
        b"{not json",  # a poison message is skipped, not fatal
        json.dumps(_alert("alert-a", "high", True)).encode(),
        json.dumps(_alert("alert-b", "high", True)).encode(),
    ]
    _publish(settings, events)
    group = f"cwtest-subs-{uuid.uuid4().hex[:8]}"
    first = run(settings, once=True, group=group)
    assert first.messages == 5 and first.invalid == 1

    # the flaky receiver: every key was tried three times (500, timeout, 200) ...
    succeeded = Counter(f"{d['subscription_id']}|{d['idempotency_key']}" for d in receiver.accepted)
    expected = {
        f"{subs['all'].subscription_id}|alert-a:low",
        f"{subs['all'].subscription_id}|alert-a:high",
        f"{subs['all'].subscription_id}|alert-b:high",
        f"{subs['high'].subscription_id}|alert-a:high",
        f"{subs['high'].subscription_id}|alert-b:high",
    }
    # ... and exactly one success per (subscription, alert, status)
    assert set(succeeded) == expected and set(succeeded.values()) == {1}
    flaky = {k: v for k, v in receiver.requests.items() if not k.startswith("/broken")}
    assert sorted(flaky.values()) == [3] * 5
    events_by_key = {
        (d["subscription_id"], d["idempotency_key"]): d["event"] for d in receiver.accepted
    }
    assert events_by_key[(subs["all"].subscription_id, "alert-a:high")] == "alert.confirmed"
    assert events_by_key[(subs["high"].subscription_id, "alert-a:high")] == "alert.new"
    # signed with the subscription's secret (shown once by `subscribe`)
    for key, body in receiver.bodies.items():
        path = key.split("|", 1)[0].strip("/")
        assert verify(subs[path].secret, body, receiver.signatures[key])

    # the receiver that always fails: five attempts, then dead-lettered
    assert receiver.requests["/broken|alert-a:low"] == 5
    with connect(settings) as conn:
        dead = store.deliveries(conn, subscription_id=subs["broken"].subscription_id)
        mine = {subs["all"].subscription_id, subs["high"].subscription_id}
        delivered = [
            d for d in store.deliveries(conn, state="delivered") if d.subscription_id in mine
        ]
    assert {d.idempotency_key for d in dead} == {"alert-a:low", "alert-a:high", "alert-b:high"}
    assert {d.state for d in dead} == {"dead_letter"}
    assert {d.last_http_status for d in dead} == {500} and {d.attempts for d in dead} == {5}
    assert len(delivered) == 5 and {d.attempts for d in delivered} == {3}

    # a replay of the whole topic (another consumer group) delivers nothing again
    before = sum(receiver.requests.values())
    again = run(settings, once=True, group=f"{group}-replay")
    assert again.messages == 5
    assert sum(receiver.requests.values()) == before
    # (the duplicate counts twice; the min-status-high subscription skips the low alert)
    assert again.outcomes == {"delivered": 6, "dead_letter": 4, "skipped": 2}

    # the log is queryable from the CLI
    capsys.readouterr()
    assert (
        cli.main(["subscriptions", "deliveries", "--state", "dead_letter", "--format", "json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["state"] == "dead_letter" for r in rows)
    assert cli.main(["subscriptions", "remove", subs["broken"].subscription_id]) == 0
    assert cli.main(["subscriptions", "remove", subs["broken"].subscription_id]) == 2
    capsys.readouterr()
    assert cli.main(["subscriptions", "list", "--aoi", AOI, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["target"].rsplit("/", 1)[1] for r in listed} == {"all", "high"}
    assert all("secret" not in r for r in listed)


def test_dead_letters_are_redelivered_with_their_first_body(
    platform: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys
):
    area = "redo-area"
    settings = replace(platform, webhook_allow_private=True, webhook_backoff_s=0.05,
                       webhook_max_attempts=3)  # fmt: skip
    _env(monkeypatch, settings, allow_private=True)
    monkeypatch.setenv("CANOPYWATCH_WEBHOOK_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("CANOPYWATCH_WEBHOOK_BACKOFF_S", "0.05")
    with connect(settings) as conn:
        aois.register(conn, aois.RegisteredAoi(area, area, BBox(-55.41, -7.11, -55.38, -7.08)))
    receiver.always_fail = True
    capsys.readouterr()
    assert cli.main(["subscribe", "--aoi", area, "--webhook", f"{receiver.url}/flip"]) == 0
    with connect(settings) as conn:
        (sub,) = store.list_subscriptions(conn, aoi_id=area)
    _publish(settings, [json.dumps({**_alert(a, "low", False), "aoi_id": area}).encode()
                        for a in ("redo-x", "redo-y")])  # fmt: skip
    group = f"cwtest-redo-{uuid.uuid4().hex[:8]}"
    first = run(settings, once=True, group=group)
    assert first.outcomes.get("dead_letter") == 2
    keys = ["/flip|redo-x:low", "/flip|redo-y:low"]
    assert [len(receiver.sent[k]) for k in keys] == [3, 3]  # the policy's attempts, then dead

    def redeliver(*options: str) -> str:
        capsys.readouterr()
        assert cli.main(["subscriptions", "redeliver", *options]) == 0
        return capsys.readouterr().out.strip()

    # still failing: one key redelivered, a fresh round of attempts, dead-lettered again
    out = redeliver("--key", "redo-x:low", "--subscription", sub.subscription_id)
    assert out == "1 dead letter(s) found; redelivered: 1 dead_letter"
    assert [len(receiver.sent[k]) for k in keys] == [6, 3]
    # fixed: every dead letter of the subscription goes through, once
    receiver.always_fail = False
    out = redeliver("--subscription", sub.subscription_id)
    assert out == "2 dead letter(s) found; redelivered: 2 delivered"
    assert [len(receiver.sent[k]) for k in keys] == [7, 4]
    assert redeliver("--subscription", sub.subscription_id) == "0 dead letter(s) found"
    # (other tests' removed subscriptions may keep dead letters: left as they are)
    assert "redelivered" not in redeliver()
    # the same signed body every time: the receiver can tell it is one event
    for k in keys:
        assert len(set(receiver.sent[k])) == 1
        assert verify(sub.secret, receiver.sent[k][0], receiver.signatures[k])
    accepted = [d["idempotency_key"] for d in receiver.accepted if d["aoi_id"] == area]
    assert sorted(accepted) == ["redo-x:low", "redo-y:low"]
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, state, attempts, redeliveries FROM subscription_deliveries "
            "WHERE subscription_id = %s ORDER BY 1",
            (sub.subscription_id,),
        ).fetchall()
    assert rows == [("redo-x:low", "delivered", 1, 2), ("redo-y:low", "delivered", 1, 1)]
    # a replay of the topic sends nothing again
    again = run(settings, once=True, group=f"{group}-replay")
    assert again.messages >= 2  # (the module's topic holds other tests' alerts too)
    assert [len(receiver.sent[k]) for k in keys] == [7, 4]


def test_a_failed_task_notifies_every_subscription_once(
    platform: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    from types import SimpleNamespace

    from canopywatch.airflow.notify import SubscriptionsNotifier

    area = "fail-area"
    settings = replace(platform, webhook_allow_private=True)
    with connect(settings) as conn:
        aois.register(conn, aois.RegisteredAoi(area, area, BBox(-55.41, -7.11, -55.38, -7.08)))
        made = store.create(conn, aoi_id=area, target=f"{receiver.url}/ok", min_status="high",
                            secret="s3cret-for-the-test")  # fmt: skip
    params = settings.postgres_params()
    monkeypatch.setenv("AIRFLOW_CONN_CW_NOTIFY_TEST", json.dumps({
        "conn_type": "postgres", "host": params["host"], "port": params["port"],
        "login": params["user"], "password": params.get("password", ""), "schema": params["dbname"],
        "extra": {"options": f"-c search_path={settings.pg_schema},public"},
    }))  # fmt: skip
    monkeypatch.setenv("CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE", "true")
    context = {
        "ti": SimpleNamespace(dag_id="deforestation_detect_weekly", run_id="manual__2024-05-01",
                              task_id="detect", try_number=2, log_url="http://airflow/log"),
        "exception": RuntimeError("MinIO unreachable\ntraceback..."),
    }  # fmt: skip
    notifier = SubscriptionsNotifier(postgres_conn_id="cw_notify_test")
    notifier.notify(context)
    notifier.notify(context)  # a second callback for the same try notifies nobody again
    failures = [d for d in receiver.accepted if d["event"] == "pipeline.failed"]
    mine = [d for d in failures if d["subscription_id"] == made.subscription_id]
    assert len(mine) == 1
    assert mine[0]["failure"] == {
        "dag_id": "deforestation_detect_weekly", "run_id": "manual__2024-05-01",
        "task_id": "detect", "try_number": 2, "error": "RuntimeError: MinIO unreachable",
        "log_url": "http://airflow/log",
    }  # fmt: skip
    key = "/ok|deforestation_detect_weekly:manual__2024-05-01:detect:2"
    assert verify("s3cret-for-the-test", receiver.bodies[key], receiver.signatures[key])


def test_email_subscription_gets_each_alert_status_once_over_smtp(
    platform: Settings, monkeypatch: pytest.MonkeyPatch, capsys
):
    """aiosmtpd as the SMTP server: the first submission is answered 451 (try later), the
    retry is accepted; a replay of the topic sends nothing again."""
    import email.policy
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    received: list[bytes] = []
    answers = iter(["451 4.3.0 try again later"])

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            answer = next(answers, None)
            if answer is not None:
                return answer
            received.append(envelope.content)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        area = "mail-area"
        settings = replace(platform, smtp_host="127.0.0.1", smtp_port=port, webhook_backoff_s=0.05,
                           topic_prefix=f"{platform.topic_prefix}-mail")  # fmt: skip
        from canopywatch_dev.platform import kafka

        kafka.ensure_topics(settings)
        with connect(settings) as conn:
            aois.register(conn, aois.RegisteredAoi(area, area, BBox(-55.41, -7.11, -55.38, -7.08)))
        _env(monkeypatch, settings, allow_private=False)
        monkeypatch.setenv("CANOPYWATCH_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CANOPYWATCH_SMTP_PORT", str(port))
        monkeypatch.setenv("CANOPYWATCH_TOPIC_PREFIX", settings.topic_prefix)
        capsys.readouterr()
        assert cli.main(["subscribe", "--aoi", area, "--email", "x@y"]) == 2
        assert "not a plain address" in capsys.readouterr().err
        assert cli.main(["subscribe", "--aoi", area, "--email", "analyst@example.org"]) == 0
        with connect(settings) as conn:
            (sub,) = store.list_subscriptions(conn, aoi_id=area)
        assert sub.channel == "email"
        alert = _alert("alert-m", "high", True) | {"aoi_id": area}
        _publish(settings, [json.dumps(alert).encode()] * 2)
        report = run(settings, once=True, group=f"cwtest-mail-{uuid.uuid4().hex[:8]}")
        assert report.outcomes == {"delivered": 2}  # the duplicate finds it delivered
        assert len(received) == 1
        mail = message_from_bytes(received[0], policy=email.policy.default)
        assert mail["To"] == "analyst@example.org"
        assert mail["Idempotency-Key"] == "alert-m:high"
        assert mail["Subject"].startswith("canopywatch alert.new: 1.25 ha in mail-area")
        body = mail.get_payload(decode=True).decode()
        signed = next(line for line in body.splitlines() if line.startswith("{")).encode()
        assert verify(sub.secret, signed, mail["X-Canopywatch-Signature"])
        with connect(settings) as conn:
            (logged,) = store.deliveries(conn, subscription_id=sub.subscription_id)
        assert logged.state == "delivered" and logged.attempts == 2
        run(settings, once=True, group=f"cwtest-mail-{uuid.uuid4().hex[:8]}")
        assert len(received) == 1
        kafka.admin_client(settings).delete_topics(
            kafka.topic_names(settings), operation_timeout=30
        )
    finally:
        controller.stop()
