"""Helpers of the portal code and mail tests: settings whose mail goes to an SMTP server on
loopback, subjects known by an address, and ways to look at what was stored and audited."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from sqlalchemy import select

from consentry.audit import log as audit
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import metadata
from consentry.subjects.models import Identity, IdentityType, SubjectRef

CLIENT = "192.0.2.10"
_CODE = re.compile(r"portal is ([0-9]{6})")


def with_mail(settings: Settings, port: int) -> Settings:
    """`settings` with mail going to 127.0.0.1:`port`."""
    return dataclasses.replace(
        settings,
        smtp_url=f"smtp://127.0.0.1:{port}",
        mail_from="privacy@shop.example.com",
        brand_name="Example Shop",
    )


def known(rt: Runtime, address: str) -> str:
    """A subject known by the e-mail `address`; returns its id."""
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, address),))
    with rt.store.write() as conn:
        return rt.subjects.resolve(conn, ref, actor="test").subject.subject_id


def code_in(text: str) -> str:
    found = _CODE.search(text)
    assert found is not None, "no code in the mail"
    return found.group(1)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def everything_stored(rt: Runtime) -> str:
    """Every row of every table, as text (to look for what must not be there)."""
    parts = []
    with rt.store.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def audit_text(rt: Runtime) -> tuple[list[str], str]:
    """The actions of every audit entry, and all the entries as JSON."""
    with rt.store.read() as conn:
        found = [e for e, _leaf in audit.entries(conn, limit=100_000)]
    text = json.dumps([dataclasses.asdict(e) for e in found])
    return [e.action for e in found], text


def sqlite_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in Path(settings.data_dir).glob("consentry.db*"))
