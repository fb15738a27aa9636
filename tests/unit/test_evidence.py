"""The evidence rules on hand-placed readings around one alert (geopandas path)."""

from __future__ import annotations

import math

import pandas as pd
from shapely.geometry import box

from canopywatch.sensors.evidence import EARTH_M_PER_DEG, evidence_geopandas, pair_distances

LAT = -7.08
ALERT = box(-55.390, LAT - 0.002, -55.388, LAT)  # ~220 x 220 m
WHEN = pd.Timestamp("2024-03-21T12:00:00Z")


def _east_of_alert(metres: float) -> float:
    return -55.388 + metres / (EARTH_M_PER_DEG * math.cos(math.radians(LAT - 0.001)))


def _reading(rid: str, kind: str, lon: float, days: float, **extra: object) -> dict[str, object]:
    return {
        "reading_id": rid, "station_id": extra.pop("station", "st"), "kind": kind,
        "event": extra.pop("event", None), "score": extra.pop("score", None),
        "track_id": extra.pop("track", None), "lon": lon, "lat": LAT - 0.001,
        "observed_at": WHEN + pd.Timedelta(days=days),
    }  # fmt: skip


def test_rules() -> None:
    readings = pd.DataFrame(
        [
            _reading("saw-900m", "acoustic", _east_of_alert(900), -3, event="chainsaw", score=0.9),
            _reading(
                "saw-1100m", "acoustic", _east_of_alert(1100), -3, event="chainsaw", score=0.9
            ),
            _reading("saw-15d", "acoustic", _east_of_alert(100), -15, event="chainsaw", score=0.9),
            _reading("saw-after", "acoustic", _east_of_alert(100), 1, event="chainsaw", score=0.9),
            _reading("saw-weak", "acoustic", _east_of_alert(100), -1, event="chainsaw", score=0.3),
            _reading("gunshot", "acoustic", _east_of_alert(100), -1, event="gunshot", score=0.9),
            _reading("fire-in", "fire_hotspot", -55.389, 20),
            _reading("fire-out", "fire_hotspot", _east_of_alert(50), 20),
            _reading("fire-late", "fire_hotspot", -55.389, 61),
            _reading("p1-a", "patrol_gps", _east_of_alert(700), 2, track="t1"),
            _reading("p1-b", "patrol_gps", _east_of_alert(300), 2.01, track="t1"),
            _reading("p1-c", "patrol_gps", _east_of_alert(450), 2.02, track="t1"),
            _reading("p2", "patrol_gps", _east_of_alert(600), -5, track="t2"),
        ]
    )
    alerts = pd.DataFrame({"alert_id": ["a"], "alert_date": [WHEN], "geometry": [ALERT]})
    found = evidence_geopandas(alerts, readings)
    rows = {(r.kind, r.evidence_id): r for r in found.itertuples()}
    assert set(rows) == {("acoustic", "saw-900m"), ("fire", "fire-in"), ("patrol", "t1")}
    assert abs(rows[("acoustic", "saw-900m")].distance_m - 900) < 2
    assert rows[("fire", "fire-in")].distance_m == 0
    assert abs(rows[("patrol", "t1")].distance_m - 300) < 2  # the closest fix of the track


def test_pair_distances_project_each_polygon_once() -> None:
    polygons = [ALERT, ALERT, box(-55.0, -7.0, -54.999, -6.999)]
    lon = [_east_of_alert(100), _east_of_alert(250), -55.0]
    lat = [LAT - 0.001, LAT - 0.001, -6.9995]
    distances = pair_distances(polygons, lon, lat, keys=[0, 0, 1])
    assert [round(d) for d in distances] == [100, 250, 0]
    assert list(pair_distances(polygons, lon, lat)) == list(distances)
