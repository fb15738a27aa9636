"""Scoring in a task logs its progress (windows) instead of staying silent or drawing a bar."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from canopywatch.detect.detector import build_detector, detect_area
from canopywatch_dev.detection.reference import SimulationSource
from canopywatch_dev.simulate import SimulationConfig, simulate


def test_scoring_logs_each_window_without_a_progress_bar(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    simulation = simulate(
        SimulationConfig(
            seed=3, width=96, height=80, start=dt.date(2021, 1, 1), end=dt.date(2021, 9, 30),
            n_clearings=1, cropland_share=0.0, forest_share=0.8, cloudiness=0.3,
        )
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="canopywatch.detect.detector"):
        detect_area(
            SimulationSource(simulation), build_detector("harmonic"), aoi="p", window_size=48
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "canopywatch.detect.detector"]
    assert lines[0].startswith("p: scoring 4 window(s) of at most 48 px over ")
    assert lines[-1].startswith("p: scored window 4/4 (")
    assert capsys.readouterr().err == ""  # no tqdm bar on stderr (a task logs stderr as errors)
