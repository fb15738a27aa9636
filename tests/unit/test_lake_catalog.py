"""Time travel, change reduction, STAC items, GeoPackage layers and the CLI, without services."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from canopywatch.catalog.commands import dispatch, register
from canopywatch.catalog.stac import EO_EXTENSION, PROJ_EXTENSION, scene_item
from canopywatch.lake.changes import net_changes
from canopywatch.lake.consume import write_scene_batch
from canopywatch.lake.tables import SCENES_RAW, Lake, current_versions, open_table
from canopywatch.lake.timetravel import TimeTravelError, history, read_table
from canopywatch.settings import Settings
from tests.unit.test_lake_writer import FakeMessage, FakeProducer, scene


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


def _write(lake: Lake, first: int, count: int) -> None:
    batch = [FakeMessage(scene(n).to_bytes(), n) for n in range(first, first + count)]
    write_scene_batch(batch, lake=lake, dlq=FakeProducer())


def test_read_a_table_at_a_version_and_as_of_a_timestamp(lake: Lake) -> None:
    _write(lake, 0, 3)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    _write(lake, 3, 2)
    assert read_table(lake, "scenes_raw").num_rows == 5
    assert read_table(lake, "scenes_raw", version=1).num_rows == 3
    assert read_table(lake, "scenes_raw", as_of=between).num_rows == 3
    assert [v.version for v in history(lake, "scenes_raw")] == [2, 1, 0]
    assert history(lake, "scenes_raw")[0].rows_added == 2
    with pytest.raises(TimeTravelError, match=r"versions 0\.\.2"):
        read_table(lake, "scenes_raw", version=9)
    with pytest.raises(TimeTravelError):
        read_table(lake, "scenes_raw", as_of=datetime(2000, 1, 1, tzinfo=UTC))
    assert current_versions(lake) == {"scenes_raw": 2, "scenes_cog": -1, "alerts": -1}


def test_net_changes_keep_the_last_change_of_each_id() -> None:
    changes = [
        {"id": "a", "v": 1, "_change_type": "insert", "_commit_version": 1},
        {"id": "a", "v": 1, "_change_type": "update_preimage", "_commit_version": 2},
        {"id": "a", "v": 2, "_change_type": "update_postimage", "_commit_version": 2},
        {"id": "b", "v": 1, "_change_type": "insert", "_commit_version": 1},
        {"id": "b", "v": 1, "_change_type": "delete", "_commit_version": 3},
        {"id": "c", "v": 1, "_change_type": "delete", "_commit_version": 1},
        {"id": "c", "v": 5, "_change_type": "insert", "_commit_version": 4},
    ]
    upserts, deletes = net_changes(changes, "id")
    assert {u["id"]: u["v"] for u in upserts} == {"a": 2, "c": 5}
    assert deletes == ["b"]


def _catalog_row() -> dict[str, object]:
    message = scene(4)
    return {
        "scene_id": message.scene_id,
        "aoi_id": message.aoi_id,
        "source": message.source,
        "function": message.function,
        "geohash": message.geohash,
        "acquired_at": message.acquired_at,
        "cloud_cover": message.cloud_cover,
        "crs": message.crs,
        "width": 221,
        "height": 220,
        "bands": ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "dataMask"],
        "bucket": "canopywatch",
        "raw_key": message.raw_key,
        "cog_key": message.raw_key.replace("raw.tif", "cog.tif"),
        "geometry": message.footprint,
    }


def test_scene_items_are_valid_stac_1_1_with_eo_and_proj() -> None:
    import pystac
    from pystac.extensions.eo import EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.validation import validate_dict

    item_dict = scene_item(_catalog_row())
    assert item_dict["stac_version"] == "1.1.0"
    # the core STAC 1.1 JSON schemas ship with pystac; the extension schemas are online only
    validate_dict(json.loads(json.dumps(item_dict)), extensions=[])
    item = pystac.Item.from_dict(item_dict)
    assert EO_EXTENSION in item.stac_extensions and PROJ_EXTENSION in item.stac_extensions
    assert EOExtension.ext(item).cloud_cover == 12.5
    projection = ProjectionExtension.ext(item)
    assert projection.code == "EPSG:32721" and projection.shape == [220, 221]
    assert item.assets["cog"].media_type.endswith("profile=cloud-optimized")
    bands = item_dict["assets"]["raw"]["bands"]
    assert bands[0] == {"name": "B02", "eo:common_name": "blue", "eo:center_wavelength": 0.49}


def test_geopackage_has_readable_layers_even_when_empty(lake: Lake, tmp_path: Path) -> None:
    import pyogrio

    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER, export_new_since

    _write(lake, 0, 2)
    result = export_new_since(lake, {"scenes_raw": -1}, label="run/1 manual", out_dir=tmp_path)
    assert result.path.name == "run_1_manual.gpkg" and result.scenes == 2
    layers = dict(pyogrio.list_layers(result.path))
    assert layers == {SCENE_LAYER: "Polygon", ALERT_LAYER: "MultiPolygon"}
    again = export_new_since(lake, current_versions(lake), label="rerun", out_dir=tmp_path)
    assert again.scenes == 0


# ------------------------------------------------------------------ CLI
def _parse(argv: list[str]) -> argparse.Namespace:
    from canopywatch.cli import _Parser

    parser = _Parser(prog="canopywatch")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scenes", "--bbox=10,0,5,1", "--start", "2024-01-01", "--end", "2024-02-01"], "minx"),
        (["scenes", "--bbox=1,2,3", "--start", "2024-01-01", "--end", "2024-02-01"], "4 numbers"),
        (["alerts", "--bbox=1,2,3,4", "--start", "2024-03-01", "--end", "2024-02-01"], "reversed"),
        (
            ["alerts", "--bbox=1,2,3,4", "--start", "2024-13-01", "--end", "2024-02-01"],
            "not a date",
        ),
        (
            [
                "alerts",
                "--bbox=1,2,3,4",
                "--start",
                "2024-01-01",
                "--end",
                "2024-02-01",
                "--min-confidence",
                "3",
            ],
            "between 0 and 1",
        ),
    ],
)
def test_bad_bbox_or_time_range_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dispatch(_parse(argv), Settings()) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_lake_read_and_history_commands(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    _write(lake, 0, 3)
    _write(lake, 3, 1)
    args = _parse(
        [
            "lake",
            "read",
            "--table",
            "scenes_raw",
            "--lake",
            lake.root,
            "--version",
            "1",
            "--format",
            "json",
        ]
    )
    assert dispatch(args, Settings()) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert (
        dispatch(
            _parse(["lake", "history", "--table", "scenes_raw", "--lake", lake.root]), Settings()
        )
        == 0
    )
    assert "WRITE" in capsys.readouterr().out  # new rows are appended, the merge only updates
    bad = _parse(["lake", "read", "--table", "scenes_raw", "--lake", lake.root, "--version", "7"])
    assert dispatch(bad, Settings()) == 2
    assert (
        dispatch(_parse(["lake", "read", "--table", "nope", "--lake", lake.root]), Settings()) == 2
    )
    stamp = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        dispatch(
            _parse(
                ["lake", "read", "--table", "scenes_raw", "--lake", lake.root, "--as-of", stamp]
            ),
            Settings(),
        )
        == 0
    )
    assert open_table(lake, SCENES_RAW).version() == 2


def test_empty_geopackage_layers_are_typed_not_all_text(lake: Lake, tmp_path: Path) -> None:
    import pyogrio

    from canopywatch.alert_schema import ATTRIBUTE_NAMES
    from canopywatch.export.gpkg import ALERT_LAYER, SCENE_LAYER, export_new_since

    result = export_new_since(lake, {}, label="empty", out_dir=tmp_path)
    assert (result.scenes, result.alerts) == (0, 0)
    alerts = pyogrio.read_info(result.path, layer=ALERT_LAYER)
    assert tuple(alerts["fields"]) == ATTRIBUTE_NAMES
    types = dict(zip(alerts["fields"], alerts["ogr_types"], strict=True))
    assert types["alert_date"] == "OFTDateTime" and types["confidence"] == "OFTReal"
    scenes = pyogrio.read_info(result.path, layer=SCENE_LAYER)
    types = dict(zip(scenes["fields"], scenes["ogr_types"], strict=True))
    assert types["acquired_utc"] == "OFTDateTime" and types["width_px"] == "OFTInteger64"


def test_the_run_geopackage_carries_the_alerts_in_the_alert_schema(
    lake: Lake, tmp_path: Path
) -> None:
    import pandas as pd
    import pyogrio

    from canopywatch.export.gpkg import ALERT_LAYER, export_new_since
    from canopywatch.lake.consume import write_alert_batch
    from canopywatch.messages import AlertPublished

    ring = [[-55.4, -7.1], [-55.39, -7.1], [-55.39, -7.09], [-55.4, -7.1]]
    alert = AlertPublished(
        alert_id="a1", aoi_id="demo", geometry={"type": "Polygon", "coordinates": [ring]},
        alert_date=datetime(2024, 5, 3, tzinfo=UTC), confidence=0.9, confidence_level="high",
        status="high", area_ha=1.5, method="harmonic", model_version="harmonic-v1",
    )  # fmt: skip
    write_alert_batch(
        [FakeMessage(alert.to_bytes(), 0, "cw.alerts")], lake=lake, dlq=FakeProducer()
    )
    result = export_new_since(lake, {}, label="alerts", out_dir=tmp_path)
    assert result.alerts == 1
    frame = pyogrio.read_dataframe(result.path, layer=ALERT_LAYER)
    row = frame.iloc[0]
    assert (row["alert_id"], row["status"], row["method"]) == ("a1", "high", "harmonic")
    assert row["alert_date"] == pd.Timestamp("2024-05-03", tz="UTC")
    assert frame.geometry.iloc[0].geom_type == "MultiPolygon" and frame.crs.to_epsg() == 4326
