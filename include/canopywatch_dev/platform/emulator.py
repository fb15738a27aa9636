"""The local Copernicus Data Space endpoint (``canopywatch_dev.cdse_emulator``).

It serves simulated Sentinel-2 scenes described by a WORLD.json file
(``settings.emulator_world``; by default ``<home>/data/emulator/world.json``, written with
one small area when missing) on ``127.0.0.1:<emulator_port>``, health ``GET /health``.
Its OAuth client id and secret (passed through the environment) are ``settings.cdse_client_id/secret`` when both are set, else generated into
``secrets/emulator.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from canopywatch.settings import Settings
from canopywatch_dev.platform import process
from canopywatch_dev.platform.credentials import load_or_create, new_password
from canopywatch_dev.platform.paths import ensure_layout, service_data_dir

NAME = "emulator"
PROCESSES = (NAME,)
COMPOSE_SERVICES = ("cdse-emulator",)
HOST = "127.0.0.1"
START_TIMEOUT = 180.0
MODULE = "canopywatch_dev.cdse_emulator"

DEFAULT_WORLD = {
    "areas": [
        {
            "name": "demo-rondonia",
            "bbox": [-62.93, -9.43, -62.91, -9.41],
            "start": "2024-05-01",
            "end": "2024-09-30",
            "seed": 7,
        }
    ]
}

log = logging.getLogger("canopywatch_dev.platform")


def base_url(settings: Settings) -> str:
    """What ``CANOPYWATCH_SH_BASE_URL`` should be to use the emulator."""
    return f"http://{HOST}:{settings.emulator_port}"


def token_url(settings: Settings) -> str:
    """What ``CANOPYWATCH_SH_TOKEN_URL`` should be to use the emulator."""
    return base_url(settings) + "/auth/realms/CDSE/protocol/openid-connect/token"


def credentials(settings: Settings) -> tuple[str, str]:
    """``(client_id, client_secret)`` the emulator accepts."""
    if settings.cdse_client_id and settings.cdse_client_secret:
        return settings.cdse_client_id, settings.cdse_client_secret
    values = load_or_create(
        settings,
        NAME,
        lambda: {"client_id": "canopywatch-local", "client_secret": new_password()},
    )
    return values["client_id"], values["client_secret"]


def world_file(settings: Settings) -> Path:
    if settings.emulator_world:
        return Path(settings.emulator_world).expanduser().resolve()
    return service_data_dir(settings, NAME) / "world.json"


def address(settings: Settings) -> str:
    return f"{HOST}:{settings.emulator_port}"


def healthy(settings: Settings) -> bool:
    return process.http_ok(base_url(settings) + "/health")


@process.locked
def up(settings: Settings) -> None:
    def launch() -> int:
        world = _world(settings)
        client_id, client_secret = credentials(settings)
        argv = [
            sys.executable, "-m", MODULE,
            "--host", HOST,
            "--port", str(settings.emulator_port),
            "--world", str(world),
            "--client-id", client_id,
        ]  # fmt: skip
        # the secret goes through the environment, never the command line
        env = os.environ | {"CANOPYWATCH_CDSE_CLIENT_SECRET": client_secret}
        return process.start_daemon(settings, NAME, argv, env=env, cwd=world.parent)

    started = process.up_single(
        settings, NAME, address=address(settings), port_setting="CANOPYWATCH_EMULATOR_PORT",
        healthy=lambda: healthy(settings), launch=launch, timeout=START_TIMEOUT,
    )  # fmt: skip
    if started is not None:
        log.info("emulator: started on %s (pid %d, %.1f s)", address(settings), *started)


def _world(settings: Settings) -> Path:
    world = world_file(settings)
    if world.exists():
        return world
    if settings.emulator_world:
        raise process.PlatformError(
            f"emulator: world file {world} (CANOPYWATCH_EMULATOR_WORLD) does not exist"
        )
    ensure_layout(settings)
    world.parent.mkdir(parents=True, exist_ok=True)
    world.write_text(json.dumps(DEFAULT_WORLD, indent=2) + "\n", encoding="utf-8")
    log.info("emulator: wrote a default world with one small area to %s", world)
    return world


@process.locked
def down(settings: Settings) -> None:
    if process.stop(settings, NAME, timeout=20):
        log.info("emulator: stopped")
    else:
        log.info("emulator: not running")


def status(settings: Settings) -> list[process.ProcessStatus]:
    return [process.single_status(settings, NAME, address(settings), lambda: healthy(settings))]
