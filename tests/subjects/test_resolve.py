"""subjects/resolve.py and the /v1/subjects routes on both back-ends: one person, one subject."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from consentry.app import create_app
from consentry.errors import IdentityConflict, KeyUnwrapFailed
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import audit_entries, identities, subject_keys, subjects
from consentry.subjects.models import Identity, IdentityType, Resolution
from consentry.subjects.refs import subject_ref
from consentry.subjects.resolve import identity_aad
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth, fresh_pg_database

UNKNOWN_ID = "sub_000000000000000000000000"
THREADS = 8


def email(value: str) -> dict[str, str]:
    return {"type": "email", "value": value}


def phone(value: str) -> dict[str, str]:
    return {"type": "phone", "value": value}


def post(client: TestClient, *idents: dict[str, str], **extra: Any) -> httpx.Response:
    body = {"subject": {"identities": list(idents)}, **extra}
    return client.post("/v1/subjects", headers=auth(), json=body)


def problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == code
    assert body["status"] == status
    return dict(body)


def runtime_of(client: TestClient) -> Runtime:
    rt = client.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def count(rt: Runtime, table: Any) -> int:
    with rt.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def clear_identities(rt: Runtime, subject_id: str) -> set[Identity]:
    with rt.store.read() as conn:
        return set(rt.subjects.identities(conn, subject_id))


def audit_actions(client: TestClient, subject_id: str) -> list[tuple[str, dict[str, Any]]]:
    resp = client.get("/v1/audit/entries", headers=auth(), params={"subject_id": subject_id})
    assert resp.status_code == 200, resp.text
    return [(item["action"], item["details"]) for item in resp.json()["items"]]


# --- one person, one subject ------------------------------------------------------------------


def test_the_same_person_written_differently_is_one_subject(client: TestClient) -> None:
    first = post(client, email("Ana@Example.com "))
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["created"] is True
    assert created["subject_id"].startswith("sub_")
    assert created["identity_types"] == ["email"]

    for spelling in ["ana@example.com", "  ANA@EXAMPLE.COM", "ana@EXAMPLE.com\t"]:
        again = post(client, email(spelling))
        assert again.status_code == 200, again.text
        assert again.json()["subject_id"] == created["subject_id"]
        assert again.json()["created"] is False

    rt = runtime_of(client)
    assert count(rt, subjects) == 1
    assert count(rt, identities) == 1
    assert clear_identities(rt, created["subject_id"]) == {
        Identity(IdentityType.EMAIL, "ana@example.com")
    }
    got = client.get(f"/v1/subjects/{created['subject_id']}", headers=auth())
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in created.items() if k != "created"}


def test_adding_a_phone_to_a_known_email_links_it(client: TestClient) -> None:
    subject_id = post(client, email("ben@example.com")).json()["subject_id"]

    linked = post(client, email("Ben@example.com"), phone("+44 7700 900123"))
    assert linked.status_code == 200, linked.text
    assert linked.json()["subject_id"] == subject_id
    assert linked.json()["identity_types"] == ["email", "phone"]

    by_phone = post(client, phone("+44 (0)7700 900 123"))
    assert by_phone.status_code == 200
    assert by_phone.json()["subject_id"] == subject_id

    rt = runtime_of(client)
    assert count(rt, subjects) == 1
    assert clear_identities(rt, subject_id) == {
        Identity(IdentityType.EMAIL, "ben@example.com"),
        Identity(IdentityType.PHONE, "+447700900123"),
    }
    assert client.get(f"/v1/subjects/{subject_id}", headers=auth()).json()["identity_types"] == [
        "email",
        "phone",
    ]


def test_a_sealed_identity_is_bound_to_its_subject_and_type(client: TestClient) -> None:
    subject_id = post(client, email("cara@example.com")).json()["subject_id"]
    rt = runtime_of(client)
    with rt.store.read() as conn:
        query = select(identities.c.value_ct).where(identities.c.subject_id == subject_id)
        sealed = bytes(conn.execute(query).scalar_one())
        sealer = rt.subjects.keys.sealer(conn, subject_id)
    # The spelling is stored (every sealed identity is bound to it): it never changes.
    assert identity_aad(subject_id, "email") == f"consentry:identity:{subject_id}:email".encode()
    assert sealer.open(sealed, identity_aad(subject_id, "email")) == b"cara@example.com"
    with pytest.raises(KeyUnwrapFailed):
        sealer.open(sealed, identity_aad(subject_id, "phone"))
    with pytest.raises(KeyUnwrapFailed):
        sealer.open(sealed, identity_aad(UNKNOWN_ID, "email"))


def test_identities_of_two_subjects_conflict(client: TestClient) -> None:
    cleo = post(client, email("cleo@example.com")).json()["subject_id"]
    dan = post(client, phone("+44 7700 900124")).json()["subject_id"]
    resp = post(client, email("cleo@example.com"), phone("+44 7700 900124"))
    body = problem(resp, 409, "identity_conflict")
    assert "cleo" not in resp.text
    assert "900124" not in resp.text
    assert body["type"] == "urn:consentry:error:identity_conflict"
    # Nothing was merged or linked half-way.
    rt = runtime_of(client)
    assert clear_identities(rt, cleo) == {Identity(IdentityType.EMAIL, "cleo@example.com")}
    assert clear_identities(rt, dan) == {Identity(IdentityType.PHONE, "+447700900124")}
    assert count(rt, subjects) == 2


def test_conflict_with_a_third_new_identity_adds_nothing(client: TestClient) -> None:
    post(client, email("eve@example.com"))
    post(client, phone("+44 7700 900125"))
    resp = post(
        client,
        email("eve@example.com"),
        {"type": "customer_id", "value": "CUST-000125"},
        phone("+44 7700 900125"),
    )
    problem(resp, 409, "identity_conflict")
    assert count(runtime_of(client), identities) == 2


def test_unknown_subject_is_404(client: TestClient) -> None:
    problem(client.get(f"/v1/subjects/{UNKNOWN_ID}", headers=auth()), 404, "subject_not_found")
    problem(client.get("/v1/subjects/not-an-id", headers=auth()), 404, "subject_not_found")
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": {"subject_id": UNKNOWN_ID}})
    problem(resp, 404, "subject_not_found")
    assert count(runtime_of(client), subjects) == 0


def test_a_known_subject_id_resolves_to_itself(client: TestClient) -> None:
    subject_id = post(client, email("fay@example.com")).json()["subject_id"]
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": {"subject_id": subject_id}})
    assert resp.status_code == 200
    assert resp.json()["subject_id"] == subject_id
    assert resp.json()["created"] is False


# --- jurisdiction ---------------------------------------------------------------------------


def test_jurisdiction_unknown_then_set_then_changed(client: TestClient) -> None:
    created = post(client, email("gus@example.com")).json()
    subject_id = created["subject_id"]
    url = f"/v1/subjects/{subject_id}"
    assert created["jurisdiction"] == "EU"
    assert created["jurisdiction_known"] is False
    assert client.get(url, headers=auth()).json()["jurisdiction_known"] is False

    resp = post(client, email("gus@example.com"), jurisdiction="US-CA")
    assert resp.status_code == 200
    assert resp.json()["jurisdiction"] == "US-CA"
    shown = client.get(url, headers=auth()).json()
    assert (shown["jurisdiction"], shown["jurisdiction_known"]) == ("US-CA", True)

    # A call without a jurisdiction leaves it as it is.
    post(client, email("gus@example.com"))
    assert client.get(url, headers=auth()).json()["jurisdiction"] == "US-CA"

    by_id = {"subject": {"subject_id": subject_id}, "jurisdiction": "UK"}
    assert client.post("/v1/subjects", headers=auth(), json=by_id).json()["jurisdiction"] == "UK"
    assert client.get(url, headers=auth()).json()["jurisdiction"] == "UK"
    # The same jurisdiction again is no change and no audit entry.
    post(client, email("gus@example.com"), jurisdiction="UK")

    changes = [d for a, d in audit_actions(client, subject_id) if a == "subject:jurisdiction:set"]
    assert changes == [{"jurisdiction": "US-CA"}, {"jurisdiction": "UK"}]


def test_jurisdiction_given_at_creation(client: TestClient) -> None:
    created = post(client, email("hal@example.com"), jurisdiction="US")
    assert created.status_code == 201
    assert (created.json()["jurisdiction"], created.json()["jurisdiction_known"]) == ("US", True)
    actions = audit_actions(client, created.json()["subject_id"])
    assert actions[0] == ("subject:created", {"jurisdiction": "US"})
    assert "subject:jurisdiction:set" not in [a for a, _ in actions]


def test_unknown_jurisdiction_is_422(client: TestClient) -> None:
    problem(post(client, email("ida@example.com"), jurisdiction="FR"), 422, "invalid_request")
    assert count(runtime_of(client), subjects) == 0


# --- refused references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "code"),
    [
        (
            {"subject_id": UNKNOWN_ID, "identities": [email("jo@example.com")]},
            "invalid_subject_ref",
        ),
        ({}, "invalid_subject_ref"),
        ({"identities": []}, "empty_identities"),
        ({"identities": [{"type": "passport", "value": "X1234567"}]}, "unknown_identity_type"),
        (
            {"identities": [email("jo@example.com"), {"type": "Email", "value": "jo@example.com"}]},
            "unknown_identity_type",
        ),
        (
            {"identities": [{"type": "customer_id", "value": f"CUST-{n:06d}"} for n in range(11)]},
            "invalid_subject_ref",
        ),
        ({"identities": [email("not-an-email")]}, "invalid_identity"),
        ({"identities": [phone("07700 900126")]}, "invalid_identity"),
        ({"subject_id": "someone"}, "invalid_subject_ref"),
    ],
)
def test_refused_references_are_422(client: TestClient, subject: dict[str, Any], code: str) -> None:
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": subject})
    problem(resp, 422, code)
    assert "jo@example.com" not in resp.text
    assert "X1234567" not in resp.text
    rt = runtime_of(client)
    assert count(rt, subjects) == 0
    assert count(rt, audit_entries) == 0


def test_ten_identities_are_accepted(client: TestClient) -> None:
    idents = [{"type": "customer_id", "value": f"CUST-{n:06d}"} for n in range(10)]
    resp = client.post("/v1/subjects", headers=auth(), json={"subject": {"identities": idents}})
    assert resp.status_code == 201, resp.text
    assert count(runtime_of(client), identities) == 10


def test_a_national_number_uses_the_default_region(settings: Settings) -> None:
    with TestClient(create_app(replace(settings, default_phone_region="GB"))) as client:
        resp = post(client, phone("07700 900127"))
        assert resp.status_code == 201, resp.text
        assert (
            post(client, phone("+44 7700 900127")).json()["subject_id"] == resp.json()["subject_id"]
        )


# --- audit ----------------------------------------------------------------------------------


def test_every_creation_is_audited(client: TestClient) -> None:
    created = post(client, email("kim@example.com"), phone("+44 7700 900128"))
    subject_id = created.json()["subject_id"]
    post(client, email("kim@example.com"), {"type": "customer_id", "value": "CUST-000128"})
    post(client, email("kim@example.com"))  # already known: nothing to audit

    resp = client.get("/v1/audit/entries", headers=auth(), params={"subject_id": subject_id})
    items = resp.json()["items"]
    assert [(i["action"], i["details"]) for i in items] == [
        ("subject:created", {"jurisdiction": None}),
        ("subject:identity:added", {"type": "email"}),
        ("subject:identity:added", {"type": "phone"}),
        ("subject:identity:added", {"type": "customer_id"}),
    ]
    assert {i["actor"] for i in items} == {"key:env-admin"}
    assert {i["subject_id"] for i in items} == {subject_id}
    assert "kim@" not in resp.text
    assert "900128" not in resp.text


# --- concurrency ----------------------------------------------------------------------------


def race(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs in threads released together; each result is a value or the exception."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = jobs[n]()
        except Exception as exc:  # the test inspects every failure
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def resolver(rt: Runtime, pairs: list[tuple[str, str]]) -> Callable[[], Resolution]:
    def job() -> Resolution:
        with rt.store.write() as conn:
            return rt.subjects.resolve(conn, subject_ref(None, pairs), actor="test")

    return job


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_first_sightings_make_one_subject(runtime: Runtime, round_: int) -> None:
    address = f"Race{round_}@Example.com"
    results = race([resolver(runtime, [("email", address)]) for _ in range(THREADS)])
    assert all(isinstance(r, Resolution) for r in results), results
    assert len({r.subject.subject_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count(runtime, subjects) == 1
    assert count(runtime, identities) == 1
    assert count(runtime, subject_keys) == 1
    with runtime.store.read() as conn:
        actions = conn.execute(select(audit_entries.c.action)).scalars().all()
    assert sorted(actions) == ["subject:created", "subject:identity:added"]


def test_concurrent_partial_references_link_to_one_subject(runtime: Runtime) -> None:
    short = [("email", "lea@example.com")]
    full = [("email", "lea@example.com"), ("phone", "+44 7700 900129")]
    results = race([resolver(runtime, full if n % 2 else short) for n in range(THREADS)])
    assert all(isinstance(r, Resolution) for r in results), results
    (subject_id,) = {r.subject.subject_id for r in results}
    assert count(runtime, subjects) == 1
    assert clear_identities(runtime, subject_id) == {
        Identity(IdentityType.EMAIL, "lea@example.com"),
        Identity(IdentityType.PHONE, "+447700900129"),
    }


@pytest.fixture
def pg_settings(pg_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db=fresh_pg_database(pg_url),
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
    )


def wait_for_lock_waiters(url: str, waiters: int) -> None:
    """Block until `waiters` sessions of the database at `url` wait on a lock."""
    base, _, name = url.rpartition("/")
    deadline = time.monotonic() + 30
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'",
                (name,),
            ).fetchone()
            if row is not None and row[0] >= waiters:
                return
            time.sleep(0.01)
    raise TimeoutError(f"{waiters} lock waiters never appeared")


def test_linking_and_creating_the_same_phone_at_once_never_fails(pg_settings: Settings) -> None:
    """A request linking a new phone to a known subject and one creating a subject for that
    phone, in the order that deadlocked when identities were inserted before the audit lock
    was taken in one path and after it in the other (PostgreSQL)."""
    rt = Runtime(pg_settings)
    try:
        with rt.store.write() as conn:
            ref = subject_ref(None, [("customer_id", "CUST-000130")])
            known = rt.subjects.resolve(conn, ref, actor="test").subject.subject_id
        results: dict[str, Any] = {}

        def run(name: str, pairs: list[tuple[str, str]]) -> None:
            try:
                results[name] = resolver(rt, pairs)()
            except Exception as exc:  # inspected below
                results[name] = exc

        # Hold the audit lock so both requests queue behind it in a known order: the new
        # subject first (it takes the lock, then inserts the phone), the link second (it has
        # inserted the phone, then waits for the lock).
        blocker = psycopg.connect(pg_settings.db)
        try:
            blocker.execute("UPDATE audit_state SET size = size WHERE id = 1")
            create = threading.Thread(target=run, args=("create", [("phone", "+447700900130")]))
            create.start()
            wait_for_lock_waiters(pg_settings.db, 1)
            link = threading.Thread(
                target=run,
                args=("link", [("customer_id", "CUST-000130"), ("phone", "+447700900130")]),
            )
            link.start()
            wait_for_lock_waiters(pg_settings.db, 2)
            blocker.commit()
        finally:
            blocker.close()
        create.join(timeout=60)
        link.join(timeout=60)

        # Either may win the phone; the loser gets a domain answer, never a database error.
        for outcome in results.values():
            assert isinstance(outcome, Resolution | IdentityConflict), repr(outcome)
        with rt.store.read() as conn:
            (owner,) = conn.execute(
                select(identities.c.subject_id).where(identities.c.type == "phone")
            ).scalars()
        create, link = results["create"], results["link"]
        if owner == known:  # the link won: the new-person request found the known subject
            assert isinstance(create, Resolution)
            assert isinstance(link, Resolution)
            assert create.subject.subject_id == link.subject.subject_id == known
        else:  # a new subject won: linking it to another subject is a conflict
            assert isinstance(create, Resolution)
            assert create.created
            assert create.subject.subject_id == owner
            assert isinstance(link, IdentityConflict)
    finally:
        rt.close()
