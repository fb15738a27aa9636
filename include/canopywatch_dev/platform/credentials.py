"""Generated credentials, one JSON file per service under ``<home>/secrets`` (0600).

Values are created once (first start) and then only read; they are never logged.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from canopywatch.settings import Settings
from canopywatch_dev.platform.paths import ensure_layout, secrets_dir


def secret_file(settings: Settings, name: str) -> Path:
    return secrets_dir(settings) / f"{name}.json"


def new_password(length: int = 32) -> str:
    """A random password of URL/shell/DSN-safe characters."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def load_or_create(
    settings: Settings, name: str, factory: Callable[[], dict[str, str]]
) -> dict[str, str]:
    """Read ``secrets/<name>.json``; write ``factory()`` there first if it does not exist."""
    path = secret_file(settings, name)
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        path.chmod(0o600)
        return {str(k): str(v) for k, v in data.items()}
    ensure_layout(settings)
    values = factory()
    write_private(path, json.dumps(values, indent=2) + "\n")
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.chmod(0o600)
    tmp.replace(path)
