"""configuration.py: an in-memory copy reloaded only when the configuration version moves, as
any process moves it."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry.configuration import VersionedCopy
from consentry.runtime import Runtime
from consentry.storage.configuration import bump_config_version, config_version


class Loader:
    """Counts its loads and returns the load's number."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, _conn: Connection) -> int:
        self.loads += 1
        return self.loads


def bump(rt: Runtime) -> int:
    with rt.store.write() as conn:
        return bump_config_version(conn)


def get(rt: Runtime, copy: VersionedCopy[int], version: int | None = None) -> int:
    with rt.store.read() as conn:
        return copy.get(conn, version)


def test_the_copy_is_loaded_once_per_version(runtime: Runtime) -> None:
    loader = Loader()
    copy = VersionedCopy(loader, 0)
    assert copy.last() == 0
    assert get(runtime, copy) == 1
    assert get(runtime, copy) == 1
    assert loader.loads == 1
    bump(runtime)
    assert get(runtime, copy) == 2
    assert get(runtime, copy) == 2
    assert loader.loads == 2


def test_a_change_made_elsewhere_is_seen_at_the_next_read(runtime: Runtime) -> None:
    # Two copies stand for two processes over one database: each follows the other's change.
    mine, theirs = VersionedCopy(Loader(), 0), VersionedCopy(Loader(), 0)
    get(runtime, mine)
    get(runtime, theirs)
    bump(runtime)
    assert get(runtime, mine) == 2
    assert get(runtime, theirs) == 2


def test_a_version_already_read_saves_the_read_and_at_and_last_need_no_storage(
    runtime: Runtime,
) -> None:
    loader = Loader()
    copy = VersionedCopy(loader, 0)
    with runtime.store.read() as conn:
        version = config_version(conn)
    assert copy.at(version) is None
    assert get(runtime, copy, version) == 1
    assert copy.at(version) == 1
    assert copy.at(version + 1) is None
    # A version the caller names is trusted: the same number is not loaded again.
    assert get(runtime, copy, version) == 1
    assert loader.loads == 1
    moved = bump(runtime)
    assert copy.last() == 1
    assert get(runtime, copy, moved) == 2
    assert copy.at(moved) == 2
    assert copy.at(version) is None
