"""Airflow on the local platform: idempotent start, restart when its configuration changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from canopywatch.settings import Settings
from canopywatch_dev.platform import airflow_local, process, stack

pytestmark = [pytest.mark.service, pytest.mark.slow]


def pids(settings: Settings) -> dict[str, int | None]:
    return {p: process.read_pid(settings, p) for p in airflow_local.PROCESSES}


def test_up_is_idempotent_and_restarts_on_new_configuration():
    settings = Settings.from_env()
    stack.up(settings, ["airflow"])
    first = pids(settings)
    assert all(first.values()) and airflow_local.healthy(settings)
    stack.up(settings, ["airflow"])
    assert pids(settings) == first  # nothing restarted

    changed = replace(
        settings, sh_base_url="http://127.0.0.1:1", sh_token_url="http://127.0.0.1:1/token"
    )
    try:
        stack.up(changed, ["airflow"])
        second = pids(changed)
        assert all(second.values()) and airflow_local.healthy(changed)
        assert set(second.values()).isdisjoint(first.values())
    finally:
        stack.up(settings, ["airflow"])  # back to the configuration it had
    assert airflow_local.healthy(settings)
