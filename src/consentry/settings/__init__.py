"""One typed Settings object read from CONSENTRY_* variables; every field described."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consentry.errors import InvalidSetting
from consentry.settings import rules
from consentry.settings.rules import PREFIX

REDACTED = "**********"
# The settings that are URLs: shown with their password redacted, the rest kept.
_URLS = frozenset({"db", "smtp_url"})


def _doc(description: str, *, secret: bool = False) -> dict[str, Any]:
    return {"description": description, "secret": secret}


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration. Build it with `Settings.from_env(os.environ)`; pass it explicitly."""

    data_dir: Path = field(
        default=Path("./consentry-data"),
        metadata=_doc("Directory holding the SQLite store and generated development keys."),
    )
    db: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "Database URL. Empty: a SQLite file `consentry.db` in the data directory. "
            "`postgresql://user:pass@host:port/name` selects PostgreSQL (psycopg 3).",
            secret=True,
        ),
    )
    admin_key: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "An API key accepted with role admin from start-up. Empty: `consentry serve` "
            "generates a development key into `admin.key` (0600) in the data directory.",
            secret=True,
        ),
    )
    master_key: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "Key-encryption key, 32 bytes as base64url. Empty: generated into `master.key` "
            "(0600) in the data directory with a warning; for development only. During a "
            "master rotation: the new key, a comma, the current one (docs/keys.md).",
            secret=True,
        ),
    )
    pkcs11_module: str = field(
        default="",
        metadata=_doc(
            "Path of a PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`). Set: the "
            "key-encryption key lives in that token and never leaves it (CONSENTRY_MASTER_KEY "
            "is then not used)."
        ),
    )
    pkcs11_token: str = field(
        default="", metadata=_doc("Label of the PKCS#11 token holding the key-encryption key.")
    )
    pkcs11_pin: str = field(
        repr=False, default="", metadata=_doc("User PIN of the PKCS#11 token.", secret=True)
    )
    pkcs11_key_label: str = field(
        default="consentry-kek",
        metadata=_doc(
            "Label of the AES-256 key-encryption key in the token; created there on first "
            "start when none has it."
        ),
    )
    host: str = field(default="127.0.0.1", metadata=_doc("Address `consentry serve` listens on."))
    port: int = field(default=8000, metadata=_doc("Port `consentry serve` listens on."))
    public_url: str = field(
        default="",
        metadata=_doc(
            "Base URL of the links Consentry makes (portal links, enrolment links), as customers "
            "and staff reach it. "
            "Empty: `http://HOST:PORT` (`https://` with CONSENTRY_SSL_CERTFILE)."
        ),
    )
    workers: int = field(
        default=1,
        metadata=_doc(
            "Worker processes of `consentry serve` (one per core is a good start). Migrations "
            "and keys are prepared once before the workers start."
        ),
    )
    max_body_bytes: int = field(
        default=1_048_576,
        metadata=_doc("Largest accepted request body in bytes; larger is refused (413)."),
    )
    default_phone_region: str = field(
        default="",
        metadata=_doc(
            "ISO 3166 region used to read phone numbers written without a country code "
            "(e.g. `GB`). Empty: such numbers are refused, so no number is guessed into "
            "another person's identity."
        ),
    )
    digital_consent_age: int = field(
        default=16,
        metadata=_doc(
            "Age of digital consent (GDPR Art. 8: 13 to 16 by member state) for every "
            "jurisdiction but the UK, whose age is 13. Below it a grant needs "
            "`evidence.parental_authorization`."
        ),
    )
    token_ttl_seconds: int = field(
        default=86_400, metadata=_doc("Lifetime of a consent token in seconds (default 24 hours).")
    )
    issuer: str = field(default="consentry", metadata=_doc("The `iss` claim of consent tokens."))
    dp_budget: float = field(
        default=10.0,
        metadata=_doc(
            "Differential-privacy budget: the epsilon each API key may spend per UTC day on "
            "noisy queries (`dp_epsilon`); past it, `privacy_budget_exhausted`."
        ),
    )
    min_group_subjects: int = field(
        default=5,
        metadata=_doc(
            "Minimum group size of `POST /v1/query`: a group (or an ungrouped answer) drawn "
            "from fewer distinct subjects is left out of `rows` and counted in `suppressed`. "
            "1 turns the rule off."
        ),
    )
    audit_head_ms: int = field(
        default=1000,
        metadata=_doc(
            "How often, in milliseconds, the server signs a new audit tree head while the log "
            "grows (100 to 1000): every head is kept, so a rewritten past shows between them."
        ),
    )
    consent_proof_days: int = field(
        default=1095,
        metadata=_doc(
            "Days an erasure keeps the proof of past consent (ledger entries, notice hashes, "
            "evidence, keyed identity hashes) under the retention key, as legal claims "
            "(Art. 17(3)(e))."
        ),
    )
    withdrawal_purge_hours: int = field(
        default=24,
        metadata=_doc(
            "Hours within which events stored only for withdrawn purposes are deleted, and "
            "events kept for other purposes lose the withdrawn purpose and its fields."
        ),
    )
    dsr_poll_seconds: float = field(
        default=2.0,
        metadata=_doc(
            "Seconds between passes of the background runner of data-subject requests "
            "(deadlines, erasure steps, acknowledgements, withdrawal purge, consent expiry). 0: "
            "no background runner (`consentry requests run` does a pass)."
        ),
    )
    log_level: str = field(
        default="info", metadata=_doc("Log level: debug, info, warning or error.")
    )
    exporter: str = field(
        default="EU",
        metadata=_doc(
            "Region of the controller exporting data (EU, EEA, UK, CH, US, ...): decides whose "
            "data the GDPR Chapter V transfer rules cover and what counts as abroad."
        ),
    )
    retry_base_seconds: float = field(
        default=1.0,
        metadata=_doc(
            "First retry interval of a failed delivery, rights notice or mail, in seconds; it "
            "doubles with each attempt (with jitter) up to 5 minutes."
        ),
    )
    delivery_max_attempts: int = field(
        default=12,
        metadata=_doc(
            "Attempts before a delivery is dead-lettered (`consentry delivery resend` sends it "
            "again)."
        ),
    )
    delivery_timeout_seconds: float = field(
        default=10.0,
        metadata=_doc(
            "How long a receiver may take to answer one delivery POST, or a Kafka system's "
            "broker to acknowledge a batch's records (there at least 5), in seconds."
        ),
    )
    kafka_brokers: str = field(
        default="",
        metadata=_doc(
            "Kafka bootstrap servers (`host:port,host:port`) of the stream mode: "
            "`consentry stream` consumes `consentry.raw` there, and every process with it set "
            "publishes its ledger changes to the compacted topic `consentry.consents`. "
            "Empty: no stream mode, nothing published."
        ),
    )
    kafka_security: str = field(
        default="plaintext",
        metadata=_doc(
            "How the stream mode's clients reach CONSENTRY_KAFKA_BROKERS: `plaintext`, "
            "`tls`, `sasl_tls` (TLS with a SASL login) or `sasl_plaintext`. Plaintext, with a "
            "login or without, only to brokers at non-public addresses (raw events carry "
            "personal data): a broker name resolving to a public address is refused at start."
        ),
    )
    kafka_ca_file: str = field(
        default="",
        metadata=_doc(
            "PEM file of the certificate authorities the stream cluster's brokers are checked "
            "against over TLS. Empty: the system's CA store."
        ),
    )
    kafka_sasl_mechanism: str = field(
        default="SCRAM-SHA-512",
        metadata=_doc(
            "The SASL mechanism of `sasl_tls` and `sasl_plaintext`: `PLAIN`, `SCRAM-SHA-256` "
            "or `SCRAM-SHA-512`."
        ),
    )
    kafka_sasl_username: str = field(
        default="", metadata=_doc("The SASL user name of the stream mode's clients.")
    )
    kafka_sasl_password: str = field(
        repr=False,
        default="",
        metadata=_doc("The SASL password of the stream mode's clients.", secret=True),
    )
    kafka_raw_retention_hours: int = field(
        default=72,
        metadata=_doc(
            "`retention.ms` of `consentry.raw` in hours (applied when `consentry stream` "
            "creates or finds it): raw events hold personal data in clear and no erasure "
            "reaches them there, so they are kept only as long as replicas may be behind."
        ),
    )
    kafka_retention_hours: int = field(
        default=168,
        metadata=_doc(
            "`retention.ms` of the consented topics `consentry.consented.<purpose>` in hours, "
            "never more than the shortest retention of the purpose (applied when "
            "`consentry stream` creates or finds them). Erasures and withdrawal purges of a "
            "subject whose records went there wait this long plus 65 minutes at most."
        ),
    )
    stream_id: str = field(
        default="",
        metadata=_doc(
            "This stream replica's name, unique among replicas and stable across restarts (its "
            "Kafka transactional id and static group member id are `consentry-stream-<name>`): "
            "a replica started again under the same name aborts the transaction its "
            "predecessor left open and takes its partitions back at once. Empty: a new name "
            "each start (a killed replica's open transaction is then aborted after 10 seconds)."
        ),
    )
    stream_batch: int = field(
        default=500,
        metadata=_doc("Raw records `consentry stream` decides in one batch, at most (1-1000)."),
    )
    stream_batch_ms: int = field(
        default=50,
        metadata=_doc(
            "How long `consentry stream` waits to fill a batch before deciding what it has, "
            "in milliseconds."
        ),
    )
    delivery_worker: bool = field(
        default=True,
        metadata=_doc(
            "Run the delivery worker inside `consentry serve` (false: deliver elsewhere)."
        ),
    )
    body_timeout_seconds: float = field(
        default=15.0,
        metadata=_doc(
            "Seconds a client has to send a request's whole body once the server starts reading "
            "it; a body not in by then is refused (408) and the connection closed."
        ),
    )
    head_timeout_seconds: float = field(
        default=15.0,
        metadata=_doc(
            "Seconds a connection has to send a request's head (request line and headers) once "
            "it opens or its previous response is sent; a head not in by then is refused (408) "
            "and the connection closed."
        ),
    )
    allow_private_endpoints: bool = field(
        default=False,
        metadata=_doc(
            "Allow systems whose `endpoint` or `rights_endpoint` host is, or resolves to, a "
            "loopback, link-local or private address (tests, on-premises receivers). Off: such "
            "systems are refused (`endpoint_not_allowed`) and no delivery connects to such an "
            "address."
        ),
    )
    retention_sweep_seconds: float = field(
        default=3600.0,
        metadata=_doc(
            "Seconds between retention sweeps in `consentry serve` (events whose retention "
            "ended for every purpose are deleted, others lose the purposes whose retention "
            "ended); one sweep at a time across every process on the database. 0: no "
            "background sweep (`consentry retention sweep` runs one)."
        ),
    )
    job_lease_seconds: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a background job's lease lasts unless renewed (the request runner, the "
            "retention sweep, the alerts): of all the processes and machines on one database, "
            "only its holder runs a pass of that job, renewing it every third of this while the "
            "pass runs. A holder that dies leaves the job to the others after at most this long "
            "(one whose pass hangs keeps it). `consentry requests run` and `consentry retention "
            "sweep` run without it."
        ),
    )

    key_rotation_days: int = field(
        default=90,
        metadata=_doc(
            "Days after which the master key or the active signing key is due for rotation "
            "(`consentry_key_age_seconds`, alert `key_rotation_due`)."
        ),
    )
    assessment_large_scale_subjects: int = field(
        default=10_000,
        metadata=_doc(
            "Subjects from which a purpose's processing counts as large scale in its impact "
            "assessment (trigger `large_scale`, Art. 35(3)(b) and (c)): those who granted a "
            "consent purpose, every subject not erased for another."
        ),
    )
    metrics_token: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "A bearer token that may scrape `/metrics` (beside API keys with "
            "`compliance:read`). Empty: only such keys, and loopback clients when "
            "CONSENTRY_METRICS_LOOPBACK is on.",
            secret=True,
        ),
    )
    rate_limit: float = field(
        default=0.0,
        metadata=_doc(
            "Requests a second each secret API key may make (bursts of two seconds' worth), "
            "counted by each worker process; over it, 429 `rate_limited` with Retry-After. "
            "0: no limit. Withdrawals, consent writes that only deny or carry GPC, and "
            "objection requests are never limited."
        ),
    )
    browser_rate_limit: float = field(
        default=10.0,
        metadata=_doc(
            "Requests a second a browser key may make from each client address (its visitors "
            "share the key, so each is counted apart), counted by each worker process, with "
            "the same exceptions as CONSENTRY_RATE_LIMIT. 0: no limit."
        ),
    )
    portal_rate_limit: float = field(
        default=5.0,
        metadata=_doc(
            "Requests a second each portal session may make, counted by each worker process; "
            "over it, a page saying when to try again (429, Retry-After). Withdrawing a "
            "consent is never limited. 0: no limit."
        ),
    )
    ssl_certfile: str = field(
        default="",
        metadata=_doc(
            "A PEM certificate (chain) for `consentry serve` to speak TLS itself, for an install "
            "without a proxy in front (`--ssl-certfile`); needs `CONSENTRY_SSL_KEYFILE`. The "
            "pages then count as served over TLS and every answer of the app carries HSTS. "
            "Empty: plain HTTP."
        ),
    )
    ssl_keyfile: str = field(
        default="",
        metadata=_doc(
            "The certificate's private key, PEM, not encrypted (`--ssl-keyfile`); readable by "
            "the server's user alone. Needs `CONSENTRY_SSL_CERTFILE`."
        ),
    )
    trust_proxy: bool = field(
        default=False,
        metadata=_doc(
            "The pages (dashboard, portal) are served over TLS only, loopback excepted: on, "
            "a request counts as TLS when the proxy in front says so (X-Forwarded-Proto: "
            "https), and uvicorn takes the client address from X-Forwarded-For. Off, no "
            "forwarding header is believed. Only for a proxy that sets those headers itself "
            "on every request."
        ),
    )
    metrics_loopback: bool = field(
        default=True,
        metadata=_doc(
            "Let a client on the loopback address scrape `/metrics` without a key, unless the "
            "request came through a proxy (it carries Forwarded or X-Forwarded-For). A reverse "
            "proxy on the same host must add X-Forwarded-For (or Forwarded, X-Real-IP), or "
            "this must be off: otherwise anyone it forwards scrapes as a loopback client."
        ),
    )
    alert_webhook: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "URL that receives alerts in Alertmanager's webhook format (version 4), firing and "
            "resolved; loopback and private addresses are allowed (the operator's own "
            "Alertmanager). Empty: no alerts are sent (`docs/alerts.yml` holds the same rules "
            "for Prometheus).",
            secret=True,
        ),
    )
    alert_interval_seconds: float = field(
        default=5.0,
        metadata=_doc("Seconds between evaluations of the alert rules for the alert webhook."),
    )

    smtp_url: str = field(
        repr=False,
        default="",
        metadata=_doc(
            "The mail server that sends portal codes: `smtp://host:port` (plain, for a relay "
            "on the same host), `smtp+starttls://user:pass@host:587` or "
            "`smtps://user:pass@host:465`. Empty: no mail is sent and the portal offers no "
            "e-mail code entry.",
            secret=True,
        ),
    )
    mail_from: str = field(
        default="privacy@localhost",
        metadata=_doc("The sender address (`From`) of the mail Consentry sends (portal codes)."),
    )
    brand_name: str = field(
        default="Consentry",
        metadata=_doc(
            "The product or company name customers know: shown on every page and used in the "
            "text of the mail Consentry sends them (portal codes)."
        ),
    )
    brand_logo: str = field(
        default="",
        metadata=_doc(
            "A logo file the pages show beside the brand name: PNG, JPEG, WebP or SVG, at most "
            "256 KiB, read once at start and served at /brand/logo."
        ),
    )
    privacy_policy_url: str = field(
        default="",
        metadata=_doc(
            "The privacy policy every page links to: an https:// address, or a path on this "
            "host. Empty: no link."
        ),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read CONSENTRY_<FIELD> variables; raise InvalidSetting naming a bad one."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            if name not in environ:
                continue
            raw = environ[name]
            values[f.name] = _parse(name, raw, f.default)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise InvalidSetting naming the first setting that breaks its rule (rules.py)."""
        rules.check(self)

    def base_url(self) -> str:
        """Where customers and staff reach the gateway: CONSENTRY_PUBLIC_URL, or
        `http(s)://HOST:PORT` (https when `consentry serve` speaks TLS itself)."""
        if self.public_url:
            return self.public_url
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def described(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, description) for every field, secrets redacted."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = _redact(f.name, value) if f.metadata["secret"] else str(value)
            rows.append((PREFIX + f.name.upper(), shown, str(f.metadata["description"])))
        return rows


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise InvalidSetting(f"{name} must be true or false")
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise InvalidSetting(f"{name} must be a number") from None
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise InvalidSetting(f"{name} must be an integer") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw


def _redact(name: str, value: object) -> str:
    if not value:
        return "(unset)"
    if name in _URLS:
        # The URL's shape helps an operator; its password does not belong on a screen.
        return re.sub(r"://([^:/@]*):[^@]*@", rf"://\1:{REDACTED}@", str(value))
    return REDACTED
