from pathlib import Path

import pytest

from canopywatch.settings import CDSE_SH_BASE_URL, Settings, SettingsError


def test_defaults_point_at_the_real_cdse_and_local_platform():
    settings = Settings.from_env({})
    assert settings.sh_base_url == CDSE_SH_BASE_URL
    assert settings.pg_port == 55432
    assert settings.topic("alerts") == "canopywatch.alerts"


def test_prefixed_environment_overrides(tmp_path):
    settings = Settings.from_env(
        {
            "CANOPYWATCH_HOME": str(tmp_path),
            "CANOPYWATCH_PG_PORT": "6543",
            "CANOPYWATCH_MAX_AOI_KM2": "10.5",
            "CANOPYWATCH_SH_BASE_URL": "http://127.0.0.1:1",
            "PG_PORT": "1",
        }
    )
    assert settings.home == Path(tmp_path).resolve()
    assert settings.pg_port == 6543
    assert settings.max_aoi_km2 == 10.5
    assert settings.sh_base_url == "http://127.0.0.1:1"


def test_bad_values_name_the_variable():
    with pytest.raises(SettingsError, match="CANOPYWATCH_PG_PORT"):
        Settings.from_env({"CANOPYWATCH_PG_PORT": "five"})


def test_secret_is_not_in_repr():
    settings = Settings.from_env({"CANOPYWATCH_CDSE_CLIENT_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(settings)


def test_every_credential_comes_from_the_environment():
    settings = Settings.from_env(
        {
            "CANOPYWATCH_PG_PASSWORD": "pg-pass",
            "CANOPYWATCH_S3_ACCESS_KEY": "access",
            "CANOPYWATCH_S3_SECRET_KEY": "s3-secret",
            "CANOPYWATCH_CDSE_CLIENT_ID": "client",
            "CANOPYWATCH_CDSE_CLIENT_SECRET": "cdse-secret",
        }
    )
    assert settings.postgres_params()["password"] == "pg-pass"
    assert (settings.s3_access_key, settings.s3_secret_key) == ("access", "s3-secret")
    assert (settings.cdse_client_id, settings.cdse_client_secret) == ("client", "cdse-secret")
    for secret in ("pg-pass", "s3-secret", "cdse-secret"):
        assert secret not in repr(settings)


def test_no_password_leaves_it_to_libpq():
    assert "password" not in Settings.from_env({}).postgres_params()


def test_the_product_never_reads_platform_secrets():
    root = Path(__file__).resolve().parents[2] / "include" / "canopywatch"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "secrets_dir" not in text and "secrets/" not in text, path
