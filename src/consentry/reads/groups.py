"""Grouped and ungrouped counts as an answer may show them: groups drawn from fewer distinct
subjects than the minimum group size are left out, with the smallest shown group when those
alone are drawn from too few (no small group recovered by subtraction from the ungrouped
answer); and groups over sealed or special-category fields, tallied from values opened for the
read."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry.errors import TooManyGroups
from consentry.ingest.sealing import event_aad
from consentry.reads.view import View
from consentry.reads.visibility import Excluded
from consentry.storage import reads as sql

_JSON = msgspec.json.Decoder(dict[str, Any])
_VALUE = msgspec.json.Decoder()
SCAN_CHUNK = 5_000
# Distinct groups one answer holds at most (each costs memory while it is tallied).
MAX_GROUPS = 10_000


@dataclass(frozen=True, slots=True)
class Tally:
    """One group: its values (in group_by order), its events and its distinct subjects."""

    values: tuple[Any, ...]
    events: int
    subjects: int


# The distinct subjects the given groups are drawn from, all together.
Union = Callable[[Sequence[Tally]], int]


def shown(
    tallies: Sequence[Tally],
    group_by: Sequence[str],
    metric: str,
    min_subjects: int,
    union: Union,
) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """(rows, suppressed): the rows of groups drawn from at least `min_subjects` distinct
    subjects; the others left out and counted in `suppressed`. When the left-out groups
    together are drawn from fewer subjects (their total, the ungrouped answer less the rows,
    would describe those few), the smallest shown group is left out with them (secondary
    suppression): it is drawn from enough subjects on its own, so the left-out groups then
    are too, and `suppressed.value` (events for `count`, distinct subjects for
    `count_subjects`) is given. Only when every group is left out and they are still drawn
    from too few is the value held back. `min_subjects` 1: nothing is left out."""
    if min_subjects <= 1:
        return [_row(t, group_by, metric) for t in tallies], None
    kept = [t for t in tallies if t.subjects >= min_subjects]
    left = [t for t in tallies if t.subjects < min_subjects]
    if not left:
        return [_row(t, group_by, metric) for t in kept], None
    # Together they are drawn from at most the sum of their subjects: below the minimum, no
    # need to count the union.
    drawn = 0
    if len(left) > 1 and sum(t.subjects for t in left) >= min_subjects:
        drawn = union(left)
    if drawn < min_subjects and kept:
        # The shown group whose loss tells least; the first such in the answer's order.
        smallest = min(range(len(kept)), key=lambda n: _value(kept[n], metric))
        left.append(kept.pop(smallest))
        drawn = union(left) if metric == "count_subjects" else min_subjects
    suppressed = {"groups": len(left)}
    if drawn >= min_subjects:
        suppressed["value"] = sum(t.events for t in left) if metric == "count" else drawn
    return [_row(t, group_by, metric) for t in kept], suppressed


def _value(tally: Tally, metric: str) -> int:
    return tally.events if metric == "count" else tally.subjects


def _row(tally: Tally, group_by: Sequence[str], metric: str) -> dict[str, Any]:
    return dict(zip(group_by, tally.values, strict=True)) | {"value": _value(tally, metric)}


def opened_tallies(
    conn: Connection,
    view: View,
    filters: sql.Filters,
    excluded: Excluded,
    group_by: Sequence[str],
    sealed: Collection[str],
    *,
    min_subjects: int,
    every_subject: bool,
    max_groups: int = MAX_GROUPS,
    chunk: int = SCAN_CHUNK,
) -> tuple[list[Tally], Union]:
    """Tallies of the readable events of one type (`filters.event_type`) grouped by
    `group_by`, read from the events themselves: sealed values (the fields in `sealed`)
    opened with each subject's key, fields the purpose may not see for a subject counted as
    absent (None). Read in one snapshot, a chunk at a time; each subject's key unwrapped
    once. TooManyGroups past `max_groups` distinct groups.

    Memory: a group holds its events and a set of its subjects' integer keys, a set that
    stops growing at `min_subjects` (it is then shown, and the union of left-out groups
    needs only to know it reaches the minimum) unless `every_subject` (count_subjects
    answers with them). The loop runs once per event: it is written for that (rows
    unpacked as tuples, look-ups bound to locals, one field's value as its own key)."""
    if filters.event_type is None:
        raise ValueError("groups are tallied within one event type")
    clear = any(name not in sealed for name in group_by)
    single = group_by[0] if len(group_by) == 1 else None
    groups: dict[Any, list[Any]] = {}
    cap = None if every_subject else max(min_subjects, 1)
    special, limited = excluded.special, excluded.limited
    sealers = view.sealers
    # Most rows show every field to every purpose (field_purposes NULL): their hidden fields
    # depend only on whether the subject's special-category data may be shown, and whether
    # its limit hides its sensitive personal information.
    event_type = filters.event_type
    plain = {
        (shows, held): view.hidden(event_type, None, shows, held)
        for shows in (False, True)
        for held in (False, True)
    }
    columns = sql.group_columns(properties=clear, sealed=bool(sealed))
    with closing(sql.scan(conn, filters, excluded.keys, chunk, columns)) as chunks:
        for rows in chunks:
            view.open_keys(conn, {row[1] for row in rows})
            for event_id, subject_id, subject_key, only, properties, blob in rows:
                sealer = sealers.get(subject_id)
                if sealer is None:
                    continue
                values = _JSON.decode(properties) if clear else {}
                if blob is not None:
                    values.update(_JSON.decode(sealer.open(blob, event_aad(event_id))))
                shows, held = subject_id in special, subject_id in limited
                hidden = (
                    plain[shows, held]
                    if only is None
                    else view.hidden(event_type, only, shows, held)
                )
                if single is not None:
                    key: Any = None if single in hidden else _keyed(values.get(single))
                else:
                    key = tuple([None if n in hidden else _keyed(values.get(n)) for n in group_by])
                group = groups.get(key)
                if group is None:
                    if len(groups) >= max_groups:
                        raise _too_many(max_groups)
                    groups[key] = [1, {subject_key}]
                else:
                    group[0] += 1
                    subjects = group[1]
                    if cap is None or len(subjects) < cap:
                        subjects.add(subject_key)
    drawn: dict[int, set[int]] = {}
    tallies = []
    for key, (events, subjects) in groups.items():
        tally = Tally(_group_values(key if single is None else (key,)), events, len(subjects))
        # By identity: unkeyed, True and 1 would be one group again.
        drawn[id(tally)] = subjects
        tallies.append(tally)
    del groups
    tallies.sort(key=lambda t: _order(t.values))

    def union(left: Sequence[Tally]) -> int:
        return len(set().union(*(drawn[id(t)] for t in left)))

    return tallies, union


def sql_tallies(
    conn: Connection,
    filters: sql.Filters,
    excluded: Excluded,
    group_by: Sequence[str],
    *,
    max_groups: int = MAX_GROUPS,
) -> tuple[list[Tally], Union]:
    """Tallies of groups over fields stored in clear, counted in SQL, their values decoded and
    ordered as opened_tallies orders them (one order and one value per group on both
    back-ends); the union of groups asked of SQL when (and only when) it is needed.
    TooManyGroups past `max_groups` distinct groups."""
    counted = sql.grouped(conn, filters, excluded.keys, group_by, max_groups + 1)
    if len(counted) > max_groups:
        raise _too_many(max_groups)
    tallies = [
        Tally(tuple(_VALUE.decode(v) for v in row[:-2]), int(row[-2]), int(row[-1]))
        for row in counted
    ]
    tallies.sort(key=lambda t: _order(t.values))

    def union(groups: Sequence[Tally]) -> int:
        wanted = {tuple(_keyed(v) for v in t.values) for t in groups}
        keys = {
            row[-1]
            for row in sql.group_subjects(conn, filters, excluded.keys, group_by)
            if tuple(_keyed(_VALUE.decode(v)) for v in row[:-1]) in wanted
        }
        return len(keys)

    return tallies, union


def _too_many(max_groups: int) -> TooManyGroups:
    return TooManyGroups(
        f"group_by makes more than {max_groups:,} groups: group by fewer fields, or narrow "
        "the query by time",
        max_groups=max_groups,
    )


def _keyed(value: Any) -> Any:
    # True == 1 == 1.0 in a dict key: a boolean group must not merge with the number, nor an
    # integer with a float (SQL groups them apart by their JSON text).
    return (value,) if value.__class__ is bool or value.__class__ is float else value


def _group_values(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v[0] if isinstance(v, tuple) else v for v in key)


def _order(values: tuple[Any, ...]) -> tuple[tuple[bool, str, Any], ...]:
    """Absent first, then by type, then by value (values of one type compare)."""
    return tuple((v is not None, type(v).__name__, "" if v is None else v) for v in values)
