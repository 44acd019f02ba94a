"""The rules a Settings value keeps (`Settings.validate`): each number in its range, each
choice among its values, the files it names readable and of the right kind."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from consentry.errors import InvalidSetting

if TYPE_CHECKING:
    from consentry.settings import Settings

PREFIX = "CONSENTRY_"
_DATABASES = ("sqlite:", "postgresql:", "postgresql+psycopg:")
# governance.models.Region, spelled here so settings import nothing of the domains.
_REGIONS = ("EU", "EEA", "UK", "CH", "US", "CA", "JP", "KR", "BR", "IN", "AU", "SG", "OTHER")
_SMTP_SCHEMES = ("smtp://", "smtp+starttls://", "smtps://")
# The logo files the pages may show, by suffix (web/brand.py serves them with these types).
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
LOGO_MAX_BYTES = 256 * 1024
# CONSENTRY_KAFKA_SECURITY: librdkafka's security.protocol for each, and whether it is TLS.
KAFKA_SECURITY: dict[str, tuple[str, bool]] = {
    "plaintext": ("PLAINTEXT", False),
    "tls": ("SSL", True),
    "sasl_tls": ("SASL_SSL", True),
    "sasl_plaintext": ("SASL_PLAINTEXT", False),
}
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# The inclusive range of each numeric setting.
_RANGES: dict[str, tuple[float, float]] = {
    "port": (1, 65535),
    "rate_limit": (0, 100_000),
    "browser_rate_limit": (0, 100_000),
    "portal_rate_limit": (0, 100_000),
    "workers": (1, 64),
    "dp_budget": (0.001, 1000),
    "min_group_subjects": (1, 1_000_000),
    # GDPR Art. 8: member states set it between 13 and 16.
    "digital_consent_age": (13, 16),
    "token_ttl_seconds": (60, 31 * 86_400),
    "retry_base_seconds": (0.01, 300),
    "delivery_max_attempts": (1, 100),
    "delivery_timeout_seconds": (0.1, 300),
    "audit_head_ms": (100, 1000),
    "consent_proof_days": (1, 36_500),
    "withdrawal_purge_hours": (1, 24 * 30),
    "dsr_poll_seconds": (0, 3600),
    "body_timeout_seconds": (0.1, 600),
    "head_timeout_seconds": (0.1, 600),
    "retention_sweep_seconds": (0, 7 * 86_400),
    "job_lease_seconds": (1, 3600),
    "key_rotation_days": (1, 3650),
    "assessment_large_scale_subjects": (1, 10**12),
    "alert_interval_seconds": (0.1, 3600),
    "kafka_retention_hours": (1, 24 * 3650),
    "kafka_raw_retention_hours": (1, 24 * 30),
    "stream_batch": (1, 1000),
    "stream_batch_ms": (1, 60_000),
}


def check(settings: Settings) -> None:
    """Raise InvalidSetting naming the first setting that breaks its rule."""
    for name, (low, high) in _RANGES.items():
        if not low <= getattr(settings, name) <= high:
            raise InvalidSetting(f"{PREFIX}{name.upper()} must be between {low:g} and {high:g}")
    if settings.max_body_bytes < 1024:
        raise InvalidSetting("CONSENTRY_MAX_BODY_BYTES must be at least 1024")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        raise InvalidSetting("CONSENTRY_LOG_LEVEL must be debug, info, warning or error")
    region = settings.default_phone_region
    if region and not re.fullmatch(r"[A-Z]{2}", region):
        raise InvalidSetting("CONSENTRY_DEFAULT_PHONE_REGION must be two capital letters")
    if settings.exporter not in _REGIONS:
        raise InvalidSetting("CONSENTRY_EXPORTER must be one of " + ", ".join(_REGIONS))
    if settings.db and not settings.db.startswith(_DATABASES):
        raise InvalidSetting("CONSENTRY_DB must be a sqlite: or postgresql: URL")
    if settings.smtp_url and not settings.smtp_url.startswith(_SMTP_SCHEMES):
        raise InvalidSetting(
            "CONSENTRY_SMTP_URL must be an smtp://, smtp+starttls:// or smtps:// URL"
        )
    if "@" not in settings.mail_from or any(c in settings.mail_from for c in "\r\n"):
        raise InvalidSetting("CONSENTRY_MAIL_FROM must be an e-mail address")
    if any(c in settings.brand_name for c in "\r\n") or not settings.brand_name.strip():
        raise InvalidSetting("CONSENTRY_BRAND_NAME must be one line of text")
    _check_brand(settings)
    if settings.pkcs11_module and not (settings.pkcs11_token and settings.pkcs11_pin):
        raise InvalidSetting(
            "CONSENTRY_PKCS11_MODULE needs CONSENTRY_PKCS11_TOKEN and CONSENTRY_PKCS11_PIN"
        )
    _check_kafka(settings)
    _check_tls(settings)
    if settings.alert_webhook and not settings.alert_webhook.startswith(("http://", "https://")):
        raise InvalidSetting("CONSENTRY_ALERT_WEBHOOK must be an http:// or https:// URL")


def _check_kafka(settings: Settings) -> None:
    if settings.kafka_security not in KAFKA_SECURITY:
        raise InvalidSetting(
            "CONSENTRY_KAFKA_SECURITY must be one of " + ", ".join(sorted(KAFKA_SECURITY))
        )
    if settings.kafka_security.startswith("sasl"):
        if settings.kafka_sasl_mechanism not in _SASL_MECHANISMS:
            raise InvalidSetting(
                "CONSENTRY_KAFKA_SASL_MECHANISM must be one of " + ", ".join(_SASL_MECHANISMS)
            )
        if not (settings.kafka_sasl_username and settings.kafka_sasl_password):
            raise InvalidSetting(
                f"CONSENTRY_KAFKA_SECURITY={settings.kafka_security} needs "
                "CONSENTRY_KAFKA_SASL_USERNAME and CONSENTRY_KAFKA_SASL_PASSWORD"
            )


def _check_brand(settings: Settings) -> None:
    """The logo can be shown; the policy link leads to https or this host and nowhere
    else (no `javascript:`, nothing that leaves the attribute)."""
    if settings.brand_logo:
        _check_logo(Path(settings.brand_logo))
    policy = settings.privacy_policy_url
    if policy and (
        not (policy.startswith("https://") or re.fullmatch(r"/(?!/)\S*", policy))
        or re.search(r"[\s\"'<>\\]", policy)
    ):
        raise InvalidSetting(
            "CONSENTRY_PRIVACY_POLICY_URL must be an https:// address or a path starting with /"
        )


def _check_tls(settings: Settings) -> None:
    """Both TLS files or neither; each readable, and the key the certificate's, so that a
    server never starts to fail at its first handshake."""
    if not (settings.ssl_certfile or settings.ssl_keyfile):
        return
    if not (settings.ssl_certfile and settings.ssl_keyfile):
        raise InvalidSetting(
            "CONSENTRY_SSL_CERTFILE and CONSENTRY_SSL_KEYFILE (--ssl-certfile, --ssl-keyfile) "
            "go together: set both, or neither"
        )
    for name, path in (("CERTFILE", settings.ssl_certfile), ("KEYFILE", settings.ssl_keyfile)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise InvalidSetting(
                f"CONSENTRY_SSL_{name} (--ssl-{name.lower()}) cannot be read: {path}: "
                f"{exc.strerror}"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback, so that an encrypted key fails here instead of prompting.
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidSetting(
            "CONSENTRY_SSL_CERTFILE and CONSENTRY_SSL_KEYFILE are not a PEM certificate and "
            f"its unencrypted private key ({getattr(exc, 'reason', None) or exc})"
        ) from None


def _check_logo(path: Path) -> None:
    if path.suffix.lower() not in LOGO_TYPES:
        raise InvalidSetting(
            "CONSENTRY_BRAND_LOGO must be a " + ", ".join(sorted(LOGO_TYPES)) + " file"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidSetting(f"CONSENTRY_BRAND_LOGO cannot be read: {exc.strerror}") from exc
    if not path.is_file() or not 0 < size <= LOGO_MAX_BYTES:
        raise InvalidSetting("CONSENTRY_BRAND_LOGO must be a file of 1 byte to 256 KiB")


def _no_password() -> str:
    raise ValueError("the private key is encrypted")
