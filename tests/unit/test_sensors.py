"""Sensor readings: the message schema, CSV / JSON lines / FIRMS parsing, the checks
(unknown station, impossible values, far-future times), dead letters and the CLI."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from canopywatch.messages import DeadLetter, MessageError, SensorReading
from canopywatch.sensors.firms import acquisition_time, confidence_label, firms_fields
from canopywatch.sensors.ingest import ingest_rows
from canopywatch.sensors.readings import InputError, check_row, open_input, read_rows
from canopywatch.sensors.stations import Station, StationError, load_stations
from canopywatch.transport import UndeliveredError

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
STATIONS = {
    "wx-00": Station("wx-00", ("weather", "soil_moisture"), -55.37, -7.06),
    "ac-00": Station("ac-00", ("acoustic",), -55.38, -7.07),
}
# two VIIRS rows as FIRMS serves them (acq_time without its leading zero) and one MODIS
FIRMS_VIIRS = """latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight
-7.06817,-55.36220,342.86,0.44,0.50,2024-03-09,1736,N20,VIIRS,n,2.0NRT,302.48,25.33,D
-7.07001,-55.36300,330.10,0.39,0.36,2024-03-09,542,N,VIIRS,h,2.0NRT,290.01,3.10,N
"""
FIRMS_MODIS = """latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_t31,frp,daynight
-7.06,-55.36,318.5,1.1,1.0,2024-03-09,1405,A,MODIS,84,6.1NRT,299.2,12.4,D
"""


class FakeProducer:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.refuse = refuse

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, *, on_delivery: Any = None
    ) -> None:
        self.sent.append((topic, value, key))
        if on_delivery is not None:
            on_delivery("broker refused" if self.refuse else None, None)

    def flush(self, timeout: float = 0) -> int:
        return 0

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(value) for t, value, _ in self.sent if t == topic]


def _rows(text: str, fmt: str = "auto") -> list[Any]:
    return list(read_rows(io.StringIO(text), fmt))


def test_reading_roundtrip_and_stable_id() -> None:
    fields = dict(
        station_id="wx-00",
        kind="weather",
        observed_at="2024-03-01T10:00:00+02:00",
        lon=-55.37,
        lat=-7.06,
        rain_mm=1.2,
        temperature_c=26.5,
        humidity_pct=88,
    )
    reading = SensorReading.model_validate(fields)
    assert reading.observed_at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert reading.key == "wx-00"
    again = SensorReading.model_validate(fields)
    assert again.reading_id == reading.reading_id and len(reading.reading_id) == 16
    assert SensorReading.from_json(reading.to_bytes()) == reading
    other = SensorReading.model_validate({**fields, "observed_at": "2024-03-01T09:00:00Z"})
    assert other.reading_id != reading.reading_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"humidity_pct": 130}, "humidity_pct: Input should be less than or equal to 100"),
        ({"temperature_c": 80}, "temperature_c: Input should be less than or equal to 60"),
        ({"rain_mm": -1}, "rain_mm: Input should be greater than or equal to 0"),
        ({"humidity_pct": None}, "a weather reading needs humidity_pct"),
        ({"observed_at": "2024-03-01T10:00:00"}, "observed_at needs a time zone"),
        ({"kind": "seismic"}, "kind: Input should be"),
        ({"schema_version": 2}, "newer than this reader"),
    ],
)
def test_reading_rejects_impossible_values(change: dict[str, Any], message: str) -> None:
    fields = dict(
        station_id="wx-00",
        kind="weather",
        observed_at="2024-03-01T10:00:00Z",
        lon=-55.37,
        lat=-7.06,
        rain_mm=1.2,
        temperature_c=26.5,
        humidity_pct=88,
    )
    with pytest.raises(MessageError, match=message.replace("(", r"\(")):
        SensorReading.from_json(json.dumps({**fields, **change}))


def test_firms_viirs_and_modis_rows() -> None:
    viirs = [r.fields for r in _rows(FIRMS_VIIRS)]
    assert viirs[0]["observed_at"] == datetime(2024, 3, 9, 17, 36, tzinfo=UTC)
    assert viirs[1]["observed_at"] == datetime(2024, 3, 9, 5, 42, tzinfo=UTC)
    assert viirs[0]["station_id"] == "firms-viirs-n20"
    assert (viirs[0]["fire_confidence"], viirs[1]["fire_confidence"]) == ("nominal", "high")
    assert viirs[0]["frp_mw"] == 25.33 and viirs[0]["brightness_k"] == 342.86
    modis = _rows(FIRMS_MODIS)[0].fields
    assert modis["instrument"] == "MODIS" and modis["fire_confidence"] == "high"
    assert modis["brightness_k"] == 318.5
    reading = check_row(viirs[0], {}, NOW)  # hotspots need no registered station
    assert reading.kind == "fire_hotspot" and reading.lon == -55.3622
    assert acquisition_time("2024-01-02", "7") == datetime(2024, 1, 2, 0, 7, tzinfo=UTC)
    assert confidence_label("29", "MODIS") == "low"
    with pytest.raises(ValueError, match="HHMM"):
        acquisition_time("2024-01-02", "25:61")
    with pytest.raises(ValueError, match="lacks frp"):
        firms_fields(
            {
                "latitude": "1",
                "longitude": "2",
                "acq_date": "2024-01-01",
                "acq_time": "1200",
                "satellite": "N",
                "confidence": "n",
                "frp": "",
            }
        )


def test_checks_station_kind_future_and_location() -> None:
    base = {
        "kind": "acoustic",
        "event": "chainsaw",
        "score": 0.9,
        "observed_at": "2024-03-10T11:00:00Z",
    }
    reading = check_row({**base, "station_id": "ac-00"}, STATIONS, NOW)
    assert (reading.lon, reading.lat) == (-55.38, -7.07)  # from the registry
    with pytest.raises(ValueError, match="unknown station 'ac-99'"):
        check_row({**base, "station_id": "ac-99"}, STATIONS, NOW)
    with pytest.raises(ValueError, match="reports weather, soil_moisture, not 'acoustic'"):
        check_row({**base, "station_id": "wx-00"}, STATIONS, NOW)
    with pytest.raises(ValueError, match="in the future"):
        check_row(
            {**base, "station_id": "ac-00", "observed_at": "2024-03-11T12:00:00Z"}, STATIONS, NOW
        )
    # a clock a few minutes ahead is skew, not an error
    assert check_row(
        {**base, "station_id": "ac-00", "observed_at": "2024-03-10T12:20:00Z"}, STATIONS, NOW
    )
    with pytest.raises(ValueError, match="before 2000"):
        check_row(
            {**base, "station_id": "ac-00", "observed_at": "1970-01-01T00:00:00Z"}, STATIONS, NOW
        )
    with pytest.raises(
        ValueError, match="event: Input should be 'chainsaw', 'gunshot' or 'vehicle'"
    ):
        check_row({**base, "station_id": "ac-00", "event": "parrot"}, STATIONS, NOW)


def test_ingest_publishes_good_rows_and_dead_letters_bad_ones() -> None:
    text = "\n".join(
        [
            json.dumps(
                {
                    "station_id": "wx-00",
                    "kind": "weather",
                    "observed_at": "2024-03-10T10:00:00Z",
                    "rain_mm": 0,
                    "temperature_c": 27.5,
                    "humidity_pct": 80,
                }
            ),
            '{"station_id": "wx-00", "kind": "weather", ',  # cut line
            json.dumps(
                {
                    "station_id": "nope",
                    "kind": "soil_moisture",
                    "observed_at": "2024-03-10T10:00:00Z",
                    "soil_moisture_pct": 30,
                }
            ),
            json.dumps(
                {
                    "station_id": "wx-00",
                    "kind": "soil_moisture",
                    "observed_at": "2024-03-10T10:00:00Z",
                    "soil_moisture_pct": 140,
                }
            ),
            "",
            json.dumps([1, 2]),
            json.dumps(
                {
                    "station_id": "ac-00",
                    "kind": "acoustic",
                    "event": "gunshot",
                    "score": 0.5,
                    "observed_at": "2030-01-01T00:00:00Z",
                }
            ),
        ]
    )
    producer = FakeProducer()
    report = ingest_rows(_rows(text), STATIONS, producer, "cw.sensor-readings", now=NOW)
    good = producer.on("cw.sensor-readings")
    assert [g["kind"] for g in good] == ["weather"]
    assert producer.sent[0][2] == b"wx-00"
    letters = [DeadLetter.model_validate(d) for d in producer.on("cw.sensor-readings.dlq")]
    assert [(d.offset, d.partition) for d in letters] == [
        (2, -1),
        (3, -1),
        (4, -1),
        (6, -1),
        (7, -1),
    ]
    reasons = [d.error for d in letters]
    assert reasons[0].startswith("not JSON")
    assert "unknown station 'nope'" in reasons[1]
    assert "soil_moisture_pct: Input should be less than or equal to 100" in reasons[2]
    assert reasons[3] == "not a JSON object"
    assert "in the future" in reasons[4]
    assert letters[1].payload == text.splitlines()[2]
    assert report.total_published == 1 and len(report.rejected) == 5


def test_ingest_raises_when_the_broker_refuses() -> None:
    rows = _rows(FIRMS_VIIRS)
    with pytest.raises(UndeliveredError, match="2 refused"):
        ingest_rows(rows, {}, FakeProducer(refuse=True), "cw.sensor-readings", now=NOW)


def test_csv_rows_and_unreadable_input(tmp_path: Path) -> None:
    csv_text = (
        "station_id,kind,observed_at,rain_mm,temperature_c,humidity_pct,soil_moisture_pct\n"
        "wx-00,weather,2024-03-10T10:00:00Z,0.4,26.0,91,\n"
        "wx-00,soil_moisture,2024-03-10T10:00:00Z,,,,33.5\n"
        "wx-00,weather,2024-03-10T11:00:00Z,abc,26.0,91,\n"
        "wx-00,weather\n"
    )
    rows = _rows(csv_text)
    assert check_row(rows[0].fields, STATIONS, NOW).rain_mm == 0.4
    assert check_row(rows[1].fields, STATIONS, NOW).soil_moisture_pct == 33.5
    with pytest.raises(ValueError, match="rain_mm: Input should be a valid number"):
        check_row(rows[2].fields, STATIONS, NOW)
    assert rows[3].error == "2 cells, the header has 7"
    with pytest.raises(InputError, match="header needs station_id"):
        _rows("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="empty input"):
        _rows("\n\n")
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8"):
        open_input(str(binary))
    with pytest.raises(InputError, match="no such file"):
        open_input(str(tmp_path / "missing.csv"))


def test_station_registry(tmp_path: Path) -> None:
    good = tmp_path / "s.csv"
    good.write_text("station_id,kinds,lon,lat,aoi_id\nwx-1,weather;soil_moisture,-55.3,-7.0,a\n")
    assert load_stations(good)["wx-1"].kinds == ("weather", "soil_moisture")
    bad = tmp_path / "b.csv"
    bad.write_text("station_id,kinds,lon,lat\nwx-1,weather,-255,-7\n")
    with pytest.raises(StationError, match=r"line 2: lon/lat -255\.0, -7\.0 out of range"):
        load_stations(bad)
    bad.write_text("station_id,kinds,lon,lat\nwx-1,radar,-55,-7\n")
    with pytest.raises(StationError, match="kinds 'radar'"):
        load_stations(bad)


def test_cli_unreadable_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from canopywatch.cli import main

    stations = tmp_path / "stations.csv"
    stations.write_text("station_id,kinds,lon,lat\nwx-00,weather,-55.37,-7.06\n")
    assert (
        main(["sensors", "ingest", str(tmp_path / "none.jsonl"), "--stations", str(stations)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"canopywatch: {tmp_path / 'none.jsonl'}: no such file"]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    assert main(["sensors", "ingest", str(bad), "--stations", str(stations)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_simulator_has_the_artefacts() -> None:
    from shapely.geometry import box

    from canopywatch_dev.sensors import Clearing, simulate

    clearings = [
        Clearing(
            "ev-1", "clearing", datetime(2024, 3, 20).date(), box(-55.39, -7.09, -55.385, -7.085)
        ),
        Clearing(
            "ev-2",
            "burned_clearing",
            datetime(2024, 4, 2).date(),
            box(-55.37, -7.07, -55.365, -7.065),
        ),
    ]
    world = simulate(clearings, start=datetime(2024, 3, 1).date(), days=40, seed=3)
    weather = [r for r in world.readings if r["kind"] == "weather"]
    by_station: dict[str, list[dict[str, Any]]] = {}
    for r in weather:
        by_station.setdefault(r["station_id"], []).append(r)
    hours = 40 * 24
    # gaps: every weather station misses hours; duplicates: some acoustic events twice
    assert all(len(rows) < hours for rows in by_station.values())
    acoustic = [
        (r["station_id"], r["observed_at"], r["event"])
        for r in world.readings
        if r["kind"] == "acoustic"
    ]
    assert len(acoustic) > len(set(acoustic))
    # late data: delivered two days after observation, so out of order in the file
    observed = [r["observed_at"] for r in world.readings]
    assert observed != sorted(observed)
    # chainsaws heard by the station placed for ev-1, before the clearing
    station = world.evidence_for["ev-1"][0]
    saws = [
        r
        for r in world.readings
        if r["station_id"] == station and r.get("event") == "chainsaw" and r["score"] >= 0.7
    ]
    assert saws and all(r["observed_at"] < "2024-03-20T13" for r in saws)
    # hotspots inside the burned clearing, in the FIRMS format
    assert "firms" in world.evidence_for["ev-2"]
    inside = [
        f
        for f in world.firms
        if clearings[1].geometry.contains(
            box(
                float(f["longitude"]),
                float(f["latitude"]),
                float(f["longitude"]),
                float(f["latitude"]),
            ).centroid
        )
    ]
    assert inside
    # every reading of the simulator passes the product's checks
    stations = {s.station_id: s for s in world.stations}
    now = datetime(2024, 4, 15, tzinfo=UTC)
    for row in world.readings[:500]:
        check_row({k: v for k, v in row.items() if not k.startswith("_")}, stations, now)
    for row in _rows(_firms_text(world.firms)):
        assert check_row(row.fields, {}, now).kind == "fire_hotspot"


def _firms_text(rows: list[dict[str, str]]) -> str:
    from canopywatch_dev.sensors import FIRMS_COLUMNS

    return "\n".join(
        [",".join(FIRMS_COLUMNS), *(",".join(r[c] for c in FIRMS_COLUMNS) for r in rows)]
    )
