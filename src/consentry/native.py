"""The native core (core/, Rust), as Python sees it: consentry._core, built by maturin when the
project is installed. Without it Consentry does not run: there is no slower Python copy of
what the core does to fall back on."""

from __future__ import annotations

try:
    from consentry._core import (
        AHEAD_MINUTES,
        EVENT_AAD_PREFIX,
        MAX_EVENTS,
        MAX_JSON_DEPTH,
        BatchRefused,
        Event,
        FieldPlan,
        OpenError,
        Properties,
        Pseudonymiser,
        Sealer,
        Subject,
        decode_batch,
        decode_event,
        decode_subjects,
        event_aad,
        event_id_of,
        json_problem,
        nonces,
        received,
        redact,
        redact_many,
        seal_batch,
        seal_events,
        shape_batch,
        subject_key,
    )
    from consentry._core import find as redact_find
except ImportError as missing:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "consentry._core, Consentry's native core, is not built. Build it with `make install` "
        "(or `pip install -e .`, which runs maturin on core/; a Rust toolchain, cargo and "
        "rustc, is needed), then start again."
    ) from missing

__all__ = [
    "AHEAD_MINUTES",
    "EVENT_AAD_PREFIX",
    "MAX_EVENTS",
    "MAX_JSON_DEPTH",
    "BatchRefused",
    "Event",
    "FieldPlan",
    "OpenError",
    "Properties",
    "Pseudonymiser",
    "Sealer",
    "Subject",
    "decode_batch",
    "decode_event",
    "decode_subjects",
    "event_aad",
    "event_id_of",
    "json_problem",
    "nonces",
    "received",
    "redact",
    "redact_find",
    "redact_many",
    "seal_batch",
    "seal_events",
    "shape_batch",
    "subject_key",
]
