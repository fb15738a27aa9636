"""Scoring in a task logs its progress (windows) instead of staying silent or drawing a bar."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from canopywatch.detect.detector import build_detector, detect_area
from canopywatch_dev.detection.reference import SimulationSource
from canopywatch_dev.simulate import SimulationConfig, simulate


def forest_scene(end: dt.date) -> SimulationSource:
    """96 x 80 px of forest with one clearing, from 2021-01-01 to ``end``."""
    simulation = simulate(
        SimulationConfig(
            seed=3, width=96, height=80, start=dt.date(2021, 1, 1), end=end,
            n_clearings=1, cropland_share=0.0, forest_share=0.8, cloudiness=0.3,
        )
    )  # fmt: skip
    return SimulationSource(simulation)


def test_scoring_logs_each_window_without_a_progress_bar(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="canopywatch.detect.detector"):
        detect_area(
            forest_scene(dt.date(2021, 9, 30)), build_detector("harmonic"), aoi="p", window_size=48
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "canopywatch.detect.detector"]
    assert lines[0].startswith("p: scoring 4 window(s) of at most 48 px over ")
    assert lines[-1].startswith("p: scored window 4/4 (")
    assert capsys.readouterr().err == ""  # no tqdm bar on stderr (a task logs stderr as errors)


def test_two_windows_at_a_time_give_exactly_what_one_at_a_time_gives() -> None:
    simulation = simulate(
        SimulationConfig(
            seed=5, width=96, height=80, start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31),
            n_clearings=3, cropland_share=0.1, forest_share=0.7, cloudiness=0.3,
        )
    )  # fmt: skip
    source = SimulationSource(simulation)
    runs = [
        detect_area(source, build_detector("harmonic"), aoi="w", window_size=40, workers=n)
        for n in (1, 2)
    ]
    one, two = (run.pixel_alerts for run in runs)
    assert (one.first_day == two.first_day).all() and (one.status == two.status).all()
    assert (one.score == two.score).all() and (one.monitored == two.monitored).all()
    assert runs[0].alerts["alert_id"].tolist() == runs[1].alerts["alert_id"].tolist()
    assert (one.first_day >= 0).sum() > 0  # the clearings were found in both


def test_an_area_of_fewer_than_four_windows_is_split_the_same_on_every_machine() -> None:
    from affine import Affine
    from rasterio.crs import CRS

    from canopywatch.detect.detector import split_window_size
    from canopywatch.detect.observations import Grid

    def grid(height: int, width: int) -> Grid:
        return Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), width, height)

    assert split_window_size(grid(256, 256), 512) == 128  # 2 x 2 windows
    assert split_window_size(grid(600, 400), 512) == 300  # 2 x 2 instead of 2 x 1
    assert split_window_size(grid(130, 600), 512) == 150  # 4 x 1 along the long side
    assert split_window_size(grid(300, 120), 512) == 150  # 2: not under 128 px
    assert split_window_size(grid(1024, 1024), 512) == 512  # already 4 windows
    assert split_window_size(grid(96, 96), 512) == 512  # too small to split


@pytest.mark.parametrize("cores", [1, 2])
def test_a_small_area_is_scored_in_four_windows_whatever_the_cores(
    cores: int, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import canopywatch.detect.detector as detector_module

    monkeypatch.setattr(detector_module, "MIN_SPLIT_PX", 32)
    monkeypatch.setattr(detector_module.os, "cpu_count", lambda: cores)
    with caplog.at_level(logging.INFO, logger="canopywatch.detect.detector"):
        detect_area(forest_scene(dt.date(2021, 6, 30)), build_detector("harmonic"), aoi="s")
    lines = [r.getMessage() for r in caplog.records if r.name == "canopywatch.detect.detector"]
    assert lines[0].startswith("s: scoring 4 window(s) of at most 48 px over ")
    assert f"({min(cores, 2)} at a time)" in lines[0]
