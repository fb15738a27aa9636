"""Checks that the tools the local platform needs are installed, with a fix for each.

``require("java", "postgres")`` raises :class:`PrerequisiteError` naming everything that
is missing and what to run (``scripts/bootstrap.sh ...`` or the package to install).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from canopywatch.settings import Settings
from canopywatch_dev.platform.paths import bin_dir, kafka_lib_dir
from canopywatch_dev.platform.process import PlatformError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
MIN_JAVA = 17


class PrerequisiteError(PlatformError):
    """A tool or installed artefact is missing."""


def _java(_: Settings) -> str | None:
    java = shutil.which("java")
    if java is None:
        return "java not found on PATH: install a JDK/JRE >= 17 (apt-get install openjdk-17-jre-headless)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        return f"cannot tell the version of {java}; Java >= {MIN_JAVA} is needed"
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        return f"{java} is Java {major}; Java >= {MIN_JAVA} is needed"
    return None


def _tool(name: str, hint: str) -> Callable[[Settings], str | None]:
    def check(_: Settings) -> str | None:
        return None if shutil.which(name) else f"{name} not found on PATH: {hint}"

    return check


def _postgres(_: Settings) -> str | None:
    missing = [p.name for p in (PG_BIN / "initdb", PG_BIN / "postgres") if not p.exists()]
    if missing:
        return (
            f"PostgreSQL 15 binaries missing ({', '.join(missing)} in {PG_BIN}): "
            "run scripts/bootstrap.sh services (apt-get install postgresql-15 postgresql-15-postgis-3)"
        )
    if not POSTGIS_CONTROL.exists():
        return (
            "PostGIS 3 for PostgreSQL 15 missing: run scripts/bootstrap.sh services "
            "(apt-get install postgresql-15-postgis-3)"
        )
    return None


def _kafka_jars(settings: Settings) -> str | None:
    lib = kafka_lib_dir(settings)
    if not any(lib.glob("kafka_2.13-*.jar")):
        return f"Kafka jars missing in {lib}: run scripts/bootstrap.sh services"
    return None


def minio_binary(settings: Settings) -> Path | None:
    """The MinIO server binary: ``<home>/bin/minio``, else ``minio`` on PATH."""
    local = bin_dir(settings) / "minio"
    if local.exists():
        return local
    found = shutil.which("minio")
    return Path(found) if found else None


def _minio(settings: Settings) -> str | None:
    if minio_binary(settings) is None:
        return f"MinIO binary missing ({bin_dir(settings) / 'minio'}): run scripts/bootstrap.sh services"
    return None


def airflow_binary() -> Path | None:
    """The ``airflow`` entry point next to this interpreter, else on PATH."""
    local = Path(sys.executable).parent / "airflow"
    if local.exists():
        return local
    found = shutil.which("airflow")
    return Path(found) if found else None


def _airflow(_: Settings) -> str | None:
    if airflow_binary() is None:
        return "airflow not installed in this environment: run scripts/bootstrap.sh python"
    return None


CHECKS: dict[str, Callable[[Settings], str | None]] = {
    "java": _java,
    "mvn": _tool("mvn", "install Maven >= 3.8 (apt-get install maven)"),
    "go": _tool("go", "install Go >= 1.24 (https://go.dev/dl, or apt-get install golang)"),
    "postgres": _postgres,
    "kafka-jars": _kafka_jars,
    "minio": _minio,
    "airflow": _airflow,
}


def problems(settings: Settings, *names: str) -> list[str]:
    """Messages for each named prerequisite that is not met (all of them when none named)."""
    found = []
    for name in names or tuple(CHECKS):
        message = CHECKS[name](settings)
        if message:
            found.append(message)
    return found


def require(settings: Settings, *names: str) -> None:
    """Raise :class:`PrerequisiteError` if any named prerequisite is not met."""
    found = problems(settings, *names)
    if found:
        raise PrerequisiteError("missing prerequisite: " + "; ".join(found))
