"""Every ``canopywatch`` verb fails in one line when its service is down or its input is bad.

The services are "down" by configuration only: the subprocesses get CANOPYWATCH_* settings
pointing at port 9 of the loopback (nothing listens there), so the shared platform keeps
running. An unreachable service exits with 1, bad input with 2 (README, "The canopywatch
command"); never a traceback, never more than one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from canopywatch.cli import build_parser

pytestmark = pytest.mark.slow

DEAD = {
    "CANOPYWATCH_PG_HOST": "127.0.0.1",
    "CANOPYWATCH_PG_PORT": "9",
    "CANOPYWATCH_PG_PASSWORD": "not-used",
    "CANOPYWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    "CANOPYWATCH_S3_ENDPOINT": "http://127.0.0.1:9",
    "CANOPYWATCH_S3_ACCESS_KEY": "k",
    "CANOPYWATCH_S3_SECRET_KEY": "s",
    "CANOPYWATCH_SH_BASE_URL": "https://127.0.0.1:9",
    "CANOPYWATCH_SH_TOKEN_URL": "https://127.0.0.1:9/token",
    "CANOPYWATCH_CDSE_CLIENT_ID": "id",
    "CANOPYWATCH_CDSE_CLIENT_SECRET": "secret",
    "CANOPYWATCH_SH_MAX_RETRIES": "1",
}
BOX = "-55.40,-7.10,-55.38,-7.08"
WINDOW = ("--start", "2024-01-01", "--end", "2024-01-31")
DOWN = 1
BAD = 2

# verb path -> [(argv, expected exit code)]: one case with its service down (where it has
# one) and one with bad input
CASES: dict[str, list[tuple[list[str], int]]] = {
    "aoi add": [
        (["aoi", "add", "--name", "t", "--bbox", BOX], DOWN),
        (["aoi", "add", "--name", "t", "--bbox", "nan,-7.1,-55.3,-7.0"], BAD),
    ],
    "aoi list": [(["aoi", "list"], DOWN)],
    "aoi deactivate": [(["aoi", "deactivate", "t"], DOWN)],
    "aoi activate": [(["aoi", "activate", "t"], DOWN)],
    "aoi remove": [(["aoi", "remove", "t"], DOWN)],
    "tiles": [(["tiles", "--bbox", "200,0,201,1"], BAD)],
    "download": [
        (["download", "--bbox", BOX, *WINDOW, "--out", "{tmp}/dl"], DOWN),
        (["download", "--bbox", BOX, "--start", "x", "--end", "y", "--out", "{tmp}/dl"], BAD),
    ],
    "scenes": [
        (["scenes", "--bbox", BOX, *WINDOW], DOWN),
        (["scenes", "--bbox", BOX, "--start", "2024-02-01", "--end", "2024-01-01"], BAD),
    ],
    "alerts": [
        (["alerts", "--bbox", BOX, *WINDOW], DOWN),
        (["alerts", "--bbox", "1,2", *WINDOW], BAD),
    ],
    "lake history": [(["lake", "history", "--table", "scenes_raw"], DOWN)],
    "lake read": [
        (["lake", "read", "--table", "alerts"], DOWN),
        (["lake", "read", "--table", "nope"], BAD),
    ],
    "detect": [(["detect", "--index-stack", "{tmp}/none", "--out", "{tmp}/a.geojson"], BAD)],
    "evaluate": [
        (["evaluate", "--alerts", "{tmp}/none.geojson", "--labels", "{tmp}/none.tif"], BAD)
    ],
    "subscribe": [
        (["subscribe", "--aoi", "t", "--webhook", "https://93.184.216.34/hook"], DOWN),
        (["subscribe", "--aoi", "t", "--webhook", "not a url"], BAD),
    ],
    "subscriptions list": [(["subscriptions", "list"], DOWN)],
    "subscriptions remove": [(["subscriptions", "remove", "1"], DOWN)],
    "subscriptions deliveries": [(["subscriptions", "deliveries"], DOWN)],
    "subscriptions deliver": [(["subscriptions", "deliver"], DOWN)],
    "plots check": [
        (["plots", "check", "{tmp}/plots.csv", "--out", "{tmp}/pc"], DOWN),
        (["plots", "check", "{tmp}/none.csv"], BAD),
    ],
    "sensors ingest": [
        (["sensors", "ingest", "{tmp}/sensors.csv", "--timeout", "3"], DOWN),
        (["sensors", "ingest", "{tmp}/none.csv"], BAD),
    ],
}


def verb_paths(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every leaf verb of the parser ("aoi add", "tiles", ...)."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(verb_paths(sub, f"{prefix} {name}".strip()))
    return paths or [prefix]


def test_every_verb_has_a_case():
    assert sorted(verb_paths(build_parser())) == sorted(CASES)


def _run(argv: list[str], tmp: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canopywatch", *(a.replace("{tmp}", tmp) for a in argv)],
        capture_output=True,
        text=True,
        env={**os.environ, **DEAD, "CANOPYWATCH_HOME": f"{tmp}/home"},
        cwd=tmp,
        timeout=180,
    )


def test_every_verb_fails_in_one_line(tmp_path):
    (tmp_path / "plots.csv").write_text("lat,lon,area_ha\n-7.1,-55.4,1\n")
    (tmp_path / "sensors.csv").write_text(
        "station_id,kind,observed_at,value\ns1,rain,2024-01-01T00:00:00Z,1\n"
    )
    cases = [(verb, argv, code) for verb, items in CASES.items() for argv, code in items]
    with ThreadPoolExecutor(max_workers=4) as pool:  # mostly waiting on refusals
        results = list(pool.map(lambda case: _run(case[1], str(tmp_path)), cases))
    problems = []
    for (_verb, argv, code), result in zip(cases, results, strict=True):
        lines = result.stderr.strip().splitlines()
        if result.returncode != code or len(lines) != 1 or not lines[0].startswith("canopywatch"):
            problems.append(f"{' '.join(argv)}: exit {result.returncode}, stderr {lines[-3:]}")
        elif "Traceback" in result.stderr:
            problems.append(f"{' '.join(argv)}: traceback")
    assert problems == []
