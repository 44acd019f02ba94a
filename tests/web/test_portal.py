"""The privacy portal through HTTP on both back-ends: a minted link or a mailed code opens it
(the link leaves the address bar, and opens it once), toggles write the ledger (source web,
GPC honoured), requests carry the entry's verification, erasure is confirmed first, forms
need the session's CSRF token, and every page is no-store."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.settings import Settings
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import SCHEMA, email, grant, request, run, runtime_of, send
from tests.dsr.mailcodes import code_in, with_mail
from tests.dsr.test_entry import mint
from tests.mailserver import Mailbox

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    base = dataclasses.replace(settings, dsr_poll_seconds=0, allow_private_endpoints=True)
    return with_mail(base, mail_port)


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    notice = {
        "version": "1",
        "text": "We use your visits to improve the shop.",
        "purposes": ["analytics"],
    }
    assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
    newer = {
        "version": "2",
        "text": "We also tailor offers to you.",
        "purposes": ["analytics", "personalization"],
    }
    assert client.put("/v1/notices/main", headers=auth(), json=newer).status_code == 201
    return client


def visitor(client: TestClient) -> TestClient:
    """A browser on this machine (pages need TLS or a loopback client), beside `client`'s app."""
    return TestClient(client.app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000))


def _enter_by_link(client: TestClient, name: str, **body: Any) -> tuple[TestClient, str]:
    url = mint(client, auth(), subject=email(name), **body)["url"]
    path = url.removeprefix("http://127.0.0.1:8000")
    browser = visitor(client)
    resp = browser.get(path, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/portal"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Path=/portal" in cookie
    return browser, path


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None
    return found.group(1)


def _ledger(client: TestClient, subject_id: str) -> list[dict[str, Any]]:
    items = client.get("/v1/consents/report", headers=auth()).json()["items"]
    return [e for e in items if e["subject_id"] == subject_id]


def test_a_link_opens_the_portal_once_and_toggles_write_the_ledger(shop: TestClient) -> None:
    subject_id = grant(shop, email("ada"), "analytics")
    browser, link = _enter_by_link(shop, "ada")
    page = browser.get("/portal")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "ada@example.com" not in page.text
    # Analytics was granted under notice 1: its text is shown; personalization is offered
    # under notice 2.
    assert "We use your visits to improve the shop." in page.text
    assert "We also tailor offers to you." in page.text
    csrf = _csrf(page.text)

    # The link opened its session: a second visit with it is refused.
    again = visitor(shop).get(link, follow_redirects=False)
    assert again.status_code == 403

    resp = browser.post(
        "/portal/consent",
        data={"csrf": csrf, "purpose": "personalization", "choice": "granted"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    resp = browser.post(
        "/portal/consent",
        data={"csrf": csrf, "purpose": "analytics", "choice": "withdrawn"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    entries = _ledger(shop, subject_id)
    assert [(e["purpose"], e["state"], e["source"]) for e in entries[-2:]] == [
        ("personalization", "granted", "web"),
        ("analytics", "withdrawn", "web"),
    ]
    assert entries[-2]["notice_version"] == "2"

    forged = browser.post(
        "/portal/consent", data={"csrf": "0" * 64, "purpose": "analytics", "choice": "granted"}
    )
    assert forged.status_code == 403
    assert len(_ledger(shop, subject_id)) == len(entries)
    anonymous = visitor(shop).post(
        "/portal/consent", data={"csrf": csrf, "purpose": "analytics", "choice": "granted"}
    )
    assert anonymous.status_code == 401


def test_gpc_from_the_browser_is_honoured(shop: TestClient) -> None:
    body = {"name": "Ads", "legal_basis": "consent", "retention_days": 30, "sale_or_share": True}
    assert shop.put("/v1/purposes/adshare", headers=auth(), json=body).status_code in {200, 201}
    notice = {
        "version": "3",
        "text": "We share with ad partners.",
        "purposes": ["analytics", "adshare"],
    }
    assert shop.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
    subject_id = grant(shop, email("bo"), "analytics")
    browser, _ = _enter_by_link(shop, "bo")
    csrf = _csrf(browser.get("/portal").text)
    resp = browser.post(
        "/portal/consent",
        data={"csrf": csrf, "purpose": "analytics", "choice": "withdrawn"},
        headers={"Sec-GPC": "1"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    states = {(e["purpose"], e["state"], e["source"]) for e in _ledger(shop, subject_id)}
    assert ("adshare", "denied", "gpc") in states


def test_requests_carry_the_entrys_verification_and_erasure_is_confirmed(shop: TestClient) -> None:
    grant(shop, email("cy"), "analytics")
    browser, _ = _enter_by_link(
        shop, "cy", verification={"method": "reauthenticated", "level": "high"}
    )
    csrf = _csrf(browser.get("/portal").text)
    made = browser.post(
        "/portal/requests", data={"csrf": csrf, "type": "access"}, follow_redirects=False
    )
    assert made.status_code == 303
    asked = browser.post("/portal/requests", data={"csrf": csrf, "type": "erasure"})
    assert asked.status_code == 200
    assert "Yes, erase my data" in asked.text
    listed = shop.get("/v1/requests", headers=auth()).json()["items"]
    assert [r["type"] for r in listed] == ["access"]
    assert listed[0]["verification"]["level"] == "high"
    done = browser.post(
        "/portal/requests",
        data={"csrf": csrf, "type": "erasure", "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    listed = shop.get("/v1/requests", headers=auth()).json()["items"]
    assert sorted(r["type"] for r in listed) == ["access", "erasure"]
    page = browser.get("/portal").text
    # Verified at high, the erasure ran at once: the portal says so, and lists the requests.
    assert "Your data has been erased" in page
    assert "Erase my data" in page
    assert page.count('<tr data-request="') == 2
    bad = browser.post("/portal/requests", data={"csrf": csrf, "type": "rectification"})
    assert bad.status_code == 400


def test_a_mailed_code_opens_the_portal(shop: TestClient, mailbox: Mailbox) -> None:
    grant(shop, email("dee"), "analytics")
    browser = visitor(shop)
    entry = browser.get("/portal")
    assert "Send me a code" in entry.text
    sent = browser.post("/portal/code", data={"email": "dee@example.com"})
    assert sent.status_code == 200
    assert "6-digit code" in sent.text
    runtime_of(shop).mail.send_due()
    code = code_in(mailbox.texts()[-1])
    wrong = shop.post(
        "/portal/code/check",
        data={"email": "dee@example.com", "code": "000000" if code != "000000" else "111111"},
    )
    assert wrong.status_code == 403
    opened = browser.post(
        "/portal/code/check",
        data={"email": "dee@example.com", "code": code},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    page = browser.get("/portal")
    assert "What you agreed to" in page.text
    # The same answer for an address nobody has.
    unknown = visitor(shop).post("/portal/code", data={"email": "nobody@example.com"})
    assert unknown.status_code == 200
    assert unknown.text.replace("nobody@example.com", "X") == sent.text.replace(
        "dee@example.com", "X"
    )


def test_signing_out_ends_the_session(shop: TestClient) -> None:
    grant(shop, email("eve"), "analytics")
    browser, _ = _enter_by_link(shop, "eve")
    csrf = _csrf(browser.get("/portal").text)
    out = browser.post("/portal/signout", data={"csrf": csrf})
    assert out.status_code == 200
    assert "signed out" in out.text
    assert "Send me a code" in browser.get("/portal").text


def _download(browser: TestClient, csrf: str, request_id: str) -> Any:
    return browser.post("/portal/download", data={"csrf": csrf, "request": request_id})


def _downloads(page: str) -> list[str]:
    return re.findall(r'<tr data-download="([^"]+)">', page)


def _result_reads(client: TestClient, subject_id: str) -> list[dict[str, Any]]:
    entries = client.get(
        "/v1/audit/entries", headers=auth(), params={"subject_id": subject_id, "limit": 1000}
    ).json()["items"]
    return [e for e in entries if e["action"] == "request:result:read"]


@pytest.fixture
def chat(shop: TestClient) -> TestClient:
    """The shop, with an event schema: the subject's events are part of their data."""
    assert shop.put("/v1/schemas/chat", headers=auth(), json=SCHEMA).status_code == 201
    return shop


def test_the_owner_downloads_their_copy_the_same_bytes_as_the_api(
    chat: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One instant throughout: the report says when it was generated.
    install_clock(monkeypatch)
    subject_id = grant(chat, email("fay"), "analytics")
    send(chat, email("fay"), 2, "fay", topic="returns", message="Where is my parcel, Fay asks")
    browser, _ = _enter_by_link(
        chat, "fay", verification={"method": "reauthenticated", "level": "high"}
    )
    page = browser.get("/portal").text
    csrf = _csrf(page)
    assert "Nothing to download yet" in page
    for kind in ("portability", "access"):
        made = browser.post(
            "/portal/requests", data={"csrf": csrf, "type": kind}, follow_redirects=False
        )
        assert made.status_code == 303
    made = {
        r["type"]: r["request_id"] for r in chat.get("/v1/requests", headers=auth()).json()["items"]
    }

    # Not completed yet: no download offered, and one asked for is refused with a page.
    assert _downloads(browser.get("/portal").text) == []
    early = _download(browser, csrf, made["portability"])
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("text/html")
    assert "The request has no result yet" in early.text
    assert _result_reads(chat, subject_id) == []

    run(chat)
    page = browser.get("/portal").text
    assert sorted(_downloads(page)) == sorted(made.values())
    for kind, name in (("portability", "my-data"), ("access", "my-data-report")):
        rid = made[kind]
        got = _download(browser, csrf, rid)
        assert got.status_code == 200, got.text
        assert got.headers["content-disposition"] == f'attachment; filename="{name}-{rid}.json"'
        assert got.headers["cache-control"] == "no-store"
        assert got.headers["content-type"].startswith("application/json")
        assert "unsafe-inline" not in got.headers["content-security-policy"]
        api = chat.get(f"/v1/requests/{rid}/result", headers=auth())
        assert api.status_code == 200
        assert got.content == api.content
        copy = json.loads(got.content)
        assert copy["subject_id"] == subject_id
        assert {"type": "email", "value": "fay@example.com"} in copy["identities"]
        assert "Where is my parcel" in got.text
    # Each read is audited; the portal's as the portal's.
    actors = [e["actor"] for e in _result_reads(chat, subject_id)]
    assert len(actors) == 4
    assert actors.count("portal") == 2
    # Nothing personal in the address the browser posted to, nor in the file's name.
    assert got.url.path == "/portal/download"
    assert "fay" not in got.headers["content-disposition"]


def test_a_download_is_for_the_owner_of_a_completed_report_only(chat: TestClient) -> None:
    fay = grant(chat, email("fay"), "analytics")
    grant(chat, email("gus"), "analytics")
    high = {"method": "reauthenticated", "level": "high"}
    fays, _ = _enter_by_link(chat, "fay", verification=high)
    fay_csrf = _csrf(fays.get("/portal").text)
    assert fays.post("/portal/requests", data={"csrf": fay_csrf, "type": "access"}).is_success
    run(chat)
    (rid,) = _downloads(fays.get("/portal").text)

    # Another customer's session: the request is not theirs, and that is all they learn.
    guss, _ = _enter_by_link(chat, "gus", verification=high)
    gus_csrf = _csrf(guss.get("/portal").text)
    theirs = _download(guss, gus_csrf, rid)
    assert theirs.status_code == 404
    assert "fay" not in theirs.text
    assert "Fay" not in theirs.text
    nothing = _download(guss, gus_csrf, "req_does_not_exist")
    assert nothing.status_code == 404
    assert [e["actor"] for e in _result_reads(chat, fay)] == []

    # Without the form's token, or without a session: refused, nothing read.
    assert _download(fays, "0" * 64, rid).status_code == 403
    assert _download(visitor(chat), fay_csrf, rid).status_code == 401
    assert _result_reads(chat, fay) == []

    # An erasure has no file: nothing to download. Once it has run, the data is gone: the
    # portal's erased page, with the API's 410.
    erase = {"csrf": fay_csrf, "type": "erasure", "confirm": "yes"}
    assert fays.post("/portal/requests", data=erase).is_success
    erasure = [r["request_id"] for r in chat.get("/v1/requests", headers=auth()).json()["items"]]
    erasure.remove(rid)
    assert _download(fays, fay_csrf, erasure[0]).status_code == 404
    run(chat)
    gone = _download(fays, fay_csrf, rid)
    assert gone.status_code == 410
    assert "Your data has been erased" in gone.text
    assert chat.get(f"/v1/requests/{rid}/result", headers=auth()).status_code == 410
    assert "Download my data" not in fays.get("/portal").text


def test_a_copy_asked_for_as_csv_downloads_as_csv(
    chat: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(monkeypatch)
    hal_id = grant(chat, email("hal"), "analytics")
    send(chat, email("hal"), 3, "hal", topic="billing", message="Hal's invoice")
    rid = request(
        chat,
        {
            "type": "portability",
            "subject": email("hal"),
            "jurisdiction": "EU",
            "format": "csv",
            "verification": {"method": "account_login", "level": "high"},
        },
    )["request_id"]
    run(chat)
    # A link the site minted without re-authenticating: the session is not verified, so the
    # operator's verification of the request does not disclose it to whoever holds the link.
    unverified, _ = _enter_by_link(chat, "hal")
    page = unverified.get("/portal").text
    assert _downloads(page) == [rid]
    refused = _download(unverified, _csrf(page), rid)
    assert refused.status_code == 409
    assert "this session is verified at none" in refused.text
    assert _result_reads(chat, hal_id) == []
    browser, _ = _enter_by_link(
        chat, "hal", verification={"method": "reauthenticated", "level": "high"}
    )
    page = browser.get("/portal").text
    assert "(CSV)" in page
    got = _download(browser, _csrf(page), rid)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == f'attachment; filename="my-data-{rid}.csv"'
    assert got.headers["cache-control"] == "no-store"
    assert got.content == chat.get(f"/v1/requests/{rid}/result", headers=auth()).content
    assert got.text.count("hal-") == 3
