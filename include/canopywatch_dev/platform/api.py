"""The HTTP API (``canopywatch.api``) as a local service on ``127.0.0.1:<api_port>``
(default 18600), health ``GET /health``.

Its admin key is ``settings.api_key`` (``CANOPYWATCH_API_KEY``) when set, else generated on
first start into ``secrets/api_key`` (0600); the API stores it hashed in PostGIS at start.
It goes to the process through the environment, never the command line or a log.
"""

from __future__ import annotations

import logging
import os
import sys

from canopywatch.api.keys import new_key
from canopywatch.settings import PREFIX, Settings
from canopywatch_dev.platform import process
from canopywatch_dev.platform.credentials import write_private
from canopywatch_dev.platform.environment import credential_env
from canopywatch_dev.platform.paths import ensure_layout, secrets_dir

NAME = "api"
PROCESSES = (NAME,)
COMPOSE_SERVICES = ("api",)
HOST = "127.0.0.1"
START_TIMEOUT = 120.0
MODULE = "canopywatch.api"

log = logging.getLogger("canopywatch_dev.platform")


def base_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.api_port}"


def address(settings: Settings) -> str:
    return f"{HOST}:{settings.api_port}"


def admin_key(settings: Settings) -> str:
    """The admin API key: ``CANOPYWATCH_API_KEY``, else ``secrets/api_key`` (made once)."""
    if settings.api_key:
        return settings.api_key
    path = secrets_dir(settings) / "api_key"
    if path.exists():
        path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    ensure_layout(settings)
    key = new_key()
    write_private(path, key + "\n")
    return key


def healthy(settings: Settings) -> bool:
    return process.http_ok(base_url(settings) + "/health")


@process.locked
def up(settings: Settings) -> None:
    def launch() -> int:
        argv = [sys.executable, "-m", MODULE, "--host", HOST, "--port", str(settings.api_port)]
        env = os.environ | credential_env(settings) | {f"{PREFIX}API_KEY": admin_key(settings)}
        return process.start_daemon(settings, NAME, argv, env=env)

    started = process.up_single(
        settings, NAME, address=address(settings), port_setting="CANOPYWATCH_API_PORT",
        healthy=lambda: healthy(settings), launch=launch, timeout=START_TIMEOUT,
    )  # fmt: skip
    if started is not None:
        pid, took = started
        log.info("api: started on %s, map %s/map (pid %d, %.1f s)", base_url(settings),
                 base_url(settings), pid, took)  # fmt: skip


@process.locked
def down(settings: Settings) -> None:
    if process.stop(settings, NAME, timeout=20):
        log.info("api: stopped")
    else:
        log.info("api: not running")


def status(settings: Settings) -> list[process.ProcessStatus]:
    return [process.single_status(settings, NAME, base_url(settings), lambda: healthy(settings))]
