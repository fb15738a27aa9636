"""A small ``dvc repro`` of ml/ (simulate -> features -> train -> evaluate), offline, with a
local remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_dvc_repro_offline(tmp_path: Path) -> None:
    from canopywatch_dev.detection.ml_project import dvc_executable, tiny_ml_project

    dvc = dvc_executable()
    assert dvc.exists(), "dvc is missing from the venv: scripts/bootstrap.sh python"
    project = tiny_ml_project(tmp_path, size_px=64, n_clearings=4, rounds=20)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def run(*args: str) -> None:
        subprocess.run([str(dvc), *args], cwd=project, env=env, check=True, capture_output=True)

    run("remote", "add", "-d", "local", str(tmp_path / "store"))
    run("repro")
    run("push")
    metrics = json.loads((project / "metrics.json").read_text())
    assert {"statistical baseline", "XGBoost"} <= set(metrics)
    card = json.loads((project / "models" / "s2" / "model_card.json").read_text())
    assert card["training_data"]["delta_version"] == 0
    assert any((tmp_path / "store").rglob("*"))
