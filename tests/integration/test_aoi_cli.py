"""``canopywatch aoi`` on the real PostGIS, in a schema of this test module only.

Collisions refused unless --replace, the same area again is a no-op, deactivate /
activate / remove, polygons (with a crs) kept as polygons, the table of an older
release (bbox polygons) migrated, and the YAML + PostGIS merge a scheduled run uses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, shape

from canopywatch import cli
from canopywatch.catalog.schema import connect, drop_schema
from canopywatch.settings import Settings
from canopywatch.storage import aois

pytestmark = pytest.mark.service

TRIANGLE = [[-55.40, -7.10], [-55.30, -7.10], [-55.40, -7.00], [-55.40, -7.10]]


@pytest.fixture
def pg(monkeypatch) -> Iterator[Settings]:
    from canopywatch_dev.platform import stack

    base = Settings.from_env()
    stack.up(base, ["postgres"])
    schema = f"cwtest_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CANOPYWATCH_PG_SCHEMA", schema)
    yield Settings.from_env()
    with connect(base) as conn:
        drop_schema(conn, schema)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(capsys, *extra: str) -> dict[str, dict]:
    code, out, _ = run(capsys, "aoi", "list", "--format", "geojson", *extra)
    assert code == 0
    return {f["properties"]["aoi_id"]: f for f in json.loads(out)["features"]}


def test_a_name_collision_is_refused_unless_replace(pg, capsys):
    box = "-55.40,-7.10,-55.35,-7.05"
    assert run(capsys, "aoi", "add", "--name", "Tapajós 1", "--bbox", box)[0] == 0
    # "tapajós-1" and "Tapajós 1" have the same id: refused, the first area is untouched
    code, out, err = run(capsys, "aoi", "add", "--name", "tapajós-1", "--bbox", "-50,-3,-49.9,-2.9")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "already exists" in err and "--replace" in err
    assert listed(capsys)["tapaj-s-1"]["properties"]["bbox"] == [-55.4, -7.1, -55.35, -7.05]
    # the same area again changes nothing
    code, out, _ = run(capsys, "aoi", "add", "--name", "Tapajós 1", "--bbox", box)
    assert code == 0 and out.startswith("unchanged tapaj-s-1")
    # --replace overwrites
    code, out, _ = run(
        capsys, "aoi", "add", "--name", "tapajós-1", "--bbox", "-50,-3,-49.9,-2.9", "--replace"
    )
    assert code == 0 and out.startswith("replaced tapaj-s-1")
    assert listed(capsys)["tapaj-s-1"]["properties"]["bbox"] == [-50.0, -3.0, -49.9, -2.9]


def test_deactivate_activate_remove(pg, capsys):
    run(capsys, "aoi", "add", "--name", "xingu", "--bbox", "-52.1,-3.5,-52.0,-3.4")
    run(capsys, "aoi", "add", "--name", "jamanxim", "--bbox", "-55.9,-6.5,-55.8,-6.4")
    assert run(capsys, "aoi", "deactivate", "Xingu")[0] == 0
    assert set(listed(capsys)) == {"jamanxim"}
    every = listed(capsys, "--all")
    assert {k: v["properties"]["active"] for k, v in every.items()} == {
        "jamanxim": True,
        "xingu": False,
    }
    with connect(pg) as conn:
        assert [a.aoi_id for a in aois.list_active(conn)] == ["jamanxim"]
    # a deactivated id is still taken: a different area under it needs --replace
    code, _, err = run(capsys, "aoi", "add", "--name", "xingu", "--bbox", "-52.2,-3.5,-52.1,-3.4")
    assert code == 2 and "deactivated" in err
    assert run(capsys, "aoi", "activate", "xingu")[0] == 0
    assert set(listed(capsys)) == {"jamanxim", "xingu"}
    assert run(capsys, "aoi", "remove", "xingu")[0] == 0
    assert set(listed(capsys, "--all")) == {"jamanxim"}
    code, _, err = run(capsys, "aoi", "remove", "xingu")
    assert code == 2 and err.count("\n") == 1 and "no registered area" in err


def test_a_polygon_with_a_crs_is_stored_as_that_polygon(pg, capsys, tmp_path):
    to_utm = Transformer.from_crs(4326, 32721, always_xy=True)
    document = {
        "type": "Feature",
        "properties": {"name": "ignored"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[list(to_utm.transform(x, y)) for x, y in TRIANGLE]],
        },
        "crs": {"type": "name", "properties": {"name": "EPSG:32721"}},
    }
    path = tmp_path / "triangle.geojson"
    path.write_text(json.dumps(document))
    code, out, _ = run(capsys, "aoi", "add", "--name", "triangle", "--geojson", str(path))
    assert code == 0 and "(polygon," in out
    stored = listed(capsys)["triangle"]
    assert stored["properties"]["shape"] == "polygon"
    outline = shape(stored["geometry"])
    assert outline.geom_type == "MultiPolygon"
    assert outline.symmetric_difference(Polygon(TRIANGLE)).area < 1e-9
    with connect(pg) as conn:
        (area,) = aois.list_active(conn)
    assert area.outline is not None and area.bbox.as_tuple() == pytest.approx(
        (-55.4, -7.1, -55.3, -7.0), abs=1e-6
    )
    # an unreadable crs is refused in one line, nothing stored
    document["crs"] = {"type": "link", "properties": {"href": "http://example.org/crs"}}
    path.write_text(json.dumps(document))
    code, _, err = run(capsys, "aoi", "add", "--name", "linked", "--geojson", str(path))
    assert code == 2 and err.count("\n") == 1 and "only a named crs" in err
    assert "linked" not in listed(capsys, "--all")


def test_an_older_table_of_bbox_polygons_is_migrated(pg):
    with connect(pg) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE aois (aoi_id text PRIMARY KEY, name text NOT NULL,"
                " geom geometry(Polygon, 4326) NOT NULL, function text NOT NULL DEFAULT"
                " 's2l2a_bands', max_cloud real NOT NULL DEFAULT 80, active boolean NOT NULL"
                " DEFAULT true, created_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(
                "INSERT INTO aois (aoi_id, name, geom) VALUES"
                " ('old', 'old', ST_MakeEnvelope(-55.4, -7.1, -55.35, -7.05, 4326))"
            )
        conn.commit()
        (area,) = aois.list_active(conn)
        assert area.aoi_id == "old" and area.outline is None
        assert area.bbox.as_tuple() == (-55.4, -7.1, -55.35, -7.05)
        with conn.cursor() as cur:
            cur.execute("SELECT GeometryType(geom) FROM aois")
            assert cur.fetchone() == ("MULTIPOLYGON",)


def test_the_registry_overrides_the_yaml_file_in_a_scheduled_run(pg, tmp_path, capsys):
    path = tmp_path / "aois.yaml"
    path.write_text(
        "aois:\n"
        "  - {aoi_id: from-file, bbox: [-55.4, -7.1, -55.35, -7.05]}\n"
        "  - {aoi_id: paused, bbox: [-55.4, -7.1, -55.35, -7.05], max_cloud: 20}\n"
    )
    run(capsys, "aoi", "add", "--name", "paused", "--bbox", "-55.4,-7.1,-55.35,-7.05")
    run(capsys, "aoi", "add", "--name", "registered", "--bbox", "-55.3,-7.1,-55.25,-7.05")
    run(capsys, "aoi", "deactivate", "paused")
    with connect(pg) as conn:
        merged = aois.merge(aois.load_file(path), aois.list_areas(conn, include_inactive=True))
    assert [a.aoi_id for a in merged] == ["from-file", "registered"]
