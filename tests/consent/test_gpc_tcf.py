"""API.md "Consent": Global Privacy Control and IAB TCF v2.2 TC strings become ledger entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from consentry.consent import tcf
from tests.conftest import auth
from tests.consent.helpers import (
    NOTICE,
    SALE_OR_SHARE,
    consent_state,
    history,
    post_consent,
    publish,
    record,
    ref,
    tc_string,
    withdraw,
)
from tests.http.test_conventions import assert_problem

GPC = {"Sec-GPC": "1"}
VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "tcf" / "vectors.json").read_text(encoding="utf-8")
)["vectors"]
MAPPING = {
    "advertising": {1, 3, 4},
    "personalization": {1, 5, 6},
    "analytics": {1, 8, 9},
}


def expected_from(tc: str) -> dict[str, str]:
    """The states API.md's mapping gives for a decoded TC string."""
    decoded = tcf.decode(tc)
    states = {
        key: "granted" if needed <= decoded.purposes_consent else "denied"
        for key, needed in MAPPING.items()
    }
    states["location"] = "granted" if 1 in decoded.special_feature_opt_ins else "denied"
    return states


def expected_from_library(vector: dict[str, Any]) -> dict[str, str]:
    """The states API.md's mapping gives for a vector, from the fields the reference library
    decoded: the publisher TC segment's purpose consents when it has one, else the core's;
    special feature 1 always from the core segment."""
    fields = vector["fields"]
    publisher = "publisherTC" in vector["segments"]
    consented = set(fields["publisherConsents" if publisher else "purposeConsents"])
    states = {
        key: "granted" if needed <= consented else "denied" for key, needed in MAPPING.items()
    }
    states["location"] = "granted" if 1 in fields["specialFeatureOptins"] else "denied"
    return states


def scenario(name: str) -> dict[str, Any]:
    """One of the named vectors made by make_vectors.mjs with @iabtcf/core (SCENARIOS)."""
    [vector] = [v for v in VECTORS if v.get("scenario") == name]
    return vector


def states(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {key: (p["state"], p["source"]) for key, p in body["purposes"].items()}


def test_gpc_header_and_body_deny_every_sale_or_share_purpose(client: TestClient) -> None:
    """ "the header `Sec-GPC: 1` on a consent write ... or `"gpc": true` in a consent body ...
    records `denied` (source `gpc`) for every sale_or_share purpose"; `gpc_honored` is true
    when the call carried GPC. `Sec-GPC: 0` is no signal."""
    sale = {
        "name": "Data broker",
        "legal_basis": "consent",
        "retention_days": 30,
        "sale_or_share": True,
    }
    assert client.put("/v1/purposes/data_broker", headers=auth(), json=sale).status_code == 201
    notice = publish(client)
    header = record(client, "rae", {"analytics": "granted"}, headers=GPC)
    body = record(client, "rex", {}, notice=None, gpc=True)
    none = record(client, "rod", {"analytics": "denied"}, notice=None, headers={"Sec-GPC": "0"})
    for result in (header, body):
        assert result["gpc_honored"] is True
        sale_states = {k: v for k, v in states(result).items() if v[1] == "gpc"}
        assert sale_states == dict.fromkeys([*SALE_OR_SHARE, "data_broker"], ("denied", "gpc"))
        for key in sale_states:
            assert result["purposes"][key]["notice_sha256"] is None
            assert result["purposes"][key]["expires_at"] is None
        assert consent_state(client, result["subject_id"])["gpc"] is True
    assert header["purposes"]["analytics"]["notice_sha256"] == notice["sha256"]
    assert states(none) == {"analytics": ("denied", "web")}
    assert none["gpc_honored"] is False
    assert consent_state(client, none["subject_id"])["gpc"] is False
    withdrawn = withdraw(client, "ray", ["analytics"], headers=GPC)
    assert withdrawn["gpc_honored"] is True
    assert states(withdrawn)["advertising"] == ("denied", "gpc")


def test_gpc_wins_over_a_grant_in_the_same_call(client: TestClient) -> None:
    """ "In one call, an explicit `purposes` entry wins over the TC string for the same
    purpose, and GPC wins over both.\""""
    publish(client)
    body = record(
        client,
        "sam",
        {"advertising": "granted", "personalization": "granted"},
        tcf=tc_string(set(range(1, 11)), {1}),
        evidence={"opt_in_confirmed": True},
        headers=GPC,
    )
    assert body["gpc_honored"] is True
    assert states(body)["advertising"] == ("denied", "gpc")
    assert states(body)["third_party_sharing"] == ("denied", "gpc")
    assert states(body)["personalization"] == ("granted", "web")
    assert states(body)["analytics"] == ("granted", "tcf")


def test_after_gpc_only_a_confirmed_opt_in_counts(client: TestClient) -> None:
    """ "A later grant of such a purpose counts only with `evidence.opt_in_confirmed: true`
    (never from a TC string or an import); a later request without the signal never opts
    back in. `gpc_honored` is true ... when a grant in it was ignored because of an earlier
    GPC opt-out.\""""
    publish(client)
    subject_id = record(client, "tia", {}, notice=None, gpc=True)["subject_id"]
    sale_entries = [e for e in history(client, subject_id) if e["purpose"] in SALE_OR_SHARE]
    grant = {"advertising": "granted"}
    ignored: list[dict[str, Any]] = [
        {"purposes": grant},
        {"purposes": grant, "evidence": {"opt_in_confirmed": "true"}},
        {"purposes": grant, "evidence": {"opt_in_confirmed": False}},
        {"purposes": grant, "evidence": {"opt_in_confirmed": True}, "source": "import"},
        {"purposes": grant, "evidence": {"opt_in_confirmed": True}, "source": "tcf"},
        {"tcf": tc_string({1, 3, 4}), "evidence": {"opt_in_confirmed": True}},
    ]
    for extra in ignored:
        body: dict[str, Any] = {"subject": ref("tia"), "source": "web", "notice": NOTICE}
        resp = post_consent(client, body | extra)
        assert resp.status_code == 200, resp.text
        assert resp.json()["gpc_honored"] is True, extra
        assert states(resp.json())["advertising"] == ("denied", "gpc"), extra
    now = [e for e in history(client, subject_id) if e["purpose"] in SALE_OR_SHARE]
    assert now == sale_entries
    other = record(client, "tia", {"analytics": "granted"})
    assert other["gpc_honored"] is False
    mixed = record(client, "tia", {"analytics": "granted", "third_party_sharing": "granted"})
    assert mixed["gpc_honored"] is True
    assert states(mixed)["analytics"] == ("granted", "web")
    assert states(mixed)["third_party_sharing"] == ("denied", "gpc")
    confirmed = record(
        client, "tia", {"advertising": "granted"}, evidence={"opt_in_confirmed": True}
    )
    assert confirmed["gpc_honored"] is False
    assert states(confirmed)["advertising"] == ("granted", "web")
    assert states(confirmed)["third_party_sharing"] == ("denied", "gpc")
    # The GPC opt-out stays on record: a TC string still cannot grant the other one.
    later = record(client, "tia", {}, tcf=tc_string(set(range(1, 11))))
    assert later["gpc_honored"] is True
    assert states(later)["advertising"] == ("granted", "web")


def test_tcf_mapping(client: TestClient) -> None:
    """ "advertising <- TCF purposes 1, 3 and 4; personalization <- 1, 5 and 6; analytics <-
    1, 8 and 9; location <- special feature 1. A mapped purpose is granted when all of its
    TCF purposes are consented and denied otherwise; purposes outside the mapping are
    untouched", recorded with source `tcf`."""
    publish(client)
    record(client, "uma", {"marketing": "granted", "third_party_sharing": "denied"})
    cases = [
        (set(range(1, 11)), {1}),
        ({1, 3, 4, 5, 6}, set()),
        ({3, 4, 5, 6, 8, 9}, {1, 2}),
        ({1, 3, 8, 9}, {2}),
        ({1, 4, 6, 9}, set()),
        (set(), set()),
    ]
    for purposes, features in cases:
        tc = tc_string(purposes, features)
        body = record(client, "uma", {}, tcf=tc)
        for key, state in expected_from(tc).items():
            assert states(body)[key] == (state, "tcf"), (purposes, features, key)
        assert states(body)["marketing"] == ("granted", "web")
        assert states(body)["third_party_sharing"] == ("denied", "web")
        assert body["gpc_honored"] is False
    assert expected_from(tc_string({1, 3, 4, 5, 6}))["advertising"] == "granted"


def test_tcf_strings_from_the_reference_library(client: TestClient) -> None:
    """TC strings made by @iabtcf/core (tests/consent/tcf/vectors.json), core segment plus
    any others, map as the library's own decoding of them says, a publisher TC segment
    included (API.md, Client libraries: "A TC string grants a mapped purpose from its
    publisher segment when it has one")."""
    publish(client)
    chosen: dict[tuple[object, ...], dict[str, Any]] = {}
    for vector in VECTORS:
        if vector["fields"]["policyVersion"] >= 4:
            publisher = "publisherTC" in vector["segments"]
            differs = publisher and expected_from_library(vector) != expected_from(
                vector["tcString"]
            )
            outcome = (differs, *sorted(expected_from_library(vector).items()))
            chosen.setdefault(outcome, vector)
    assert sum(key[0] is True for key in chosen) >= 4
    picked = [v for key, v in chosen.items() if key[0]][:6] + [
        v for key, v in chosen.items() if not key[0]
    ][:4]
    for number, vector in enumerate(picked):
        body = record(client, f"vic.{number}", {}, tcf=vector["tcString"])
        assert states(body) == {k: (v, "tcf") for k, v in expected_from_library(vector).items()}


def test_publisher_segment_decides_the_mapped_purposes(client: TestClient) -> None:
    """API.md, Client libraries: "A TC string grants a mapped purpose from its publisher
    segment when it has one". The publisher segment's PubPurposesConsent replaces the core
    segment's purpose consents for advertising, personalization and analytics, whether it
    narrows or widens them; transparency for legitimate interest and custom purposes grant
    nothing; location stays with the core segment's special feature 1 (the publisher
    segment has none). Strings made by @iabtcf/core (make_vectors.mjs, SCENARIOS)."""
    publish(client)
    expected = {
        "publisher_narrows": ("denied", "denied", "granted", "granted"),
        "publisher_widens": ("granted", "granted", "denied", "denied"),
        "publisher_transparency_only": ("denied", "denied", "denied", "granted"),
        "publisher_custom_only": ("denied", "denied", "denied", "denied"),
        "core_only": ("granted", "denied", "denied", "denied"),
    }
    keys = ("advertising", "personalization", "analytics", "location")
    for name, want in expected.items():
        vector = scenario(name)
        assert expected_from_library(vector) == dict(zip(keys, want, strict=True)), name
        body = record(client, f"pia.{name}", {}, tcf=vector["tcString"])
        assert states(body) == {k: (v, "tcf") for k, v in zip(keys, want, strict=True)}, name
        check = client.post(
            "/v1/consents/check",
            headers=auth(),
            json={"subject": ref(f"pia.{name}"), "purpose": "analytics"},
        ).json()
        assert check["allowed"] is (want[2] == "granted"), name


def test_explicit_entry_wins_over_the_tc_string(client: TestClient) -> None:
    """ "In one call, an explicit `purposes` entry wins over the TC string for the same
    purpose.\""""
    publish(client)
    body = record(
        client,
        "wyn",
        {"analytics": "denied", "location": "granted"},
        tcf=tc_string({1, 3, 4, 5, 6, 8, 9}),
        source="app",
    )
    assert states(body) == {
        "analytics": ("denied", "app"),
        "location": ("granted", "app"),
        "advertising": ("granted", "tcf"),
        "personalization": ("granted", "tcf"),
    }


def test_bad_tc_strings_are_refused(client: TestClient) -> None:
    """ "A malformed string, or one with a TCF policy version below 4, is refused with
    `invalid_tcf`"; the ledger is unchanged."""
    publish(client)
    subject_id = record(client, "xia", {"analytics": "granted"})["subject_id"]
    before = history(client, subject_id)
    old = [v["tcString"] for v in VECTORS if tcf.decode(v["tcString"]).policy_version < 4][:3]
    good = tc_string({1, 3, 4})
    bad = [
        "",
        "!!!",
        "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAAA",  # TCF v1
        good[:20],
        good + "A" * 8,
        good + "." + "A" * 4,
        tc_string({1, 3, 4}, policy=2),
        tc_string({1, 3, 4}, policy=3),
        *old,
    ]
    for tc in bad:
        body = {
            "subject": ref("xia"),
            "tcf": tc,
            "source": "web",
            "notice": {"id": "privacy", "version": "1"},
        }
        assert_problem(post_consent(client, body), 422, "invalid_tcf")
        assert history(client, subject_id) == before
