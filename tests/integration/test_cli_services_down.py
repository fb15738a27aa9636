"""Every ``canopywatch`` verb fails in one line with exit 2 when its services are down or its
input is bad: never a traceback, never a second line on stderr.

The services are "down" by configuration only: the subprocesses get CANOPYWATCH_* settings
pointing at port 9 of the loopback (nothing listens there), so the running platform is never
stopped. The verbs are enumerated from the parser (``canopywatch.cli.build_parser``): each
one runs once with its required arguments filled from ``SAMPLES`` and every service
unreachable, so a new verb is covered without a line here (a required argument without a
sample fails the test, naming it). ``BAD_INPUT`` adds a bad-input case per verb.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from canopywatch.cli import build_parser

pytestmark = pytest.mark.slow  # no service: they are all unreachable on purpose

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
FAILED = 2

# a value for each required argument (by argparse dest) a verb may have
SAMPLES: dict[str, str] = {
    "name": "t",
    "bbox": BOX,
    "start": "2024-01-01",
    "end": "2024-01-31",
    "out": "{tmp}/out",
    "table": "scenes_raw",
    "aoi": "t",
    "webhook": "https://93.184.216.34/hook",
    "subscription_id": "1",
    "file": "{tmp}/plots.csv",
    "source": "{tmp}/sensors.csv",
    "index_stack": "{tmp}/none",
}
# verbs that need no service: with valid samples they succeed even with everything down
OFFLINE_OK = {"tiles"}
# extra options a verb's services-down case needs to reach its service quickly
EXTRA: dict[str, list[str]] = {
    "sensors ingest": ["--timeout", "3"],
    "evaluate": ["--alerts", "{tmp}/none.geojson", "--labels", "{tmp}/none.tif"],
}

BAD_INPUT: dict[str, list[str]] = {
    "aoi add": ["aoi", "add", "--name", "t", "--bbox", "nan,-7.1,-55.3,-7.0"],
    "tiles": ["tiles", "--bbox", "200,0,201,1"],
    "download": ["download", "--bbox", BOX, "--start", "x", "--end", "y", "--out", "{tmp}/dl"],
    "scenes": ["scenes", "--bbox", BOX, "--start", "2024-02-01", "--end", "2024-01-01"],
    "alerts": ["alerts", "--bbox", "1,2", *WINDOW],
    "lake read": ["lake", "read", "--table", "nope"],
    "subscribe": ["subscribe", "--aoi", "t", "--webhook", "not a url"],
    "plots check": ["plots", "check", "{tmp}/none.csv"],
    "sensors ingest": ["sensors", "ingest", "{tmp}/none.csv"],
}


def verbs(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> dict[str, argparse.ArgumentParser]:
    """Every leaf verb of the parser ("aoi add", "tiles", ...) and its parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(verbs(sub, (*prefix, name)))
    return found or {" ".join(prefix): parser}


def services_down_argv(verb: str, parser: argparse.ArgumentParser) -> list[str]:
    """The verb with every required argument (and one option of each required group)."""
    positional: list[str] = []
    options: list[str] = []
    chosen = [g._group_actions[0] for g in parser._mutually_exclusive_groups if g.required]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not (action.required or not action.option_strings or action in chosen):
            continue
        if action.dest not in SAMPLES:
            raise AssertionError(f"{verb}: no sample value for its argument {action.dest!r}")
        if action.option_strings:
            options += [action.option_strings[0], SAMPLES[action.dest]]
        else:
            positional.append(SAMPLES[action.dest])
    return [*verb.split(), *positional, *options, *EXTRA.get(verb, [])]


def _run(argv: list[str], tmp: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canopywatch", *(a.replace("{tmp}", tmp) for a in argv)],
        capture_output=True,
        text=True,
        env={**os.environ, **DEAD, "CANOPYWATCH_HOME": f"{tmp}/home"},
        cwd=tmp,
        timeout=180,
    )


def test_bad_input_cases_name_real_verbs():
    assert set(BAD_INPUT) <= set(verbs(build_parser()))


def test_every_verb_fails_in_one_line_with_exit_2(tmp_path):
    (tmp_path / "plots.csv").write_text("lat,lon,area_ha\n-7.1,-55.4,1\n")
    (tmp_path / "sensors.csv").write_text(
        "station_id,kind,observed_at,value\ns1,rain,2024-01-01T00:00:00Z,1\n"
    )
    cases = [
        (argv, 0 if verb in OFFLINE_OK else FAILED)
        for verb, parser in verbs(build_parser()).items()
        for argv in [services_down_argv(verb, parser)]
    ] + [(argv, FAILED) for argv in BAD_INPUT.values()]
    assert len(cases) >= 29
    with ThreadPoolExecutor(max_workers=4) as pool:  # mostly waiting on refusals
        results = list(pool.map(lambda case: _run(case[0], str(tmp_path)), cases))
    problems = []
    for (argv, code), result in zip(cases, results, strict=True):
        lines = result.stderr.strip().splitlines()
        if "Traceback" in result.stderr:
            problems.append(f"{' '.join(argv)}: traceback")
        elif result.returncode != code or (
            code and (len(lines) != 1 or not lines[0].startswith("canopywatch"))
        ):
            problems.append(f"{' '.join(argv)}: exit {result.returncode}, stderr {lines[-3:]}")
    assert problems == []
