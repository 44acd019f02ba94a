"""The consent report on both back-ends: filters, pages, CSV (whole, streamed, formula-safe),
every read audited with its filters, roles."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.consent import report
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import NOTICE, email, grant


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    body = {"version": "1", "text": "Notice.", "purposes": ["analytics", "marketing"]}
    assert client.put("/v1/notices/main", headers=auth(), json=body).status_code == 201
    return client


def _withdraw(client: TestClient, name: str, purpose: str) -> None:
    body = {"subject": email(name), "purposes": [purpose]}
    resp = client.post("/v1/consents/withdraw", headers=auth(), json=body)
    assert resp.status_code == 200, resp.text


def _report(client: TestClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/consents/report", headers=auth(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_filters_pages_and_csv(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_clock(monkeypatch)
    ada = grant(ready, email("ada"), "analytics", "marketing")
    fake.advance(days=1)
    middle = fake()
    bo = grant(ready, email("bo"), "analytics")
    _withdraw(ready, "ada", "marketing")

    everything = _report(ready)["items"]
    assert [(e["subject_id"], e["purpose"], e["state"]) for e in everything] == [
        (ada, "analytics", "granted"),
        (ada, "marketing", "granted"),
        (bo, "analytics", "granted"),
        (ada, "marketing", "withdrawn"),
    ]
    assert set(everything[0]) == set(report.COLUMNS)
    assert everything[0]["notice_id"] == NOTICE["id"]
    assert "evidence" not in str(everything)

    withdrawn = _report(ready, state="withdrawn")["items"]
    assert [(e["subject_id"], e["purpose"]) for e in withdrawn] == [(ada, "marketing")]
    analytics_later = _report(ready, purpose="analytics", **{"from": middle.isoformat()})
    assert [e["subject_id"] for e in analytics_later["items"]] == [bo]
    before = _report(ready, to=middle.isoformat())["items"]
    assert len(before) == 2

    first = _report(ready, limit=3)
    assert len(first["items"]) == 3
    rest = _report(ready, limit=3, cursor=first["next"])
    assert [e["entry_id"] for e in rest["items"]] == [everything[3]["entry_id"]]
    assert rest["next"] is None

    resp = ready.get(
        "/v1/consents/report",
        headers=auth() | {"Accept": "text/csv"},
        params={"purpose": "marketing"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == list(report.COLUMNS)
    assert [(r[2], r[4]) for r in rows[1:]] == [(ada, "granted"), (ada, "withdrawn")]

    audited = ready.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    reads = [e for e in audited["items"] if e["action"] == "consent:report:read"]
    assert len(reads) == 7
    assert reads[1]["details"] == {"filters": {"state": "withdrawn"}, "rows": 1, "format": "json"}
    assert reads[-1]["details"] == {"filters": {"purpose": "marketing"}, "format": "csv"}


def test_a_csv_longer_than_a_page_streams_whole(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "CSV_PAGE", 2)
    for n in range(5):
        grant(ready, email(f"p{n}"), "analytics")
    resp = ready.get("/v1/consents/report", headers=auth(), params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert len(rows) == 1 + 5
    assert len({r[0] for r in rows[1:]}) == 5


def test_cells_a_spreadsheet_would_run_are_defused() -> None:
    assert report._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert report._cell("+1") == "'+1"
    assert report._cell("-1") == "'-1"
    assert report._cell("@SUM") == "'@SUM"
    assert report._cell("web") == "web"
    assert report._cell(None) == ""


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"state": "maybe"}, "invalid_request"),
        ({"source": "fax"}, "invalid_request"),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "invalid_window"),
        ({"cursor": "bm90LW91cnM"}, "invalid_cursor"),
        ({"format": "xml"}, "invalid_request"),
    ],
)
def test_bad_filters_are_problems(ready: TestClient, params: dict[str, str], code: str) -> None:
    resp = ready.get("/v1/consents/report", headers=auth(), params=params)
    assert resp.status_code in {400, 422}
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code


def test_a_collector_key_cannot_read_it(ready: TestClient) -> None:
    created = ready.post("/v1/api-keys", headers=auth(), json={"role": "collector"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    resp = ready.get("/v1/consents/report", headers=auth(key))
    assert resp.status_code == 403
