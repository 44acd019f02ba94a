"""Client against a real gateway: consent round trip, events, and refusals as codes."""

from __future__ import annotations

import pytest

from consentry.client import Client, ConsentryAPIError, calls, identity
from tests.client.conftest import NOTICE, page_view, person
from tests.servers import LiveServer


def test_grant_check_withdraw_round_trip(client: Client) -> None:
    ana = identity("email", person())
    granted = client.consents.grant(
        ana, {"analytics": "granted", "marketing": "denied"}, notice=NOTICE, jurisdiction="EU"
    )
    assert granted["purposes"]["analytics"]["state"] == "granted"
    assert granted["purposes"]["marketing"]["state"] == "denied"
    assert granted["token"].count(".") == 2
    assert granted["token_expires_at"].endswith("Z")
    subject_id = granted["subject_id"]

    check = client.consents.check(ana, "analytics")
    assert check == {
        "allowed": True,
        "legal_basis": "consent",
        "reason": "granted",
        "version": granted["version"],
    }
    assert client.consents.check(subject_id, "marketing")["reason"] == "denied"

    withdrawn = client.consents.withdraw(ana, ["analytics"])
    assert withdrawn["purposes"]["analytics"]["state"] == "withdrawn"
    after = client.consents.check(ana, "analytics")
    assert (after["allowed"], after["reason"]) == (False, "denied")
    assert after["version"] > check["version"]

    assert client.consents.state(subject_id)["purposes"]["analytics"]["state"] == "withdrawn"
    history = client.consents.history(subject_id)
    assert [e["state"] for e in history["items"]][-1] == "withdrawn"
    assert client.consents.token(subject_id)["version"] == withdrawn["version"]
    assert client.consents.compliance(subject_id)["status"] == "FULLY_OPTED_OUT"


def test_events_are_accepted_and_refused_with_their_codes(client: Client, consenting: str) -> None:
    stranger = person()
    answer = client.events.send(
        [
            page_view(consenting, event_id="evt-ok-" + consenting),
            page_view(stranger, event_id="evt-no-consent-" + stranger),
            {**page_view(consenting, event_id="evt-unknown-" + consenting), "event_type": "nope"},
            page_view(consenting, event_id="evt-ok-" + consenting),
        ]
    )
    assert (answer["accepted"], answer["rejected"]) == (1, 3)
    codes = [r.get("code") for r in answer["results"]]
    assert codes == [None, "no_consent", "unknown_event_type", "duplicate_event"]
    assert answer["results"][0]["purposes"] == ["analytics"]


def test_refusals_raise_with_the_problems_code(client: Client, gateway: LiveServer) -> None:
    with pytest.raises(ConsentryAPIError) as refused:
        client.consents.grant(identity("email", person()), ["analytics"], jurisdiction="EU")
    assert refused.value.code == "notice_required"
    assert refused.value.status == 422

    with pytest.raises(ConsentryAPIError) as unknown:
        client.consents.check(identity("email", person()), "astrology")
    assert (unknown.value.status, unknown.value.code) == (422, "unknown_purpose")

    with pytest.raises(ConsentryAPIError) as missing:
        client.requests.get("req_does_not_exist")
    assert (missing.value.status, missing.value.code) == (404, "request_not_found")

    with Client(gateway.url, "not-a-key") as stranger, pytest.raises(ConsentryAPIError) as anon:
        stranger.consents.check(identity("email", person()), "analytics")
    assert (anon.value.status, anon.value.code) == (401, "unauthenticated")
    assert anon.value.problem["type"].endswith("unauthenticated")


def test_requests_subjects_and_portal_links(client: Client, consenting: str) -> None:
    ref = identity("email", consenting)
    subject = client.subjects.resolve(ref)
    assert subject["created"] is False
    assert client.subjects.get(subject["subject_id"])["identity_types"] == ["email"]

    created = client.requests.create("access", ref, jurisdiction="EU")
    assert created["type"] == "access"
    assert created["status"] == "received"
    verified = client.requests.verify(
        created["request_id"], {"method": "account_login", "level": "reasonable"}
    )
    assert verified["verification"]["level"] == "reasonable"
    assert client.requests.get(created["request_id"])["request_id"] == created["request_id"]
    listed = client.requests.list(limit=100)
    assert created["request_id"] in {r["request_id"] for r in listed["items"]}

    link = client.portal_links.create(ref)
    assert link["url"].startswith("http")

    summary = client.compliance.summary()
    assert "coverage" in summary
    assert client.purposes.get("analytics")["legal_basis"] == "consent"
    assert client.schemas.get("page_view")["purposes"] == ["analytics"]


@pytest.mark.parametrize("bad_id", ["", ".", ".."])
def test_an_id_that_would_address_another_path_is_refused_before_sending(bad_id: str) -> None:
    # Nothing listens on port 9: the refusal comes before any connection is tried.
    with Client("http://127.0.0.1:9", "any-key") as nowhere:
        with pytest.raises(ValueError, match="not an id"):
            nowhere.consents.state(bad_id)
        with pytest.raises(ValueError, match="not an id"):
            nowhere.requests.get(bad_id)
    # Dots inside an id are data, escaped as usual.
    assert calls.p("..a") == "..a"
    assert calls.p("a/../b") == "a%2F..%2Fb"
