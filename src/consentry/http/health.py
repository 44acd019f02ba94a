"""Liveness and readiness: `/healthz` answers 200 only when the database does."""

from __future__ import annotations

from typing import Any

from consentry import __version__
from consentry.http.auth import RuntimeDep


def healthz(runtime: RuntimeDep) -> dict[str, Any]:
    runtime.store.ping()
    return {"status": "ok", "version": __version__, "database": runtime.store.dialect}
