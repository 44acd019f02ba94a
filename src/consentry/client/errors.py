"""What the client raises: the server's problem+json as ConsentryAPIError, and the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ConsentryClientError(Exception):
    """Base of every error the client raises. `undelivered`: the events a batcher had accepted
    from the caller and could not deliver (empty outside a batcher); they are the caller's
    again, to keep or resend (their event ids make a resend safe)."""

    code: str = "client_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.undelivered: list[dict[str, Any]] = []


class ConsentryAPIError(ConsentryClientError):
    """The server refused the call: `status`, and the problem's stable `code`, `title`,
    `detail` and whole body (`problem`). A response that is not problem+json (a proxy's error
    page) gets the code `http_<status>`."""

    def __init__(
        self,
        status: int,
        code: str,
        *,
        title: str = "",
        detail: str = "",
        problem: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}".rstrip(": "))
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.problem: dict[str, Any] = dict(problem or {})
        self.retry_after = retry_after

    @property
    def errors(self) -> Sequence[Mapping[str, Any]]:
        """Per-field details of a validation problem (field, type, message), when given."""
        found = self.problem.get("errors")
        return found if isinstance(found, list) else []


class ConsentryConnectionError(ConsentryClientError):
    """No answer from the server: it could not be reached, the connection broke, or the call
    timed out. `maybe_processed` is False only when the request surely never reached it."""

    code = "connection_error"

    def __init__(self, message: str, *, maybe_processed: bool) -> None:
        super().__init__(message)
        self.maybe_processed = maybe_processed
