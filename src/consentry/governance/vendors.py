"""The vendor register (Art. 28): processors with their DPA dates, CCPA contract terms,
sub-processors and risk, validated whole, audited, and joined to the systems that name them
when the data map is loaded (transfers.py reads the result)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.configuration import VersionedCopy
from consentry.errors import InvalidRegion, InvalidVendor, VendorInUse, VendorNotFound
from consentry.governance.models import Region, SubProcessor, System, Vendor, VendorRisk
from consentry.storage import vendors as sql
from consentry.storage.configuration import bump_config_version

VENDOR_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse(vendor_id: str, body: Mapping[str, Any]) -> Vendor:
    """A Vendor from a PUT body, or the error naming the first field that is wrong."""
    if not VENDOR_ID.fullmatch(vendor_id):
        raise InvalidVendor(
            "a vendor id is 1-64 lower-case letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    try:
        risk = VendorRisk(body["risk"])
    except ValueError:
        raise InvalidVendor("risk is one of low, medium, high") from None
    signed = _date(body.get("dpa_signed_at"), "dpa_signed_at")
    expires = _date(body.get("dpa_expires_at"), "dpa_expires_at")
    if expires is not None and signed is None:
        raise InvalidVendor("dpa_expires_at needs the dpa_signed_at of the DPA it ends")
    if expires is not None and signed is not None and expires <= signed:
        raise InvalidVendor("dpa_expires_at is after dpa_signed_at")
    subs = []
    for n, sub in enumerate(body.get("sub_processors") or ()):
        try:
            region = Region(sub["region"])
        except ValueError:
            allowed = ", ".join(r.value for r in Region)
            raise InvalidRegion(f"sub_processors[{n}].region is one of {allowed}") from None
        authorised = _date(sub["authorised_at"], f"sub_processors[{n}].authorised_at")
        if authorised is None:
            raise InvalidVendor(f"sub_processors[{n}].authorised_at is a date, YYYY-MM-DD")
        subs.append(SubProcessor(name=sub["name"], region=region, authorised_at=authorised))
    reviewed = _date(body["reviewed_at"], "reviewed_at")
    if reviewed is None:
        raise InvalidVendor("reviewed_at is a date, YYYY-MM-DD")
    return Vendor(
        vendor_id=vendor_id,
        name=body["name"],
        risk=risk,
        reviewed_at=reviewed,
        dpa_signed_at=signed,
        dpa_expires_at=expires,
        ccpa_contract_at=_date(body.get("ccpa_contract_at"), "ccpa_contract_at"),
        sub_processors=tuple(subs),
        certifications=tuple(dict.fromkeys(body.get("certifications") or ())),
    )


def to_definition(vendor: Vendor) -> dict[str, Any]:
    """The API shape of a vendor (without its id)."""
    return {
        "name": vendor.name,
        "dpa_signed_at": _iso(vendor.dpa_signed_at),
        "dpa_expires_at": _iso(vendor.dpa_expires_at),
        "ccpa_contract_at": _iso(vendor.ccpa_contract_at),
        "sub_processors": [
            {"name": s.name, "region": s.region.value, "authorised_at": s.authorised_at.isoformat()}
            for s in vendor.sub_processors
        ],
        "certifications": list(vendor.certifications),
        "risk": vendor.risk.value,
        "reviewed_at": vendor.reviewed_at.isoformat(),
    }


def load(conn: Connection) -> dict[str, Vendor]:
    """Every vendor in the register, by id."""
    return {
        row.vendor_id: _vendor(row.vendor_id, json.loads(row.definition))
        for row in sql.list_vendors(conn)
    }


def record_of(vendor: str | None, register: Mapping[str, Vendor]) -> Vendor | None:
    """The register's record of the vendor a system names (by id), None when it names none
    or one the register lacks: what `System.vendor_record` holds."""
    return register.get(vendor) if vendor else None


def users(vendor_id: str, systems: Mapping[str, System]) -> list[str]:
    """The systems that name the vendor."""
    return sorted(s.system_id for s in systems.values() if s.vendor == vendor_id)


def unregistered(systems: Mapping[str, System]) -> list[str]:
    """The systems that name a vendor the register lacks: they get nothing (`dpa_missing`)."""
    return sorted(s.system_id for s in systems.values() if s.vendor and s.vendor_record is None)


class VendorRegister:
    """Every vendor, reloaded when the configuration version moves."""

    def __init__(self) -> None:
        self._copy: VersionedCopy[dict[str, Vendor]] = VersionedCopy(load, {})

    def all(self, conn: Connection, version: int | None = None) -> dict[str, Vendor]:
        return self._copy.get(conn, version)

    def get(self, conn: Connection, vendor_id: str) -> Vendor:
        vendor = self.all(conn).get(vendor_id)
        if vendor is None:
            raise VendorNotFound(f"no vendor {vendor_id!r}", vendor_id=vendor_id)
        return vendor

    def put(self, conn: Connection, vendor: Vendor, *, actor: str) -> bool:
        """Create or replace a vendor; whether it was created."""
        now = clock.now()
        definition = json.dumps(to_definition(vendor), sort_keys=True)
        previous = sql.get_vendor(conn, vendor.vendor_id, lock=True)
        if previous is None:
            sql.insert_vendor(conn, vendor.vendor_id, definition, now)
        else:
            sql.update_vendor(conn, vendor.vendor_id, definition, now)
        bump_config_version(conn)
        action = AuditAction.VENDOR_CREATED if previous is None else AuditAction.VENDOR_UPDATED
        audit.record(
            conn,
            action,
            actor=actor,
            details={"vendor_id": vendor.vendor_id} | to_definition(vendor),
        )
        return previous is None

    def delete(
        self, conn: Connection, vendor_id: str, systems: Mapping[str, System], *, actor: str
    ) -> None:
        """Remove a vendor no system names (their DPA state comes from it)."""
        if sql.get_vendor(conn, vendor_id, lock=True) is None:
            raise VendorNotFound(f"no vendor {vendor_id!r}", vendor_id=vendor_id)
        named = users(vendor_id, systems)
        if named:
            raise VendorInUse(
                f"systems name vendor {vendor_id!r}: {', '.join(named)}",
                vendor_id=vendor_id,
                systems=named,
            )
        sql.delete_vendor(conn, vendor_id)
        bump_config_version(conn)
        audit.record(
            conn, AuditAction.VENDOR_DELETED, actor=actor, details={"vendor_id": vendor_id}
        )


def _vendor(vendor_id: str, d: Mapping[str, Any]) -> Vendor:
    return Vendor(
        vendor_id=vendor_id,
        name=d["name"],
        risk=VendorRisk(d["risk"]),
        reviewed_at=date.fromisoformat(d["reviewed_at"]),
        dpa_signed_at=_stored(d["dpa_signed_at"]),
        dpa_expires_at=_stored(d["dpa_expires_at"]),
        ccpa_contract_at=_stored(d["ccpa_contract_at"]),
        sub_processors=tuple(
            SubProcessor(
                name=s["name"],
                region=Region(s["region"]),
                authorised_at=date.fromisoformat(s["authorised_at"]),
            )
            for s in d["sub_processors"]
        ),
        certifications=tuple(d["certifications"]),
    )


def _stored(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidVendor(f"{name} is a date, YYYY-MM-DD") from None
