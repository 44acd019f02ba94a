"""The data map: downstream systems, validated whole, stored with a sealed signing secret, and
held in memory until the configuration version moves."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.configuration import VersionedCopy
from consentry.consent.models import Purpose
from consentry.errors import (
    InvalidCategory,
    InvalidCcpaRole,
    InvalidEndpoint,
    InvalidRegion,
    InvalidSystem,
    InvalidTransferMechanism,
    SystemNotFound,
    UnknownPurpose,
)
from consentry.governance import consented, endpoints, vendors
from consentry.governance.models import (
    DEFAULT_ACK_HOURS,
    CcpaRole,
    Mechanism,
    Region,
    System,
    SystemKind,
)
from consentry.ingest.schemas import fideslang_categories
from consentry.keys.ring import KeyEncryptionKey
from consentry.storage import datamap as sql
from consentry.storage.configuration import bump_config_version

SYSTEM_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MAX_URL = 2000


def parse(
    system_id: str,
    body: Mapping[str, Any],
    purposes: Mapping[str, Purpose],
) -> System:
    """A System from a PUT body, or the error naming the first field that is wrong. Where its
    endpoints may point (public addresses only) is endpoints.check_urls's rule, checked before
    the write transaction opens."""
    if not SYSTEM_ID.fullmatch(system_id):
        raise InvalidSystem(
            "a system id is 1-64 lower-case letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    kind = _member(SystemKind, body["kind"], "kind", InvalidSystem)
    unknown = [p for p in body["purposes"] if p not in purposes]
    if unknown:
        raise UnknownPurpose(f"no purpose {unknown[0]!r}", purpose=unknown[0])
    known = fideslang_categories()
    for category in body["data_categories"]:
        if category not in known:
            raise InvalidCategory(f"{category!r} is not a fideslang data category")
    until = body.get("dpf_certified_until")
    system = System(
        system_id=system_id,
        name=body["name"],
        kind=kind,
        endpoint=_endpoint(body["endpoint"], kind, "endpoint"),
        purposes=frozenset(body["purposes"]),
        data_categories=frozenset(body["data_categories"]),
        region=_member(Region, body["region"], "region", InvalidRegion),
        transfer_mechanism=_member(
            Mechanism, body["transfer_mechanism"], "transfer_mechanism", InvalidTransferMechanism
        ),
        dpa_signed=bool(body["dpa_signed"]),
        dpf_certified_until=None if until is None else _date(until),
        tia_ref=body.get("tia_ref"),
        ccpa_role=None
        if body.get("ccpa_role") is None
        else _member(CcpaRole, body["ccpa_role"], "ccpa_role", InvalidCcpaRole),
        vendor=body.get("vendor"),
        rights_endpoint=None
        if body.get("rights_endpoint") is None
        else _endpoint(body["rights_endpoint"], SystemKind.WEBHOOK, "rights_endpoint"),
        ack_hours=int(body.get("ack_hours") or DEFAULT_ACK_HOURS),
        tcf_vendor_id=body.get("tcf_vendor_id"),
        consent_events=_consent_events(body),
    )
    consumed = consented.consumed(system)
    if consumed is not None and consumed not in system.purposes:
        # It would read records of a purpose the data map does not let it serve.
        raise InvalidSystem(
            f"a consumer of {consented.topic(consumed)} serves {consumed!r}: name it in purposes"
        )
    return system


def to_definition(system: System) -> dict[str, Any]:
    """The API shape of a system (without its id and its secret)."""
    return {
        "name": system.name,
        "kind": system.kind.value,
        "endpoint": system.endpoint,
        "purposes": sorted(system.purposes),
        "data_categories": sorted(system.data_categories),
        "region": system.region.value,
        "transfer_mechanism": system.transfer_mechanism.value,
        "dpf_certified_until": system.dpf_certified_until.isoformat()
        if system.dpf_certified_until
        else None,
        "tia_ref": system.tia_ref,
        "ccpa_role": system.ccpa_role.value if system.ccpa_role else None,
        "vendor": system.vendor,
        "dpa_signed": system.dpa_signed,
        "rights_endpoint": system.rights_endpoint,
        "ack_hours": system.ack_hours,
        "tcf_vendor_id": system.tcf_vendor_id,
        "consent_events": system.consent_events,
    }


class TopicReaders(Protocol):
    """The port a system's change passes through when it would read a consented topic
    (implemented by delivery/joiners.py, passed in by runtime.py)."""

    def check(self, conn: Connection, system: System, previous: System | None) -> None:
        """Raise TopicHoldsRecords when `system` (replacing `previous`) may not read the
        records its topic holds; otherwise record it as a recipient of their subjects."""


class DataMap:
    """Every system, reloaded when the configuration version moves, and their signing secrets."""

    def __init__(self, kek: KeyEncryptionKey, readers: TopicReaders | None = None) -> None:
        self._kek = kek
        # Who may join the consumers of a consented topic that holds records (None: anyone,
        # for a process that never serves stream mode's data map changes, e.g. a test's).
        self.readers = readers
        self._copy: VersionedCopy[dict[str, System]] = VersionedCopy(_load, {})
        self._secrets: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def all(self, conn: Connection, version: int | None = None) -> dict[str, System]:
        """The current systems (see VersionedCopy.get)."""
        return self._copy.get(conn, version)

    def get(self, conn: Connection, system_id: str) -> System:
        system = self.all(conn).get(system_id)
        if system is None:
            raise SystemNotFound(f"no system {system_id!r}", system_id=system_id)
        return system

    def put(self, conn: Connection, system: System, *, actor: str) -> tuple[System, str | None]:
        """Create or replace a system; returns it and, on creation only, its signing secret."""
        now = clock.now()
        definition = json.dumps(to_definition(system), sort_keys=True)
        previous = sql.get_system(conn, system.system_id, lock=True)
        if self.readers is not None:
            # Before anything is written: a refusal leaves the data map as it was.
            before = None if previous is None else self.all(conn).get(system.system_id)
            # With its vendor's record, as the data map loads it (the gates read it).
            joined = replace(
                system, vendor_record=vendors.record_of(system.vendor, vendors.load(conn))
            )
            self.readers.check(conn, joined, before)
        secret: str | None = None
        if previous is None:
            secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            sealed, kek_id = self._kek.wrap(secret.encode(), wrap_aad(system.system_id))
            sql.insert_system(conn, system.system_id, definition, sealed, kek_id, now)
        else:
            sql.update_system(conn, system.system_id, definition, now)
        bump_config_version(conn)
        action = AuditAction.SYSTEM_CREATED if previous is None else AuditAction.SYSTEM_UPDATED
        audit.record(
            conn,
            action,
            actor=actor,
            details={"system_id": system.system_id} | to_definition(system),
        )
        return system, secret

    def delete(self, conn: Connection, system_id: str, *, actor: str) -> None:
        """Remove a system from the data map; its undelivered rows go with it."""
        if sql.get_system(conn, system_id, lock=True) is None:
            raise SystemNotFound(f"no system {system_id!r}", system_id=system_id)
        dropped = sql.delete_system(conn, system_id)
        bump_config_version(conn)
        with self._lock:
            self._secrets.pop(system_id, None)
        audit.record(
            conn,
            AuditAction.SYSTEM_DELETED,
            actor=actor,
            details={"system_id": system_id, "undelivered_dropped": dropped},
        )

    def signing_secret(self, conn: Connection, system_id: str) -> bytes:
        """The key of the system's `X-Consentry-Signature`: the secret's text as UTF-8."""
        with self._lock:
            cached = self._secrets.get(system_id)
        if cached is not None:
            return cached
        row = sql.get_system(conn, system_id)
        if row is None:
            raise SystemNotFound(f"no system {system_id!r}", system_id=system_id)
        secret = self._kek.open(row.secret_ct, wrap_aad(system_id), row.kek_id)
        with self._lock:
            self._secrets[system_id] = secret
        return secret


def plaintext_systems(systems: dict[str, System]) -> list[str]:
    """The systems with an `http://` endpoint or rights endpoint: reached only with private
    endpoints allowed and at a private address (endpoints.plaintext_allowed), so one stored
    before that rule is refused at every send otherwise."""
    return sorted(
        system.system_id
        for system in systems.values()
        if any(
            (url or "").lower().startswith("http://")
            for url in (system.endpoint, system.rights_endpoint)
        )
    )


def _load(conn: Connection) -> dict[str, System]:
    out = {}
    # Each system with its vendor's record: the DPA, CCPA and sub-processor rules read it.
    register = vendors.load(conn)
    for row in sql.list_systems(conn):
        d = json.loads(row.definition)
        until = d["dpf_certified_until"]
        out[row.system_id] = System(
            system_id=row.system_id,
            name=d["name"],
            kind=SystemKind(d["kind"]),
            endpoint=d["endpoint"],
            purposes=frozenset(d["purposes"]),
            data_categories=frozenset(d["data_categories"]),
            region=Region(d["region"]),
            transfer_mechanism=Mechanism(d["transfer_mechanism"]),
            dpa_signed=bool(d["dpa_signed"]),
            dpf_certified_until=date.fromisoformat(until) if until else None,
            tia_ref=d["tia_ref"],
            ccpa_role=CcpaRole(d["ccpa_role"]) if d["ccpa_role"] else None,
            vendor=d["vendor"],
            rights_endpoint=d["rights_endpoint"],
            ack_hours=int(d["ack_hours"]),
            # Definitions stored before the field existed have none.
            tcf_vendor_id=d.get("tcf_vendor_id"),
            consent_events=bool(d.get("consent_events", False)),
            vendor_record=vendors.record_of(d["vendor"], register),
        )
    return out


def _consent_events(body: Mapping[str, Any]) -> bool:
    """`consent_events` is sent to the rights endpoint: asked for without one, it would be
    sent nowhere while the data map said otherwise."""
    wanted = bool(body.get("consent_events", False))
    if wanted and body.get("rights_endpoint") is None:
        raise InvalidSystem("consent_events needs a rights_endpoint to send them to")
    return wanted


def wrap_aad(system_id: str) -> bytes:
    """What binds a system secret's blob to its row (re-wrapped by keys/rotation.py)."""
    return b"consentry:system-secret:" + system_id.encode()


def _endpoint(value: str, kind: SystemKind, name: str) -> str:
    """An absolute URL with a host: http(s) for webhooks, kafka(s)://host:port/topic for Kafka
    (endpoints.kafka_endpoint)."""
    schemes = {"https", "http"} if kind is SystemKind.WEBHOOK else set(endpoints.KAFKA_SCHEMES)
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        host, parts = None, None
    ok = (
        parts is not None
        and len(value) <= _MAX_URL
        and parts.scheme in schemes
        and bool(host)
        and not parts.username
        and not parts.password
        and not parts.fragment
        and not any(c.isspace() or ord(c) < 32 for c in value)
        and (kind is SystemKind.WEBHOOK or endpoints.is_kafka(value))
    )
    if not ok:
        allowed = " or ".join(f"{s}://" for s in sorted(schemes))
        raise InvalidEndpoint(
            f"{name} must be an absolute {allowed} URL with a host, without credentials",
            field=name,
        )
    return value


def _date(value: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidSystem("dpf_certified_until is a date, YYYY-MM-DD") from None


def _member(kind: Any, value: str, name: str, error: type[InvalidSystem]) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise error(f"{name} is one of {allowed}") from None
