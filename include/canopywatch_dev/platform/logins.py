"""``python -m canopywatch_dev.platform login`` (``make login``): every console and its login.

Prints, for the local platform: the Airflow UI (admin user and password), the MinIO console
(root access and secret key), PostGIS (a DSN without the password, then the password on
its own line), the local CDSE endpoint (client id; the secret stays in the connection) and
the HTTP API with its admin key when the platform has one. This is the one command that
shows secrets, on request, on the terminal; nothing here is logged.
"""

from __future__ import annotations

from canopywatch.settings import Settings


def logins(settings: Settings) -> list[tuple[str, str, str]]:
    """``(console, address, login)`` rows."""
    from canopywatch_dev.platform import airflow_local, emulator, minio, postgres

    user, password = airflow_local.login(settings)
    access_key, secret_key = minio.credentials(settings)
    cdse_id, _ = emulator.credentials(settings)
    rows = [
        ("Airflow UI", airflow_local.api_url(settings), f"user {user}  password {password}"),
        (
            "MinIO console",
            f"http://127.0.0.1:{settings.minio_console_port}",
            f"access key {access_key}  secret key {secret_key}",
        ),
        (
            "PostGIS",
            f"postgresql://{settings.pg_user}@{settings.pg_host}:{settings.pg_port}/"
            f"{settings.pg_database}",
            f"password {postgres.password(settings)}  (psql: PGPASSWORD=... psql <DSN>)",
        ),
        (
            "CDSE endpoint (local)",
            emulator.base_url(settings),
            f"OAuth client id {cdse_id}  (secret: the cdse_default connection)",
        ),
    ]
    try:
        from canopywatch_dev.platform import api  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # a platform without the HTTP API
        return rows
    base = api.base_url(settings)
    rows.append(("HTTP API", f"{base}  (map: {base}/map)", f"api key {api.admin_key(settings)}"))
    return rows


def text(settings: Settings) -> str:
    """The rows as plain lines (never cut, whatever the terminal width)."""
    lines = []
    for console, address, login in logins(settings):
        lines.append(f"{console}: {address}\n    {login}")
    return "\n".join(lines)
