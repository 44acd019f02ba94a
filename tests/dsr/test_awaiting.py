"""A request waiting for downstream systems, through the HTTP API on both back-ends (a fake
of the dsr port): completed once every system has acknowledged, and only once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from consentry.dsr.models import NoticeKind
from tests.conftest import auth
from tests.dsr.conftest import FakeSystems, email, grant, request, run, runtime_of
from tests.http.test_conventions import assert_problem


def test_awaiting_downstream_until_each_system_acknowledges(ready: TestClient) -> None:
    rt = runtime_of(ready)
    fake = FakeSystems()
    rt.requests.downstream = rt.erasure.downstream = fake
    subject = email("dora")
    grant(ready, subject, "analytics")
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "high"},
        },
    )
    rid = created["request_id"]
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert {d["system_id"] for d in state["downstream"]} == {"crm", "warehouse"}
    fake.acked.add("warehouse")  # acknowledged through its rights endpoint
    run(ready)
    assert (
        ready.get(f"/v1/requests/{rid}", headers=auth()).json()["status"] == "awaiting_downstream"
    )
    assert_problem(
        ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "nope"}),
        409,
        "unexpected_acknowledgement",
    )
    done = ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"}).json()
    assert done["status"] == "completed"
    assert [k for _, k in fake.sent] == [NoticeKind.PURGE_REQUEST]
    # Answered once: a second acknowledgement is owed nothing.
    assert_problem(
        ready.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"}),
        409,
        "unexpected_acknowledgement",
    )
