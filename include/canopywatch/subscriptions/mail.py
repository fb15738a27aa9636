"""E-mail deliveries over SMTP: the same signed JSON body, with a readable summary.

The message carries the signature, event and idempotency key as headers
(``X-Canopywatch-Signature``, ``X-Canopywatch-Event``, ``Idempotency-Key``) and a
``Message-ID`` derived from the key, so mail systems that dedupe on it see one message per
(alert, status). SMTP 4xx answers, timeouts and connection errors are retried, 5xx answers
are not.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from canopywatch.settings import Settings
from canopywatch.subscriptions.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "canopywatch@localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        if not settings.smtp_host:
            return None
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_user,
                   settings.smtp_password, settings.smtp_starttls, settings.smtp_sender)  # fmt: skip


def _summary(document: dict[str, object]) -> str:
    alert = document.get("alert")
    if isinstance(alert, dict):
        return (
            f"{document.get('event')}: {alert.get('area_ha')} ha in {alert.get('aoi_id')}, "
            f"status {alert.get('status')}, confidence {alert.get('confidence')}, "
            f"alert date {str(alert.get('alert_date'))[:10]} (alert {alert.get('alert_id')})"
        )
    failure = document.get("failure")
    if isinstance(failure, dict):
        return f"{document.get('event')}: {failure.get('dag_id')} {failure.get('run_id')} " \
            f"task {failure.get('task_id')}: {failure.get('error')}"  # fmt: skip
    return str(document.get("event"))


def message_for(
    config: SmtpConfig, to: str, event: str, key: str, body: bytes, signature: str
) -> EmailMessage:
    document = json.loads(body)
    summary = _summary(document)
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = f"canopywatch {summary}"[:200]
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@canopywatch>"
    message[SIGNATURE_HEADER] = signature
    message[EVENT_HEADER] = event
    message[IDEMPOTENCY_HEADER] = key
    message.set_content(
        f"{summary}\n\nThe event as JSON (signed: HMAC-SHA256 of it in {SIGNATURE_HEADER}):\n\n"
        + body.decode()
        + "\n\nContains modified Copernicus Sentinel data.\n"
    )
    return message


def send(
    config: SmtpConfig, message: EmailMessage, timeout_s: float
) -> tuple[bool, bool, str | None]:
    """(ok, retry, error) of one SMTP submission."""
    try:
        with smtplib.SMTP(config.host, config.port, timeout=timeout_s) as smtp:
            if config.starttls:
                smtp.starttls()
            if config.user:
                smtp.login(config.user, config.password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        return False, 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code}"
    except smtplib.SMTPRecipientsRefused:
        return False, False, "SMTP recipient refused"
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        return False, True, f"SMTP {type(exc).__name__}"
    return True, False, None
