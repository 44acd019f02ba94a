"""HTTP handlers for subjects: resolve-or-create by identities, and read one (no values)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import Response
from pydantic import Field

from consentry import clock
from consentry.consent import marks
from consentry.http.auth import Ctx
from consentry.http.schemas import Body
from consentry.subjects.models import Jurisdiction, Subject, SubjectRef
from consentry.subjects.refs import subject_ref


class IdentityIn(Body):
    type: str = Field(max_length=32)
    value: str = Field(max_length=1024)


class SubjectRefIn(Body):
    subject_id: str | None = Field(default=None, max_length=64)
    identities: list[IdentityIn] | None = None

    def to_ref(self, default_region: str) -> SubjectRef:
        pairs = None if self.identities is None else [(i.type, i.value) for i in self.identities]
        return subject_ref(self.subject_id, pairs, default_region)


class IdentityBody(msgspec.Struct, forbid_unknown_fields=True):
    """IdentityIn as a hot path decodes it (http/bodies.py): the same fields and rules."""

    type: Annotated[str, msgspec.Meta(max_length=32)]
    value: Annotated[str, msgspec.Meta(max_length=1024)]


class SubjectRefBody(msgspec.Struct, forbid_unknown_fields=True):
    """SubjectRefIn as a hot path decodes it (http/bodies.py): the same fields and rules."""

    subject_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    identities: list[IdentityBody] | None = None

    def to_ref(self, default_region: str) -> SubjectRef:
        pairs = None if self.identities is None else [(i.type, i.value) for i in self.identities]
        return subject_ref(self.subject_id, pairs, default_region)


class SubjectIn(Body):
    subject: SubjectRefIn
    jurisdiction: Jurisdiction | None = None


def subject_out(subject: Subject, identity_types: list[str]) -> dict[str, Any]:
    return {
        "subject_id": subject.subject_id,
        "jurisdiction": subject.effective_jurisdiction.value,
        "jurisdiction_known": subject.jurisdiction is not None,
        "created_at": clock.rfc3339(subject.created_at),
        "identity_types": sorted(set(identity_types)),
    }


def create_subject(body: SubjectIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Find the subject these identities name, creating it (201) when nobody is known by them."""
    rt = ctx.runtime
    ref = body.subject.to_ref(rt.settings.default_phone_region)
    with rt.store.write() as conn:
        resolution = rt.subjects.resolve(conn, ref, actor=ctx.actor, jurisdiction=body.jurisdiction)
        subject_id = resolution.subject.subject_id
        if resolution.jurisdiction_changed:
            # A jurisdiction set on a known subject takes a consent version: cached on commit.
            marks.touched(conn, rt.consent, subject_id)
        types = rt.subjects.identity_types(conn, subject_id)
    response.status_code = 201 if resolution.created else 200
    return {**subject_out(resolution.subject, types), "created": resolution.created}


def get_subject(subject_id: str, ctx: Ctx) -> dict[str, Any]:
    """A subject's id, jurisdiction and which kinds of identity it has; never their values."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        subject = rt.subjects.get(conn, subject_id)
        types = rt.subjects.identity_types(conn, subject_id)
    return subject_out(subject, types)
