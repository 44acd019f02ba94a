"""The minimum group size cannot be undone by subtraction (API.md, Reads: `group_by`), both
back-ends and both ways of counting groups (a field stored in clear, counted in SQL; a sealed
one, tallied from opened values): whatever is left out of the rows, the ungrouped total less
the rows, is drawn from no subject or from at least the minimum of them, and then
`suppressed.value` gives it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.reads.groups import Tally, shown
from consentry.runtime import Runtime
from tests.conftest import auth
from tests.ingest.test_pipeline import event, grant, send, who
from tests.reads.test_groups import grouped, query

MIN = 3
SUBJECTS = 7
_types = itertools.count()
_events = itertools.count()

# (subject, value, events): a subject's events with one value of the grouped fields.
Plan = list[tuple[int, str, int]]
plans = st.lists(
    st.tuples(
        st.integers(0, SUBJECTS - 1), st.sampled_from(["/a", "/b", "/c", "/d"]), st.integers(1, 3)
    ),
    min_size=1,
    max_size=12,
)


def truth(plan: Plan) -> dict[str, tuple[int, set[int]]]:
    """Per value: its events and the subjects they are drawn from."""
    groups: dict[str, tuple[int, set[int]]] = {}
    for subject, value, n in plan:
        events, subjects = groups.get(value, (0, set()))
        groups[value] = (events + n, subjects | {subject})
    return groups


def check(
    plan: Plan, metric: str, rows: list[dict[str, Any]], suppressed: dict[str, int] | None
) -> None:
    """What the answer leaves out is drawn from no subject or from at least MIN; its total
    (the ungrouped answer less the rows, for `count`) is given whenever it is not empty."""
    groups = truth(plan)
    shown_values = [row["field"] for row in rows]
    assert len(set(shown_values)) == len(shown_values)
    left = [value for value in groups if value not in shown_values]
    drawn = set().union(*(groups[value][1] for value in left))
    assert not drawn or len(drawn) >= MIN or not rows
    for row in rows:
        events, subjects = groups[row["field"]]
        assert len(subjects) >= MIN
        assert row["value"] == (events if metric == "count" else len(subjects))
    if not left:
        assert suppressed is None
        return
    assert suppressed is not None
    assert suppressed["groups"] == len(left)
    if len(drawn) < MIN:
        # Everything left out, and drawn from too few: nothing at all is told.
        assert rows == []
        assert "value" not in suppressed
        return
    total = sum(groups[value][0] for value in left)
    assert suppressed["value"] == (total if metric == "count" else len(drawn))


@given(plan=plans, metric=st.sampled_from(["count", "count_subjects"]))
@settings(max_examples=300, deadline=None)
def test_what_is_left_out_is_drawn_from_enough_subjects(plan: Plan, metric: str) -> None:
    """The rule alone (reads/groups.shown), over many small datasets."""
    groups = truth(plan)
    tallies = [
        Tally((value,), events, len(subjects))
        for value, (events, subjects) in sorted(groups.items())
    ]

    def union(some: Sequence[Tally]) -> int:
        return len(set().union(*(groups[t.values[0]][1] for t in some)))

    rows, suppressed = shown(tallies, ["field"], metric, MIN, union)
    check(plan, metric, rows, suppressed)


@pytest.fixture
def pool(shop: TestClient) -> TestClient:
    """SUBJECTS subjects granted analytics, and a minimum group size of MIN."""
    rt: Runtime = shop.app.state.runtime  # type: ignore[attr-defined]
    rt.reads.min_group_subjects = MIN
    for n in range(SUBJECTS):
        grant(shop, who(f"g{n}"), "analytics")
    return shop


@given(plan=plans)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_ungrouped_total_less_the_rows_is_drawn_from_enough_subjects(
    pool: TestClient, plan: Plan
) -> None:
    """Each dataset an event type of its own, grouped by a field in clear (`tag`) and a sealed
    one (`kind`) holding the same values, by both metrics."""
    event_type = f"g{next(_types)}"
    schema = {
        "purposes": ["analytics"],
        "fields": {
            "tag": {"type": "string", "category": "system.operations", "treatment": "keep"},
            "kind": {"type": "string", "category": "user.behavior", "treatment": "keep"},
        },
    }
    assert pool.put(f"/v1/schemas/{event_type}", headers=auth(), json=schema).status_code == 201
    batch = [
        event(
            f"e{next(_events)}",
            who(f"g{subject}"),
            event_type=event_type,
            properties={"tag": value, "kind": value},
        )
        for subject, value, n in plan
        for _ in range(n)
    ]
    assert all(r["status"] == "accepted" for r in send(pool, batch))
    body: dict[str, Any] = {"purpose": "analytics", "event_type": event_type}
    total = query(pool, **body)
    everyone = set().union(*(subjects for _, subjects in truth(plan).values()))
    assert total["rows"] == ([{"value": len(batch)}] if len(everyone) >= MIN else [])
    for field in ("tag", "kind"):
        for metric in ("count", "count_subjects"):
            answer = query(pool, **body, group_by=[field], metric=metric)
            rows = [{"field": row[field], "value": row["value"]} for row in answer["rows"]]
            check(plan, metric, rows, answer.get("suppressed"))
            if metric == "count" and total["rows"]:
                # What subtraction tells is the suppressed total, no more.
                rest = total["rows"][0]["value"] - sum(row["value"] for row in rows)
                assert rest == answer.get("suppressed", {}).get("value", 0)


@pytest.mark.parametrize("field", ["page", "url"])
def test_the_subtraction_of_the_issue(pool: TestClient, field: str) -> None:
    """Six subjects view /a twice each, one views /secret three times: /a alone would be shown,
    and the ungrouped 15 less its 12 would tell /secret's 3. /a is left out with it."""
    rt: Runtime = pool.app.state.runtime  # type: ignore[attr-defined]
    rt.reads.min_group_subjects = 5
    for n in range(6):
        grant(pool, who(f"s{n}"), "analytics")
        send(
            pool,
            [
                event(f"a{n}-{i}", who(f"s{n}"), properties={"url": "/a", "page": "/a"})
                for i in range(2)
            ],
        )
    grant(pool, who("x"), "analytics")
    secret = {"url": "/secret", "page": "/secret"}
    send(pool, [event(f"x-{i}", who("x"), properties=secret) for i in range(3)])
    assert query(pool)["rows"] == [{"value": 15}]
    answer = grouped(pool, field)
    assert answer["rows"] == []
    assert answer["suppressed"] == {"groups": 2, "value": 15}
