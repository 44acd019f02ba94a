"""Customers' portal sessions on both back-ends: a minted link opens one session and no second;
sessions end after 30 idle minutes, 2 hours at most, or on sign-out; CSRF tokens belong to
their session; only a hash of the token is stored; opening and closing are audited."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.dsr.entry import Entry
from consentry.dsr.models import Level
from consentry.errors import PortalLinkInvalid, PortalSessionInvalid
from consentry.storage.schema import portal_sessions
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import email, grant, runtime_of
from tests.dsr.test_entry import mint, token_of


def _opened(client: TestClient, name: str, **body: object) -> tuple[str, str, str]:
    """A session opened by a link minted for `name`: (subject id, session token, link)."""
    subject_id = grant(client, email(name), "analytics")
    link = token_of(mint(client, auth(), subject=email(name), **body)["url"])
    rt = runtime_of(client)
    entry = rt.portal_links.open(link)
    token, session = rt.portal_sessions.open(entry, Entry.MINTED_LINK, link_id=entry.link_id)
    assert session.subject_id == subject_id
    return subject_id, token, link


def test_a_link_opens_one_session(ready: TestClient) -> None:
    rt = runtime_of(ready)
    subject_id, token, link = _opened(
        ready, "ann", verification={"method": "reauthenticated", "level": "high"}
    )
    session = rt.portal_sessions.check(token)
    assert session.subject_id == subject_id
    assert session.entry is Entry.MINTED_LINK
    assert session.verification is not None
    assert session.verification.level is Level.HIGH
    again = rt.portal_links.open(link)
    with pytest.raises(PortalLinkInvalid):
        rt.portal_sessions.open(again, Entry.MINTED_LINK, link_id=again.link_id)


def test_sessions_end_idle_at_their_lifetime_and_on_sign_out(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    rt = runtime_of(ready)
    sessions = rt.portal_sessions
    _, token, _ = _opened(ready, "bea")
    # Used every 25 minutes, it lives its 2 hours and no longer.
    for _ in range(4):
        fake.advance(minutes=25)
        sessions.check(token)
    fake.advance(minutes=21)
    with pytest.raises(PortalSessionInvalid):
        sessions.check(token)

    _, idle, _ = _opened(ready, "cal")
    fake.advance(minutes=31)
    with pytest.raises(PortalSessionInvalid):
        sessions.check(idle)

    subject_id, out, link = _opened(ready, "dee")
    sessions.close(out)
    with pytest.raises(PortalSessionInvalid):
        sessions.check(out)
    # Signed out within the link's 15 minutes: whoever finds the link gets nothing.
    found = rt.portal_links.open(link)
    with pytest.raises(PortalLinkInvalid):
        sessions.open(found, Entry.MINTED_LINK, link_id=found.link_id)
    with pytest.raises(PortalSessionInvalid):
        sessions.check(None)
    with pytest.raises(PortalSessionInvalid):
        sessions.check("not-a-session")
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    mine = [e for e in entries["items"] if e["subject_id"] == subject_id]
    actions = [e["action"] for e in mine if e["action"].startswith("portal:session")]
    assert actions == ["portal:session:opened", "portal:session:closed"]
    opened = next(e for e in mine if e["action"] == "portal:session:opened")
    assert opened["details"] == {"entry": "minted_link", "level": "none"}


def test_csrf_tokens_belong_to_their_session(ready: TestClient) -> None:
    sessions = runtime_of(ready).portal_sessions
    _, one, _ = _opened(ready, "eve")
    _, two, _ = _opened(ready, "fay")
    first, second = sessions.check(one), sessions.check(two)
    assert first.csrf != second.csrf
    assert sessions.csrf_ok(first, first.csrf)
    assert not sessions.csrf_ok(first, second.csrf)
    assert not sessions.csrf_ok(first, None)
    assert not sessions.csrf_ok(first, "")


def test_only_a_hash_of_the_token_is_stored(ready: TestClient, backend: str) -> None:
    _, token, _ = _opened(ready, "gil")
    rt = runtime_of(ready)
    csrf = rt.portal_sessions.csrf_of(token)
    with rt.store.read() as conn:
        rows = [tuple(r) for r in conn.execute(select(portal_sessions))]
    assert len(rows) == 1
    assert rows[0][0] == hashlib.sha256(token.encode()).digest()
    assert token not in repr(rows)
    assert csrf not in repr(rows)
    if backend == "sqlite":
        rt.store.checkpoint()
        data = b"".join(p.read_bytes() for p in rt.settings.data_dir.glob("*.db*"))
        assert data
        assert token.encode() not in data
        assert csrf.encode() not in data
