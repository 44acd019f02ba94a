"""storage/errors.py: the database's refusals reach the domains under storage's names."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from consentry import clock
from consentry.runtime import Runtime
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
