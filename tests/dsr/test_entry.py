"""Portal entry levels on both back-ends: links minted through `POST /v1/portal-links`
carry the verification the collector attests (`high` only after re-authentication), codes and
sent links `reasonable`; a portal request needing more waits in `received`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.dsr import entry as entry_module
from consentry.dsr.entry import Entry, attested
from consentry.dsr.models import Level, RequestType, Verification
from consentry.dsr.requests import NewRequest
from consentry.errors import LinkLevelNotAllowed, PortalLinkInvalid, VerificationNotIndependent
from consentry.subjects.models import Jurisdiction, SubjectRef
from tests.conftest import auth
from tests.dsr.conftest import email, grant, runtime_of
from tests.http.test_conventions import assert_problem


def key(client: TestClient, role: str) -> dict[str, str]:
    made = client.post("/v1/api-keys", headers=auth(), json={"role": role, "label": role})
    assert made.status_code == 201, made.text
    return auth(made.json()["key"])


def mint(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, str]:
    resp = client.post("/v1/portal-links", headers=headers, json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["link"][0]


def test_a_link_carries_the_level_the_collector_attests(ready: TestClient) -> None:
    site = key(ready, "collector")
    subject = email("lina")
    subject_id = grant(ready, subject, "analytics")
    links = runtime_of(ready).portal_links
    before = datetime.now(UTC)

    high = mint(
        ready,
        site,
        subject=subject,
        verification={"method": "reauthenticated", "level": "high"},
    )
    assert high["level"] == "high"
    assert high["url"].startswith("http://127.0.0.1:8000/portal?link=")
    assert "lina" not in high["url"]
    assert "example.com" not in high["url"]
    expires = datetime.fromisoformat(high["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - before <= timedelta(minutes=15, seconds=1)
    opened = links.open(token_of(high["url"]))
    assert opened.subject_id == subject_id
    assert opened.verification == Verification("reauthenticated", Level.HIGH)

    # A high link without re-authentication is refused, not quietly lowered.
    resp = ready.post(
        "/v1/portal-links",
        headers=site,
        json={"subject": subject, "verification": {"method": "password", "level": "high"}},
    )
    assert_problem(resp, 422, "link_level_not_allowed")

    fair = mint(
        ready, site, subject=subject, verification={"method": "email_link", "level": "reasonable"}
    )
    assert links.open(token_of(fair["url"])).verification == Verification(
        "email_link", Level.REASONABLE
    )
    # Attesting nothing: the link opens the portal, and verifies no one.
    bare = mint(ready, site, subject=subject)
    assert bare["level"] == "none"
    assert links.open(token_of(bare["url"])).verification is None

    # Collectors mint links; an operator's key does not.
    resp = ready.post("/v1/portal-links", headers=key(ready, "operator"), json={"subject": subject})
    assert_problem(resp, 403, "forbidden")
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    minted = [e["details"] for e in entries if e["action"] == "portal:link:created"]
    assert [d["level"] for d in minted] == ["high", "reasonable", "none"]
    # The collector's free-text method is not kept: only whether it re-authenticated.
    assert [d["method"] for d in minted] == ["reauthenticated", "other", None]
    assert "email_link" not in str(entries)
    assert "lina" not in str(entries)


def test_a_link_altered_or_expired_opens_nothing(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = runtime_of(ready).portal_links
    made = mint(
        ready,
        key(ready, "collector"),
        subject=email("otto"),
        verification={"method": "reauthenticated", "level": "high"},
    )
    token = token_of(made["url"])
    assert links.open(token).verification == Verification("reauthenticated", Level.HIGH)
    head, claims, signature = token.split(".")
    # A character in the middle of the signature, changed: every bit of it is signature (the
    # last character's low bits may be padding, which decoding ignores).
    middle = len(signature) // 2
    flipped = "B" if signature[middle] == "A" else "A"
    altered = signature[:middle] + flipped + signature[middle + 1 :]
    assert altered != signature
    with pytest.raises(PortalLinkInvalid):
        links.open(f"{head}.{claims}.{altered}")
    # A claim changed under the original signature: another subject's portal.
    forged = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged["sub"] = "sub_" + "0" * 24
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(PortalLinkInvalid):
        links.open(f"{head}.{body}.{signature}")
    with pytest.raises(PortalLinkInvalid):
        links.open("not-a-link")
    later = clock.now() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(entry_module.clock, "now", lambda: later)
    with pytest.raises(PortalLinkInvalid):
        links.open(token)


def test_codes_and_sent_links_verify_at_reasonable() -> None:
    code = attested(Entry.CODE, identity_type="email")
    assert code == Verification("portal_code", Level.REASONABLE, ("email",))
    assert attested(Entry.SENT_LINK, identity_type="phone") == Verification(
        "portal_sent_link", Level.REASONABLE, ("phone",)
    )
    with pytest.raises(LinkLevelNotAllowed):
        attested(Entry.MINTED_LINK, collector=Verification("sso", Level.HIGH))


def test_a_portal_request_needing_more_waits_for_an_operator(ready: TestClient) -> None:
    site = key(ready, "collector")
    subject = email("pia")
    grant(ready, subject, "analytics")
    rt = runtime_of(ready)
    fair = rt.portal_links.open(
        token_of(
            mint(
                ready,
                site,
                subject=subject,
                verification={"method": "email_link", "level": "reasonable"},
            )["url"]
        )
    )

    def portal_request(type_: RequestType, verification: Verification | None) -> str:
        made, _ = rt.requests.create(
            NewRequest(
                type=type_,
                ref=SubjectRef(subject_id=fair.subject_id),
                jurisdiction=Jurisdiction.EU,
                verification=verification,
            ),
            actor="portal",
        )
        return made.request_id

    erase = portal_request(RequestType.ERASURE, fair.verification)
    shown = ready.get(f"/v1/requests/{erase}", headers=auth()).json()
    assert shown["status"] == "received"
    assert shown["verification"] == {"level": "reasonable", "required": "high", "verified_at": None}
    # Access at reasonable is enough in the EU.
    access = portal_request(RequestType.ACCESS, fair.verification)
    assert ready.get(f"/v1/requests/{access}", headers=auth()).json()["status"] == "verified"
    # The operator verifies the waiting one.
    resp = ready.post(
        f"/v1/requests/{erase}/verify",
        headers=auth(),
        json={"method": "id_document", "level": "high"},
    )
    assert resp.json()["status"] == "in_progress"
    # A code sent to the address on record cannot verify a correction of that address.
    with pytest.raises(VerificationNotIndependent):
        rt.requests.create(
            NewRequest(
                type=RequestType.RECTIFICATION,
                ref=SubjectRef(subject_id=fair.subject_id),
                jurisdiction=Jurisdiction.EU,
                verification=attested(Entry.CODE, identity_type="email"),
                changes=[{"type": "email", "old_sha256": "0" * 64, "value": "p@example.com"}],
            ),
            actor="portal",
        )
