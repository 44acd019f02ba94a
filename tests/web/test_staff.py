"""The pages people sign in to, through HTTP on both back-ends: enrolment by link (password,
then the authenticator), sign-in with both factors, a lock after 5 failures, sign-out; the
dashboard and its report behind a session, role-aware; backlog actions through the API's
body models, with the CSRF token."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from consentry.people.models import PersonRole
from tests.conftest import auth
from tests.consent.helpers import FakeClock, install_clock
from tests.dsr.conftest import email, grant, request, runtime_of
from tests.people.helpers import PASSWORD, code, enrol, secret_of
from tests.web.test_portal import visitor

_FIELD = re.compile(r'name="(csrf|form_token)" value="([^"]+)"')


def _field(page: str, name: str) -> str:
    for found, value in _FIELD.findall(page):
        if found == name:
            return value
    raise AssertionError(f"no {name} in the page")


def _sign_in(browser: TestClient, who: str, secret: str, fake: FakeClock, **override: str) -> int:
    form = browser.get("/signin")
    assert form.status_code == 200
    data = {
        "form_token": _field(form.text, "form_token"),
        "email": who,
        "password": PASSWORD,
        "code": code(secret, fake),
    } | override
    resp = browser.post("/signin", data=data, follow_redirects=False)
    fake.advance(seconds=30)
    return resp.status_code


def test_enrolment_through_the_pages(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    people = runtime_of(ready).people
    made = people.create("grace@example.com", PersonRole.OPERATOR, actor="cli")
    path = made.url.removeprefix("http://127.0.0.1:8000")
    browser = visitor(ready)
    page = browser.get(path)
    assert page.status_code == 200
    assert "grace@example.com" in page.text
    token = path.split("token=")[1]
    short = browser.post(
        "/enrol/password", data={"token": token, "password": "short", "again": "short"}
    )
    assert short.status_code == 422
    differ = browser.post(
        "/enrol/password", data={"token": token, "password": PASSWORD, "again": PASSWORD + "x"}
    )
    assert differ.status_code == 422
    totp = browser.post(
        "/enrol/password", data={"token": token, "password": PASSWORD, "again": PASSWORD}
    )
    assert totp.status_code == 200
    secret = re.search(r"data-totp-secret>([A-Z2-7]+)<", totp.text)
    assert secret is not None
    assert secret.group(1) == secret_of(
        re.search(r'href="(otpauth://[^"]+)"', totp.text).group(1).replace("&amp;", "&")
    )  # type: ignore[union-attr]
    wrong = browser.post("/enrol/confirm", data={"token": token, "code": "000000"})
    assert wrong.status_code == 422
    done = browser.post(
        "/enrol/confirm", data={"token": token, "code": code(secret.group(1), fake)}
    )
    assert done.status_code == 200
    assert "Your account is ready" in done.text
    # The link is used up.
    assert browser.get(path).status_code == 410
    fake.advance(seconds=30)
    assert _sign_in(browser, "grace@example.com", secret.group(1), fake) == 303


def test_sign_in_both_factors_lock_and_sign_out(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    person = enrol(runtime_of(ready).people, fake)
    browser = visitor(ready)
    assert browser.get("/dashboard", follow_redirects=False).headers["location"] == "/signin"
    # Another site's form has no token of ours.
    forged = browser.post(
        "/signin",
        data={
            "form_token": "x",
            "email": person.email,
            "password": PASSWORD,
            "code": code(person.secret, fake),
        },
    )
    assert forged.status_code == 403
    for _ in range(4):
        assert (
            _sign_in(browser, person.email, person.secret, fake, password="wrong password here")
            == 401
        )
    assert _sign_in(browser, person.email, person.secret, fake, code="123456") in {401, 429}
    locked = _sign_in(browser, person.email, person.secret, fake)
    assert locked == 429
    fake.advance(minutes=15)
    assert _sign_in(browser, person.email, person.secret, fake) == 303
    dash = browser.get("/dashboard")
    assert dash.status_code == 200
    assert "Compliance dashboard" in dash.text
    assert dash.headers["cache-control"] == "no-store"
    out = browser.post("/signout", data={"csrf": _field(dash.text, "csrf")}, follow_redirects=False)
    assert out.status_code == 303
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_roles_and_actions(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    people = runtime_of(ready).people
    dpo = enrol(people, fake, email="dpo@example.com", role=PersonRole.DPO)
    auditor = enrol(people, fake, email="audit@example.com", role=PersonRole.AUDITOR)
    grant(ready, email("ada"), "analytics")
    made = request(ready, {"type": "access", "subject": email("ada"), "jurisdiction": "EU"})
    rid = made["request_id"]

    watcher = visitor(ready)
    assert _sign_in(watcher, auditor.email, auditor.secret, fake) == 303
    seen = watcher.get("/dashboard").text
    assert f'data-request="{rid}"' in seen
    assert "/dashboard/requests/verify" not in seen
    refused = watcher.post(
        "/dashboard/requests/verify",
        data={
            "csrf": _field(seen, "csrf"),
            "request_id": rid,
            "method": "id card",
            "level": "high",
        },
    )
    assert refused.status_code == 403

    officer = visitor(ready)
    assert _sign_in(officer, dpo.email, dpo.secret, fake) == 303
    page = officer.get("/dashboard").text
    assert "/dashboard/requests/verify" in page
    csrf = _field(page, "csrf")
    incomplete = officer.post(
        "/dashboard/requests/verify",
        data={"csrf": csrf, "request_id": rid, "method": "", "level": "high"},
    )
    assert incomplete.status_code == 422
    forged = officer.post(
        "/dashboard/requests/verify",
        data={"csrf": "0" * 64, "request_id": rid, "method": "id card", "level": "high"},
    )
    assert forged.status_code == 403
    done = officer.post(
        "/dashboard/requests/verify",
        data={"csrf": csrf, "request_id": rid, "method": "id card seen", "level": "high"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    got = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert got["verification"]["level"] == "high"
    entries = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()["items"]
    assert any(
        e["actor"] == f"person:{dpo.person_id}" and e["action"].startswith("request:")
        for e in entries
    )

    report = officer.get("/dashboard/consents", params={"purpose": "analytics"})
    assert report.status_code == 200
    assert 'data-entry="' in report.text
    exported = officer.get("/dashboard/consents.csv", params={"purpose": "analytics"})
    rows = list(csv.reader(io.StringIO(exported.text)))
    api = ready.get("/v1/consents/report", headers=auth(), params={"purpose": "analytics"}).json()
    assert [r[0] for r in rows[1:]] == [str(e["entry_id"]) for e in api["items"]]
    bad = officer.get("/dashboard/consents", params={"from": "yesterday"})
    assert bad.status_code == 422

    # Extending: numbers as typed, and the day the person was told, checked by the API's model.
    for months in ("\u00b2", "9" * 5000, "-1"):
        odd = officer.post(
            "/dashboard/requests/extend",
            data={
                "csrf": csrf,
                "request_id": rid,
                "months": months,
                "reason": "complex",
                "notified_on": "2026-12-04",
            },
        )
        assert odd.status_code in {409, 422}, (months, odd.status_code)
    undated = officer.post(
        "/dashboard/requests/extend",
        data={
            "csrf": csrf,
            "request_id": rid,
            "months": "1",
            "reason": "complex",
            "notified_on": "",
        },
    )
    assert undated.status_code == 422
    extended = officer.post(
        "/dashboard/requests/extend",
        data={
            "csrf": csrf,
            "request_id": rid,
            "months": "1",
            "reason": "many systems hold the data",
            "notified_on": fake().date().isoformat(),
        },
        follow_redirects=False,
    )
    assert extended.status_code == 303, extended.text
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["extended"] is True

    # The report is for compliance readers: the auditor too, not an operator.
    assert watcher.get("/dashboard/consents").status_code == 200
    operator = enrol(people, fake, email="ops@example.com", role=PersonRole.OPERATOR)
    hand = visitor(ready)
    assert _sign_in(hand, operator.email, operator.secret, fake) == 303
    assert hand.get("/dashboard/consents").status_code == 403
    assert hand.get("/dashboard/consents.csv").status_code == 403
    assert "/dashboard/consents" not in hand.get("/dashboard").text


def test_an_api_key_opens_no_page(client: TestClient) -> None:
    """API.md: API keys do not open the pages; only a person's session does. The admin key
    as a Bearer token gets the sign-in page's redirect on every page, GET and POST alike."""
    from consentry.web.console import PAGES  # noqa: PLC0415 - the pages, found from the code

    browser = visitor(client)
    bearer = auth()
    for method, path in PAGES:
        resp = browser.request(method, path, headers=bearer, follow_redirects=False)
        assert resp.status_code == 303, (method, path, resp.status_code)
        assert resp.headers["location"] == "/signin", (method, path)
        assert "Sign out" not in resp.text, (method, path)


def test_the_dashboard_lists_assessments_to_those_who_may_read_them(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    people = runtime_of(ready).people
    auditor = enrol(people, fake, email="audit@example.com", role=PersonRole.AUDITOR)
    operator = enrol(people, fake, email="ops@example.com", role=PersonRole.OPERATOR)
    browse = {
        "purposes": ["personalization"],
        "fields": {
            "history": {
                "type": "string",
                "category": "user.behavior.browsing_history",
                "treatment": "keep",
            }
        },
    }
    assert ready.put("/v1/schemas/browse", headers=auth(), json=browse).status_code == 201
    assert ready.get("/v1/assessments", headers=auth()).status_code == 200
    fake.advance(days=3)

    watcher = visitor(ready)
    assert _sign_in(watcher, auditor.email, auditor.secret, fake) == 303
    page = watcher.get("/dashboard").text
    assert 'id="h-assessments"' in page
    row = re.search(r'<tr data-assessment="personalization">.*?</tr>', page)
    assert row is not None
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(0))
    # Purpose, score, triggers, status, days since required (with the chat schema's events,
    # two event types serve it: combined datasets).
    triggers = "systematic_monitoring, profiling, combined_datasets"
    assert cells == ["personalization", "40", triggers, "required", "3"]
    # The required ones first.
    listed = re.findall(r'data-assessment="([a-z_]+)"', page)
    assert listed[0] == "personalization"

    other = visitor(ready)
    assert _sign_in(other, operator.email, operator.secret, fake) == 303
    assert 'id="h-assessments"' not in other.get("/dashboard").text
