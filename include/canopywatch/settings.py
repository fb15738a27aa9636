"""Settings read from the environment, every name prefixed ``CANOPYWATCH_``.

One frozen dataclass; ``Settings.from_env()`` is the only place that reads the
environment. It carries every credential the product uses (``CANOPYWATCH_PG_PASSWORD``,
``CANOPYWATCH_S3_ACCESS_KEY`` / ``CANOPYWATCH_S3_SECRET_KEY``, ``CANOPYWATCH_CDSE_CLIENT_ID``
/ ``CANOPYWATCH_CDSE_CLIENT_SECRET``); inside Airflow tasks the Airflow connections carry
them instead. Defaults describe the local platform started by ``make platform-up``
(services on loopback, state under ``CANOPYWATCH_HOME``; the dev kit exports its generated
credentials as these variables) and the real Copernicus Data Space URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "CANOPYWATCH_"
REPO_ROOT = Path(__file__).resolve().parents[2]

CDSE_SH_BASE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"  # noqa: S105
)


class SettingsError(ValueError):
    """A CANOPYWATCH_* variable holds a value that cannot be used."""


def _default_home() -> Path:
    return REPO_ROOT / ".platform"


@dataclass(frozen=True)
class Settings:
    # where the local platform keeps data, logs, credentials and pid files
    home: Path = field(default_factory=_default_home)
    # PostgreSQL/PostGIS
    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "canopywatch"
    pg_password: str = field(default="", repr=False)
    # a read-only login for the API's OGC features (empty: pg_user / pg_password)
    pg_read_user: str = ""
    pg_read_password: str = field(default="", repr=False)
    pg_database: str = "canopywatch"
    pg_airflow_database: str = "airflow"
    # schema of the catalog tables (tests use one of their own)
    pg_schema: str = "public"
    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_controller_port: int = 19093
    topic_prefix: str = "canopywatch"
    # MinIO / S3
    s3_endpoint: str = "http://127.0.0.1:19000"
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    minio_console_port: int = 19001
    bucket: str = "canopywatch"
    exports_bucket: str = "canopywatch-exports"
    # Airflow
    airflow_port: int = 18080
    # Copernicus Data Space (Sentinel Hub APIs). Defaults are the real service.
    sh_base_url: str = CDSE_SH_BASE_URL
    sh_token_url: str = CDSE_TOKEN_URL
    cdse_client_id: str = ""
    cdse_client_secret: str = field(default="", repr=False)
    # local CDSE endpoint (demo and tests only)
    emulator_port: int = 18500
    # its WORLD.json; empty: <home>/data/emulator/world.json (a small default is written)
    emulator_world: str = ""
    # product
    geohash_precision: int = 5
    max_request_px: int = 2500
    resolution_m: float = 10.0
    max_aoi_km2: float = 2500.0
    download_concurrency: int = 4
    sh_max_retries: int = 5
    # Copernicus processing units one monitoring run may spend (estimated before any is
    # spent); 0 = no limit. Default: the free tier's month (10,000 PU)
    pu_budget: float = 10_000.0
    # trained change-detection models (ml/models/<name>/, written by `dvc repro` in ml/)
    model_dir: Path = field(default_factory=lambda: REPO_ROOT / "ml" / "models")
    # the DVC training project (dvc.yaml, params.yaml) deforestation_model_training reproduces
    ml_project: Path = field(default_factory=lambda: REPO_ROOT / "ml")
    # alert subscriptions: webhook targets on private/loopback addresses are refused unless true
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 5
    webhook_timeout_s: float = 5.0
    webhook_backoff_s: float = 0.5
    # e-mail subscriptions: the SMTP server (empty host: e-mail subscriptions are refused)
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    smtp_sender: str = "canopywatch@localhost"
    # EUDR plot checks: forest baseline rasters (paths or globs, comma-separated); empty:
    # <home>/exports/forest_baseline/*.tif
    forest_baseline: str = ""
    # HTTP API (canopywatch.api): reads need a key unless api_public_read; api_key, when set,
    # is stored (hashed) as an admin key at start; requests per minute per key; body limit
    api_port: int = 18600
    api_public_read: bool = False
    api_key: str = field(default="", repr=False)
    api_rate_limit: int = 600
    api_max_body_mb: float = 20.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        return cls(**values)

    # derived locations ---------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def postgres_params(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (the password only when one is set:
        without it libpq falls back to ``PGPASSWORD`` / ``~/.pgpass``)."""
        params: dict[str, Any] = {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": self.pg_user,
            "dbname": database or self.pg_database,
        }
        if self.pg_password:
            params["password"] = self.pg_password
        return params

    def topic(self, name: str) -> str:
        """Full topic name, e.g. ``topic("download-requests")``."""
        return f"{self.topic_prefix}.{name}"


def _convert(name: str, type_name: Any, raw: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw).expanduser().resolve()
        if kind == "bool":
            if raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.strip().lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
