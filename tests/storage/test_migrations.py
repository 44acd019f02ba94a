"""storage/migrations on both back-ends: head is exactly schema.metadata; up and down both work."""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from consentry.audit import merkle
from consentry.audit.tree import open_tree
from consentry.storage.engine import Store
from consentry.storage.migrate import MIGRATIONS, alembic_config, upgrade
from consentry.storage.schema import audit_state, metadata

_names = itertools.count()


@pytest.fixture
def empty_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A Store on a database that has never been migrated (not a clone of the template)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        base = request.getfixturevalue("pg_url")
        name = f"m{os.getpid()}_{next(_names)}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = f"postgresql+psycopg://{base.removeprefix('postgresql://')}/{name}"
    store = Store(url)
    try:
        yield store
    finally:
        store.close()


def head(store: Store) -> str:
    """The newest revision among the packaged migration scripts."""
    revision = ScriptDirectory.from_config(alembic_config(store)).get_current_head()
    assert revision is not None
    return revision


def current_revision(store: Store) -> str | None:
    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_diffs(store: Store) -> list[Any]:
    """Differences between the migrated schema and `metadata`. SQLite's reflection skips an
    index on an expression (ix_events_subject_groups; `test_the_subject_index_groups_by_age`
    checks it there)."""
    with store.read() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def tables(store: Store) -> set[str]:
    with store.read() as conn:
        return set(inspect(conn).get_table_names())


def audit_state_rows(store: Store) -> list[tuple[int, int]]:
    with store.read() as conn:
        return [(r.id, r.size) for r in conn.execute(select(audit_state)).all()]


def test_a_fresh_database_upgraded_to_head_matches_the_schema(empty_store: Store) -> None:
    assert tables(empty_store) == set()
    upgrade(empty_store)
    assert current_revision(empty_store) == head(empty_store)
    assert schema_diffs(empty_store) == []
    assert tables(empty_store) == set(metadata.tables) | {"alembic_version"}
    assert audit_state_rows(empty_store) == [(1, 0)]


def test_the_migrated_schema_keeps_its_constraints(empty_store: Store) -> None:
    upgrade(empty_store)
    with empty_store.read() as conn:
        inspector = inspect(conn)
        (fk,) = inspector.get_foreign_keys("identities")
        uniques = inspector.get_unique_constraints("identities")
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("audit_entries")}
    assert fk["referred_table"] == "subjects"
    assert fk["options"].get("ondelete") == "CASCADE"
    assert fk["name"] == "fk_identities_subject_id_subjects"
    assert [(u["name"], u["column_names"]) for u in uniques] == [
        ("uq_identities_type_blind_index", ["type", "blind_index"])
    ]
    assert indexes == {"ix_audit_entries_subject_id_idx": ["subject_id", "idx"]}


def test_the_subject_index_groups_by_age(empty_store: Store) -> None:
    upgrade(empty_store)
    with empty_store.read() as conn:
        if conn.dialect.name == "sqlite":
            found = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            ).all()
        else:
            found = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
            ).all()
    indexes = dict(found)
    assert "ix_events_subject_id" not in indexes
    spelled = indexes["ix_events_subject_groups"].replace("(", "").replace(")", "")
    assert "seq >> 14, subject_id" in spelled


def test_upgrading_twice_is_a_no_op(empty_store: Store) -> None:
    upgrade(empty_store)
    upgrade(empty_store)
    assert current_revision(empty_store) == head(empty_store)
    assert schema_diffs(empty_store) == []
    # The seed row of the audit log is not inserted a second time.
    assert audit_state_rows(empty_store) == [(1, 0)]


def test_downgrade_to_base_then_upgrade_again(empty_store: Store) -> None:
    upgrade(empty_store)
    command.downgrade(alembic_config(empty_store), "base")
    assert current_revision(empty_store) is None
    assert tables(empty_store) == {"alembic_version"}

    upgrade(empty_store)
    assert current_revision(empty_store) == head(empty_store)
    assert schema_diffs(empty_store) == []
    assert audit_state_rows(empty_store) == [(1, 0)]


def test_the_comparison_sees_a_schema_that_drifted(empty_store: Store) -> None:
    """Guard against a vacuous comparison: a dropped index and a wider column are reported."""
    upgrade(empty_store)
    with empty_store.write() as conn:
        conn.execute(text("DROP INDEX ix_identities_subject_id"))
    diffs = schema_diffs(empty_store)
    assert [d[0] for d in diffs] == ["add_index"]
    assert diffs[0][1].name == "ix_identities_subject_id"
    if empty_store.dialect == "postgresql":
        with empty_store.write() as conn:
            conn.execute(text("ALTER TABLE subjects ALTER COLUMN jurisdiction TYPE VARCHAR(9)"))
        kinds = [d[0][0] if isinstance(d, list) else d[0] for d in schema_diffs(empty_store)]
        assert sorted(kinds) == ["add_index", "modify_type"]


def test_0009_numbers_existing_notices_in_created_order_and_goes_back(empty_store: Store) -> None:
    """Notices written before 0009 get their seq in created_at order; request_acks goes, and
    coming back to 0008 rebuilds it from the notices (a system awaited while one of its
    notices is unanswered)."""
    config = alembic_config(empty_store)
    command.upgrade(config, "0008")
    columns = (
        "notice_id, system_id, subject_id, type, request_id, forward, status, attempts, "
        "next_at, created_at, due_at, acknowledged_at"
    )
    t1, t2 = "2026-11-20T10:00:01.000000Z", "2026-11-20T10:00:02.000000Z"
    acked_a, acked_c = "2026-11-20T10:00:05.000000Z", "2026-11-20T10:00:06.000000Z"
    rows = [
        ("rn_b", "crm", "s1", "restriction_lifted", "req_1", "pending", t2, None),
        ("rn_a", "crm", "s1", "restriction", "req_1", "acknowledged", t1, acked_a),
        ("rn_c", "ops", "s1", "restriction", "req_1", "acknowledged", t1, acked_c),
    ]
    with empty_store.write() as conn:
        for notice_id, system_id, subject, kind, request_id, status, created, acked in rows:
            conn.execute(
                text(
                    f"INSERT INTO rights_notices ({columns}) VALUES (:n, :y, :s, :t, :r, "  # noqa: S608 - test constants
                    "false, :st, 0, :c, :c, :c, :a)"
                ),
                {"n": notice_id, "y": system_id, "s": subject, "t": kind, "r": request_id}
                | {"st": status, "c": created, "a": acked},
            )
    command.upgrade(config, "0009")
    assert "request_acks" not in tables(empty_store)
    with empty_store.read() as conn:
        order = conn.execute(text("SELECT notice_id FROM rights_notices ORDER BY seq")).all()
    assert [r[0] for r in order] == ["rn_a", "rn_c", "rn_b"]

    command.downgrade(config, "0008")
    with empty_store.read() as conn:
        acks = conn.execute(
            text("SELECT system_id, kind, acknowledged_at FROM request_acks ORDER BY system_id")
        ).all()
        kept = conn.execute(text("SELECT count(*) FROM rights_notices")).scalar()
    assert [(r[0], r[2]) for r in acks] == [("crm", None), ("ops", acked_c)]
    assert kept == 3
    command.upgrade(config, "head")
    assert schema_diffs(empty_store) == []


def test_0007_builds_the_tree_of_entries_logged_before_it(empty_store: Store) -> None:
    """The frozen computation of 0007 gives the frontier and stored subtrees the audit
    domain's Merkle tree gives, so proofs over the older entries verify."""
    config = alembic_config(empty_store)
    command.upgrade(config, "0006")
    size = 37
    leaves = [hashlib.sha256(f"entry {i}".encode()).digest() for i in range(size)]
    with empty_store.write() as conn:
        for idx, leaf in enumerate(leaves):
            conn.execute(
                text(
                    "INSERT INTO audit_entries (idx, at, actor, action, subject_id, details, "
                    "leaf_hash) VALUES (:i, '2026-11-20T10:00:00.000000Z', 'system', "
                    "'test:entry', NULL, '{}', :h)"
                ),
                {"i": idx, "h": leaf.hex()},
            )
        conn.execute(text("UPDATE audit_state SET size = :n WHERE id = 1"), {"n": size})
    command.upgrade(config, "0007")
    expected = merkle.MerkleTree()
    expected.append_many(leaves)
    with empty_store.read() as conn:
        tree = open_tree(conn)
        assert tree.frontier == expected.frontier
        stored = conn.execute(text("SELECT level, idx FROM audit_nodes ORDER BY level, idx"))
        assert [tuple(r) for r in stored] == [(4, 0), (4, 1), (5, 0)]
        for first in (1, 16, 20, 33):
            proof = tree.consistency_proof(first)
            assert proof == expected.consistency_proof(first)
        proof = tree.inclusion_proof(5)
    assert merkle.verify_inclusion(leaves[5], 5, size, proof, expected.root())


def test_the_chain_is_linear_and_each_docstring_names_its_parent() -> None:
    """0001 <- 0002 <- ... <- head, numbered in order; each file's "Revises:" line says the
    revision it really follows (a reader of the file trusts it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    assert [s.revision for s in scripts] == [f"{n:04d}" for n in range(1, len(scripts) + 1)]
    for script in scripts:
        doc = script.module.__doc__ or ""
        said = [
            line.removeprefix("Revises:").strip()
            for line in doc.splitlines()
            if line.startswith("Revises:")
        ]
        assert said == [script.down_revision or ""], script.revision
