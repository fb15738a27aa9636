"""What the DAG files read at parse time: the settings, the choices their Params offer and
``form`` (``canopywatch.params``: the trigger-form schemas and their readers).

Cheap to import (no provider, no raster or lake library), so a DAG file can use it at module
level.
"""

from __future__ import annotations

from datetime import timedelta

from canopywatch import params as form
from canopywatch.airflow.log_levels import quiet_library_loggers
from canopywatch.cog.profiles import DEFAULT_PROFILE, PROFILES
from canopywatch.evalscripts import FUNCTIONS
from canopywatch.settings import REPO_ROOT, Settings

__all__ = [
    "DEFAULT_FUNCTION",
    "DEFAULT_PROFILE",
    "FUNCTIONS",
    "LOOKBACK",
    "ML_DIR",
    "PROFILES",
    "REPO_ROOT",
    "SETTINGS",
    "Settings",
    "form",
]

# library noise silenced at its logger wherever a DAG file is parsed (every task process)
quiet_library_loggers()

SETTINGS = Settings.from_env()
DEFAULT_FUNCTION = "s2l2a_bands"
LOOKBACK = timedelta(days=2)  # scheduled monitoring: scenes are published hours after sensing
ML_DIR = SETTINGS.ml_project  # the DVC pipeline the training DAG reproduces (default ml/)
