"""A request's result through its one home (dsr/results.py) on both back-ends: a subject
reading their own gets only their own reports and copies, each as the API serves it, and
nothing is read (nor audited) before the checks hold."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from consentry.dsr.models import Level, RequestType
from consentry.errors import RequestNotFound, ResultNotReady
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.dsr.conftest import email, grant, request, run, runtime_of, send

HIGH = {"method": "account_login", "level": "high"}


def _ask(client: TestClient, name: str, kind: str, **body: object) -> str:
    made = {"type": kind, "subject": email(name), "jurisdiction": "EU", "verification": HIGH}
    return str(request(client, made | body)["request_id"])


def _reads(client: TestClient, subject_id: str) -> int:
    entries = client.get(
        "/v1/audit/entries", headers=auth(), params={"subject_id": subject_id, "limit": 1000}
    ).json()["items"]
    return sum(e["action"] == "request:result:read" for e in entries)


def test_a_subject_reads_only_their_own_reports_and_copies(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_clock(monkeypatch)
    ada = grant(ready, email("ada"), "analytics")
    bo = grant(ready, email("bo"), "analytics")
    send(ready, email("ada"), 2, "ada", topic="returns", message="A parcel")
    copy = _ask(ready, "ada", "portability", format="csv")
    bos_report = _ask(
        ready, "bo", "access", verification={"method": "email", "level": "reasonable"}
    )
    results = runtime_of(ready).results

    with pytest.raises(ResultNotReady):
        results.read(copy, actor="portal", subject_id=ada)
    run(ready)
    with pytest.raises(RequestNotFound):
        results.read(copy, actor="portal", subject_id=bo)
    assert _reads(ready, ada) == 0

    # A reader who proved nothing in their session reads nothing, whoever verified the
    # request, and no read is audited.
    with pytest.raises(ResultNotReady):
        results.read(copy, actor="portal", subject_id=ada)
    assert _reads(ready, ada) == 0

    got = results.read(copy, actor="portal", subject_id=ada, reader_level=Level.REASONABLE)
    assert (got.type, got.media_type, got.extension) == (RequestType.PORTABILITY, "text/csv", "csv")
    api = ready.get(f"/v1/requests/{copy}/result", headers=auth())
    assert b"".join(got.chunks()) == api.content
    assert _reads(ready, ada) == 2

    # A request with no file for a result is not one a subject downloads.
    restriction = _ask(ready, "bo", "restriction", ground="18_1_a")
    run(ready)
    with pytest.raises(RequestNotFound):
        results.read(restriction, actor="portal", subject_id=bo)
    # What was done, as the API encodes it.
    done = results.read(restriction, actor="test")
    assert done.stream is None
    assert (
        b"".join(done.chunks())
        == ready.get(f"/v1/requests/{restriction}/result", headers=auth()).content
    )
    report = results.read(bos_report, actor="portal", subject_id=bo, reader_level=Level.REASONABLE)
    assert report.media_type == "application/json"
