"""SQL for purpose-scoped reads: counts, groups, event pages and scans, filtered in SQL by
purpose bit, event type, time and the subjects excluded at the moment of the read; exports
and the differential-privacy budget."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import config_state, dp_spend, exports

_EXCLUDED = "reads_excluded"
_EXCLUDED_TAG = "reads_excluded_tag"
_TAGS = itertools.count(1)
EVENT_FIELDS = (
    "seq, event_id, event_type, occurred_at, subject_id, properties, sealed, field_purposes, "
    "schema_version"
)


@dataclass(frozen=True, slots=True)
class Filters:
    """What a read asks for; times are UTCTime text, `to` exclusive."""

    purpose: str
    bit: int
    event_type: str | None = None
    start: str | None = None
    end: str | None = None


class KeySet(frozenset[int]):
    """Subject keys a read leaves out, tagged once in this process: SQLite holds the last set
    it was given per connection (with its tag, in the same transaction) and loads a set again
    only under another tag, so the chunks of a long download do not load it each time."""

    __slots__ = ("tag",)
    tag: int

    def __new__(cls, keys: Iterable[int] = ()) -> KeySet:
        new = super().__new__(cls, keys)
        new.tag = next(_TAGS)
        return new


def policy_version(conn: Connection) -> int:
    """Moves with every change of purposes, notices, schemas, systems or any consent."""
    row = conn.execute(
        select(config_state.c.version, config_state.c.consent_changes).where(config_state.c.id == 1)
    ).one()
    return int(row.version) + int(row.consent_changes)


def all_subject_versions(conn: Connection) -> Sequence[Any]:
    """(subject_id, consent_version) of every subject."""
    return conn.exec_driver_sql("SELECT subject_id, consent_version FROM subjects").all()


def total(
    conn: Connection, filters: Filters, excluded: Collection[int], *, distinct_subjects: bool
) -> int:
    """The events (or distinct subjects) the purpose may read."""
    where, params = where_clause(conn, filters, excluded)
    metric = "COUNT(DISTINCT subject_key)" if distinct_subjects else "COUNT(*)"
    sql = f"SELECT {metric} FROM events WHERE {where}"  # noqa: S608 - built from constants
    return int(conn.execute(text(sql), params).scalar_one())


def grouped(
    conn: Connection,
    filters: Filters,
    excluded: Collection[int],
    group_by: Sequence[str],
    limit: int,
) -> list[tuple[Any, ...]]:
    """[(group values as JSON text..., events, distinct subjects)] of the events the purpose
    may read, grouped by fields stored in clear, in no particular order; at most `limit`
    groups."""
    where, params = where_clause(conn, filters, excluded)
    params["limit"] = limit
    groups = [
        _group_value(conn, name, n, params, filters.purpose) for n, name in enumerate(group_by)
    ]
    columns = ", ".join([*groups, "COUNT(*)", "COUNT(DISTINCT subject_key)"])
    positions = ", ".join(str(n + 1) for n in range(len(groups)))
    sql = (
        f"SELECT {columns} FROM events WHERE {where} "  # noqa: S608 - built from constants
        f"GROUP BY {positions} LIMIT :limit"
    )
    return [tuple(row) for row in conn.execute(text(sql), params)]


def group_subjects(
    conn: Connection, filters: Filters, excluded: Collection[int], group_by: Sequence[str]
) -> list[tuple[Any, ...]]:
    """[(group values as JSON text..., subject key)]: which subjects each group is drawn
    from."""
    where, params = where_clause(conn, filters, excluded)
    groups = [
        _group_value(conn, name, n, params, filters.purpose) for n, name in enumerate(group_by)
    ]
    columns = ", ".join([*groups, "subject_key"])
    sql = f"SELECT DISTINCT {columns} FROM events WHERE {where}"  # noqa: S608 - constants
    return [tuple(row) for row in conn.execute(text(sql), params)]


def subjects_up_to(conn: Connection, filters: Filters, excluded: Collection[int], cap: int) -> int:
    """The distinct subjects the readable events are drawn from, counted up to `cap` (enough
    to tell whether an answer meets the minimum group size, without counting them all)."""
    where, params = where_clause(conn, filters, excluded)
    params["cap"] = cap
    sql = (
        "SELECT COUNT(*) FROM (SELECT DISTINCT subject_key FROM events "  # noqa: S608
        f"WHERE {where} LIMIT :cap) AS drawn"
    )
    return int(conn.execute(text(sql), params).scalar_one())


def bounded_count(conn: Connection, filters: Filters, excluded: Collection[int], bound: int) -> int:
    """Events the purpose may read, each subject counted for at most `bound` of them (the
    sensitivity of a differentially private count)."""
    where, params = where_clause(conn, filters, excluded)
    params["bound"] = bound
    sql = (
        "SELECT COALESCE(SUM(CASE WHEN c > :bound THEN :bound ELSE c END), 0) FROM "  # noqa: S608
        f"(SELECT COUNT(*) AS c FROM events WHERE {where} GROUP BY subject_key) AS per_subject"
    )
    return int(conn.execute(text(sql), params).scalar_one())


def page(
    conn: Connection, filters: Filters, excluded: Collection[int], after: int, limit: int
) -> Sequence[AnyRow]:
    """Up to `limit` readable events after position `after`, in storage order."""
    sql, params = page_statement(conn, filters, excluded, after, limit)
    return conn.execute(text(sql), params).all()


def page_statement(
    conn: Connection, filters: Filters, excluded: Collection[int], after: int, limit: int
) -> tuple[str, dict[str, Any]]:
    """page()'s statement and parameters (its query plan is tested)."""
    where, params = where_clause(conn, filters, excluded, rows=True)
    params |= {"after": after, "limit": limit}
    sql = (
        f"SELECT {EVENT_FIELDS} FROM events WHERE {where} AND seq > :after "  # noqa: S608
        "ORDER BY seq LIMIT :limit"
    )
    return sql, params


def where_clause(
    conn: Connection, filters: Filters, excluded: Collection[int], *, rows: bool = False
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a read and its parameters. `rows`: the read fetches whole rows
    (pages, scans), and on SQLite walks the table in storage order rather than the reads
    index, whose order is not seq (a page then sorted every matching event) and whose every
    hit is a random row fetch (a scan of 1M page views: 13 s through it, 5 s in storage
    order)."""
    clauses = ["(purpose_bits & :bit) <> 0"]
    params: dict[str, Any] = {"bit": 1 << filters.bit}
    if filters.event_type is not None:
        # SQLite's unary + keeps a term from choosing an index.
        plus = "+" if rows and conn.dialect.name == "sqlite" else ""
        clauses.append(f"{plus}event_type = :event_type")
        params["event_type"] = filters.event_type
    if filters.start is not None:
        clauses.append("occurred_at >= :start")
        params["start"] = filters.start
    if filters.end is not None:
        clauses.append("occurred_at < :end")
        params["end"] = filters.end
    if excluded:
        if conn.dialect.name == "postgresql":
            clauses.append(
                "NOT EXISTS (SELECT 1 FROM unnest(CAST(:excluded AS BIGINT[])) AS x(k) "
                "WHERE x.k = events.subject_key)"
            )
            params["excluded"] = list(excluded)
        else:
            _fill_excluded(conn, excluded)
            clauses.append(
                f"subject_key NOT IN (SELECT subject_key FROM temp.{_EXCLUDED})"  # noqa: S608
            )
    return " AND ".join(clauses), params


def _fill_excluded(conn: Connection, excluded: Collection[int]) -> None:
    """SQLite: the excluded keys in a connection-private temporary table, loaded unless that
    table already holds this KeySet (its tag, written beside the keys, rolls back with them)."""
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {_EXCLUDED} (subject_key INTEGER PRIMARY KEY)"
    )
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_EXCLUDED_TAG} (tag INTEGER)")
    tag = excluded.tag if isinstance(excluded, KeySet) else None
    if tag is not None:
        held = conn.exec_driver_sql(f"SELECT tag FROM temp.{_EXCLUDED_TAG}").scalar()  # noqa: S608
        if held == tag:
            return
    conn.exec_driver_sql(f"DELETE FROM temp.{_EXCLUDED}")  # noqa: S608 - a constant name
    conn.exec_driver_sql(f"DELETE FROM temp.{_EXCLUDED_TAG}")  # noqa: S608 - a constant name
    conn.exec_driver_sql(
        f"INSERT INTO temp.{_EXCLUDED} (subject_key) VALUES (?)",  # noqa: S608
        [(key,) for key in excluded],
    )
    if tag is not None:
        conn.exec_driver_sql(f"INSERT INTO temp.{_EXCLUDED_TAG} (tag) VALUES (?)", (tag,))  # noqa: S608


def _group_value(conn: Connection, name: str, n: int, params: dict[str, Any], purpose: str) -> str:
    """A kept field's value as JSON text ('null' where it is absent, or the row shows that
    field only to other purposes): the same text on both back-ends for the caller to decode,
    so a boolean stays a boolean (SQLite's json_extract gives 1) and absent sorts as None."""
    params[f"g{n}"] = name
    params[f"gp{n}"] = f'$."{name}"'
    if conn.dialect.name == "postgresql":
        params[f"q{n}"] = purpose
        return (
            f"COALESCE(CASE WHEN field_purposes IS NULL "
            f"OR NOT jsonb_exists(CAST(field_purposes AS JSONB), :g{n}) "
            f"OR (CAST(field_purposes AS JSONB) -> :g{n}) @> to_jsonb(CAST(:q{n} AS TEXT)) "
            f"THEN CAST(CAST(properties AS JSONB) -> :g{n} AS TEXT) END, 'null')"
        )
    params[f"q{n}"] = f'"{purpose}"'
    return (
        f"COALESCE(CASE WHEN field_purposes IS NULL "
        f"OR json_extract(field_purposes, :gp{n}) IS NULL "
        f"OR instr(json_extract(field_purposes, :gp{n}), :q{n}) > 0 "
        f"THEN properties -> :gp{n} END, 'null')"
    )


def group_columns(*, properties: bool, sealed: bool) -> str:
    """Columns of a scan for groups (within one event type): event_id, subject_id,
    subject_key, field_purposes, then properties and sealed, each NULL when the groups do not
    need it."""
    return "event_id, subject_id, subject_key, field_purposes, " + ", ".join(
        [
            "properties" if properties else "NULL AS properties",
            "sealed" if sealed else "NULL AS sealed",
        ]
    )


def scan(
    conn: Connection, filters: Filters, excluded: Collection[int], chunk: int, fields: str
) -> Generator[Sequence[AnyRow], None, None]:
    """Every readable event (`fields` of it) in one statement, `chunk` rows at a time, never
    all in memory: a read answered from the caller's one snapshot."""
    where, params = where_clause(conn, filters, excluded, rows=True)
    sql = f"SELECT {fields} FROM events WHERE {where}"  # noqa: S608 - built from constants
    result = conn.execution_options(yield_per=chunk).execute(text(sql), params)
    # A reader that stops early (a refused answer) must not leave a server cursor open.
    try:
        yield from result.partitions(chunk)
    finally:
        result.close()


def insert_export(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(exports).values(**values))


def get_export(conn: Connection, export_id: str) -> AnyRow | None:
    return conn.execute(select(exports).where(exports.c.export_id == export_id)).first()


def finish_export(conn: Connection, export_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(exports).where(exports.c.export_id == export_id).values(**values))


def spend(conn: Connection, key_id: str, day: str, epsilon: float, budget: float) -> bool:
    """Add `epsilon` to the key's spend for `day` unless it would pass `budget`; True when
    spent. The row is locked while it is checked, so two queries cannot both fit."""
    stmt = (
        update(dp_spend)
        .where(
            dp_spend.c.key_id == key_id,
            dp_spend.c.day == day,
            dp_spend.c.spent + epsilon <= budget,
        )
        .values(spent=dp_spend.c.spent + epsilon)
    )
    if conn.execute(stmt).rowcount:
        return True
    exists = conn.execute(
        select(dp_spend.c.spent).where(dp_spend.c.key_id == key_id, dp_spend.c.day == day)
    ).first()
    if exists is not None or epsilon > budget:
        return False
    try:
        with conn.begin_nested():
            conn.execute(insert(dp_spend).values(key_id=key_id, day=day, spent=epsilon))
    except ConstraintViolation:
        # Another query of the same key opened the day first: spend against its row.
        return bool(conn.execute(stmt).rowcount)
    return True


def spent(conn: Connection, key_id: str, day: str) -> float:
    row = conn.execute(
        select(dp_spend.c.spent).where(dp_spend.c.key_id == key_id, dp_spend.c.day == day)
    ).first()
    return 0.0 if row is None else float(row.spent)
