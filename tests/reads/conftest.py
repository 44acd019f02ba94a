"""Fixtures of the read tests: the ingest tests' gateway with a notice and a page_view schema."""

from __future__ import annotations

from tests.ingest.conftest import ready

__all__ = ["ready"]
