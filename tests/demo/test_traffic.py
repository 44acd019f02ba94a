"""The demo's traffic generator: reproducible from its seed, fictional, and carrying every
kind of action the demo shows."""

from __future__ import annotations

import itertools
import re

from consentry.demo.traffic import Action, Consent, Request, Send, Traffic, Withdraw, customers


def first(traffic: Traffic, n: int) -> list[Action]:
    return list(itertools.islice(traffic.actions(), n))


def test_the_same_seed_gives_the_same_customers_and_sequence() -> None:
    assert customers(7, 500) == customers(7, 500)
    assert first(Traffic(7, 500), 5000) == first(Traffic(7, 500), 5000)
    assert customers(7, 500) != customers(8, 500)
    assert first(Traffic(7, 500), 5000) != first(Traffic(8, 500), 5000)


def test_the_run_names_the_event_ids_and_nothing_else() -> None:
    one, other = first(Traffic(7, 500, run="a"), 2000), first(Traffic(7, 500, run="b"), 2000)
    for x, y in zip(one, other, strict=True):
        if isinstance(x, Send) and isinstance(y, Send):
            assert x.event["event_id"].startswith("a-")
            assert x.event | {"event_id": ""} == y.event | {"event_id": ""}
        else:
            assert x == y


def test_customers_are_fictional() -> None:
    people = customers(1, 3000)
    assert len({p.email for p in people}) == 3000
    for person in people:
        assert person.email.endswith("@example.com")
        assert re.fullmatch(r"\+44 7700 900\d{3}", person.phone)


def test_the_sequence_holds_every_kind_of_action() -> None:
    actions = first(Traffic(1, 3000), 20_000)
    events = [a.event for a in actions if isinstance(a, Send)]
    assert {e["event_type"] for e in events} == {"page_view", "conversation", "order"}
    assert len({e["event_id"] for e in events}) == len(events)
    transcripts = [e["properties"]["transcript"] for e in events if "transcript" in e["properties"]]
    assert any(re.search(r"\+44 7700 900\d{3}", t) for t in transcripts)
    assert any("device_fingerprint" in e["properties"] for e in events)
    assert any("cookie_id" in str(e["subject"]) for e in events)
    consents = [a for a in actions if isinstance(a, Consent)]
    assert any(c.gpc for c in consents)
    assert any(set(c.purposes.values()) == {"denied"} for c in consents)
    assert any(isinstance(a, Withdraw) for a in actions)
    kinds = [a.type for a in actions if isinstance(a, Request)]
    assert "erasure" in kinds
    assert "access" in kinds
    # A customer's first choice comes before any event of theirs.
    seen: set[str] = set()
    chose: set[str] = set()
    for action in actions:
        if isinstance(action, Consent):
            who = action.subject["identities"][0]["value"]
            assert who not in seen
            chose.add(who)
        elif isinstance(action, Send):
            seen.add(action.event["subject"]["identities"][0]["value"])
    assert chose
