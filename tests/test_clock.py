"""clock.py: the current time in UTC, one fixed spelling per instant, and what cannot be stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import clock

offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
storable = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


def test_now_is_aware_utc_and_current() -> None:
    moment = clock.now()
    assert moment.utcoffset() == timedelta(0)
    assert abs(moment.timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "2026-11-20T10:00:00.000000Z"),
        (
            datetime(2026, 11, 20, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-20T10:00:00.000005Z",
        ),
        (datetime(1000, 1, 1, tzinfo=UTC), "1000-01-01T00:00:00.000000Z"),
        (
            datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            "2025-12-31T23:30:00.000000Z",
        ),
    ],
)
def test_rfc3339_spells_the_instant_in_utc_with_microseconds(moment: datetime, text: str) -> None:
    assert clock.rfc3339(moment) == text


@given(storable, storable)
def test_stored_spellings_sort_as_the_times_do(a: datetime, b: datetime) -> None:
    ta, tb = clock.rfc3339(a), clock.rfc3339(b)
    assert len(ta) == len(tb) == len("2026-11-20T10:00:00.000000Z")
    assert (ta < tb) == (a < b)
    assert (ta == tb) == (a == b)


@given(storable)
def test_the_spelling_reads_back_as_the_same_instant(moment: datetime) -> None:
    text = clock.rfc3339(moment)
    assert clock.unstorable(moment) is None
    assert datetime.fromisoformat(text) == moment


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "has no UTC form"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), "has no UTC form"),
        (datetime(999, 12, 31, 23, 59, tzinfo=UTC), "is before the year 1000"),
        (datetime(1000, 1, 1, 1, tzinfo=timezone(timedelta(hours=2))), "is before the year 1000"),
    ],
)
def test_times_that_cannot_be_stored_say_why(moment: datetime, why: str) -> None:
    reason = clock.unstorable(moment)
    assert reason is not None
    assert reason.startswith(why)


def test_the_first_storable_instant_is_storable() -> None:
    assert clock.unstorable(datetime(1000, 1, 1, tzinfo=UTC)) is None
