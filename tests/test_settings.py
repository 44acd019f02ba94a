"""Settings: every CONSENTRY_* variable parsed, described, documented; secrets redacted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from consentry.errors import InvalidSetting
from consentry.settings import REDACTED, Settings

DOCS = Path(__file__).parent.parent / "docs" / "settings.md"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("./consentry-data")
    assert settings.port == 8000
    assert settings.max_body_bytes == 1_048_576


def test_reads_prefixed_variables() -> None:
    settings = Settings.from_env(
        {"CONSENTRY_PORT": "9001", "CONSENTRY_DATA_DIR": "/srv/consentry", "OTHER_PORT": "1"}
    )
    assert settings.port == 9001
    assert settings.data_dir == Path("/srv/consentry")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONSENTRY_PORT", "eighty"),
        ("CONSENTRY_PORT", "70000"),
        ("CONSENTRY_MAX_BODY_BYTES", "10"),
        ("CONSENTRY_LOG_LEVEL", "loud"),
        ("CONSENTRY_DEFAULT_PHONE_REGION", "gb"),
        ("CONSENTRY_DB", "mysql://x"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidSetting, match=name):
        Settings.from_env({name: value})


def test_every_field_is_described() -> None:
    for f in dataclasses.fields(Settings):
        assert len(str(f.metadata["description"])) > 20, f.name


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    for name, _value, _description in Settings.from_env({}).described():
        assert f"`{name}`" in text, f"{name} is missing from docs/settings.md"


def test_secrets_are_redacted_when_shown() -> None:
    settings = Settings.from_env(
        {
            "CONSENTRY_ADMIN_KEY": "very-secret-admin",
            "CONSENTRY_MASTER_KEY": "very-secret-master",
            "CONSENTRY_DB": "postgresql://app:very-secret-pw@db.example.com:5432/consentry",
        }
    )
    shown = {name: value for name, value, _ in settings.described()}
    text = repr(shown)
    assert "very-secret" not in text
    assert shown["CONSENTRY_ADMIN_KEY"] == REDACTED
    assert shown["CONSENTRY_DB"] == f"postgresql://app:{REDACTED}@db.example.com:5432/consentry"
    assert Settings.from_env({}).described()[2][1] == "(unset)"


def test_the_mail_server_password_is_redacted_when_shown() -> None:
    settings = Settings.from_env(
        {"CONSENTRY_SMTP_URL": "smtp+starttls://mailer:very-secret-pw@smtp.example.com:587"}
    )
    shown = {name: value for name, value, _ in settings.described()}
    assert "very-secret" not in repr(shown)
    assert shown["CONSENTRY_SMTP_URL"] == f"smtp+starttls://mailer:{REDACTED}@smtp.example.com:587"
    assert shown["CONSENTRY_MAIL_FROM"] == "privacy@localhost"
    assert shown["CONSENTRY_BRAND_NAME"] == "Consentry"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONSENTRY_SMTP_URL", "http://smtp.example.com"),
        ("CONSENTRY_MAIL_FROM", "nobody"),
        ("CONSENTRY_BRAND_NAME", "Shop\r\nBcc: x@example.com"),
    ],
)
def test_bad_mail_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidSetting, match=name):
        Settings.from_env({name: value})


def test_no_secret_setting_shows_in_the_settings_repr() -> None:
    secrets_ = {
        "db": "postgresql://app:db-pass-7700@127.0.0.1:5432/consentry",
        "admin_key": "admin-key-7700",
        "master_key": "master-key-7700",
        "pkcs11_pin": "pin-7700-900123",
        "metrics_token": "metrics-token-7700",
        "alert_webhook": "http://alert-7700.example.com/hook",
        "smtp_url": "smtp://mail:smtp-pass-7700@127.0.0.1:25",
        "kafka_sasl_password": "sasl-pass-7700",
    }
    made = dataclasses.replace(Settings(), **secrets_)
    secret_fields = {f.name for f in dataclasses.fields(Settings) if f.metadata.get("secret")}
    assert secret_fields <= set(secrets_)
    for value in secrets_.values():
        assert value not in repr(made)
        assert value not in str(made)
