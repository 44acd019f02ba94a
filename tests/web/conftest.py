"""The pages' tests use the data-subject requests' store: a notice, an event schema, the
runner driven by the test."""

from tests.dsr.conftest import ready, settings

__all__ = ["ready", "settings"]
