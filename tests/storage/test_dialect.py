"""storage/dialect.py: statements spelled for each driver's parameter style, run on both
back-ends, and `head IN (values)` without SQLAlchemy's compilation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection

from consentry.settings import Settings
from consentry.storage.dialect import (
    database_url,
    driver_in,
    driver_statements,
    ensure_data_dir,
    insert_statements,
)
from consentry.storage.engine import Store

# Text a template may hold around its markers: no marker, no brace, no paramstyle mark.
_TEXT = st.text(st.characters(blacklist_characters="{}?%", codec="ascii"), max_size=20)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A bare store on the back-end under test, with one table of its own."""
    ensure_data_dir(settings.data_dir)
    bare = Store(database_url(settings))
    with bare.write() as conn:
        conn.exec_driver_sql("CREATE TABLE dialect_rows (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    try:
        yield bare
    finally:
        bare.close()


def rows(conn: Connection) -> list[tuple[str, str]]:
    found = conn.exec_driver_sql("SELECT k, v FROM dialect_rows ORDER BY k").all()
    return [(str(k), str(v)) for k, v in found]


@given(parts=st.lists(_TEXT, min_size=1, max_size=6))
def test_each_paramstyle_gets_its_own_marker_at_each_place(parts: list[str]) -> None:
    spelled = driver_statements("{p}".join(parts))
    assert spelled == {
        "qmark": "?".join(parts),
        "format": "%s".join(parts),
        "pyformat": "%s".join(parts),
    }


@given(columns=st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), min_size=1, max_size=8))
def test_an_insert_has_one_marker_per_column(columns: list[str]) -> None:
    spelled = insert_statements("t", columns, " ON CONFLICT DO NOTHING")
    marks = ", ".join(["?"] * len(columns))
    # The table and column names are the test's own constants.
    expected = f"INSERT INTO t ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
    assert spelled["qmark"] == expected
    assert spelled["format"] == spelled["pyformat"] == spelled["qmark"].replace("?", "%s")


def test_the_spelled_statements_run_on_the_back_end(store: Store) -> None:
    insert = insert_statements("dialect_rows", ["k", "v"], " ON CONFLICT (k) DO NOTHING")
    update = driver_statements("UPDATE dialect_rows SET v = {p} WHERE k = {p}")
    with store.write() as conn:
        style = conn.dialect.paramstyle
        # A value that would break a statement spelled with it: it travels as a parameter.
        conn.exec_driver_sql(insert[style], [("a", "o'brien"), ("b", "2"), ("a", "lost")])
        conn.exec_driver_sql(update[style], ("3", "b"))
    with store.read() as conn:
        assert rows(conn) == [("a", "o'brien"), ("b", "3")]


def test_driver_in_reads_the_rows_whose_key_is_listed(store: Store) -> None:
    keys = [f"k{n:04d}" for n in range(1500)]
    insert = insert_statements("dialect_rows", ["k", "v"])
    with store.write() as conn:
        conn.exec_driver_sql(insert[conn.dialect.paramstyle], [(k, k.upper()) for k in keys])
    wanted = [*keys[::3], "absent", "k0000' OR '1'='1"]
    with store.read() as conn:
        found = driver_in(conn, "SELECT k, v FROM dialect_rows WHERE k", wanted, " ORDER BY k")
        assert [tuple(r) for r in found] == [(k, k.upper()) for k in keys[::3]]
        assert driver_in(conn, "SELECT k FROM dialect_rows WHERE k", []) == []
