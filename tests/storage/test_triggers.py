"""storage/triggers.py: made sure of at every start, by every process starting at once."""

from __future__ import annotations

import threading

import pytest

from consentry.storage import triggers
from consentry.storage.engine import Store


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_processes_starting_together_replace_the_triggers_in_turn(store: Store) -> None:
    """The second waits for the first to commit: before, it failed with PostgreSQL's "tuple
    concurrently updated" (two gateways started at once, one did not start)."""
    failed: list[BaseException] = []
    done = threading.Event()

    def second() -> None:
        try:
            with store.write() as conn:
                triggers.ensure(conn)
        except BaseException as exc:  # handed to the test's assertion
            failed.append(exc)
        done.set()

    with store.write() as conn:
        triggers.ensure(conn)
        other = threading.Thread(target=second)
        other.start()
        # The second is inside its own transaction and waits for this one to end.
        assert not done.wait(1.0)
    other.join(30)
    assert done.is_set()
    assert failed == []
