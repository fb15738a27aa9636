"""A small ``dvc repro`` of ml/ (simulate -> features -> train -> evaluate), offline, with a
local remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_small_dvc_repro_offline(tmp_path: Path) -> None:
    dvc = Path(sys.executable).parent / "dvc"
    assert dvc.exists(), "dvc is missing from the venv: scripts/bootstrap.sh python"
    project = tmp_path / "ml"
    project.mkdir()
    for name in ("dvc.yaml", "train.py", "evaluate.py"):
        shutil.copy(ROOT / "ml" / name, project / name)
    (tmp_path / "include").symlink_to(ROOT / "include")
    params = yaml.safe_load((ROOT / "ml" / "params.yaml").read_text())
    params["scenarios"].update(
        types=["typical", "small_clearings"],
        train_seeds_per_type=1,
        heldout_seeds_per_type=1,
        size_px=64,
        n_clearings=4,
    )
    params["train"]["rounds"] = 20
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def run(*args: str) -> None:
        subprocess.run([str(dvc), *args], cwd=project, env=env, check=True, capture_output=True)

    run("init", "--no-scm", "-q")
    run("config", "core.analytics", "false")
    run("remote", "add", "-d", "local", str(tmp_path / "store"))
    run("repro")
    run("push")
    metrics = json.loads((project / "metrics.json").read_text())
    assert {"statistical baseline", "XGBoost"} <= set(metrics)
    card = json.loads((project / "models" / "s2" / "model_card.json").read_text())
    assert card["training_data"]["delta_version"] == 0
    assert any((tmp_path / "store").rglob("*"))
