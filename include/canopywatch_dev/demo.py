"""``make demo``: the platform, the local CDSE endpoint over a simulated area, one monitoring run.

Brings every service up (idempotently), points the ``cdse_default`` connection at
the local Copernicus endpoint, triggers ``deforestation_monitor`` for the demo bbox
and a year of dates through Airflow's REST API, follows it (and the curation and
detection runs) until it ends, rebuilds the alert mart after detection so every count
agrees, and prints what it found, downloaded and where, with every console's login.
The runs stay visible in the Airflow UI.

On a terminal the progress is a live table and the summary a table whose long values
(paths, keys) fold onto more lines; elsewhere (a log file, CI) each task state change is
one timestamped line and the summary is plain ``label: value`` lines: nothing is cut.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from canopywatch.settings import REPO_ROOT, Settings

DAG_ID = "deforestation_monitor"
DETECT_DAG_ID = "deforestation_detect_weekly"
CURATION_DAG_ID = "scene_curation"  # triggered by the scenes_raw Asset the monitor updates
SENSOR_DAG_ID = "sensor_ingest"
SHOWN_EVIDENCE = 5  # alerts listed with their evidence in the summary
DEMO_BBOX = [-55.40, -7.10, -55.35, -7.05]
DEMO_AREA = {
    "name": "demo-novo-progresso",
    # a simulated patch of Amazon forest, pasture and clearings (~5.5 x 5.5 km)
    "bbox": DEMO_BBOX,
    "start": "2023-06-01",
    "end": "2024-07-31",
    "seed": 7,
}
DEMO_CONF = {
    "bbox": DEMO_BBOX,
    "start": "2023-07-01",
    "end": "2024-06-30",
    "max_cloud": 60,
    "function": "s2l2a_bands",
    "aoi_name": "demo-novo-progresso",
}
TERMINAL = {"success", "failed"}
DBT_DIR = REPO_ROOT / "dbt"

console = Console()
TERMINAL_OUTPUT = console.is_terminal


@dataclass(frozen=True)
class AirflowApi:
    base_url: str
    token: str

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> AirflowApi:
        reply = _http(
            "POST", f"{base_url}/auth/token", {"username": username, "password": password}
        )
        return cls(base_url, str(reply["access_token"]))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return _http(method, f"{self.base_url}/api/v2{path}", body, self.token)


def _http(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{method} {url} -> HTTP {exc.code}: {detail}") from None


def configure_environment() -> Settings:
    """Point the platform at the local CDSE endpoint serving the demo area."""
    from canopywatch_dev.platform import emulator

    settings = Settings.from_env()
    if not os.environ.get("CANOPYWATCH_SH_BASE_URL"):
        os.environ["CANOPYWATCH_SH_BASE_URL"] = emulator.base_url(settings)
        os.environ["CANOPYWATCH_SH_TOKEN_URL"] = emulator.token_url(settings)
    from canopywatch_dev.platform.environment import credential_env

    os.environ.update(credential_env(Settings.from_env()))
    settings = Settings.from_env()
    world = emulator.world_file(settings)
    document = {"areas": [DEMO_AREA]}
    world.parent.mkdir(parents=True, exist_ok=True)
    if not world.exists() or json.loads(world.read_text()) != document:
        world.write_text(json.dumps(document, indent=2) + "\n")
        emulator.down(settings)  # restarted with the demo world by platform up
    return settings


def wait_for_run(
    api: AirflowApi, run_id: str, dag_id: str = DAG_ID, timeout_s: float = 1800
) -> dict[str, Any]:
    """Follow a run to its end: a live table on a terminal, else one line per state change."""
    started = time.monotonic()
    seen: dict[tuple[str, str], str] = {}
    live = Live(console=console, refresh_per_second=2, transient=True) if TERMINAL_OUTPUT else None
    if live is not None:
        live.start()
    try:
        while True:
            run = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            tis = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
            states = []
            for ti in sorted(tis["task_instances"], key=lambda t: (t["task_id"], t["map_index"])):
                label = ti.get("rendered_map_index") or (
                    "" if ti["map_index"] < 0 else ti["map_index"]
                )
                states.append((ti["task_id"], str(label), str(ti["state"])))
            if live is not None:
                live.update(_progress_table(f"{dag_id} {run_id}: {run['state']}", states))
            else:
                _progress_lines(dag_id, states, seen, time.monotonic() - started)
            if run["state"] in TERMINAL:
                if live is None:
                    print(f"{dag_id} {run_id}: {run['state']}", flush=True)
                return dict(run)
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"run {run_id} did not finish within {timeout_s:.0f} s")
            time.sleep(3)
    finally:
        if live is not None:
            live.stop()


def _progress_table(title: str, states: Sequence[tuple[str, str, str]]) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("task", "map index", "state"):
        table.add_column(column, overflow="fold")
    for row in states:
        table.add_row(*row)
    return table


def _progress_lines(
    dag_id: str,
    states: Sequence[tuple[str, str, str]],
    seen: dict[tuple[str, str], str],
    elapsed_s: float,
) -> None:
    """One line per task whose state changed since the last poll (for logs and CI)."""
    for task_id, label, state in states:
        if seen.get((task_id, label)) != state:
            seen[(task_id, label)] = state
            if state not in {"None", "scheduled", "queued"}:
                name = f"{task_id}[{label}]" if label else task_id
                print(f"[{elapsed_s:6.0f} s] {dag_id} {name}: {state}", flush=True)


def task_result(api: AirflowApi, run_id: str, task_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
    """A task's return value (XCom), or {} with a warning when it has none."""
    try:
        entry = api.call(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        )
    except RuntimeError as exc:
        console.print(f"[yellow]no result from {task_id}: {exc}")
        return {}
    value = entry.get("value")
    return dict(json.loads(value) if isinstance(value, str) else value or {})


def lake_and_catalog_rows(settings: Settings) -> list[tuple[str, str]]:
    """Rows for the summary: Delta tables with versions, PostGIS rows, one bbox + time query."""
    from canopywatch.catalog import queries
    from canopywatch.catalog.schema import connect
    from canopywatch.lake.tables import TABLES, lake_from_settings, open_table

    lake = lake_from_settings(settings)
    lines = []
    for name, spec in TABLES.items():
        table = open_table(lake, spec, create=False) if name == "scenes_raw" else None
        if table is not None:
            rows = table.to_pyarrow_table(columns=["scene_id"]).num_rows
            lines.append(
                ("Delta scenes_raw", f"{rows} rows, version {table.version()} ({lake.uri(spec)})")
            )
    query = queries.Query.parse(DEMO_BBOX, "2024-01-01", "2024-03-31")
    with connect(settings) as conn:
        total = conn.execute("SELECT count(*) FROM scenes").fetchone()
        found = queries.scenes_in(conn, query)
    lines.append(
        ("PostGIS scenes", f"{total[0] if total else 0} rows in {settings.pg_database}.scenes")
    )
    lines.append(
        (
            "bbox + time query",
            f"{len(found)} scenes in {DEMO_BBOX} during 2024-01-01..2024-03-31 "
            f"(canopywatch scenes --bbox={','.join(str(v) for v in DEMO_BBOX)} "
            "--start 2024-01-01 --end 2024-03-31)",
        )
    )
    return lines


def trigger_and_wait(
    api: AirflowApi, dag_id: str, conf: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    run_id = "demo__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    console.print(f"triggering {dag_id} with {json.dumps(conf)}")
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    api.call("POST", f"/dags/{dag_id}/dagRuns", body)
    return run_id, wait_for_run(api, run_id, dag_id)


def follow_curation(api: AirflowApi, settings: Settings, monitor_run_id: str) -> dict[str, Any]:
    """Wait for the scene_curation run the monitor's new scenes triggered; count COGs and marts."""
    monitor = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{monitor_run_id}")
    console.print(
        "waiting for scene_curation (Spark COG conversion, dbt marts), asset-triggered..."
    )
    deadline = time.monotonic() + 300
    run_id = None
    while run_id is None and time.monotonic() < deadline:
        runs = api.call("GET", f"/dags/{CURATION_DAG_ID}/dagRuns?order_by=-run_after&limit=5")
        fresh = [r for r in runs["dag_runs"] if r["run_after"] >= monitor["start_date"]]
        run_id = fresh[0]["dag_run_id"] if fresh else None
        time.sleep(3)
    if run_id is None:
        return {"state": "missing", "rows": [("COGs", "[yellow]scene_curation was not triggered")]}
    run = wait_for_run(api, run_id, CURATION_DAG_ID)
    rows = [("curation run", f"{CURATION_DAG_ID} {run_id}: [bold]{run['state']}[/]")]
    rows.extend(cog_rows(settings))
    return {"state": run["state"], "rows": rows}


def cog_rows(settings: Settings) -> list[tuple[str, str]]:
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn:
        cogs = conn.execute("SELECT count(*) FROM scenes WHERE cog_key IS NOT NULL").fetchone()
    example = conn_example_cog(settings)
    return [
        (
            "COGs",
            f"{cogs[0] if cogs else 0} scenes with a validated cog.tif beside raw.tif{example}",
        )
    ]


def dbt_schema(settings: Settings) -> str:
    """The profile schema of the Airflow dbt tasks (models land in ``<it>_marts``)."""
    return "analytics" if settings.pg_schema == "public" else f"{settings.pg_schema}_analytics"


def mart_rows(settings: Settings) -> list[tuple[str, str]]:
    """Row counts of every dbt mart (read after the alert mart was rebuilt)."""
    from canopywatch.catalog.schema import connect

    marts_schema = dbt_schema(settings) + "_marts"
    with connect(settings) as conn:
        marts = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s ORDER BY table_name",
            (marts_schema,),
        ).fetchall()
        counts = []
        for (name,) in marts:
            row = conn.execute(f'SELECT count(*) FROM {marts_schema}."{name}"').fetchone()
            counts.append(f"{marts_schema}.{name}: {row[0] if row else 0} rows")
        weekly = conn.execute(
            f"SELECT coalesce(sum(alerts), 0), coalesce(sum(area_ha), 0) "
            f"FROM {marts_schema}.mart_alert_summary_weekly WHERE aoi_id = %s",
            (DEMO_CONF["aoi_name"],),
        ).fetchone()
    if weekly is not None and marts:
        counts.append(
            f"  mart_alert_summary_weekly for {DEMO_CONF['aoi_name']}: {weekly[0]} alerts, "
            f"{float(weekly[1]):.2f} ha (low + high)"
        )
    return [("dbt marts", "\n".join(counts) or "none")]


def rebuild_alert_mart(settings: Settings) -> tuple[str, str]:
    """dbt build of the alert models after detection (the curation run built the marts before
    there were alerts), with the same profile schema as the Airflow dbt tasks."""
    from canopywatch_dev.platform import postgres

    dbt = Path(sys.executable).with_name("dbt")
    target = settings.home / "dbt" / "demo-target"
    env = {
        **os.environ,
        "CANOPYWATCH_PG_PASSWORD": postgres.password(settings),
        "CANOPYWATCH_DBT_SCHEMA": dbt_schema(settings),
    }
    argv = [
        str(dbt), "--no-use-colors", "build", "--project-dir", str(DBT_DIR),
        "--profiles-dir", str(DBT_DIR),
        "--target-path", str(target), "--log-path", str(target / "logs"),
        "--select", "+mart_alert_summary_weekly",
    ]  # fmt: skip
    console.print(
        "rebuilding the alert mart after detection (dbt build +mart_alert_summary_weekly)..."
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stdout.strip().splitlines()
        errors = [line.strip() for line in lines if "Error in" in line or "error:" in line]
        tail = " | ".join(errors[:2] or lines[-3:])
        return ("alert mart", f"[yellow]dbt build failed (exit {done.returncode}): {tail}")
    summary = next(
        (line.split("Done.", 1)[1].strip() for line in done.stdout.splitlines() if "Done." in line),
        "done",
    )
    return ("alert mart", f"rebuilt after detection: {summary}")


def alert_status_rows(settings: Settings) -> list[tuple[str, str]]:
    """The demo area's alerts in PostGIS, by status (low, high, withdrawn, plantation harvest)."""
    from canopywatch.catalog.schema import connect

    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT status, count(*), coalesce(sum(area_ha), 0) FROM alerts "
            "WHERE aoi_id = %s GROUP BY status",
            (DEMO_CONF["aoi_name"],),
        ).fetchall()
    by_status = {str(status): (int(n), float(ha)) for status, n, ha in rows}
    order = ["high", "low", "withdrawn", "plantation_harvest"]
    parts = [
        f"{by_status[k][0]} {k} ({by_status[k][1]:.2f} ha)"
        for k in [*order, *sorted(set(by_status) - set(order))]
        if k in by_status
    ]
    return [("alerts by status", ", ".join(parts) or "none in PostGIS")]


def conn_example_cog(settings: Settings) -> str:
    from canopywatch_dev.platform import minio

    client = minio.s3_client(settings)
    listed = client.list_objects_v2(Bucket=settings.bucket, Prefix="sentinel_hub/", MaxKeys=200)
    keys = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/cog.tif")]
    return f" (e.g. s3://{settings.bucket}/{keys[0]}; rio cogeo validate passes)" if keys else ""


def detect_alerts(api: AirflowApi, settings: Settings) -> dict[str, Any]:
    """Score the demo area with the default detector (harmonic: no model to train)."""
    conf = {"bbox": DEMO_BBOX, "aoi_name": DEMO_CONF["aoi_name"], "end": DEMO_CONF["end"]}
    run_id, run = trigger_and_wait(api, DETECT_DAG_ID, conf)
    report = task_result(api, run_id, "report", DETECT_DAG_ID)
    outputs = [o["local"] for o in report.get("outputs", [])]
    rows = [
        ("alerts run", f"{DETECT_DAG_ID} {run_id}: [bold]{run['state']}[/]"),
        ("alerts", f"{report.get('alerts', '?')} alerts, {report.get('area_ha', '?')} ha "
                   f"(canopywatch alerts --bbox={','.join(str(v) for v in DEMO_BBOX)} "
                   f"--start {DEMO_CONF['start']} --end {DEMO_CONF['end']})"),
        ("alert outputs", "\n".join(outputs) or "none"),
    ]  # fmt: skip
    return {"state": run["state"], "rows": rows}


def _canopywatch(*argv: str) -> tuple[int, str]:
    """A ``canopywatch`` verb as a user runs it: (exit code, its output lines)."""
    done = subprocess.run(
        [sys.executable, "-m", "canopywatch", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    lines = [*done.stdout.strip().splitlines(), *done.stderr.strip().splitlines()]
    return done.returncode, "\n".join(lines[-3:])


def ingest_sensors(settings: Settings) -> tuple[int, list[tuple[str, str]]]:
    """Simulated readings of the demo stations over the monitoring window, published with
    ``canopywatch sensors ingest`` (station readings, then the FIRMS hotspots)."""
    from datetime import date

    from canopywatch_dev.sensors import demo_clearings, simulate, write_world

    start = date.fromisoformat(str(DEMO_CONF["start"]))
    end = date.fromisoformat(str(DEMO_CONF["end"]))
    console.print("simulating the demo area's sensors and ingesting their readings...")
    world = simulate(demo_clearings(), start=start, days=(end - start).days + 1)
    paths = write_world(world, settings.home / "demo-sensors")
    code, readings = _canopywatch(
        "sensors", "ingest", str(paths["readings"]), "--stations", str(paths["stations"])
    )
    fire_code, fires = _canopywatch("sensors", "ingest", str(paths["firms"]), "--format", "firms")
    rows = [("sensor readings", f"{readings}\n{fires}\n(files in {paths['readings'].parent})")]
    return code or fire_code, rows


def sensor_rows(api: AirflowApi, settings: Settings) -> list[tuple[str, str]]:
    """Sensors into the platform and evidence onto the alerts: the readings ingested, the
    ``sensor_ingest`` run (Spark streaming -> Delta ``sensor_raw`` -> PostGIS -> dbt sensor
    models), then ``canopywatch sensors corroborate`` and the alerts with their evidence."""
    code, rows = ingest_sensors(settings)
    if code != 0:
        return rows
    run_id, run = trigger_and_wait(api, SENSOR_DAG_ID, {})
    rows.append(("sensor run", f"{SENSOR_DAG_ID} {run_id}: [bold]{run['state']}[/]"))
    if run["state"] != "success":
        return rows
    from deltalake import DeltaTable

    from canopywatch.catalog.schema import connect
    from canopywatch.lake.tables import lake_from_settings

    lake = lake_from_settings(settings)
    raw = DeltaTable(f"{lake.root}/sensor_raw", storage_options=lake.options())
    raw_rows = sum(batch.num_rows for batch in raw.to_pyarrow_dataset().to_batches(columns=[]))
    code, corroborated = _canopywatch("sensors", "corroborate", "--aoi", str(DEMO_CONF["aoi_name"]))
    marts = dbt_schema(settings) + "_marts"
    with connect(settings) as conn:
        readings = conn.execute("SELECT count(*) FROM sensor_readings").fetchone()
        health = conn.execute(
            f"SELECT station_id, kind, last_seen, gap_share, stuck_share "
            f"FROM {marts}.sensor_health ORDER BY station_id, kind"
        ).fetchall()
        backed = conn.execute(
            "SELECT alert_id, alert_date, status, area_ha, corroborated_by FROM alerts "
            "WHERE aoi_id = %s AND corroborated_by <> '' ORDER BY alert_date, alert_id",
            (DEMO_CONF["aoi_name"],),
        ).fetchall()
    rows.append(
        (
            "sensor rows",
            f"Delta sensor_raw v{raw.version()}: {raw_rows} rows; "
            f"PostGIS sensor_readings: {readings[0] if readings else 0} rows",
        )
    )
    rows.append(
        (
            "sensor health",
            "\n".join(
                f"{station} {kind}: last seen {last:%Y-%m-%d %H:%M}, gaps {gaps or 0:.0%}, "
                f"stuck {stuck or 0:.0%}"
                for station, kind, last, gaps, stuck in health
            )
            or "none",
        )
    )
    listed = [
        f"{alert_id[:12]} {day:%Y-%m-%d} {status} {area:.2f} ha: {kinds}"
        for alert_id, day, status, area, kinds in backed[:SHOWN_EVIDENCE]
    ]
    if len(backed) > SHOWN_EVIDENCE:
        listed.append(f"... and {len(backed) - SHOWN_EVIDENCE} more")
    rows.append(("alert evidence", "\n".join([corroborated, *listed])))
    return rows


def console_rows(settings: Settings) -> list[tuple[str, str]]:
    """Every console and its login (the same as ``make login``)."""
    from canopywatch_dev.platform import logins

    return [(name, f"{address}\n{login}") for name, address, login in logins.logins(settings)]


def print_summary(rows: Sequence[tuple[str, str]]) -> None:
    """A table on a terminal (long values fold onto more lines); plain lines elsewhere."""
    if TERMINAL_OUTPUT:
        table = Table(title="demo run", show_header=False)
        table.add_column("what", no_wrap=True)
        table.add_column("value", overflow="fold")
        for label, text in rows:
            table.add_row(label, text)
        console.print(table)
        return
    from rich.text import Text

    print("demo run")
    for label, text in rows:
        plain = Text.from_markup(text).plain  # markup such as [bold] stays off the log
        first, *rest = plain.splitlines() or [""]
        print(f"{label}: {first}")
        for line in rest:
            print(f"    {line}")
    sys.stdout.flush()


def main() -> int:
    from canopywatch_dev.platform import airflow_local, stack

    settings = configure_environment()
    console.rule("[bold]canopywatch demo")
    console.print("starting the platform (PostGIS, Kafka, MinIO, CDSE endpoint, Airflow)...")
    stack.up(settings)
    user, password = airflow_local.login(settings)
    airflow_local.airflow_cli(settings, "dags", "reserialize")
    api = AirflowApi.login(airflow_local.api_url(settings), user, password)
    for dag_id in (DAG_ID, DETECT_DAG_ID, CURATION_DAG_ID, SENSOR_DAG_ID):
        api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    started = time.monotonic()
    run_id, run = trigger_and_wait(api, DAG_ID, DEMO_CONF)
    took = time.monotonic() - started
    curation = follow_curation(api, settings, run_id) if run["state"] == "success" else {}
    detection = detect_alerts(api, settings) if run["state"] == "success" else {}

    summary = task_result(api, run_id, "summarize")
    export = task_result(api, run_id, "export_review")
    after_detection: list[tuple[str, str]] = []
    if detection.get("state") == "success":
        after_detection.append(rebuild_alert_mart(settings))
        after_detection.extend(alert_status_rows(settings))
        after_detection.extend(sensor_rows(api, settings))
    if curation.get("state") == "success":
        after_detection.extend(mart_rows(settings))

    logs = airflow_local.airflow_home(settings) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    rows: list[tuple[str, str]] = [
        ("run", f"{run_id}: [bold]{run['state']}[/] in {took:.0f} s"),
        ("area", f"{DEMO_CONF['aoi_name']} {DEMO_CONF['bbox']}"),
        ("window", f"{DEMO_CONF['start']} .. {DEMO_CONF['end']}, cloud <= {DEMO_CONF['max_cloud']}%"),
        ("scenes found", str(summary.get("planned", "?"))),
        ("scenes stored", str(summary.get("stored", "?"))),
        ("bytes stored", f"{summary.get('bytes', 0) / 1e6:.1f} MB"),
    ]  # fmt: skip
    keys = list(summary.get("keys", []))
    rows.append(
        (
            "object keys",
            "\n".join(f"s3://{settings.bucket}/{k}" for k in keys[:3])
            + (f"\n... and {len(keys) - 3} more" if len(keys) > 3 else ""),
        )
    )
    rows.extend(lake_and_catalog_rows(settings))
    if export:
        rows.append(("GeoPackage", f"{export.get('path')}\n(also {export.get('uri')})"))
    rows.extend([*curation.get("rows", []), *detection.get("rows", []), *after_detection])
    rows.append(("Airflow run", f"{airflow_local.api_url(settings)}/dags/{DAG_ID}/runs/{run_id}"))
    rows.append(("task logs", str(logs)))
    rows.extend(console_rows(settings))
    print_summary(rows)
    ok = run["state"] == "success" and all(
        part.get("state") == "success" for part in (curation, detection)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
