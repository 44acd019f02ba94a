"""The process-wide services, opened once: settings, store, keys and the domain services."""

from __future__ import annotations

import functools
import gc
import logging

from sqlalchemy import Connection

from consentry.audit import log as audit_log
from consentry.audit.heads import HeadSigner
from consentry.auth.api_keys import Authenticator
from consentry.auth.identity import IdentitySecrets
from consentry.auth.limits import Limits
from consentry.consent.cache import ConsentCache
from consentry.consent.expiry import Expiry
from consentry.consent.purposes import PurposeRegistry
from consentry.consent.service import ConsentService
from consentry.consent.tokens import TokenVerifier
from consentry.delivery.consumers import Consumers
from consentry.delivery.downstream import DeliveryDownstream
from consentry.delivery.joiners import Joiners
from consentry.delivery.mail import Mail, smtp_transport
from consentry.delivery.notices import RightsNotices
from consentry.delivery.outbox import Outbox, Pseudonyms
from consentry.delivery.sinks import RecordSink, Sink
from consentry.delivery.worker import DeliveryWorker
from consentry.dsr.codes import PortalCodes
from consentry.dsr.downstream import Downstream
from consentry.dsr.entry import PortalLinks
from consentry.dsr.erasure import Erasure
from consentry.dsr.portal import PortalSessions
from consentry.dsr.records import Notes
from consentry.dsr.requests import Requests
from consentry.dsr.results import Results
from consentry.dsr.runner import Runner
from consentry.governance.assessments import Assessments
from consentry.governance.datamap import DataMap
from consentry.governance.incidents import Incidents
from consentry.governance.inferences import Inferences
from consentry.governance.models import Region
from consentry.governance.retention import RetentionSweeper
from consentry.governance.vendors import VendorRegister
from consentry.ingest import treatments
from consentry.ingest.pipeline import Pipeline
from consentry.ingest.schemas import SchemaRegistry
from consentry.keys.material import (
    ASSESSMENT_NOTES,
    BLIND_INDEX,
    DELIVERY_PSEUDONYM,
    INCIDENT_NOTES,
    MAIL,
    PEOPLE_INDEX,
    PEOPLE_NOTES,
    PORTAL_CODES,
    PORTAL_LINKS,
    PORTAL_SESSIONS,
    PSEUDONYM,
    READ_PSEUDONYM,
    REQUEST_NOTES,
    RETENTION,
    TOKEN_INDEX,
    TOMBSTONE,
    named_secret,
)
from consentry.keys.ring import KeyEncryptionKey, key_store
from consentry.keys.rotation import note_master_key
from consentry.keys.signing import SigningKeys
from consentry.keys.subject_keys import SubjectKeys
from consentry.operations.alerts import Alerts
from consentry.people.service import People
from consentry.reads.exports import Exports
from consentry.reads.query import Reads
from consentry.reads.view import SubjectNames
from consentry.reads.visibility import Visibility
from consentry.settings import Settings
from consentry.storage.dialect import database_url, ensure_data_dir
from consentry.storage.engine import Store
from consentry.storage.leases import Leases
from consentry.storage.migrate import upgrade
from consentry.stream.cluster import client_config
from consentry.stream.consents import KafkaConsentFeed
from consentry.subjects.blind_index import BlindIndex
from consentry.subjects.resolve import Subjects

log = logging.getLogger(__name__)
# The named secrets the domains are built with (keys/material.py).
_SECRETS = (
    BLIND_INDEX,
    PSEUDONYM,
    TOKEN_INDEX,
    DELIVERY_PSEUDONYM,
    READ_PSEUDONYM,
    TOMBSTONE,
    RETENTION,
    REQUEST_NOTES,
    PORTAL_LINKS,
    PORTAL_SESSIONS,
    INCIDENT_NOTES,
    MAIL,
    PORTAL_CODES,
    PEOPLE_INDEX,
    PEOPLE_NOTES,
    ASSESSMENT_NOTES,
)


class Runtime:
    """Everything a request or a command needs, built from Settings; `close()` releases it."""

    # Stream mode's publisher of ledger changes (None without CONSENTRY_KAFKA_BROKERS).
    consent_feed: KafkaConsentFeed | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ensure_data_dir(settings.data_dir)
        # The key-encryption key ring, from the store the settings name (keys/ring.py).
        self.kek = KeyEncryptionKey(key_store(settings))
        # Every write transaction appends the audit entries it queued, last, with it.
        self.store = Store(database_url(settings), before_commit=[audit_log.flush])
        try:
            upgrade(self.store)
            self.subject_keys = SubjectKeys(self.kek)
            self.signing_keys = SigningKeys(self.kek)
            with self.store.write() as conn:
                secret = self._open_keys(conn)
            self.heads = HeadSigner(self.store, self.signing_keys, settings.audit_head_ms / 1000)
            self.subjects = Subjects(
                BlindIndex(secret[BLIND_INDEX]), self.subject_keys, secret[TOMBSTONE]
            )
            self._open_callers(settings)
            self.purposes = PurposeRegistry()
            self.schemas = SchemaRegistry()
            self.treatments = treatments.registry(secret[PSEUDONYM], secret[TOKEN_INDEX])
            # Stream mode: every ledger change this process commits is published too.
            self.consent_cache = ConsentCache(self.store, self._open_feed(settings))
            with self.store.read() as conn:
                self.purposes.all(conn)
                held = self.consent_cache.rebuild(conn)
            log.info("consent cache rebuilt from the ledger: %d subjects", held)
            # A system joining the consumers of a consented topic that holds records passes
            # the delivery gates for their subjects first (delivery/joiners.py).
            self.datamap = DataMap(
                self.kek,
                Joiners(self.purposes, self.schemas, self.consent_cache, Region(settings.exporter)),
            )
            self.vendors = VendorRegister()
            pseudonyms = Pseudonyms(secret[DELIVERY_PSEUDONYM])
            self.outbox = Outbox(
                self.datamap, self.subject_keys, pseudonyms, Region(settings.exporter)
            )
            self.rights_notices = RightsNotices(
                self.store,
                self.datamap,
                pseudonyms,
                settings.retry_base_seconds,
                send_timeout=settings.delivery_timeout_seconds,
            )
            # Requests and withdrawals reach downstream systems through the outbox and the
            # rights notices.
            self.downstream: Downstream = DeliveryDownstream(
                self.datamap, self.outbox, self.rights_notices
            )
            self.consent = ConsentService(
                settings,
                self.store,
                self.subjects,
                self.purposes,
                self.consent_cache,
                self.signing_keys,
                self.downstream,
            )
            # Accepted events go to the delivery outbox in the transaction that stores them.
            self.pipeline = Pipeline(
                self.store,
                self.subjects,
                self.schemas,
                self.consent,
                self.treatments,
                TokenVerifier(self.signing_keys, settings.issuer, self.reload_signing_keys),
                settings.default_phone_region,
                self.outbox,
            )
            self.reads = Reads(
                self.store,
                self.purposes,
                self.schemas,
                Visibility(self.consent_cache),
                SubjectNames(secret[READ_PSEUDONYM]),
                self.subject_keys,
                dp_budget=settings.dp_budget,
                min_group_subjects=settings.min_group_subjects,
            )
            self.exports = Exports(self.store, self.reads)
            self.erasure = Erasure(
                settings,
                self.store,
                self.subjects,
                self.consent,
                self.downstream,
                secret[RETENTION],
            )
            notes = Notes(secret[REQUEST_NOTES])
            self.requests = Requests(
                self.store, self.subjects, self.consent, self.downstream, self.erasure, notes
            )
            # Reports and copies, read by the API and by the customer's portal under the same
            # rules.
            self.results = Results(
                self.store,
                self.requests,
                self.subjects,
                self.purposes,
                self.schemas,
                self.downstream,
                settings.default_phone_region,
            )
            public_url = settings.base_url()
            self.portal_links = PortalLinks(secret[PORTAL_LINKS], self.subjects, public_url)
            self.portal_sessions = PortalSessions(self.store, secret[PORTAL_SESSIONS])
            # Mail (portal codes) goes out from a durable queue, sealed until sent.
            self.mail = Mail(
                self.store,
                secret[MAIL],
                settings.mail_from,
                smtp_transport(settings.smtp_url, settings.delivery_timeout_seconds),
                settings.retry_base_seconds,
                send_timeout=settings.delivery_timeout_seconds,
            )
            self.portal_codes = PortalCodes(
                self.store, secret[PORTAL_CODES], self.subjects, self.mail, settings.brand_name
            )
            # People who sign in to the pages (their enrolment links point at public_url).
            self.people = People(self.store, secret[PEOPLE_INDEX], secret[PEOPLE_NOTES], public_url)
            # Impact assessments, computed again when the configuration moves (Art. 35).
            self.assessments = Assessments(
                self.store,
                secret[ASSESSMENT_NOTES],
                self.purposes,
                self.schemas,
                self.datamap,
                Region(settings.exporter),
                settings.assessment_large_scale_subjects,
            )
            self._open_jobs(settings, notes)
            # The breach register; with no CONSENTRY_MASTER_KEY the key-encryption key is the
            # file in the data directory (API.md, Keys).
            self.incidents = Incidents(
                self.store,
                secret[INCIDENT_NOTES],
                self.datamap,
                self.purposes,
                self.subjects,
                file_key=self.kek.store.name == "file",
            )
            self.alerts = Alerts(settings, self.store, lease=self.leases)
            # Model inferences (Art. 22), decided as events are and sealed as their values.
            self.inferences = Inferences(self.store, self.subjects, self.consent, self.schemas)
        except BaseException:
            self.store.close()
            self.kek.close()
            raise

    def _open_keys(self, conn: Connection) -> dict[str, bytes]:
        """Note the master key in use, load the signing keys; the named secrets, by name."""
        note_master_key(conn, self.kek)
        secret = {name: named_secret(conn, self.kek, name) for name in _SECRETS}
        self.signing_keys.load(conn)
        return secret

    def _open_jobs(self, settings: Settings, notes: Notes) -> None:
        """The background jobs: a pass of each runs in one process at a time of all those
        on the database, the holder of the job's lease (storage/leases.py)."""
        self.leases = Leases(self.store, settings.job_lease_seconds)
        # Lapsed grants are acted on at each pass of the runner (and by the retention sweep).
        self.expiry = Expiry(self.store, self.consent, self.erasure)
        self.runner = Runner(
            self.store,
            self.requests,
            self.erasure,
            notes,
            settings.dsr_poll_seconds,
            expiry=self.expiry,
            lease=self.leases,
        )
        self.retention = RetentionSweeper(
            self.store,
            self.erasure,
            self.purposes,
            settings.retention_sweep_seconds,
            self.leases,
        )
        self.retention.add_step("expiry", lambda actor: self.expiry.expire_due(actor=actor))
        # Assessments follow a change nobody has read yet, and the volumes, at every sweep.
        self.retention.add_step("assessments", self.assessments.sweep)

    @functools.cached_property
    def consumers(self) -> Consumers:
        """Stream mode: who may read a subject's records on the consented topics (built when
        a replica first asks)."""
        return Consumers(
            self.datamap, self.purposes, self.consent_cache, Region(self.settings.exporter)
        )

    def _open_callers(self, settings: Settings) -> None:
        """Who may call, and how often."""
        self.authenticator = Authenticator(settings.admin_key)
        # Sites vouch for their visitors' customer_ids under these (browser keys).
        self.identity_secrets = IdentitySecrets(self.store, self.kek)
        # Per process (docs/decisions.md).
        self.limits = Limits.of(settings)

    def _open_feed(self, settings: Settings) -> KafkaConsentFeed | None:
        """Where ledger changes are published: the consents topic when brokers are set."""
        self.consent_feed = (
            KafkaConsentFeed(client_config(settings)) if settings.kafka_brokers else None
        )
        return self.consent_feed

    def delivery_worker(
        self, sink: Sink | None = None, records: RecordSink | None = None
    ) -> DeliveryWorker:
        """A worker over this runtime's outbox (not started); `sink` and `records` replace
        the webhook and Kafka sinks."""
        return DeliveryWorker(
            self.settings,
            self.store,
            self.datamap,
            self.outbox,
            self.consent,
            self.subject_keys,
            self.rights_notices,
            sink,
            records,
        )

    def reload_signing_keys(self) -> None:
        """Read the signing keys again (another process may have rotated them)."""
        with self.store.read() as conn:
            self.signing_keys.reload(conn)

    def close(self) -> None:
        self.runner.stop()
        self.retention.stop()
        self.alerts.stop()
        self.mail.stop()
        if self.consent_feed is not None:
            self.consent_feed.close()
        self.store.close()
        self.kek.close()


def tune_gc() -> None:
    """Collect cyclic garbage less often. A gateway holds many long-lived objects (the consent
    cache, compiled schemas) and allocates many short-lived ones per batch; with the default
    thresholds the collector walks the long-lived ones over and over (measured: ingest at
    14,700 events/s with the defaults, 21,100 with these, 5,000 cached subjects)."""
    gc.set_threshold(100_000, 50, 100)
