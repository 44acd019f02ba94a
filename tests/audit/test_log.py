"""audit/log.py and GET /v1/audit/entries on both back-ends: gap-free, hashed, sealed, paged."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import KeyUnwrapFailed, SubjectKeyDestroyed
from consentry.keys.envelope import Sealer
from consentry.runtime import Runtime
from consentry.storage.audit import log_size
from consentry.subjects.refs import subject_ref
from tests.conftest import auth

ACTION = AuditAction.SUBJECT_JURISDICTION_SET
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
THREADS = 8
PER_THREAD = 25


def leaf_hash(entry: dict[str, Any]) -> str:
    """API.md, Audit: SHA-256(0x00 || canonical JSON of the entry without leaf_hash)."""
    body = {k: v for k, v in entry.items() if k != "leaf_hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"\x00" + canonical.encode("utf-8")).hexdigest()


def stored_rows(conn: Connection) -> list[dict[str, Any]]:
    """The rows as the database holds them, read without the product's types."""
    result = conn.execute(
        text(
            "SELECT idx, at, actor, action, subject_id, details, leaf_hash "
            "FROM audit_entries ORDER BY idx"
        )
    )
    return [dict(row._mapping) for row in result]


def as_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": row["idx"],
        "at": row["at"],
        "actor": row["actor"],
        "action": row["action"],
        "subject_id": row["subject_id"],
        "details": json.loads(row["details"]),
        "leaf_hash": row["leaf_hash"],
    }


def record(rt: Runtime, **kwargs: Any) -> int:
    """Record one entry in its own transaction; return the index it was stored under."""
    with rt.store.write() as conn:
        audit.record(conn, ACTION, actor="test", **kwargs)
    with rt.store.read() as conn:
        return log_size(conn) - 1


def new_subject(rt: Runtime, email: str) -> str:
    with rt.store.write() as conn:
        ref = subject_ref(None, [("email", email)])
        return rt.subjects.resolve(conn, ref, actor="test").subject.subject_id


class Aborted(Exception):
    """The action failed after its audit entry was recorded."""


def record_then_fail(rt: Runtime) -> None:
    with rt.store.write() as conn:
        audit.record(conn, ACTION, actor="test", details={"n": "lost"})
        raise Aborted


def record_in_failed_savepoint(rt: Runtime) -> None:
    """Record one entry in the transaction and one in a savepoint that is rolled back."""
    with rt.store.write() as conn:
        audit.record(conn, ACTION, actor="test", details={"n": "kept"})
        try:
            with conn.begin_nested():
                audit.record(conn, ACTION, actor="test", details={"n": "lost"})
                raise Aborted
        except Aborted:
            pass
        audit.record(conn, ACTION, actor="test", details={"n": "kept too"})


def rows(rt: Runtime) -> list[dict[str, Any]]:
    with rt.store.read() as conn:
        return stored_rows(conn)


# --- appends --------------------------------------------------------------------------------


def test_a_rolled_back_record_leaves_no_entry_and_no_index(runtime: Runtime) -> None:
    assert record(runtime, details={"n": 0}) == 0
    assert record(runtime, details={"n": 1}) == 1

    with pytest.raises(Aborted):
        record_then_fail(runtime)

    with runtime.store.read() as conn:
        assert log_size(conn) == 2
    assert [r["idx"] for r in rows(runtime)] == [0, 1]
    assert record(runtime, details={"n": 2}) == 2
    assert [json.loads(r["details"]) for r in rows(runtime)] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_rolled_back_savepoint_takes_its_entry_with_it(runtime: Runtime) -> None:
    record_in_failed_savepoint(runtime)
    stored = rows(runtime)
    assert [r["idx"] for r in stored] == [0, 1]
    assert [json.loads(r["details"]) for r in stored] == [{"n": "kept"}, {"n": "kept too"}]
    with runtime.store.read() as conn:
        assert log_size(conn) == 2


def test_indexes_are_consecutive_under_concurrent_writers(runtime: Runtime) -> None:
    committed: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            try:
                with runtime.store.write() as conn:
                    # Some transactions append two entries, some fail after appending.
                    for k in range(1 + i % 2):
                        audit.record(conn, ACTION, actor=f"writer-{n}", details={"i": i, "k": k})
                    if i % 4 == 3:
                        raise LookupError("rolled back on purpose")
                with lock:
                    committed.append((f"writer-{n}", i))
            except LookupError:
                pass
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == []
    stored = rows(runtime)
    total = sum(1 + i % 2 for _, i in committed)
    assert [r["idx"] for r in stored] == list(range(total))
    with runtime.store.read() as conn:
        assert log_size(conn) == total
    # Exactly the committed transactions are there, each as a run of adjacent indexes.
    runs: dict[tuple[str, int], list[int]] = {}
    for row in stored:
        runs.setdefault((row["actor"], json.loads(row["details"])["i"]), []).append(row["idx"])
    assert sorted(runs) == sorted(committed)
    for (_, i), indexes in runs.items():
        assert indexes == list(range(indexes[0], indexes[0] + 1 + i % 2))
    assert all(json.loads(r["details"])["i"] % 4 != 3 for r in stored)
    for row in stored:
        assert leaf_hash(as_entry(row)) == row["leaf_hash"]


# --- leaf hashes ----------------------------------------------------------------------------

DETAILS: list[dict[str, Any]] = [
    {},
    {"jurisdiction": "UK"},
    {"note": "Zoë — naïve café ☕", "emoji": "🔐", "cjk": "東京"},
    {"z": 1, "a": [3, 2, 1], "m": {"b": True, "a": None}, "neg": -5, "big": 2**53},
    {"quote": 'say "hi"\\', "newline": "a\nb", "slash": "a/b", "ctrl": "\u0001"},
]


def test_stored_leaf_hashes_are_the_rfc_9162_leaf_of_the_canonical_entry(runtime: Runtime) -> None:
    subject_id = new_subject(runtime, "hash@example.com")
    with runtime.store.write() as conn:
        for n, details in enumerate(DETAILS):
            audit.record(
                conn,
                ACTION,
                actor="key:0123456789abcdef",
                subject_id=subject_id if n % 2 else None,
                details=details,
            )
    stored = rows(runtime)
    assert len(stored) == 2 + len(DETAILS)  # subject:created, subject:identity:added first
    for row in stored:
        entry = as_entry(row)
        assert RFC3339.fullmatch(entry["at"])
        assert re.fullmatch(r"[0-9a-f]{64}", row["leaf_hash"])
        assert leaf_hash(entry) == row["leaf_hash"]
    assert [json.loads(r["details"]) for r in stored[2:]] == DETAILS
    assert [r["subject_id"] for r in stored[2:]] == [None, subject_id] * 2 + [None]
    # Non-ASCII is stored as itself, not as \\u escapes: the stored text is the canonical one.
    assert "Zoë — naïve café ☕" in stored[2 + 2]["details"]


def test_a_changed_field_changes_the_leaf_hash(runtime: Runtime) -> None:
    record(runtime, details={"jurisdiction": "UK"})
    (row,) = rows(runtime)
    entry = as_entry(row)
    for field, value in [
        ("actor", "someone-else"),
        ("index", 1),
        ("details", {"jurisdiction": "EU"}),
    ]:
        assert leaf_hash({**entry, field: value}) != row["leaf_hash"]


# --- personal details -----------------------------------------------------------------------

PERSONAL = {"old_email": "ana.old@example.com", "new_email": "ana.new@example.com"}


def open_personal(details: dict[str, Any], sealer: Sealer, subject_id: str) -> Any:
    sealed = details["sealed"]
    blob = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    return json.loads(sealer.open(blob, b"consentry:audit:" + subject_id.encode()))


def test_personal_details_are_sealed_under_the_subjects_key(runtime: Runtime) -> None:
    subject_id = new_subject(runtime, "ana.new@example.com")
    other_id = new_subject(runtime, "someone@example.com")
    with runtime.store.write() as conn:
        sealer = runtime.subject_keys.sealer(conn, subject_id)
        audit.record(
            conn,
            ACTION,
            actor="test",
            subject_id=subject_id,
            details={"field": "email"},
            personal=PERSONAL,
            sealer=sealer,
        )
    row = rows(runtime)[-1]
    assert (row["action"], row["subject_id"]) == (ACTION.value, subject_id)
    for value in row.values():
        for secret in ("ana.old@example.com", "ana.old", "ana.new@example.com"):
            assert secret not in str(value)
    details = json.loads(row["details"])
    assert set(details) == {"field", "sealed"}
    assert leaf_hash(as_entry(row)) == row["leaf_hash"]

    with runtime.store.read() as conn:
        assert (
            open_personal(details, runtime.subject_keys.sealer(conn, subject_id), subject_id)
            == PERSONAL
        )
        with pytest.raises(KeyUnwrapFailed):
            open_personal(details, runtime.subject_keys.sealer(conn, other_id), subject_id)
        with pytest.raises(KeyUnwrapFailed):
            # Bound to the subject: the same key under another subject's AAD does not open it.
            open_personal(details, runtime.subject_keys.sealer(conn, subject_id), other_id)

    # After erasure the detail is unreadable, yet the entry and its hash are unchanged.
    with runtime.store.write() as conn:
        assert runtime.subject_keys.destroy(conn, subject_id)
    with runtime.store.read() as conn, pytest.raises(SubjectKeyDestroyed):
        runtime.subject_keys.sealer(conn, subject_id)
    assert rows(runtime)[row["idx"]] == row


def test_personal_details_need_the_subject_and_its_key(runtime: Runtime) -> None:
    subject_id = new_subject(runtime, "bo@example.com")
    with runtime.store.read() as conn:
        size = log_size(conn)
    with pytest.raises(ValueError, match="personal"), runtime.store.write() as conn:
        audit.record(conn, ACTION, actor="test", subject_id=subject_id, personal=PERSONAL)
    with runtime.store.read() as conn:
        sealer = runtime.subject_keys.sealer(conn, subject_id)
    with pytest.raises(ValueError, match="personal"), runtime.store.write() as conn:
        audit.record(conn, ACTION, actor="test", personal=PERSONAL, sealer=sealer)
    with runtime.store.read() as conn:
        assert log_size(conn) == size


# --- GET /v1/audit/entries ------------------------------------------------------------------


def get_entries(client: TestClient, **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/audit/entries", headers=auth(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def fill(client: TestClient) -> tuple[str, str]:
    """Two subjects whose entries interleave: six for the first, six for the second."""
    rt = client.app.state.runtime
    first = new_subject(rt, "pager.one@example.com")
    second = new_subject(rt, "pager.two@example.com")
    with rt.store.write() as conn:
        for n in range(4):
            for subject_id in (first, second):
                audit.record(conn, ACTION, actor="test", subject_id=subject_id, details={"n": n})
    return first, second


def test_entries_page_by_subject_with_a_cursor(client: TestClient) -> None:
    first, second = fill(client)
    pages = []
    params: dict[str, Any] = {"subject_id": first, "limit": 4}
    while True:
        page = get_entries(client, **params)
        assert set(page) == {"items", "next"}
        pages.append(page["items"])
        if page["next"] is None:
            break
        params = {"subject_id": first, "limit": 4, "cursor": page["next"]}
        assert len(pages) < 10
    assert [len(p) for p in pages] == [4, 2]
    items = [item for p in pages for item in p]
    assert {item["subject_id"] for item in items} == {first}
    assert [item["action"] for item in items[:2]] == ["subject:created", "subject:identity:added"]
    indexes = [item["index"] for item in items]
    assert indexes == sorted(indexes)
    assert len(set(indexes)) == 6
    for item in items:
        assert set(item) == {"index", "at", "actor", "action", "subject_id", "details", "leaf_hash"}
        assert leaf_hash(item) == item["leaf_hash"]
    assert second not in json.dumps(items)


def test_entries_page_through_the_whole_log(client: TestClient) -> None:
    fill(client)
    seen: list[dict[str, Any]] = []
    page = get_entries(client, limit=5)
    reads = 1
    while True:
        seen.extend(page["items"])
        if page["next"] is None:
            break
        page = get_entries(client, limit=5, cursor=page["next"])
        reads += 1
        assert reads < 20
    # Every read appends an entry, so the log grows while it is paged: the pages still join
    # up from 0 without gap or repeat, and every read but the last is among what was paged.
    assert [item["index"] for item in seen] == list(range(len(seen)))
    assert sum(item["action"] == "audit:entries:read" for item in seen) == reads - 1
    assert all(leaf_hash(item) == item["leaf_hash"] for item in seen)


def test_from_index_and_limit(client: TestClient) -> None:
    fill(client)
    page = get_entries(client, from_index=3, limit=2)
    assert [item["index"] for item in page["items"]] == [3, 4]
    assert page["next"] is not None
    assert [i["index"] for i in get_entries(client, cursor=page["next"], limit=2)["items"]] == [
        5,
        6,
    ]
    assert get_entries(client, from_index=10_000)["items"] == []


def test_each_read_is_audited(client: TestClient) -> None:
    first, _ = fill(client)
    rt = client.app.state.runtime
    with rt.store.read() as conn:
        size = log_size(conn)
    get_entries(client, subject_id=first, limit=3)
    get_entries(client, from_index=2, limit=7)
    with rt.store.read() as conn:
        assert log_size(conn) == size + 2
    reads = [as_entry(r) for r in rows(rt)[size:]]
    assert [(r["action"], r["actor"], r["subject_id"]) for r in reads] == [
        ("audit:entries:read", "key:env-admin", None),
        ("audit:entries:read", "key:env-admin", None),
    ]
    assert reads[0]["details"] == {"from_index": 0, "limit": 3, "subject_id": first}
    assert reads[1]["details"] == {"from_index": 2, "limit": 7, "subject_id": None}


@pytest.fixture
def served(client: TestClient) -> TestClient:
    """The same started app, answering unexpected exceptions with the 500 a caller would get."""
    return TestClient(client.app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": 0}, 422, "invalid_request"),
        ({"limit": 1001}, 422, "invalid_request"),
        ({"from_index": -1}, 422, "invalid_request"),
        ({"cursor": "!!!"}, 400, "invalid_cursor"),
        ({"cursor": "WzFd"}, 400, "invalid_cursor"),  # base64url of [1]
        ({"cursor": "eyJ4IjogMX0"}, 400, "invalid_cursor"),  # {"x": 1}
    ],
)
def test_bad_paging_input_is_refused(
    served: TestClient, params: dict[str, Any], status: int, code: str
) -> None:
    resp = served.get("/v1/audit/entries", headers=auth(), params=params)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code


def forged_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        None,
        [1],
        True,
        -1,
        1.5,
        10**30,
    ],
)
def test_a_forged_cursor_is_invalid_cursor_not_a_500(served: TestClient, value: Any) -> None:
    cursor = forged_cursor({"from_index": value})
    resp = served.get("/v1/audit/entries", headers=auth(), params={"cursor": cursor})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_cursor"


def test_a_huge_from_index_is_refused_not_a_500(served: TestClient) -> None:
    resp = served.get("/v1/audit/entries", headers=auth(), params={"from_index": 10**30})
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "invalid_request"
