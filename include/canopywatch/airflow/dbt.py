"""The dbt marts of ``scene_curation`` as a Cosmos task group, rendered from the manifest.

``scripts/bootstrap.sh dbt`` writes the manifest (``dbt parse``, offline); the DAG renders
from it at parse time without running dbt. Without a manifest Cosmos parses the project
itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from canopywatch.airflow.ids import POSTGIS_DBT_CONN
from canopywatch.settings import REPO_ROOT, Settings

DBT_PROJECT = REPO_ROOT / "dbt"


def dbt_manifest(settings: Settings) -> Path:
    """Where ``dbt parse`` (scripts/bootstrap.sh dbt) writes the manifest."""
    return settings.home / "dbt" / "target" / "manifest.json"


def dbt_schema(settings: Settings) -> str:
    """The schema of the dbt models: ``analytics``, or ``<catalog schema>_analytics``."""
    return "analytics" if settings.pg_schema == "public" else f"{settings.pg_schema}_analytics"


def dbt_load_method(manifest: Path) -> LoadMode:
    """The manifest when bootstrap has parsed the project; else Cosmos' own parser (no dbt)."""
    return LoadMode.DBT_MANIFEST if manifest.exists() else LoadMode.CUSTOM


def dbt_marts(
    settings: Settings,
    *,
    group_id: str = "dbt",
    select: list[str] | None = None,
    exclude: list[str] | None = None,
    **kwargs: Any,
) -> DbtTaskGroup:
    """Staging views and marts on PostGIS, each model followed by its tests (``select`` /
    ``exclude``: dbt selectors, e.g. ``["tag:sensors"]``; default every model)."""
    manifest = dbt_manifest(settings)
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=manifest if manifest.exists() else None,
            project_name="canopywatch",
            env_vars={"CANOPYWATCH_PG_SCHEMA": settings.pg_schema},
        ),
        profile_config=ProfileConfig(
            profile_name="canopywatch",
            target_name="airflow",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=POSTGIS_DBT_CONN, profile_args={"schema": dbt_schema(settings)}
            ),
        ),
        render_config=RenderConfig(
            load_method=dbt_load_method(manifest),
            test_behavior=TestBehavior.AFTER_EACH,
            # a test across two models (relationships) runs once both are built
            should_detach_multiple_parents_tests=True,
            select=select or [],
            exclude=exclude or [],
        ),
        execution_config=ExecutionConfig(
            dbt_executable_path=str(Path(sys.executable).with_name("dbt"))
        ),
        operator_args={"install_deps": False},
        **kwargs,
    )
