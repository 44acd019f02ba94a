"""storage/errors.py: the database's refusals reach the domains under storage's names."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from consentry import clock
from consentry.runtime import Runtime
from consentry.storage import keys as keys_sql
from consentry.storage import reads as reads_sql
from consentry.storage import subjects as subjects_sql
from consentry.storage.errors import (
    ConstraintViolation,
    OperationalFailure,
    SerializationFailure,
    StorageFailure,
)


def insert_subjects(runtime: Runtime, *subject_ids: str) -> None:
    with runtime.store.write() as conn:
        for subject_id in subject_ids:
            subjects_sql.insert_subject(conn, subject_id, None, clock.now())


def test_a_duplicate_key_is_a_constraint_violation_and_rolls_back(runtime: Runtime) -> None:
    insert_subjects(runtime, "sub_twice")
    with pytest.raises(ConstraintViolation) as caught:
        insert_subjects(runtime, "sub_once", "sub_twice")
    # The driver's class is named; its message, which may quote the row, is not kept.
    assert caught.value.driver_error in {"IntegrityError", "UniqueViolation"}
    assert "sub_twice" not in str(caught.value)
    with runtime.store.read() as conn:
        assert subjects_sql.get_subject(conn, "sub_once") is None


def test_a_savepoint_survives_a_constraint_violation(runtime: Runtime) -> None:
    now = clock.now()
    with runtime.store.write() as conn:
        subjects_sql.insert_subject(conn, "sub_first", None, now)
        with pytest.raises(ConstraintViolation), conn.begin_nested():
            subjects_sql.insert_subject(conn, "sub_first", None, now)
        subjects_sql.insert_subject(conn, "sub_after", None, now)
    with runtime.store.read() as conn:
        assert subjects_sql.get_subject(conn, "sub_after") is not None


def test_every_other_refusal_is_a_storage_failure(runtime: Runtime) -> None:
    # sqlite3 calls this an OperationalError, psycopg an UndefinedColumn (a ProgrammingError).
    with pytest.raises(StorageFailure), runtime.store.read() as conn:
        conn.execute(text("SELECT no_such_column FROM subjects"))


@pytest.mark.parametrize("state", ["40001", "40P01"])
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_conflicts_are_serialization_failures(runtime: Runtime, state: str) -> None:
    raise_state = f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{state}'; END $$"
    with pytest.raises(SerializationFailure), runtime.store.write() as conn:
        conn.execute(text(raise_state))


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_postgresql_lock_timeout_is_an_operational_failure(runtime: Runtime) -> None:
    raise_state = "DO $$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '55P03'; END $$"
    with pytest.raises(OperationalFailure) as caught, runtime.store.write() as conn:
        conn.execute(text(raise_state))
    assert not isinstance(caught.value, SerializationFailure)


def test_storage_races_it_settles_itself_stay_quiet(runtime: Runtime) -> None:
    """Inserts that lose a race on purpose (key material, a day's privacy spend) are settled
    inside storage: the named error they meet is caught there, never reaching the caller."""
    now = clock.now()
    with runtime.store.write() as conn:
        keys_sql.insert_material_if_absent(conn, "race", b"first", "kek", now)
        keys_sql.insert_material_if_absent(conn, "race", b"second", "kek", now)
        wrapped = conn.execute(
            text("SELECT wrapped_key FROM key_material WHERE name = 'race'")
        ).scalar_one()
    assert bytes(wrapped) == b"first"

    planted: list[bool] = []

    def another_query_opens_the_day(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO dp_spend") and not planted:
            planted.append(True)
            cursor.execute(
                "INSERT INTO dp_spend (key_id, day, spent) VALUES ('k_race', '2026-12-03', 0)"
            )

    with runtime.store.write() as conn:
        event.listen(conn, "before_cursor_execute", another_query_opens_the_day)
        assert isinstance(reads_sql.spend(conn, "k_race", "2026-12-03", 1.0, 10.0), bool)
    assert planted
