"""A plot check as a job: plots in, evidence gathered, verdicts decided, outputs written.

``run_check`` is the whole check for plots already read (what ``canopywatch plots check``
runs in the foreground). ``submit`` / ``execute`` / ``get`` keep jobs in the PostGIS table
``eudr_checks`` (state ``queued`` -> ``running`` -> ``done`` | ``failed``, the summary and
the output folder ``<CANOPYWATCH_HOME>/exports/eudr/<check id>/``), which is how
``POST /eudr/checks`` answers at once with a status URL and runs the check after.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from canopywatch.eudr.check import CheckPolicy, check_plots
from canopywatch.eudr.evidence import find_baselines, from_catalog
from canopywatch.eudr.report import CheckOutputs, write_outputs
from canopywatch.settings import Settings

log = logging.getLogger(__name__)

DDL = """
CREATE TABLE IF NOT EXISTS eudr_checks (
    check_id      text PRIMARY KEY,
    state         text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    plots         integer NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    summary       jsonb,
    error         text,
    out_dir       text NOT NULL
);
"""
OUTPUT_FILES = ("plots.geojson", "plots.csv", "report.html")


@dataclass(frozen=True)
class CheckJob:
    check_id: str
    state: str
    plots: int
    submitted_at: Any
    finished_at: Any
    summary: dict[str, Any] | None
    error: str | None
    out_dir: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "state": self.state,
            "plots": self.plots,
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "summary": self.summary,
            "error": self.error,
        }


def run_check(
    conn: Any,
    plots: gpd.GeoDataFrame,
    out_dir: Path,
    settings: Settings,
    *,
    baselines: Sequence[Path] = (),
    policy: CheckPolicy | None = None,
    title: str = "EUDR plot check",
) -> CheckOutputs:
    policy = policy or CheckPolicy()
    started = time.perf_counter()
    found = find_baselines(settings, baselines)
    checkable = plots[plots["problem"] == ""]
    bounds = tuple(checkable.total_bounds) if len(checkable) else (0.0, 0.0, 0.0, 0.0)
    evidence = from_catalog(conn, bounds, found, cutoff=policy.cutoff)  # type: ignore[arg-type]
    results = check_plots(plots, evidence, policy)
    seconds = time.perf_counter() - started
    outputs = write_outputs(
        results, out_dir, policy=policy, lineage=evidence.lineage, title=title, seconds=seconds
    )
    log.info("EUDR check of %d plot(s) in %.2f s: %s", len(plots), seconds, outputs.summary)
    return outputs


def ensure_schema(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()


def submit(conn: Any, plots: gpd.GeoDataFrame, settings: Settings) -> CheckJob:
    """Record a queued job for ``plots`` (kept as GeoJSON in its folder) and return it."""
    ensure_schema(conn)
    check_id = "chk-" + uuid.uuid4().hex[:16]
    out_dir = settings.home / "exports" / "eudr" / check_id
    out_dir.mkdir(parents=True, exist_ok=True)
    plots.to_file(out_dir / "input.geojson", driver="GeoJSON")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO eudr_checks (check_id, state, plots, out_dir) VALUES (%s, 'queued', %s, %s)",
            (check_id, len(plots), str(out_dir)),
        )
    conn.commit()
    return get(conn, check_id)


def execute(conn: Any, check_id: str, settings: Settings) -> CheckJob:
    """Run a queued job; a failure is recorded in the job, not raised."""
    job = get(conn, check_id)
    with conn.cursor() as cur:
        cur.execute("UPDATE eudr_checks SET state = 'running' WHERE check_id = %s", (check_id,))
    conn.commit()
    try:
        plots = gpd.read_file(job.out_dir / "input.geojson")
        plots["problem"] = plots["problem"].fillna("")
        outputs = run_check(conn, plots, job.out_dir, settings, title=f"EUDR plot check {check_id}")
        state, summary, error = "done", outputs.summary, None
    except Exception as exc:
        conn.rollback()
        log.exception("EUDR check %s failed", check_id)
        state, summary, error = "failed", None, f"{type(exc).__name__}: {exc}"[:500]
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE eudr_checks SET state = %s, summary = %s, error = %s, finished_at = now() "
            "WHERE check_id = %s",
            (state, json.dumps(summary) if summary else None, error, check_id),
        )
    conn.commit()
    return get(conn, check_id)


class UnknownCheckError(LookupError):
    """No check has this id."""


def get(conn: Any, check_id: str) -> CheckJob:
    ensure_schema(conn)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT check_id, state, plots, submitted_at, finished_at, summary, error, out_dir "
            "FROM eudr_checks WHERE check_id = %s",
            (check_id,),
        )
        row = cur.fetchone()
    conn.commit()
    if row is None:
        raise UnknownCheckError(f"no EUDR check {check_id!r}")
    summary = row[5] if isinstance(row[5], dict) or row[5] is None else json.loads(row[5])
    return CheckJob(row[0], row[1], row[2], row[3], row[4], summary, row[6], Path(row[7]))
