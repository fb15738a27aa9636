"""EUDR plot checks over HTTP (write scope): ``POST /eudr/checks`` answers 202 at once.

* ``POST /eudr/checks``: the plots as the body: GeoJSON (``application/geo+json`` or
  ``application/json``), CSV (``text/csv``: lat, lon, area_ha) or a GeoPackage
  (``application/geopackage+sqlite3``). 202 with ``{"check_id", "state", "status_url"}`` and a
  ``Location`` header; the check runs in the background. A body that is not a usable plot
  file is 422 with the reason (nothing is stored); bodies over the API's limit are 413.
* ``GET /eudr/checks/{id}``: state (queued, running, done, failed), the summary and the
  result links when done; unknown ids 404.
* ``GET /eudr/checks/{id}/plots.geojson|plots.csv|report.html``: the outputs (409 until done).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from canopywatch.api.auth import require_write
from canopywatch.api.db import connection, settings_of
from canopywatch.catalog.schema import connect
from canopywatch.eudr import jobs
from canopywatch.eudr.plots import PlotInputError, read_plots
from canopywatch.settings import Settings

router = APIRouter(prefix="/eudr", tags=["eudr"], dependencies=[Depends(require_write)])
Conn = Annotated[psycopg.Connection[Any], Depends(connection)]
AppSettings = Annotated[Settings, Depends(settings_of)]
SUFFIXES = {
    "application/geo+json": ".geojson",
    "application/json": ".geojson",
    "text/csv": ".csv",
    "application/geopackage+sqlite3": ".gpkg",
}
MEDIA_TYPES = {"plots.geojson": "application/geo+json", "plots.csv": "text/csv",
               "report.html": "text/html"}  # fmt: skip


def _run(check_id: str, settings: Settings) -> None:
    with connect(settings) as conn:
        jobs.execute(conn, check_id, settings)


@router.post("/checks", status_code=202)
async def submit(
    request: Request, background: BackgroundTasks, conn: Conn, settings: AppSettings
) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = SUFFIXES.get(media)
    if suffix is None:
        raise HTTPException(
            415, f"send the plots as {', '.join(sorted(SUFFIXES))} (got {media or 'no type'})"
        )
    body = await request.body()
    if not body:
        raise HTTPException(422, "the request body holds no plots")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"plots{suffix}"
        path.write_bytes(body)
        try:
            plots = read_plots(path)
        except PlotInputError as exc:
            raise HTTPException(422, str(exc).replace(f"{path.name}: ", "", 1)) from None
    job = jobs.submit(conn, plots, settings)
    background.add_task(_run, job.check_id, settings)
    status_url = str(request.url_for("check_status", check_id=job.check_id))
    return JSONResponse(
        {
            "check_id": job.check_id,
            "state": job.state,
            "plots": job.plots,
            "status_url": status_url,
        },
        status_code=202,
        headers={"Location": status_url},
    )


def _job(conn: psycopg.Connection[Any], check_id: str) -> jobs.CheckJob:
    try:
        return jobs.get(conn, check_id)
    except jobs.UnknownCheckError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/checks/{check_id}", name="check_status")
def status(check_id: str, request: Request, conn: Conn) -> dict[str, Any]:
    job = _job(conn, check_id)
    document = job.as_dict()
    if job.state == "done":
        document["results"] = {
            name: str(request.url_for("check_output", check_id=check_id, name=name))
            for name in jobs.OUTPUT_FILES
        }
    return document


@router.get("/checks/{check_id}/{name}", name="check_output")
def output(check_id: str, name: str, conn: Conn) -> FileResponse:
    if name not in jobs.OUTPUT_FILES:
        raise HTTPException(404, f"no output {name!r}; one of {', '.join(jobs.OUTPUT_FILES)}")
    job = _job(conn, check_id)
    if job.state != "done":
        raise HTTPException(409, f"check {check_id} is {job.state}")
    return FileResponse(job.out_dir / name, media_type=MEDIA_TYPES[name], filename=name)
