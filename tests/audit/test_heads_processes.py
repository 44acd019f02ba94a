"""Audit heads signed by two processes on one PostgreSQL database (two gateways) while the
log grows: one head an interval, not one per process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import multiprocessing
import threading
import time
from datetime import datetime
from multiprocessing.synchronize import Event

import pytest
from sqlalchemy import select

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.dialect import database_url
from consentry.storage.engine import Store
from consentry.storage.schema import audit_heads

INTERVAL_MS = 300
RUN_SECONDS = 2.4


def _gateway(settings: Settings, ready: Event, go: Event, offset: float) -> None:
    """Another gateway: appends to the log all along, and signs heads in the background, its
    rounds `offset` seconds behind the other's."""
    runtime = Runtime(settings)
    stop = threading.Event()

    def grow() -> None:
        while not stop.wait(0.01):
            with runtime.store.write() as conn:
                audit.record(conn, AuditAction.REQUEST_STEP, actor="test", details={})

    async def sign() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.heads.run(), RUN_SECONDS)

    try:
        ready.set()
        go.wait(60)
        growing = threading.Thread(target=grow)
        growing.start()
        time.sleep(offset)
        asyncio.run(sign())
        stop.set()
        growing.join()
    finally:
        runtime.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_processes_sign_one_head_an_interval(settings: Settings) -> None:
    settings = dataclasses.replace(settings, audit_head_ms=INTERVAL_MS)
    Runtime(settings).close()  # migrated, keys made, before the two start
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    readies = [context.Event() for _ in range(2)]
    processes = [
        context.Process(target=_gateway, args=(settings, ready, go, n * INTERVAL_MS / 2000))
        for n, ready in enumerate(readies)
    ]
    for process in processes:
        process.start()
    try:
        assert all(ready.wait(60) for ready in readies)
        go.set()
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    store = Store(database_url(settings))
    try:
        with store.read() as conn:
            signed = list(conn.execute(select(audit_heads.c.signed_at).order_by(audit_heads.c.id)))
    finally:
        store.close()
    times = [datetime.fromisoformat(row.signed_at) for row in signed]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert len(times) >= 4, times
    # Each process checks every interval: heads went on, none within 0.9 of an interval of
    # the one before (both processes signed each interval before).
    assert min(gaps) >= INTERVAL_MS / 1000 * 0.9, gaps
