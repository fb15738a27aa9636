"""A tiny copy of the DVC project ``ml/`` for tests: the stages and scripts as tracked, a
configuration small enough to reproduce in seconds, ``dvc init`` done."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from canopywatch.settings import REPO_ROOT


def dvc_executable() -> Path:
    """The venv's ``dvc`` (it is a dependency of the project)."""
    return Path(sys.executable).with_name("dvc")


def tiny_ml_project(
    root: Path, *, size_px: int = 48, n_clearings: int = 3, rounds: int = 10
) -> Path:
    """``root/ml``: ml/'s ``dvc.yaml``, ``train.py`` and ``evaluate.py``, ``root/include``
    linked to the repository's (the stages' ``../include`` dependencies), two scenario types
    of one seed each at ``size_px`` with ``n_clearings``, ``rounds`` boosting rounds; a DVC
    project without SCM or analytics."""
    import yaml

    project = root / "ml"
    project.mkdir()
    for name in ("dvc.yaml", "train.py", "evaluate.py"):
        shutil.copy(REPO_ROOT / "ml" / name, project / name)
    (root / "include").symlink_to(REPO_ROOT / "include")
    params = yaml.safe_load((REPO_ROOT / "ml" / "params.yaml").read_text())
    params["scenarios"].update(
        types=["typical", "small_clearings"],
        train_seeds_per_type=1,
        heldout_seeds_per_type=1,
        size_px=size_px,
        n_clearings=n_clearings,
    )
    params["train"]["rounds"] = rounds
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = str(dvc_executable())
    for args in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"]):
        subprocess.run([dvc, *args], cwd=project, check=True, capture_output=True)
    return project
