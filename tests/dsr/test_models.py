"""dsr/models.py: the level each request must reach, and the transition table's paths."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.dsr.models import (
    FINAL,
    OPEN,
    REQUIRED_LEVEL,
    TRANSITIONS,
    Level,
    RequestType,
    Scope,
    Status,
    required_level,
)

S = Status
_JURISDICTIONS = st.lists(st.sampled_from(["EU", "UK", "US-CA", "US-VA", "BR"]), max_size=3)


def test_levels_are_ranked() -> None:
    assert sorted(Level, key=lambda level: level.rank) == [Level.NONE, Level.REASONABLE, Level.HIGH]


@given(
    type_=st.sampled_from(RequestType),
    jurisdictions=_JURISDICTIONS,
    scope=st.none() | st.sampled_from(Scope),
)
def test_the_required_level_is_the_types_raised_only_for_californian_data_access(
    type_: RequestType, jurisdictions: list[str], scope: Scope | None
) -> None:
    got = required_level(type_, jurisdictions, scope)
    assert got.rank >= REQUIRED_LEVEL[type_].rank
    specific_pieces = type_ is RequestType.ACCESS and scope is not Scope.CATEGORIES
    if specific_pieces and "US-CA" in jurisdictions:
        assert got is Level.HIGH
    else:
        assert got is REQUIRED_LEVEL[type_]


def test_what_destroys_or_hands_over_data_needs_high_and_a_limit_nothing() -> None:
    assert {t for t, level in REQUIRED_LEVEL.items() if level is Level.HIGH} == {
        RequestType.ERASURE,
        RequestType.RECTIFICATION,
        RequestType.PORTABILITY,
    }
    assert REQUIRED_LEVEL[RequestType.LIMIT] is Level.NONE
    assert set(REQUIRED_LEVEL) == set(RequestType)


def test_an_ended_request_never_moves_and_an_open_one_can_always_end() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert set(Status) == FINAL | OPEN
    for status in FINAL:
        assert TRANSITIONS[status] == frozenset()
    for status in OPEN:
        assert TRANSITIONS[status] & FINAL, status
        assert S.RECEIVED not in TRANSITIONS[status]
    # Past its deadline, any open request is overdue until it ends.
    for status in OPEN - {S.OVERDUE}:
        assert S.OVERDUE in TRANSITIONS[status], status


@pytest.mark.parametrize(
    "path",
    # The paths by type (models.TRANSITIONS, docs/requests.md), and past the deadline.
    [
        [S.RECEIVED, S.VERIFIED, S.IN_PROGRESS, S.AWAITING_DOWNSTREAM, S.COMPLETED],
        [S.RECEIVED, S.VERIFIED, S.AWAITING_DOWNSTREAM, S.COMPLETED],
        [S.RECEIVED, S.AWAITING_DOWNSTREAM, S.COMPLETED],
        [S.RECEIVED, S.VERIFIED, S.COMPLETED],
        [S.RECEIVED, S.COMPLETED],
        [S.RECEIVED, S.OVERDUE, S.REJECTED],
        [S.RECEIVED, S.VERIFIED, S.IN_PROGRESS, S.OVERDUE, S.COMPLETED],
    ],
)
def test_each_types_path_is_allowed(path: list[Status]) -> None:
    for here, there in itertools.pairwise(path):
        assert there in TRANSITIONS[here], (here, there)
