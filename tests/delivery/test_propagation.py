"""Consent propagation (both back-ends, through HTTP, real receivers on loopback): every
ledger change of a purpose a system with `consent_events` serves reaches its rights endpoint
as a signed `consent_updated`, in ledger order per subject even across failures and a second
sender, through the delivery gates, denials and withdrawals always reaching a holder."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.delivery.sinks import Outcome, Sink
from tests.conftest import auth
from tests.delivery.receiver import Receiver, receiver
from tests.delivery.test_delivery import add, add_vendor, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import NOTICE, grant, send, who


def consent(client: TestClient, **purposes: str) -> int:
    """Record grants and denials for ana; returns her ledger version after them."""
    return int(record(client, **purposes)["version"])


def record(client: TestClient, **purposes: str) -> dict[str, Any]:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={"subject": who("ana"), "purposes": purposes, "source": "web", "notice": NOTICE},
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def withdraw(client: TestClient, *purposes: str) -> int:
    resp = client.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who("ana"), "purposes": list(purposes), "source": "web"},
    )
    assert resp.status_code == 200, resp.text
    return int(resp.json()["version"])


def drain(client: TestClient, rights: Receiver, count: int) -> None:
    """Run notice passes until `rights` has acknowledged `count` notices (or 5 s went by)."""
    w = worker(client)
    deadline = time.monotonic() + 5
    while len(rights.received) < count and time.monotonic() < deadline:
        w.run_once()
        time.sleep(0.02)


def updates(rights: Receiver) -> list[dict[str, Any]]:
    return [b for b in rights.bodies() if b["type"] == "consent_updated"]


def test_every_change_goes_in_ledger_order_signed_only_where_asked(gateway: TestClient) -> None:
    """A grant, a denial and a withdrawal arrive in that order, versions growing, each signed,
    naming only the purposes the system serves; the first answer is a 503 and the later
    updates wait for it. A system without consent_events, or serving none of the purposes,
    gets nothing."""
    with (
        receiver([503]) as rights,
        receiver() as quiet,
        receiver() as elsewhere,
        receiver() as hook,
    ):
        secret = add(
            gateway,
            "crm",
            system(
                hook.url,
                purposes=["analytics", "marketing"],
                rights_endpoint=rights.url,
                consent_events=True,
            ),
        )
        add(gateway, "quiet", system(hook.url, rights_endpoint=quiet.url))
        add(
            gateway,
            "maps",
            system(
                hook.url,
                purposes=["location"],
                rights_endpoint=elsewhere.url,
                consent_events=True,
            ),
        )
        first = record(gateway, analytics="granted", marketing="granted", personalization="granted")
        granted, subject_id = first["version"], first["subject_id"]
        denied = consent(gateway, marketing="denied")
        withdrawn = withdraw(gateway, "analytics")
        w = worker(gateway)
        w.run_once()
        # The grant's notice met the 503; the denial and withdrawal waited behind it.
        assert rights.attempts == 1
        assert rights.received == []
        drain(gateway, rights, 3)
        pseudonym = runtime_of(gateway).rights_notices.pseudonyms.of("crm", subject_id)
        notices = [b for b in rights.bodies() if b["type"] == "consent_updated"]
        assert notices == [
            {
                "type": "consent_updated",
                "subject_pseudonym": pseudonym,
                "system_id": "crm",
                "purposes": {"analytics": "granted", "marketing": "granted"},
                "version": granted,
            },
            {
                "type": "consent_updated",
                "subject_pseudonym": pseudonym,
                "system_id": "crm",
                "purposes": {"marketing": "denied"},
                "version": denied,
            },
            {
                "type": "consent_updated",
                "subject_pseudonym": pseudonym,
                "system_id": "crm",
                "purposes": {"analytics": "withdrawn"},
                "version": withdrawn,
            },
        ]
        assert granted < denied < withdrawn
        assert rights.attempts == 4
        for raw, headers in rights.received:
            expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            assert headers["X-Consentry-Signature"] == expected
            assert b"ana@example.com" not in raw
            assert subject_id.encode() not in raw
        assert quiet.attempts == 0
        assert elsewhere.attempts == 0


class SecondSender:
    """A sink whose first send is slow: while it is on the wire, another worker runs two
    notice passes with the clock five seconds on (a slow receiver, a second process)."""

    def __init__(self, inner: Sink, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inner = inner
        self.client = client
        self.monkeypatch = monkeypatch
        self.raced = False

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        if not self.raced:
            self.raced = True
            real_now = clock.now
            self.monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=5))
            notices = runtime_of(self.client).rights_notices
            for _ in range(2):
                notices.send_due(self.inner)
        return self.inner.send(endpoint, body, signature)


class Dying:
    """A sink in a process that dies while its send is on the wire."""

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        raise RuntimeError("the process died")


def test_neither_a_dead_sender_nor_a_second_one_breaks_the_order(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender dies with the first update claimed: nothing goes until its claim lapses, then
    the first update goes before the second. While it is on the wire again, another worker's
    passes send neither it again nor the update behind it: each version arrives once, in order."""
    with receiver() as rights, receiver() as hook:
        add(
            gateway,
            "crm",
            system(hook.url, rights_endpoint=rights.url, consent_events=True),
        )
        first = consent(gateway, analytics="granted")
        second = withdraw(gateway, "analytics")
        notices = runtime_of(gateway).rights_notices
        sink = worker(gateway).sink
        with pytest.raises(RuntimeError):
            notices.send_due(Dying())
        notices.send_due(sink)
        assert rights.attempts == 0  # the first is still claimed, the second waits behind it
        real_now = clock.now
        lapsed = notices.lease + timedelta(seconds=1)
        monkeypatch.setattr(clock, "now", lambda: real_now() + lapsed)
        racing = SecondSender(sink, gateway, monkeypatch)
        notices.send_due(racing)
        assert racing.raced
        notices.send_due(sink)
        assert [b["version"] for b in updates(rights)] == [first, second]


def test_gates_stop_grants_but_a_withdrawal_reaches_a_holder(gateway: TestClient) -> None:
    """A system outside the transfer rules that never got data gets nothing, not even a
    denial. A system that holds the subject's data and then loses its DPA gets no grant, not
    even one queued before (decided again at send time), but the denial queued with it, and a
    later withdrawal, reach it. Refusals are counted and audited as deliveries' are."""
    with receiver() as hook, receiver() as held, receiver() as blocked:
        body = system(
            hook.url,
            purposes=["analytics", "personalization"],
            rights_endpoint=held.url,
            consent_events=True,
            vendor=add_vendor(gateway),
        )
        add(gateway, "crm", body)
        add(
            gateway,
            "faraway",
            system(
                hook.url,
                purposes=["analytics", "personalization"],
                region="US",
                rights_endpoint=blocked.url,
                consent_events=True,
            ),
        )
        first = grant(gateway, who("ana"), "analytics")
        granted, subject_id = first["version"], first["subject_id"]
        assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
        drain(gateway, held, 1)
        assert len(hook.events()) == 1  # crm now holds ana's data; faraway does not
        # Queued while crm's DPA holds, sent after it lapsed: the grants are withheld, the
        # second update (a grant only) whole, and it holds back nothing behind it.
        changed = consent(gateway, personalization="granted", analytics="denied")
        consent(gateway, analytics="granted")
        resp = gateway.put("/v1/systems/crm", headers=auth(), json=body | {"dpa_signed": False})
        assert resp.status_code == 200, resp.text
        withdrawn = withdraw(gateway, "personalization")
        drain(gateway, held, 4)
        # The denial is also a withdrawal of what crm received (its rights notice first).
        assert [b["type"] for b in held.bodies()] == [
            "consent_updated",
            "consent_withdrawn",
            "consent_updated",
            "consent_updated",
        ]
        assert [(u["purposes"], u["version"]) for u in updates(held)] == [
            ({"analytics": "granted"}, granted),
            ({"analytics": "denied"}, changed),
            ({"personalization": "withdrawn"}, withdrawn),
        ]
        worker(gateway).run_once()
        assert blocked.attempts == 0
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            listed = rt.rights_notices.of(conn, subject_id=subject_id)
        assert [(n["system_id"], n["type"], n["status"], n["overdue"]) for n in listed] == [
            ("crm", "consent_updated", "acknowledged", False),
            ("crm", "consent_withdrawn", "acknowledged", False),
            ("crm", "consent_updated", "acknowledged", False),
            ("crm", "consent_updated", "withheld", False),
            ("crm", "consent_updated", "acknowledged", False),
        ]
        crm = gateway.get("/v1/systems/crm", headers=auth()).json()["delivery"]
        assert crm["refused"] == {"dpa_missing": 2}
        far = gateway.get("/v1/systems/faraway", headers=auth()).json()["delivery"]
        assert far["refused"] == {"transfer_blocked": 5}
        entries = gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
        refused = [e["details"] for e in entries if e["action"] == "delivery:refused"]
        far_only = {"faraway": {"transfer_blocked": 1}}
        crm_only = {"crm": {"dpa_missing": 1}}
        # The grant, the event, the change, the second grant, the withdrawal; then the sends
        # that withheld the grants from crm.
        assert refused == [far_only] * 5 + [crm_only] * 2


def test_a_system_that_got_a_grant_hears_of_its_end_through_a_closed_gate(
    gateway: TestClient,
) -> None:
    """A system that received only a `consent_updated` granting a purpose (no event, so no
    delivery recorded it as a recipient) holds the subject's pseudonym and consent: once a gate
    closes, the denials and withdrawals still reach it, grants no longer. A GPC opt-out reaches
    the third party that got the grant (sale or share gate); a denial queued while crm's DPA
    held is still sent after it lapsed (send time), and so is a withdrawal queued after."""
    with receiver() as hook, receiver() as rights, receiver() as adtech_rights:
        body = system(
            hook.url,
            purposes=["analytics", "personalization"],
            rights_endpoint=rights.url,
            consent_events=True,
            vendor=add_vendor(gateway),
        )
        add(gateway, "crm", body)
        add(
            gateway,
            "adtech",
            system(
                hook.url,
                purposes=["advertising"],
                rights_endpoint=adtech_rights.url,
                consent_events=True,
                ccpa_role="third_party",
            ),
        )
        first = record(
            gateway, analytics="granted", personalization="granted", advertising="granted"
        )
        drain(gateway, rights, 1)
        drain(gateway, adtech_rights, 1)
        denied = consent(gateway, analytics="denied")
        resp = gateway.put("/v1/systems/crm", headers=auth(), json=body | {"dpa_signed": False})
        assert resp.status_code == 200, resp.text
        regranted = consent(gateway, analytics="granted")
        withdrawn = withdraw(gateway, "personalization")
        resp = gateway.post(
            "/v1/consents",
            headers={**auth(), "Sec-GPC": "1"},
            json={"subject": who("ana"), "purposes": {}, "source": "web"},
        )
        assert resp.status_code == 200, resp.text
        opted_out = resp.json()
        assert opted_out["purposes"]["advertising"]["state"] == "denied"
        drain(gateway, rights, 3)
        drain(gateway, adtech_rights, 2)
        assert hook.events() == []
        assert [(u["purposes"], u["version"]) for u in updates(rights)] == [
            ({"analytics": "granted", "personalization": "granted"}, first["version"]),
            ({"analytics": "denied"}, denied),
            ({"personalization": "withdrawn"}, withdrawn),
        ]
        assert [(u["purposes"], u["version"]) for u in updates(adtech_rights)] == [
            ({"advertising": "granted"}, first["version"]),
            ({"advertising": "denied"}, opted_out["version"]),
        ]
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            listed = rt.rights_notices.of(conn, subject_id=first["subject_id"])
        crm = [n["status"] for n in listed if n["system_id"] == "crm"]
        # The grant recorded after the lapse was kept from crm when it was queued (refused).
        assert crm == ["acknowledged"] * 3
        assert denied < regranted < withdrawn
        refused = gateway.get("/v1/systems/crm", headers=auth()).json()["delivery"]["refused"]
        assert refused == {"dpa_missing": 1}
