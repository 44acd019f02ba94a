"""GET /v1/audit/head and the proof endpoints on both back-ends, checked with the auditor's
verifier (consentry.audit) and the published JWKS only."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consentry.app import create_app
from consentry.audit import heads, verify_consistency, verify_head, verify_inclusion
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import auth
from tests.consent.helpers import install_clock
from tests.http.test_conventions import assert_problem, make_key


def get(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    resp = client.get(path, headers=auth(), params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


_people = itertools.count()


def grow(client: TestClient, n: int) -> None:
    """`n` new subjects: two audit entries each."""
    for _ in range(n):
        email = f"h{next(_people)}@example.com"
        body = {"subject": {"identities": [{"type": "email", "value": email}]}}
        assert client.post("/v1/subjects", headers=auth(), json=body).status_code == 201


def entries(client: TestClient) -> list[dict[str, Any]]:
    return list(get(client, "/v1/audit/entries", limit=1000)["items"])


def test_a_head_is_signed_over_size_root_and_time(client: TestClient) -> None:
    grow(client, 3)
    head = get(client, "/v1/audit/head")
    jwks = client.get("/.well-known/jwks.json").json()
    assert set(head) == {"size", "root_hash", "signed_at", "signature", "kid"}
    assert verify_head(head, jwks)
    for field, value in [("size", head["size"] + 1), ("root_hash", "0" * 64), ("kid", "x")]:
        assert not verify_head({**head, field: value}, jwks)
    assert not verify_head({**head, "signed_at": head["signed_at"].replace("Z", "0Z")}, jwks)
    # Every entry committed before the request is under the head; the read itself follows.
    listed = entries(client)
    assert listed[head["size"] - 1]["action"] != "audit:head:read"
    assert listed[head["size"]]["action"] == "audit:head:read"
    assert listed[head["size"]]["details"] == {"size": head["size"]}


def test_every_entry_proves_included_and_heads_prove_consistent(client: TestClient) -> None:
    grow(client, 4)
    first = get(client, "/v1/audit/head")
    grow(client, 3)
    second = get(client, "/v1/audit/head")
    jwks = client.get("/.well-known/jwks.json").json()
    listed = entries(client)
    for entry in listed[: second["size"]]:
        proof = get(client, "/v1/audit/proof/inclusion", index=entry["index"], size=second["size"])
        assert proof["leaf_index"] == entry["index"]
        assert proof["tree_size"] == second["size"]
        assert verify_inclusion(entry, proof, second, jwks)
        assert not verify_inclusion({**entry, "actor": "someone"}, proof, second, jwks)
        assert not verify_inclusion(entry, proof, first, jwks)
    proof = get(client, "/v1/audit/proof/consistency", first=first["size"], second=second["size"])
    assert verify_consistency(proof, first, second, jwks)
    assert not verify_consistency(proof, second, first, jwks)
    bent = {**proof, "consistency_path": [("0" * 64), *proof["consistency_path"][1:]]}
    assert not verify_consistency(bent, first, second, jwks)
    same = get(client, "/v1/audit/proof/consistency", first=first["size"], second=first["size"])
    assert same["consistency_path"] == []
    assert verify_consistency(same, first, first, jwks)


def test_proof_reads_are_audited(client: TestClient) -> None:
    grow(client, 2)
    get(client, "/v1/audit/proof/inclusion", index=0, size=2)
    get(client, "/v1/audit/proof/consistency", first=1, second=2)
    reads = [e for e in entries(client) if e["action"] == "audit:proof:read"]
    assert [r["details"] for r in reads] == [
        {"proof": "inclusion", "index": 0, "size": 2},
        {"proof": "consistency", "first": 1, "second": 2},
    ]
    assert {r["actor"] for r in reads} == {"key:env-admin"}


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("inclusion", {"index": 3, "size": 3}, 422, "proof_out_of_range"),
        ("inclusion", {"index": 0, "size": 10_000}, 404, "tree_size_unknown"),
        ("inclusion", {"index": -1, "size": 2}, 422, "invalid_request"),
        ("inclusion", {"index": 0, "size": 0}, 422, "invalid_request"),
        ("inclusion", {"index": 0}, 422, "invalid_request"),
        ("inclusion", {"index": "x", "size": 2}, 422, "invalid_request"),
        ("inclusion", {"index": 0, "size": 10**30}, 422, "invalid_request"),
        ("consistency", {"first": 3, "second": 2}, 422, "proof_out_of_range"),
        ("consistency", {"first": 0, "second": 2}, 422, "invalid_request"),
        ("consistency", {"first": 1, "second": 10_000}, 404, "tree_size_unknown"),
        ("consistency", {"second": 2}, 422, "invalid_request"),
    ],
)
def test_bad_proof_parameters_are_problems(
    client: TestClient, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    grow(client, 2)
    resp = client.get(f"/v1/audit/proof/{path}", headers=auth(), params=params)
    assert_problem(resp, status, code)


def test_auditors_read_heads_and_proofs_collectors_do_not(client: TestClient) -> None:
    grow(client, 1)
    auditor, collector = make_key(client, "auditor"), make_key(client, "collector")
    for path, params in [
        ("/v1/audit/head", {}),
        ("/v1/audit/proof/inclusion", {"index": 0, "size": 1}),
        ("/v1/audit/proof/consistency", {"first": 1, "second": 1}),
    ]:
        assert client.get(path, headers=auth(auditor), params=params).status_code == 200
        assert_problem(client.get(path, headers=auth(collector), params=params), 403, "forbidden")


def stored_heads(client: TestClient) -> list[tuple[int, str]]:
    with client.app.state.runtime.store.read() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(text("SELECT size, root_hash FROM audit_heads ORDER BY id"))
        return [(int(r.size), str(r.root_hash)) for r in rows]


def test_the_server_signs_heads_in_the_background_and_keeps_them(settings: Settings) -> None:
    fast = dataclasses.replace(settings, audit_head_ms=100)
    with TestClient(create_app(fast)) as client:
        grow(client, 2)
        with client.app.state.runtime.store.read() as conn:  # type: ignore[attr-defined]
            size = int(conn.execute(text("SELECT size FROM audit_state")).scalar_one())
        deadline = time.monotonic() + 5
        while not any(s == size for s, _ in stored_heads(client)):
            assert time.monotonic() < deadline, "no head signed within 5 s"
            time.sleep(0.05)
        before = stored_heads(client)
        grow(client, 1)
    # Stopping the server signs a last head covering the entries of its last moments.
    after = stored_heads_of(fast)
    assert after[: len(before)] == before
    assert after[-1][0] == size + 2
    sizes = [s for s, _ in after]
    assert sizes == sorted(sizes)


def stored_heads_of(settings: Settings) -> list[tuple[int, str]]:
    rt = Runtime(settings)
    try:
        with rt.store.read() as conn:
            rows = conn.execute(text("SELECT size, root_hash FROM audit_heads ORDER BY id"))
            return [(int(r.size), str(r.root_hash)) for r in rows]
    finally:
        rt.close()


def test_a_cancelled_signer_returns_only_after_its_round_has_ended(runtime: Runtime) -> None:
    """The app closes the store right after cancelling the signer: a round still signing in
    its thread would then hold a connection of a closed store."""
    signer = runtime.heads
    entered = threading.Event()
    ended = threading.Event()
    sign_due = signer.sign_due

    def slow_sign() -> Any:
        entered.set()
        time.sleep(0.3)
        try:
            return sign_due()
        finally:
            ended.set()

    async def scenario() -> None:
        signer.sign_due = slow_sign  # type: ignore[method-assign]
        signer.interval = 0
        task = asyncio.create_task(signer.run())
        while not entered.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ended.is_set()

    asyncio.run(scenario())


def test_a_clock_behind_the_last_head_holds_no_head_back(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose clock is behind the last head's `signed_at` (another host's clock runs
    ahead, or this one stepped back) still signs the log's growth: the gap between background
    heads is judged only by a clock that has passed the last head."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    fake = install_clock(monkeypatch)
    grow(client, 1)
    with runtime.store.write() as conn:
        first = heads.sign_if_grown(conn, runtime.signing_keys, gap=0.27)
    fake.advance(hours=-1)
    grow(client, 1)
    with runtime.store.write() as conn:
        second = heads.sign_if_grown(conn, runtime.signing_keys, gap=0.27)
    assert second.size > first.size
    assert second.signed_at == first.signed_at  # heads never go back in time
