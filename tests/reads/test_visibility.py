"""reads/visibility.py on both back-ends: the subjects a purpose may not read (denied, never
asked, withdrawn, expired), remembered until the policy version moves or the first grant it
relied on expires."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.ingest.minimise import subject_key
from consentry.reads.visibility import Excluded
from consentry.runtime import Runtime
from consentry.storage import reads as sql
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.ingest.test_pipeline import NOTICE, grant, who


def decide(client: TestClient, name: str, **purposes: str) -> str:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={"subject": who(name), "purposes": purposes, "source": "web", "notice": NOTICE},
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["subject_id"])


def subject(client: TestClient, name: str) -> str:
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": who(name)})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["subject_id"])


def excluded(rt: Runtime, purpose: str = "analytics") -> Excluded:
    with rt.store.read(snapshot=True) as conn:
        version = sql.policy_version(conn)
        return rt.reads.visibility.excluded(conn, rt.purposes.get(conn, purpose), version)


@pytest.fixture
def rt(ready: TestClient) -> Runtime:
    runtime: Any = ready.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def test_only_subjects_the_purpose_may_read_are_left_in(ready: TestClient, rt: Runtime) -> None:
    ana = decide(ready, "ana", analytics="granted")
    bo = decide(ready, "bo", analytics="denied")
    cy = subject(ready, "cy")
    dee = decide(ready, "dee", analytics="granted", personalization="granted")
    ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who("dee"), "purposes": ["analytics"]},
    )
    keys = excluded(rt).keys
    assert subject_key(ana) not in keys
    assert {subject_key(bo), subject_key(cy), subject_key(dee)} <= keys
    # Another purpose is decided on its own.
    assert subject_key(dee) not in excluded(rt, "personalization").keys
    assert subject_key(ana) in excluded(rt, "personalization").keys


def test_the_set_is_remembered_until_the_policy_version_moves(
    ready: TestClient, rt: Runtime
) -> None:
    ana = decide(ready, "ana", analytics="granted")
    first = excluded(rt)
    assert excluded(rt) is first
    decide(ready, "ana", analytics="denied")
    second = excluded(rt)
    assert second is not first
    assert second.policy_version > first.policy_version
    assert subject_key(ana) in second.keys


def test_the_set_lapses_when_the_first_grant_it_relied_on_expires(
    ready: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = decide(ready, "ana", analytics="granted")
    grant(ready, who("bo"), "analytics")
    first = excluded(rt)
    expiries = [
        ready.get(f"/v1/subjects/{ana}/consent", headers=auth()).json()["purposes"]["analytics"][
            "expires_at"
        ]
    ]
    assert first.until is not None
    assert first.until.isoformat().replace("+00:00", "Z")[:19] == expiries[0][:19]
    fake = install_clock(monkeypatch)
    fake.moment = first.until
    lapsed = excluded(rt)
    assert lapsed is not first
    assert subject_key(ana) in lapsed.keys
