"""``python -m canopywatch_dev.platform login`` prints every console's address and login."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from canopywatch.settings import Settings


def test_login_prints_every_console(tmp_path: Path) -> None:
    env = {"CANOPYWATCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, "-m", "canopywatch_dev.platform", "login"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    from canopywatch_dev.platform import airflow_local, minio, postgres

    settings = Settings.from_env(env)
    user, password = airflow_local.login(settings)
    access_key, secret_key = minio.credentials(settings)
    lines = done.stdout.splitlines()
    text = done.stdout
    assert f"Airflow UI: http://127.0.0.1:{settings.airflow_port}" in lines
    assert f"    user {user}  password {password}" in lines
    assert f"MinIO console: http://127.0.0.1:{settings.minio_console_port}" in lines
    assert f"    access key {access_key}  secret key {secret_key}" in lines  # whole, never cut
    assert f"PostGIS: postgresql://{settings.pg_user}@127.0.0.1:{settings.pg_port}/" in text
    assert f"password {postgres.password(settings)}" in text
    dsn_line = next(line for line in lines if line.startswith("PostGIS: "))
    assert postgres.password(settings) not in dsn_line  # the DSN itself carries no password
    assert "CDSE endpoint (local): http://127.0.0.1:" in text
    if (Path(airflow_local.__file__).parent / "api.py").exists():
        from canopywatch_dev.platform import api

        assert f"api key {api.admin_key(settings)}" in text
