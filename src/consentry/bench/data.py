"""Fictional data for the benchmark: subjects, a notice, schemas and the event mix."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from consentry.consent import notices
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise

ADMIN_KEY = "bench-admin-key-not-a-secret"
MASTER_KEY = "YmVuY2gtbWFzdGVyLWtleS1ub3QtZm9yLXByb2QhISE"
CONSENT_PURPOSES = ["analytics", "personalization", "marketing", "advertising"]
SCHEMAS: dict[str, dict[str, Any]] = {
    "page_view": {
        "purposes": ["analytics", "personalization"],
        "fields": {
            "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
            "email": {
                "type": "string",
                "category": "user.contact.email",
                "treatment": "pseudonymise",
            },
            "offer": {
                "type": "string",
                "category": "system.operations",
                "treatment": "keep",
                "purposes": ["personalization"],
            },
        },
    },
    "chat_message": {
        "purposes": ["analytics"],
        "fields": {
            "channel": {"type": "string", "category": "system.operations", "treatment": "keep"},
            "text": {"type": "string", "category": "user.content", "treatment": "redact"},
        },
    },
    "order": {
        "purposes": ["service_delivery"],
        "fields": {
            "order_id": {"type": "string", "category": "system.operations", "treatment": "keep"},
            "amount": {"type": "number", "category": "user.financial", "treatment": "keep"},
        },
    },
}
CHAT = (
    "Hi, I ordered the blue kettle last week (order 58213) and it still has not arrived. "
    "You can reach me on +44 7700 900{n:03d} or at customer{n}@example.com, thanks a lot!"
)


@dataclass
class World:
    runtime: Runtime
    settings: Settings
    subject_ids: list[str]
    withdrawn: set[str]


def make_settings(data_dir: Path | None = None) -> Settings:
    directory = data_dir or Path(tempfile.mkdtemp(prefix="consentry-bench-"))
    return Settings(
        data_dir=directory, admin_key=ADMIN_KEY, master_key=MASTER_KEY, log_level="warning"
    )


def build(subjects: int, settings: Settings | None = None) -> World:
    """A store with `subjects` customers who granted analytics and personalisation; 20% then
    withdrew analytics."""
    settings = settings or make_settings()
    rt = Runtime(settings)
    with rt.store.write() as conn:
        notices.publish(
            conn, rt.purposes, "bench", "1", "Bench notice.", CONSENT_PURPOSES, actor="bench"
        )
        for event_type, schema in SCHEMAS.items():
            rt.schemas.put(conn, event_type, schema, rt.purposes.all(conn), actor="bench")
    ids, withdrawn = customers(rt, "c", subjects)
    return World(rt, settings, ids, withdrawn)


def customers(
    rt: Runtime, prefix: str, count: int, *, withdraw: bool = True
) -> tuple[list[str], set[str]]:
    """`count` new customers (`{prefix}{n}@example.com`) who granted analytics and
    personalisation; with `withdraw`, every fifth then withdrew analytics. Their ids, and
    those who withdrew."""
    ids: list[str] = []
    withdrawn: set[str] = set()
    for n in range(count):
        ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, f"{prefix}{n}@example.com"),))
        result = rt.consent.record(
            ConsentWrite(
                ref=ref,
                purposes={"analytics": "granted", "personalization": "granted"},
                source="web",
                notice=("bench", "1"),
                jurisdiction="UK",
            ),
            actor="bench",
        )
        ids.append(result.state.subject_id)
        if withdraw and n % 5 == 0:
            rt.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor="bench")
            withdrawn.add(result.state.subject_id)
    return ids, withdrawn


def event(n: int, subject_id: str, prefix: str) -> dict[str, Any]:
    """The mix: 60% page views, 30% chat messages (~200 characters with PII), 10% orders."""
    kind = n % 10
    base = {
        "event_id": f"{prefix}-{n}",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": {"subject_id": subject_id},
    }
    if kind < 6:
        return base | {
            "event_type": "page_view",
            "properties": {
                "url": f"/products/{n % 997}",
                "email": f"c{n % 5000}@example.com",
                "offer": "spring",
            },
        }
    if kind < 9:
        return base | {
            "event_type": "chat_message",
            "properties": {"channel": "web", "text": CHAT.format(n=n % 1000)},
        }
    return base | {
        "event_type": "order",
        "properties": {"order_id": f"A{n}", "amount": 19.99 + n % 50},
    }


def batches(world: World, count: int, size: int, prefix: str, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for b in range(count):
        events = [event(b * size + i, rng.choice(world.subject_ids), prefix) for i in range(size)]
        bodies.append(msgspec.json.encode({"events": events}))
    return bodies
