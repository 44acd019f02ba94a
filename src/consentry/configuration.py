"""In-memory copies of configuration (purposes, schemas) that follow the configuration
version, so every process sees another's change at its next read."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import Connection

from consentry.storage.configuration import config_version

T = TypeVar("T")


class VersionedCopy(Generic[T]):
    """`load(conn)` run again only when the configuration version has moved."""

    def __init__(self, load: Callable[[Connection], T], empty: T) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._version = -1
        self._value = empty

    def get(self, conn: Connection, version: int | None = None) -> T:
        """The current copy: one primary-key read to detect a change by any process, none
        when the caller has read the configuration `version` already."""
        if version is None:
            version = config_version(conn)
        with self._lock:
            if version == self._version:
                return self._value
        loaded = self._load(conn)
        with self._lock:
            self._value, self._version = loaded, version
        return loaded

    def at(self, version: int) -> T | None:
        """The copy when it was loaded at `version`, else None (the caller loads it)."""
        with self._lock:
            return self._value if version == self._version else None

    def last(self) -> T:
        """The copy as last loaded, without touching storage."""
        with self._lock:
            return self._value
