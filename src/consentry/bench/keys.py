"""The benchmark's keys section: a master rotation re-wrapping a store's subject keys under a
new key-encryption key from the development file key source."""

from __future__ import annotations

import dataclasses
import shutil
import time
from typing import Any

from consentry.bench.data import make_settings
from consentry.keys.rotation import MasterRotation
from consentry.runtime import Runtime

_CHUNK = 5_000


def keys(subjects: int) -> dict[str, Any]:
    """Subject keys re-wrapped a second by `consentry keys rotate master`'s engine (batches of
    2,000 a transaction, each key unwrapped and wrapped again by the native core)."""
    settings = dataclasses.replace(make_settings(), master_key="")
    runtime = Runtime(settings)
    try:
        for start in range(0, subjects, _CHUNK):
            with runtime.store.write() as conn:
                for n in range(start, min(subjects, start + _CHUNK)):
                    runtime.subject_keys.create(conn, f"bench-key-{n:08d}")
        # A store of its own with no other process: nothing can still be wrapping under the
        # old KEK, so neither the settle time nor the grace period applies.
        rotation = MasterRotation(
            runtime.store, runtime.kek, actor="bench", settle_seconds=0, grace_seconds=0
        )
        rotation.start()
        pending = rotation.pending()
        started = time.perf_counter()
        rewrapped = rotation.rewrap()
        seconds = time.perf_counter() - started
        outcome = rotation.finish()
    finally:
        runtime.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "subject_keys": subjects,
        "rewrapped": rewrapped,
        "rewrap_per_s": round(pending / seconds),
        "retired": len(outcome.retired),
    }
