"""Job leases on both back-ends: one holder at a time, renewed while held, given up at the
end; a holder killed (SIGKILL) in another process leaves the lease to expire, and the next
process to ask takes the job over then, not before."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.synchronize import Event

from consentry.periodic import Periodic
from consentry.storage import leases
from consentry.storage.engine import Store
from consentry.storage.leases import Leases


def test_one_holder_at_a_time_until_released_or_expired(store: Store) -> None:
    first, second = Leases(store, 0.5), Leases(store, 0.5)
    assert first.holder != second.holder
    assert first.take("job")
    assert not second.take("job")
    assert first.take("job")  # a renewal
    assert second.take("other")  # leases are per job
    first.release("job")
    assert second.take("job")
    assert not first.take("job")
    # Not renewed: expired, the next to ask takes it.
    time.sleep(0.6)
    assert first.take("job")
    with store.read() as conn:
        rows = {name: holder for name, holder, _left in leases.holders(conn)}
    assert rows == {"job": first.holder, "other": second.holder}


def test_held_renews_while_inside_and_gives_up_at_the_end(store: Store) -> None:
    # Lifetimes long enough that a loaded machine's stall does not let one run out.
    first, second = Leases(store, 1.5), Leases(store, 1.5)
    with first.held("job") as mine:
        assert mine
        # Three lifetimes later, still held: renewed meanwhile.
        time.sleep(4.5)
        assert not second.take("job")
        with second.held("job") as theirs:
            assert not theirs
    assert second.take("job")


def test_a_periodic_pass_runs_only_in_the_holder(store: Store) -> None:
    passes: list[str] = []
    mine = Periodic("job", 0, lambda: passes.append("mine"), Leases(store, 5))
    theirs = Periodic("job", 0, lambda: passes.append("theirs"), Leases(store, 5))
    assert mine.run_once()
    assert mine.lease is not None
    with mine.lease.held("job"):
        assert not theirs.run_once()
    assert theirs.run_once()
    assert passes == ["mine", "theirs"]


def _hold(url: str, seconds: float, holding: Event) -> None:
    """Another process: take the lease and keep it (renewing) until killed."""
    store = Store(url)
    with Leases(store, seconds).held("job") as mine:
        if mine:
            holding.set()
        time.sleep(60)


def test_a_killed_holder_leaves_the_job_to_another_process_after_expiry(store: Store) -> None:
    seconds = 1.5
    context = multiprocessing.get_context("spawn")
    holding = context.Event()
    holder = context.Process(target=_hold, args=(store.url, seconds, holding))
    holder.start()
    try:
        assert holding.wait(30)
        other = Leases(store, seconds)
        # Held and renewed by the live process, past its lifetime.
        deadline = time.monotonic() + seconds * 1.5
        while time.monotonic() < deadline:
            assert not other.take("job")
            time.sleep(0.1)
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        killed = time.monotonic()
        while not other.take("job"):
            assert time.monotonic() - killed < seconds + 2, "the lease never expired"
            time.sleep(0.05)
    finally:
        if holder.is_alive():
            holder.kill()
        holder.join(10)
