"""The demo summary is true and whole: the alert mart rebuilt after detection agrees with the
PostGIS alerts, alerts are split by status, long paths are never cut outside a terminal and
progress goes to the log line by line (real PostGIS and dbt)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from canopywatch.catalog.schema import connect, drop_schema, ensure_schema
from canopywatch.settings import Settings
from canopywatch_dev import demo

pytestmark = [pytest.mark.service, pytest.mark.slow]

AOI = demo.DEMO_CONF["aoi_name"]
ALERTS = [  # (status, confidence, ha, date)
    ("high", 0.93, 1.25, "2024-02-05"),
    ("high", 0.88, 0.75, "2024-02-06"),
    ("low", 0.55, 0.40, "2024-03-12"),
    ("withdrawn", 0.50, 0.30, "2024-03-13"),
]


@pytest.fixture
def schema_settings(monkeypatch: pytest.MonkeyPatch):
    from canopywatch_dev.platform import stack
    from canopywatch_dev.platform.environment import credential_env

    base = Settings.from_env()
    stack.up(base, ["postgres"])  # raises if PostgreSQL cannot start: never skipped
    monkeypatch.setattr("os.environ", {**__import__("os").environ, **credential_env(base)})
    name = f"cwtest_{uuid.uuid4().hex[:8]}"
    settings = replace(Settings.from_env(), pg_schema=name)
    monkeypatch.setenv("CANOPYWATCH_PG_SCHEMA", name)  # the dbt sources read it
    with connect(settings) as conn:
        ensure_schema(conn)
        for number, (status, confidence, ha, day) in enumerate(ALERTS):
            conn.execute(
                "INSERT INTO alerts (alert_id, aoi_id, alert_date, confidence, confidence_level, "
                "status, area_ha, method, model_version, geohash, geom) VALUES (%s, %s, %s, %s, "
                "%s, %s, %s, 'harmonic', 'harmonic-test', '6vjy', ST_Multi(ST_MakeEnvelope("
                "-55.4, -7.1, -55.39, -7.09, 4326)))",
                (
                    f"a{number:015d}",
                    AOI,
                    f"{day}T00:00:00Z",
                    confidence,
                    "high" if confidence >= 0.8 else "low",
                    status,
                    ha,
                ),
            )
        conn.commit()
    yield settings
    with connect(Settings.from_env()) as conn:
        for schema in (name, f"{name}_analytics_staging", f"{name}_analytics_marts"):
            drop_schema(conn, schema)


def test_alert_mart_rebuilt_after_detection_matches_postgis(schema_settings) -> None:
    label, text = demo.rebuild_alert_mart(schema_settings)
    assert label == "alert mart" and text.startswith("rebuilt after detection"), text
    assert demo.alert_status_rows(schema_settings) == [
        ("alerts by status", "2 high (2.00 ha), 1 low (0.40 ha), 1 withdrawn (0.30 ha)")
    ]
    (marts,) = demo.mart_rows(schema_settings)
    # low + high only, as the mart defines an active alert: 3 alerts, 2.40 ha
    assert f"mart_alert_summary_weekly for {AOI}: 3 alerts, 2.40 ha (low + high)" in marts[1]


def test_summary_outside_a_terminal_keeps_every_path_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "TERMINAL_OUTPUT", False)
    long_path = "/work/main/.platform/exports/alerts/" + "x" * 150 + "/demo_r0c0.gpkg"
    demo.print_summary(
        [("alert outputs", f"{long_path}\n{long_path[:-5]}.png"), ("run", "[bold]ok[/]")]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "demo run",
        f"alert outputs: {long_path}",
        f"    {long_path[:-5]}.png",
        "run: ok",
    ]


def test_progress_lines_name_each_change_once(capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    demo._progress_lines("dag", [("a", "", "running"), ("b", "area/r0c0", "queued")], seen, 3)
    demo._progress_lines("dag", [("a", "", "running"), ("b", "area/r0c0", "success")], seen, 9)
    assert capsys.readouterr().out.splitlines() == [
        "[     3 s] dag a: running",
        "[     9 s] dag b[area/r0c0]: success",
    ]
