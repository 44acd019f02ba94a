"""`consentry audit verify` on both back-ends: a clean log passes; an edited, deleted, reordered
or shortened log fails naming where."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.audit.merkle import MerkleTree
from consentry.audit.models import leaf_hash_of
from consentry.audit.verify import Report, verify_log
from consentry.cli import app
from consentry.runtime import Runtime
from tests.conftest import MASTER_KEY

ACTION = AuditAction.SUBJECT_JURISDICTION_SET


def fill(rt: Runtime, transactions: int = 6, per: int = 5) -> list[dict[str, Any]]:
    """Entries in several transactions with a signed head after each; returns the heads."""
    heads = []
    for t in range(transactions):
        with rt.store.write() as conn:
            for k in range(per):
                audit.record(conn, ACTION, actor="test", details={"t": t, "k": k, "note": "café"})
        heads.append(rt.heads.sign_now().as_json())
    return heads


def check(rt: Runtime, checkpoints: list[dict[str, Any]] | None = None) -> Report:
    return verify_log(rt.store, rt.signing_keys, checkpoints or [])


def tamper(rt: Runtime, *statements: str, **params: Any) -> None:
    with rt.store.write() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def size_of(rt: Runtime) -> int:
    with rt.store.read() as conn:
        return int(conn.execute(text("SELECT size FROM audit_state")).scalar_one())


def first(report: Report) -> str:
    assert not report.ok
    return str(report.problems[0])


def test_a_clean_log_verifies(runtime: Runtime) -> None:
    heads = fill(runtime)
    report = check(runtime, [heads[2]])
    assert report.ok, report.problems
    assert report.entries == size_of(runtime)
    assert report.heads == len(heads)
    assert report.checkpoints == 1
    assert report.root_hash == heads[-1]["root_hash"]


def test_an_edited_entry_is_named(runtime: Runtime) -> None:
    fill(runtime)
    tamper(runtime, "UPDATE audit_entries SET details = :d WHERE idx = 7", d='{"t":9}')
    assert first(check(runtime)) == "entry 7: its content does not match its leaf hash"


def test_an_edited_actor_is_named(runtime: Runtime) -> None:
    fill(runtime)
    tamper(runtime, "UPDATE audit_entries SET actor = 'someone-else' WHERE idx = 12")
    assert first(check(runtime)).startswith("entry 12:")


def test_an_edit_with_a_recomputed_leaf_hash_is_caught_by_the_heads(runtime: Runtime) -> None:
    heads = fill(runtime)
    # The forger rewrites entry 11 and its leaf hash, but cannot sign a head.
    with runtime.store.read() as conn:
        row = conn.execute(text("SELECT * FROM audit_entries WHERE idx = 11")).one()
    forged = leaf_hash_of(11, row.at, row.actor, row.action, row.subject_id, '{"t":0}')
    tamper(
        runtime,
        "UPDATE audit_entries SET details = :d, leaf_hash = :leaf WHERE idx = 11",
        d='{"t":0}',
        leaf=forged,
    )
    report = check(runtime)
    # Heads are signed after each five entries: the first covering entry 11 has size 15.
    covering = next(n for n, head in enumerate(heads, start=1) if head["size"] > 11)
    assert first(report) == (
        f"head {covering}: its root does not match the entries' tree at size "
        f"{heads[covering - 1]['size']}"
    )


def test_a_deleted_entry_is_named(runtime: Runtime) -> None:
    fill(runtime)
    tamper(runtime, "DELETE FROM audit_entries WHERE idx = 9")
    assert first(check(runtime)) == "entry 9: missing"


def test_reordered_entries_are_named(runtime: Runtime) -> None:
    fill(runtime)
    # Swap entries 4 and 13 whole (content and leaf hash), each under the other's index.
    tamper(
        runtime,
        "UPDATE audit_entries SET idx = -1 WHERE idx = 4",
        "UPDATE audit_entries SET idx = 4 WHERE idx = 13",
        "UPDATE audit_entries SET idx = 13 WHERE idx = -1",
    )
    report = check(runtime)
    assert first(report) == "entry 4: its content does not match its leaf hash"
    assert "entry 13: its content does not match its leaf hash" in map(str, report.problems)


def truncate(rt: Runtime, keep: int) -> None:
    """Replace the log with its first `keep` entries, tree state and nodes made to fit."""
    with rt.store.read() as conn:
        leaves = conn.execute(
            text("SELECT leaf_hash FROM audit_entries WHERE idx < :n ORDER BY idx"), {"n": keep}
        ).scalars()
        tree = MerkleTree()
        tree.append_many(bytes.fromhex(leaf) for leaf in leaves)
    tamper(
        rt,
        "DELETE FROM audit_entries WHERE idx >= :n",
        "DELETE FROM audit_nodes WHERE ((idx + 1) * (1 << level)) > :n",
        "UPDATE audit_state SET size = :n, frontier = :frontier",
        n=keep,
        frontier=b"".join(tree.frontier),
    )


def test_a_shorter_log_is_caught_by_the_heads_signed_before(runtime: Runtime) -> None:
    heads = fill(runtime)
    truncate(runtime, 17)
    report = check(runtime)
    covering = next(n for n, head in enumerate(heads, start=1) if head["size"] > 17)
    assert first(report) == (
        f"head {covering}: signs {heads[covering - 1]['size']} entries; the log holds 17"
    )


def test_a_shorter_log_without_its_heads_is_caught_by_a_checkpoint(runtime: Runtime) -> None:
    heads = fill(runtime)
    truncate(runtime, 17)
    tamper(runtime, "DELETE FROM audit_heads WHERE size > 17")
    assert check(runtime).ok  # nothing inside the database shows it any more...
    report = check(runtime, [heads[-1]])  # ...but the head published elsewhere does
    assert first(report) == f"checkpoint 1: signs {heads[-1]['size']} entries; the log holds 17"


def test_a_forged_head_signature_is_named(runtime: Runtime) -> None:
    fill(runtime)
    tamper(runtime, "UPDATE audit_heads SET root_hash = :root WHERE id = 3", root="ab" * 32)
    report = check(runtime)
    assert first(report).startswith("head 3: signature does not verify")


def test_a_checkpoint_from_another_log_is_refused(runtime: Runtime) -> None:
    heads = fill(runtime, 2)
    foreign = {**heads[-1], "root_hash": "00" * 32}
    assert first(check(runtime, [foreign])) == "checkpoint 1: not a head signed by this log's keys"


# --- the command on a real SQLite file ------------------------------------------------------


def test_the_command_exits_0_then_names_the_first_bad_entry(tmp_path: Path) -> None:
    env = {"CONSENTRY_DATA_DIR": str(tmp_path / "data"), "CONSENTRY_MASTER_KEY": MASTER_KEY}
    runner = CliRunner()
    for role in ("auditor", "dpo", "collector"):
        assert runner.invoke(app, ["api-key", "create", "--role", role], env=env).exit_code == 0
    checkpoint = runner.invoke(app, ["audit", "checkpoint"], env=env)
    assert checkpoint.exit_code == 0, checkpoint.output
    head = json.loads(checkpoint.output.strip().splitlines()[-1])
    assert set(head) == {"size", "root_hash", "signed_at", "signature", "kid"}
    saved = tmp_path / "checkpoint.json"
    saved.write_text(checkpoint.output.strip().splitlines()[-1])

    result = runner.invoke(app, ["audit", "verify", "--checkpoint", str(saved)], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")

    with sqlite3.connect(tmp_path / "data" / "consentry.db") as db:
        db.execute("UPDATE audit_entries SET action = 'apikey:revoked' WHERE idx = 1")
    result = runner.invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("FAILED: entry 1: ")
    # Each run is kept, what it found with it: the dashboard shows the last.
    with sqlite3.connect(tmp_path / "data" / "consentry.db") as db:
        kept = db.execute(
            "SELECT actor, ok, problem FROM audit_verifications ORDER BY id"
        ).fetchall()
    assert [(actor, ok) for actor, ok, _ in kept] == [("cli", 1), ("cli", 0)]
    assert kept[1][2].startswith("entry 1: ")


@pytest.mark.parametrize("content", ["not json", "[1, 2]"])
def test_a_malformed_checkpoint_file_is_a_usage_error(tmp_path: Path, content: str) -> None:
    env = {"CONSENTRY_DATA_DIR": str(tmp_path / "data"), "CONSENTRY_MASTER_KEY": MASTER_KEY}
    saved = tmp_path / "checkpoint.json"
    saved.write_text(content)
    result = CliRunner().invoke(app, ["audit", "verify", "--checkpoint", str(saved)], env=env)
    assert result.exit_code == 2
