"""The cluster home shares the local profile's installed artefacts (Kafka and Spark jars,
the MinIO binary): ``<cluster home>/lib`` and ``<cluster home>/bin/minio`` are links to
the ones ``scripts/bootstrap.sh`` put under the local home."""

from __future__ import annotations

from pathlib import Path

from canopywatch.settings import Settings
from canopywatch_dev.platform.paths import bin_dir, ensure_layout


def installed_home() -> Path:
    """Where ``scripts/bootstrap.sh`` installs (the local profile's home)."""
    return Settings.from_env().home


def link_installed(settings: Settings) -> None:
    """Create the cluster home's layout and its links to the installed jars and binary."""
    ensure_layout(settings)
    source = installed_home()
    if source.resolve() == settings.home.resolve():
        return
    links = {
        settings.home / "lib": source / "lib",
        bin_dir(settings) / "minio": bin_dir(Settings(home=source)) / "minio",
    }
    for link, target in links.items():
        if link.is_symlink() and link.resolve() != target.resolve():
            link.unlink()
        if not link.exists() and not link.is_symlink() and target.exists():
            link.symlink_to(target)
