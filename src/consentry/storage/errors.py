"""The database's refusals under storage's own names, so no domain handles a driver's errors."""

from __future__ import annotations

from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

# PostgreSQL: serialization_failure, deadlock_detected (the transaction may simply be re-run).
_RETRY_STATES = frozenset({"40001", "40P01"})


class StorageFailure(Exception):
    """A statement or commit the database refused. `driver_error` names the driver's error
    class (never its message, which may quote the data written)."""

    def __init__(self, driver_error: str) -> None:
        super().__init__(f"the database refused the statement ({driver_error})")
        self.driver_error = driver_error


class ConstraintViolation(StorageFailure):
    """A unique, primary-key, foreign-key, check or not-null constraint refused a write: often
    another transaction wrote the same key first."""


class OperationalFailure(StorageFailure):
    """The database could not carry the statement out (locked, out of space, connection lost)."""


class SerializationFailure(OperationalFailure):
    """PostgreSQL broke a lock cycle or a serialization conflict: the transaction, run again
    from the start, may succeed."""


def translate(ctx: ExceptionContext) -> StorageFailure | None:
    """The named error for a driver error met on an open connection (the engine's
    `handle_error` hook); None leaves connection and pre-ping errors to SQLAlchemy."""
    error = ctx.sqlalchemy_exception
    if ctx.connection is None or ctx.is_pre_ping or not isinstance(error, DBAPIError):
        return None
    name = type(ctx.original_exception).__name__
    if isinstance(error, IntegrityError):
        return ConstraintViolation(name)
    if isinstance(error, OperationalError):
        if getattr(ctx.original_exception, "sqlstate", None) in _RETRY_STATES:
            return SerializationFailure(name)
        return OperationalFailure(name)
    return StorageFailure(name)
