"""The ``canopywatch`` command for people and pipes: help with examples on every verb, help
text on every option, ``--version``, tables that fit 80 columns, the same formats everywhere."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pytest
from rich.console import Console

from canopywatch import __version__
from canopywatch.catalog.commands import ALERT_COLUMNS, SCENE_COLUMNS
from canopywatch.cli import build_parser, main
from canopywatch.output import FORMATS, OutputError, emit

TILE_BBOX = "-55.5,-10.5,-55.2,-10.2"


def _verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of every leaf verb: parsers without sub-commands."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _verbs(child, (*path, name))


def test_every_verb_has_examples_and_every_option_has_help() -> None:
    verbs = dict(_verbs(build_parser()))
    assert {" ".join(p) for p in verbs} >= {
        "aoi add",
        "aoi list",
        "tiles",
        "download",
        "scenes",
        "alerts",
        "lake history",
        "lake read",
        "detect",
        "evaluate",
    }
    for path, parser in verbs.items():
        assert parser.epilog and parser.epilog.startswith("examples:"), path
        example_lines = [line for line in parser.epilog.splitlines()[1:] if "canopywatch" in line]
        assert example_lines, path
        assert all(line.strip().startswith("canopywatch " + path[0]) for line in example_lines)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{' '.join(path)} {action.option_strings} has no help text"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"canopywatch {__version__}"


def test_help_shows_examples_in_a_fresh_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "canopywatch", "alerts", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "examples:\n  canopywatch alerts --bbox" in done.stdout
    assert "--full-ids" in done.stdout


def _lines_at_80(argv: list[str], capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch):
    mp.setenv("COLUMNS", "80")
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_tiles_table_fits_80_columns_and_ends_with_totals(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _lines_at_80(["tiles", "--bbox", TILE_BBOX], capsys, monkeypatch)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines)
    assert lines[-1] == "total: 4 tiles, 11.02 Mpx, EPSG 32721"
    # every tile row is whole: four numbers of bounds on one line
    rows = [line for line in lines if line.startswith("│ r")]
    assert len(rows) == 4 and all(line.count(",") == 3 for line in rows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tiles_in_every_format(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"tiles.{fmt}"
    assert main(["tiles", "--bbox", TILE_BBOX, "--format", fmt, "--output", str(out)]) == 0
    if fmt == "gpkg":
        frame = gpd.read_file(out, layer="request_tiles")
        assert list(frame["tile_id"]) == ["r0c0", "r0c1", "r1c0", "r1c1"]
        assert frame.crs.to_epsg() == 4326
        assert frame.geometry.geom_type.unique().tolist() == ["Polygon"]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [r["tile_id"] for r in rows] == ["r0c0", "r0c1", "r1c0", "r1c1"]
        assert rows[0]["geometry_wkt"].startswith("POLYGON ((")
    elif fmt == "json":
        rows = json.loads(out.read_text())
        assert [r["width"] for r in rows] == [1652] * 4
    elif fmt == "geojson":
        collection = json.loads(out.read_text())
        assert collection["type"] == "FeatureCollection"
        assert [f["id"] for f in collection["features"]] == ["r0c0", "r0c1", "r1c0", "r1c1"]
    else:
        assert out.read_text().splitlines()[-1] == "total: 4 tiles, 11.02 Mpx, EPSG 32721"
    # data went to the file; stdout carries nothing to mix into a pipe
    assert capsys.readouterr().out == ""


def _render(rows, columns, *, full_ids: bool = False, noun: str, totals=()) -> list[str]:
    buffer = io.StringIO()
    args = argparse.Namespace(format="table", output=None, full_ids=full_ids, command=noun)
    emit(
        rows,
        columns,
        args,
        title=noun,
        noun=noun,
        totals=totals,
        console=Console(file=buffer, width=80),
    )
    return buffer.getvalue().splitlines()


ALERT = {
    "alert_id": "5f3a9c0d2b7e41aa9e",
    "aoi_id": "tapajos-1",
    "alert_date": datetime(2023, 8, 4, tzinfo=UTC),
    "confirmed_date": datetime(2023, 8, 19, tzinfo=UTC),
    "status": "high",
    "confidence": 0.93,
    "area_ha": 1.2345,
    "model_version": "harmonic-v3",
    "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
}


def test_alert_table_dates_as_dates_short_ids_totals_at_80_columns() -> None:
    from canopywatch.output import count_by, sum_of

    low = {**ALERT, "alert_id": "0123456789abcdef", "status": "low", "area_ha": 0.5}
    totals = (sum_of("area_ha", "ha"), count_by("status", ("high", "low", "withdrawn")))
    lines = _render([ALERT, low], ALERT_COLUMNS, noun="alerts", totals=totals)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "2023-08-04" in text and "2023-08-19" in text
    assert "T00:00" not in text and "+00:00" not in text and "…" not in text
    assert "5f3a9c0d" in text and "5f3a9c0d2b" not in text  # shortened to 8
    assert lines[-1] == "total: 2 alerts, 1.73 ha, 1 high, 1 low"
    full = _render([ALERT], ALERT_COLUMNS, full_ids=True, noun="alerts")
    assert _column(full, 0) == "5f3a9c0d2b7e41aa9e"  # whole, folded if need be


def _column(lines: list[str], index: int) -> str:
    """The text of one table column over all its body lines (folded cells joined)."""
    return "".join(line.split("│")[index + 1].strip() for line in lines if line.startswith("│"))


def test_scene_table_fits_80_columns_with_a_long_area_id() -> None:
    scene = {
        "scene_id": "a1b2c3d4e5f60718",
        "acquired_at": datetime(2024, 1, 5, 13, 42, tzinfo=UTC),
        "cloud_cover": 12.345,
        "aoi_id": "a-very-long-area-name-that-would-push-the-table-wide",
        "function": "s2l2a_bands",
        "size_bytes": 3_100_000,
        "cog_valid": True,
        "raw_key": "sentinel_hub/s2l2a_bands/6vjyv/20240105T134200Z/bbox_1_2_3_4/raw.tif",
    }
    lines = _render([scene], SCENE_COLUMNS, noun="scenes")
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "2024-01-05" in text and "…" not in text
    assert "12.3" in text and "3.1" in text
    # the long id is folded over lines, never cut
    assert _column(lines, 3) == "a-very-long-area-name-that-would-push-the-table-wide"


def test_geojson_of_rows_without_geometry_is_refused_in_one_line() -> None:
    args = argparse.Namespace(format="geojson", output=None, full_ids=False, command="lake")
    with pytest.raises(OutputError, match="commits have no geometry; use table, csv or json"):
        emit([{"version": 1}], (), args, title="t", noun="commits", geometry=lambda row: None)


def test_bad_bbox_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tiles", "--bbox", "nan,1,2,3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("canopywatch: ")


def test_gpkg_listings_keep_times_as_datetime_fields(tmp_path: Path) -> None:
    import datetime as dt

    import pyogrio

    from canopywatch.output import write_gpkg

    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    rows = [
        {"alert_id": "a", "alert_date": dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
         "confirmed_date": None, "confidence": 0.9, "geometry": square},
        {"alert_id": "b", "alert_date": dt.datetime(2024, 3, 8, tzinfo=dt.UTC),
         "confirmed_date": dt.datetime(2024, 3, 13, tzinfo=dt.UTC), "confidence": 0.5,
         "geometry": square},
    ]  # fmt: skip
    info = pyogrio.read_info(write_gpkg(rows, tmp_path / "a.gpkg", "deforestation_alerts"))
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert types["alert_date"] == types["confirmed_date"] == "OFTDateTime"
    assert types["confidence"] == "OFTReal" and info["geometry_type"] == "Polygon"


def test_every_listing_verb_offers_the_same_formats() -> None:
    verbs = dict(_verbs(build_parser()))
    listings = [
        "aoi list",
        "tiles",
        "scenes",
        "alerts",
        "lake history",
        "lake read",
        "subscriptions list",
        "subscriptions deliveries",
    ]
    for name in listings:
        parser = verbs[tuple(name.split())]
        options = {o for a in parser._actions for o in a.option_strings}
        assert {"--format", "--output", "--full-ids"} <= options, name
        (fmt,) = [a for a in parser._actions if "--format" in a.option_strings]
        assert list(fmt.choices)[: len(FORMATS)] == list(FORMATS), name
